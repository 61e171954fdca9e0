import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { murmur2, partitionForKey, Partitioner, toPositive } from './partitioner.js';

const bytes = (s: string) => new TextEncoder().encode(s);

describe('murmur2 (Kafka default partitioner)', () => {
  // Vectors from Kafka's own clients/src/test/java/org/apache/kafka/common/utils/UtilsTest#testMurmur2.
  const cases: [string, number][] = [
    ['21', -973932308],
    ['foobar', -790332482],
    ['a-little-bit-long-string', -985981536],
    ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ['abc', 479470107],
  ];
  it.each(cases)('murmur2(%j) = %i as in Kafka UtilsTest', (input, expected) => {
    expect(murmur2(bytes(input))).toBe(expected);
  });

  it('toPositive clears the sign bit like Kafka (not Math.abs)', () => {
    expect(toPositive(-973932308)).toBe(-973932308 & 0x7fffffff);
    expect(toPositive(-2147483648)).toBe(0);
    expect(toPositive(5)).toBe(5);
  });

  it('partition numbers match Kafka for the test vectors', () => {
    // toPositive(murmur2("foobar")) % 4, computed the same way as DefaultPartitioner/BuiltInPartitioner.
    expect(partitionForKey(bytes('foobar'), 4)).toBe((-790332482 & 0x7fffffff) % 4);
    expect(partitionForKey(bytes('21'), 12)).toBe((-973932308 & 0x7fffffff) % 12);
  });

  it('property: partitions are in range, deterministic, and depend only on the key bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 1, max: 1000 }), (key, n) => {
        const p = partitionForKey(key, n);
        expect(Number.isInteger(p)).toBe(true);
        expect(p).toBeGreaterThanOrEqual(0);
        expect(p).toBeLessThan(n);
        expect(partitionForKey(Uint8Array.from(key), n)).toBe(p);
        expect(murmur2(key)).toBe(murmur2(key) | 0);
      }),
      { seed: 42, numRuns: 500 },
    );
  });

  it('property: agrees with a straightforward BigInt transcription of the Java code', () => {
    const javaMurmur2 = (data: Uint8Array): number => {
      const int = (x: bigint) => BigInt.asIntN(32, x);
      const m = 0x5bd1e995n;
      let h = int(0x9747b28cn ^ BigInt(data.length));
      const ushr = (x: bigint, n: bigint) => BigInt.asUintN(32, x) >> n;
      const length4 = Math.floor(data.length / 4);
      for (let i = 0; i < length4; i++) {
        let k = int(
          BigInt(data[i * 4]) |
            (BigInt(data[i * 4 + 1]) << 8n) |
            (BigInt(data[i * 4 + 2]) << 16n) |
            (BigInt(data[i * 4 + 3]) << 24n),
        );
        k = int(k * m);
        k = int(k ^ ushr(k, 24n));
        k = int(k * m);
        h = int(h * m);
        h = int(h ^ k);
      }
      const tail = data.length & ~3;
      const rest = data.length % 4;
      if (rest === 3) h = int(h ^ (BigInt(data[tail + 2]) << 16n));
      if (rest >= 2) h = int(h ^ (BigInt(data[tail + 1]) << 8n));
      if (rest >= 1) {
        h = int(h ^ BigInt(data[tail]));
        h = int(h * m);
      }
      h = int(h ^ ushr(h, 13n));
      h = int(h * m);
      h = int(h ^ ushr(h, 15n));
      return Number(h);
    };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (key) => {
        expect(murmur2(key)).toBe(javaMurmur2(key));
      }),
      { seed: 7, numRuns: 300 },
    );
  });

  it('null keys stick to one partition per batch and rotate between batches', () => {
    const partitioner = new Partitioner();
    const seen: number[] = [];
    for (let batch = 0; batch < 6; batch++) {
      partitioner.beginBatch();
      const first = partitioner.partition('t', null, 3);
      expect(partitioner.partition('t', null, 3)).toBe(first);
      seen.push(first);
    }
    expect(seen).toEqual([0, 1, 2, 0, 1, 2]);
  });
});
