import { englishStopwords, wordTokens } from '../embed/embedder.js';

export function bm25Terms(text: string): string[] {
  return wordTokens(text).filter((t) => !englishStopwords.has(t));
}

export interface Bm25Options {
  k1?: number;
  b?: number;
}

/**
 * Okapi BM25 over internal ids. Postings are per-term arrays of (id, term frequency); deleting a
 * document marks it and adjusts the collection statistics, and its postings are skipped (and
 * dropped when the index is rebuilt from records).
 */
export class Bm25Index {
  readonly #k1: number;
  readonly #b: number;
  readonly #postings = new Map<string, { ids: number[]; tfs: number[] }>();
  readonly #lengths: number[] = [];
  readonly #deleted: boolean[] = [];
  #liveCount = 0;
  #totalLength = 0;

  constructor(options: Bm25Options = {}) {
    this.#k1 = options.k1 ?? 1.2;
    this.#b = options.b ?? 0.75;
  }

  /** Adds document `id` (ids must be added in increasing order, gaps allowed). */
  add(id: number, text: string): void {
    const terms = bm25Terms(text);
    const counts = new Map<string, number>();
    for (const t of terms) counts.set(t, (counts.get(t) ?? 0) + 1);
    for (const [term, tf] of counts) {
      let p = this.#postings.get(term);
      if (!p) {
        p = { ids: [], tfs: [] };
        this.#postings.set(term, p);
      }
      p.ids.push(id);
      p.tfs.push(tf);
    }
    this.#lengths[id] = terms.length;
    this.#deleted[id] = false;
    this.#liveCount++;
    this.#totalLength += terms.length;
  }

  delete(id: number): void {
    if (this.#deleted[id] !== false) return;
    this.#deleted[id] = true;
    this.#liveCount--;
    this.#totalLength -= this.#lengths[id] ?? 0;
  }

  /**
   * Inverse document frequency of a (normalised) term among live documents. A term that occurs
   * nowhere gets the largest possible value: it is the most informative part of a question, and
   * its absence is what makes a question unanswerable from the collection.
   */
  idf(term: string): number {
    const p = this.#postings.get(term);
    let df = 0;
    if (p) for (const id of p.ids) if (!this.#deleted[id]) df++;
    return Math.log(1 + (this.#liveCount - df + 0.5) / (df + 0.5));
  }

  /** Top-k ids by BM25 score among those `accept` allows; only ids matching ≥ 1 term score. */
  search(query: string, k: number, accept?: (id: number) => boolean): { id: number; score: number }[] {
    const terms = [...new Set(bm25Terms(query))];
    if (terms.length === 0 || this.#liveCount === 0) return [];
    const avgLength = this.#totalLength / this.#liveCount || 1;
    const scores = new Map<number, number>();
    for (const term of terms) {
      const p = this.#postings.get(term);
      if (!p) continue;
      let df = 0;
      for (const id of p.ids) if (!this.#deleted[id]) df++;
      if (df === 0) continue;
      const idf = Math.log(1 + (this.#liveCount - df + 0.5) / (df + 0.5));
      for (let i = 0; i < p.ids.length; i++) {
        const id = p.ids[i];
        if (this.#deleted[id] || (accept !== undefined && !accept(id))) continue;
        const tf = p.tfs[i];
        const norm = tf + this.#k1 * (1 - this.#b + (this.#b * (this.#lengths[id] ?? 0)) / avgLength);
        scores.set(id, (scores.get(id) ?? 0) + (idf * (tf * (this.#k1 + 1))) / norm);
      }
    }
    return [...scores]
      .map(([id, score]) => ({ id, score }))
      .sort((a, b) => b.score - a.score || a.id - b.id)
      .slice(0, k);
  }
}

/**
 * Reciprocal rank fusion (Cormack et al. 2009): score(d) = Σ over lists of 1 / (k + rank), rank
 * starting at 1. Robust to the two lists having incomparable score scales.
 */
export function reciprocalRankFusion(lists: { id: number }[][], k = 60): { id: number; score: number }[] {
  const fused = new Map<number, number>();
  for (const list of lists) {
    list.forEach((item, rank) => fused.set(item.id, (fused.get(item.id) ?? 0) + 1 / (k + rank + 1)));
  }
  return [...fused].map(([id, score]) => ({ id, score })).sort((a, b) => b.score - a.score || a.id - b.id);
}
