/**
 * mulberry32: a tiny seeded PRNG, identical on every platform, for anything that must replay from
 * a printed seed (crash points, generated data, graph construction). Not for secrets.
 *
 * @example
 * const random = seededRandom(42);
 * const killAfterMs = Math.floor(random() * 400);
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
