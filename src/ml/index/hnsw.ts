import { seededRandom, TributaryError, limits } from '../../core/index.js';
import { simdDot, type DotFunction } from './simd.js';

/**
 * Vector search over L2-normalised Float32 vectors with inner-product similarity.
 *
 * `VectorStore` keeps every vector in one growable Float32Array (row `id` at `id * dim`), so a
 * similarity is a tight loop over typed-array memory. `exactSearch` scans it (brute force);
 * `Hnsw` builds a Hierarchical Navigable Small World graph over the same store (Malkov &
 * Yashunin 2016): each node gets a random level, upper levels are sparse "express" graphs,
 * level 0 links every node to up to `2·M` neighbours. Insertion searches with `efConstruction`
 * candidates and keeps a diverse neighbour set (the paper's heuristic); queries descend greedily
 * and then search level 0 with `ef` candidates.
 */

/** Inner product of row `offset` of `data` with `query` (unrolled by 8 for the JIT). */
export function dotAt(data: Float32Array, offset: number, query: Float32Array, dim: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let s4 = 0;
  let s5 = 0;
  let s6 = 0;
  let s7 = 0;
  let i = 0;
  for (; i + 7 < dim; i += 8) {
    const o = offset + i;
    s0 += data[o] * query[i];
    s1 += data[o + 1] * query[i + 1];
    s2 += data[o + 2] * query[i + 2];
    s3 += data[o + 3] * query[i + 3];
    s4 += data[o + 4] * query[i + 4];
    s5 += data[o + 5] * query[i + 5];
    s6 += data[o + 6] * query[i + 6];
    s7 += data[o + 7] * query[i + 7];
  }
  for (; i < dim; i++) s0 += data[offset + i] * query[i];
  return s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7;
}

const pageBytes = 65_536;
/** Bytes reserved at the start of a store's memory for query vectors (2 × 16,384 floats). */
const scratchBytes = 2 * pageBytes * 2;

/**
 * Vectors in one WebAssembly memory so the SIMD kernel can read them in place:
 *   [0, scratchBytes)        query scratch (the vector being searched for is copied here)
 *   [scratchBytes, ...)      row `id` at scratchBytes + id·dim·4, as little-endian f32
 * `data` is a Float32Array view of the rows; it is replaced when the memory grows, so callers
 * re-read `store.data` after any `add`.
 */
export class VectorStore {
  readonly dim: number;
  data: Float32Array;
  size = 0;
  readonly #memory: WebAssembly.Memory;
  readonly #dot: DotFunction;
  readonly #rowBytes: number;

  constructor(dim: number, capacity = 1024) {
    if (!Number.isInteger(dim) || dim < 1 || dim > 16_384) {
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `vector dimension must be an integer in [1, 16384], got ${dim}`,
      );
    }
    this.dim = dim;
    this.#rowBytes = dim * 4;
    const pages = Math.ceil((scratchBytes + Math.max(1, capacity) * this.#rowBytes) / pageBytes);
    if (pages > limits.hnswMemoryPagesMax)
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `${capacity} vectors of ${dim} dimensions exceed the 4 GiB vector store`,
      );
    this.#memory = new WebAssembly.Memory({ initial: pages, maximum: limits.hnswMemoryPagesMax });
    this.#dot = simdDot(this.#memory);
    this.data = this.#view();
  }

  #view(): Float32Array {
    return new Float32Array(
      this.#memory.buffer,
      scratchBytes,
      (this.#memory.buffer.byteLength - scratchBytes) / 4,
    );
  }

  get capacity(): number {
    return Math.floor(this.data.length / this.dim);
  }

  #grow(rows: number): void {
    const needBytes = scratchBytes + rows * this.#rowBytes;
    const have = this.#memory.buffer.byteLength;
    if (needBytes <= have) return;
    const target = Math.min(
      limits.hnswMemoryPagesMax,
      Math.max(Math.ceil(needBytes / pageBytes), (have / pageBytes) * 2),
    );
    if (target * pageBytes < needBytes)
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `${rows} vectors of ${this.dim} dimensions exceed the 4 GiB vector store`,
      );
    this.#memory.grow(target - have / pageBytes);
    this.data = this.#view();
  }

  add(vector: Float32Array): number {
    if (vector.length !== this.dim) {
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `vector has ${vector.length} dimensions, the index has ${this.dim}`,
      );
    }
    this.#grow(this.size + 1);
    this.data.set(vector, this.size * this.dim);
    return this.size++;
  }

  /** Appends `count` rows given as raw little-endian f32 bytes (used when loading an index). */
  addRaw(bytes: Uint8Array, count: number): void {
    if (bytes.length !== count * this.#rowBytes)
      throw new TributaryError('INTERNAL', 'raw vector bytes do not match the row count');
    this.#grow(this.size + count);
    new Uint8Array(this.#memory.buffer, scratchBytes + this.size * this.#rowBytes, bytes.length).set(bytes);
    this.size += count;
  }

  /** Raw bytes of the first `size` rows (a view, not a copy). */
  rawBytes(): Uint8Array {
    return new Uint8Array(this.#memory.buffer, scratchBytes, this.size * this.#rowBytes);
  }

  get(id: number): Float32Array {
    return this.data.subarray(id * this.dim, (id + 1) * this.dim);
  }

  /** Copies `query` into scratch slot 0 or 1 and returns its handle for `dotQuery`. */
  setQuery(query: Float32Array, slot = 0): number {
    if (query.length !== this.dim) {
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `query vector has ${query.length} dimensions, the index has ${this.dim}`,
      );
    }
    const offset = slot * (scratchBytes / 2);
    new Float32Array(this.#memory.buffer, offset, this.dim).set(query);
    return offset;
  }

  /** Inner product of row `id` with the query at scratch `handle`. */
  dotQuery(id: number, handle: number): number {
    return this.#dot(scratchBytes + id * this.#rowBytes, handle, this.dim);
  }

  /** Inner product of rows `a` and `b`. */
  dotRows(a: number, b: number): number {
    return this.#dot(scratchBytes + a * this.#rowBytes, scratchBytes + b * this.#rowBytes, this.dim);
  }

  /** Handle that makes `dotQuery(x, handle)` the inner product with row `id` (no copy). */
  rowHandle(id: number): number {
    return scratchBytes + id * this.#rowBytes;
  }
}

export interface ScoredId {
  id: number;
  score: number;
}

/** Brute-force top-k by inner product; `accept(id)` filters (deleted, tenant...). */
export function exactSearch(
  store: VectorStore,
  query: Float32Array,
  k: number,
  accept?: (id: number) => boolean,
): ScoredId[] {
  const heap = new BoundedMinHeap(k);
  const handle = store.setQuery(query);
  for (let id = 0; id < store.size; id++) {
    if (accept !== undefined && !accept(id)) continue;
    heap.push(id, store.dotQuery(id, handle));
  }
  return heap.sortedDescending();
}

/** Exact search over a given candidate list (used when a filter leaves few candidates). */
export function exactSearchIds(
  store: VectorStore,
  query: Float32Array,
  k: number,
  ids: Iterable<number>,
): ScoredId[] {
  const heap = new BoundedMinHeap(k);
  const handle = store.setQuery(query);
  for (const id of ids) heap.push(id, store.dotQuery(id, handle));
  return heap.sortedDescending();
}

/** Keeps the k highest scores seen (a min-heap on score). */
class BoundedMinHeap {
  readonly #k: number;
  readonly #ids: Int32Array;
  readonly #scores: Float64Array;
  #size = 0;

  constructor(k: number) {
    this.#k = Math.max(1, k);
    this.#ids = new Int32Array(this.#k);
    this.#scores = new Float64Array(this.#k);
  }

  push(id: number, score: number): void {
    if (this.#size < this.#k) {
      let i = this.#size++;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (this.#scores[p] <= score) break;
        this.#ids[i] = this.#ids[p]!;
        this.#scores[i] = this.#scores[p]!;
        i = p;
      }
      this.#ids[i] = id;
      this.#scores[i] = score;
    } else if (score > this.#scores[0]) {
      this.#siftDownFromRoot(id, score);
    }
  }

  #siftDownFromRoot(id: number, score: number): void {
    const n = this.#size;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.#scores[r] < this.#scores[l] ? r : l;
      if (this.#scores[c] >= score) break;
      this.#ids[i] = this.#ids[c]!;
      this.#scores[i] = this.#scores[c]!;
      i = c;
    }
    this.#ids[i] = id;
    this.#scores[i] = score;
  }

  sortedDescending(): ScoredId[] {
    const out: ScoredId[] = [];
    for (let i = 0; i < this.#size; i++) out.push({ id: this.#ids[i], score: this.#scores[i] });
    return out.sort((a, b) => b.score - a.score || a.id - b.id);
  }
}

/** Binary heap of (id, distance) on typed arrays; `max` selects a max-heap. */
class DistHeap {
  ids: Int32Array;
  dists: Float64Array;
  size = 0;
  readonly #max: boolean;

  constructor(capacity: number, max: boolean) {
    this.ids = new Int32Array(capacity);
    this.dists = new Float64Array(capacity);
    this.#max = max;
  }

  clear(): void {
    this.size = 0;
  }

  #before(a: number, b: number): boolean {
    return this.#max ? a > b : a < b;
  }

  push(id: number, dist: number): void {
    if (this.size === this.ids.length) {
      const ids = new Int32Array(this.ids.length * 2);
      ids.set(this.ids);
      const dists = new Float64Array(this.dists.length * 2);
      dists.set(this.dists);
      this.ids = ids;
      this.dists = dists;
    }
    let i = this.size++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#before(dist, this.dists[p])) break;
      this.ids[i] = this.ids[p]!;
      this.dists[i] = this.dists[p]!;
      i = p;
    }
    this.ids[i] = id;
    this.dists[i] = dist;
  }

  topDist(): number {
    return this.dists[0];
  }

  topId(): number {
    return this.ids[0];
  }

  pop(): void {
    const n = --this.size;
    if (n === 0) return;
    const id = this.ids[n];
    const dist = this.dists[n];
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.#before(this.dists[r], this.dists[l]) ? r : l;
      if (!this.#before(this.dists[c], dist)) break;
      this.ids[i] = this.ids[c]!;
      this.dists[i] = this.dists[c]!;
      i = c;
    }
    this.ids[i] = id;
    this.dists[i] = dist;
  }
}

export interface HnswOptions {
  /** Links per node on upper levels (level 0 gets 2·M). Default 16. */
  m?: number;
  /** Candidates kept while inserting. Default 100. */
  efConstruction?: number;
  /** Seed of the level generator. */
  seed?: number;
  /**
   * How a full neighbour list takes a new link: `true` (default) re-runs the diversity heuristic,
   * `false` replaces the farthest link (cheaper to build, lower recall on clustered data).
   */
  shrinkHeuristic?: boolean;
}

export class Hnsw {
  readonly store: VectorStore;
  readonly m: number;
  readonly m0: number;
  readonly efConstruction: number;
  readonly shrinkHeuristic: boolean;
  readonly #levelMult: number;
  readonly #random: () => number;
  /** Level-0 links: node n's neighbours at [n*m0, n*m0 + count0[n]). */
  links0: Int32Array;
  count0: Uint8Array;
  /** Upper levels: for a node with level L ≥ 1, L blocks of (1 + m) ints: count then links. */
  upper: (Int32Array | undefined)[] = [];
  /**
   * Distance of each stored link (same layout as `links0` / `upper`), so a full neighbour list
   * can decide whether a new link replaces its farthest one without recomputing inner products.
   * Not persisted: rebuilt on the first insert after `decode`.
   */
  #dist0: Float32Array;
  #upperDist: (Float32Array | undefined)[] = [];
  #distsValid = true;
  levels: Uint8Array;
  entry = -1;
  maxLevel = -1;
  /** Nodes inserted into the graph (ids 0..size-1 of the store). */
  size = 0;
  #visited: Uint32Array;
  #stamp = 0;
  readonly #candidates = new DistHeap(256, false);
  readonly #results = new DistHeap(256, true);

  constructor(store: VectorStore, options: HnswOptions = {}) {
    this.store = store;
    this.m = options.m ?? 16;
    this.m0 = this.m * 2;
    this.efConstruction = options.efConstruction ?? 100;
    this.shrinkHeuristic = options.shrinkHeuristic ?? true;
    if (this.m < 2 || this.m0 > 255)
      throw new TributaryError('INVALID_ARGUMENT', `HNSW m must be in [2, 127], got ${this.m}`);
    this.#levelMult = 1 / Math.log(this.m);
    this.#random = seededRandom(options.seed ?? 42);
    const capacity = store.capacity;
    this.links0 = new Int32Array(capacity * this.m0);
    this.#dist0 = new Float32Array(capacity * this.m0);
    this.count0 = new Uint8Array(capacity);
    this.levels = new Uint8Array(capacity);
    this.#visited = new Uint32Array(capacity);
  }

  #ensureCapacity(n: number): void {
    if (n <= this.count0.length) return;
    const capacity = Math.max(n, this.count0.length * 2);
    const links0 = new Int32Array(capacity * this.m0);
    links0.set(this.links0);
    this.links0 = links0;
    const dist0 = new Float32Array(capacity * this.m0);
    dist0.set(this.#dist0);
    this.#dist0 = dist0;
    const count0 = new Uint8Array(capacity);
    count0.set(this.count0);
    this.count0 = count0;
    const levels = new Uint8Array(capacity);
    levels.set(this.levels);
    this.levels = levels;
    this.#visited = new Uint32Array(capacity);
    this.#stamp = 0;
  }

  #nextStamp(): number {
    if (++this.#stamp === 0xffffffff) {
      this.#visited.fill(0);
      this.#stamp = 1;
    }
    return this.#stamp;
  }

  /** Neighbour list of `node` at `level` as (array, start, count). */
  #neighbours(node: number, level: number): [Int32Array, number, number] {
    if (level === 0) return [this.links0, node * this.m0, this.count0[node]];
    const block = this.upper[node]!;
    const base = (level - 1) * (this.m + 1);
    return [block, base + 1, block[base]];
  }

  #setNeighbours(
    node: number,
    level: number,
    ids: ArrayLike<number>,
    dists: ArrayLike<number>,
    count: number,
  ): void {
    if (level === 0) {
      const base = node * this.m0;
      for (let i = 0; i < count; i++) {
        this.links0[base + i] = ids[i]!;
        this.#dist0[base + i] = dists[i]!;
      }
      this.count0[node] = count;
    } else {
      const block = this.upper[node]!;
      const distBlock = this.#upperDist[node]!;
      const base = (level - 1) * (this.m + 1);
      block[base] = count;
      for (let i = 0; i < count; i++) {
        block[base + 1 + i] = ids[i]!;
        distBlock[base + 1 + i] = dists[i]!;
      }
    }
  }

  /** Recomputes every link distance (after `decode`, before the graph is modified). */
  #ensureDists(): void {
    if (this.#distsValid) return;
    const store = this.store;
    for (let node = 0; node < this.size; node++) {
      for (let level = 0; level <= this.levels[node]; level++) {
        const [arr, off, count] = this.#neighbours(node, level);
        const dists = level === 0 ? this.#dist0 : (this.#upperDist[node] ??= new Float32Array(arr.length));
        for (let i = 0; i < count; i++) dists[off + i] = 1 - store.dotRows(node, arr[off + i]);
      }
    }
    this.#distsValid = true;
  }

  /** Greedy walk to the closest node at one level (ef = 1). */
  #greedy(query: number, start: number, level: number): number {
    const store = this.store;
    let current = start;
    let best = 1 - store.dotQuery(current, query);
    let changed = true;
    while (changed) {
      changed = false;
      const [arr, off, count] = this.#neighbours(current, level);
      for (let i = 0; i < count; i++) {
        const n = arr[off + i];
        const d = 1 - store.dotQuery(n, query);
        if (d < best) {
          best = d;
          current = n;
          changed = true;
        }
      }
    }
    return current;
  }

  /**
   * Beam search at one level. Leaves the `ef` closest nodes in `#results` (a max-heap on
   * distance). `accept` limits which nodes may enter the results (filters); rejected nodes are
   * still traversed so the graph stays connected for the search.
   */
  #searchLayer(
    query: number,
    entry: number,
    ef: number,
    level: number,
    accept?: (id: number) => boolean,
  ): void {
    const store = this.store;
    const visited = this.#visited;
    const stamp = this.#nextStamp();
    const candidates = this.#candidates;
    const results = this.#results;
    candidates.clear();
    results.clear();
    const d0 = 1 - store.dotQuery(entry, query);
    visited[entry] = stamp;
    candidates.push(entry, d0);
    if (accept === undefined || accept(entry)) results.push(entry, d0);
    while (candidates.size > 0) {
      const current = candidates.topId();
      const dc = candidates.topDist();
      if (results.size >= ef && dc > results.topDist()) break;
      candidates.pop();
      let arr: Int32Array;
      let off: number;
      let count: number;
      if (level === 0) {
        arr = this.links0;
        off = current * this.m0;
        count = this.count0[current]!;
      } else {
        arr = this.upper[current]!;
        const base = (level - 1) * (this.m + 1);
        off = base + 1;
        count = arr[base]!;
      }
      for (let i = 0; i < count; i++) {
        const n = arr[off + i];
        if (visited[n] === stamp) continue;
        visited[n] = stamp;
        const d = 1 - store.dotQuery(n, query);
        if (results.size < ef || d < results.topDist()) {
          candidates.push(n, d);
          if (accept === undefined || accept(n)) {
            results.push(n, d);
            if (results.size > ef) results.pop();
          }
        }
      }
    }
  }

  /** Drains `#results` into arrays sorted by ascending distance. */
  #drainResults(): { ids: Int32Array; dists: Float64Array } {
    const n = this.#results.size;
    const ids = new Int32Array(n);
    const dists = new Float64Array(n);
    for (let i = n - 1; i >= 0; i--) {
      ids[i] = this.#results.topId();
      dists[i] = this.#results.topDist();
      this.#results.pop();
    }
    return { ids, dists };
  }

  /**
   * The paper's neighbour-selection heuristic: keep a candidate only if it is closer to the new
   * node than to every already-kept neighbour. Returns positions in `ids`.
   */
  #selectHeuristic(ids: Int32Array, dists: Float64Array, max: number): number[] {
    const store = this.store;
    const selected: number[] = [];
    // Only the closest 3·M candidates are considered: farther ones are almost never kept, and each
    // consideration costs up to M inner products.
    const considered = Math.min(ids.length, 3 * this.m);
    for (let i = 0; i < considered && selected.length < max; i++) {
      const c = ids[i];
      const dc = dists[i];
      let good = true;
      for (const s of selected) {
        if (1 - store.dotRows(c, ids[s]) < dc) {
          good = false;
          break;
        }
      }
      if (good) selected.push(i);
    }
    return selected;
  }

  /** Inserts store row `id` (rows must be inserted in order 0, 1, 2...). */
  insert(id: number): void {
    if (id !== this.size)
      throw new TributaryError('INTERNAL', `HNSW insert out of order: ${id}, expected ${this.size}`);
    this.#ensureCapacity(id + 1);
    const level = Math.min(31, Math.floor(-Math.log(1 - this.#random()) * this.#levelMult));
    this.#ensureDists();
    this.levels[id] = level;
    if (level > 0) {
      this.upper[id] = new Int32Array(level * (this.m + 1));
      this.#upperDist[id] = new Float32Array(level * (this.m + 1));
    }
    this.size++;
    if (this.entry < 0) {
      this.entry = id;
      this.maxLevel = level;
      return;
    }
    const query = this.store.rowHandle(id);
    let current = this.entry;
    for (let l = this.maxLevel; l > level; l--) current = this.#greedy(query, current, l);
    for (let l = Math.min(level, this.maxLevel); l >= 0; l--) {
      this.#searchLayer(query, current, this.efConstruction, l);
      const { ids, dists } = this.#drainResults();
      const max = l === 0 ? this.m0 : this.m;
      const selected = this.#selectHeuristic(ids, dists, this.m);
      const selectedIds = selected.map((i) => ids[i]);
      const selectedDists = selected.map((i) => dists[i]);
      this.#setNeighbours(id, l, selectedIds, selectedDists, selected.length);
      for (let j = 0; j < selected.length; j++) this.#link(selectedIds[j], id, l, max, selectedDists[j]);
      current = ids[0]!;
    }
    if (level > this.maxLevel) {
      this.maxLevel = level;
      this.entry = id;
    }
  }

  /** Adds `to` (at distance `dist`) to `from`'s list; when full, it replaces the farthest link if closer. */
  #link(from: number, to: number, level: number, max: number, dist: number): void {
    const [arr, off, count] = this.#neighbours(from, level);
    const dists = level === 0 ? this.#dist0 : this.#upperDist[from]!;
    if (count < max) {
      arr[off + count] = to;
      dists[off + count] = dist;
      if (level === 0) this.count0[from] = count + 1;
      else arr[off - 1] = count + 1;
      return;
    }
    if (!this.shrinkHeuristic) {
      let worst = -1;
      let worstDist = dist;
      for (let i = 0; i < count; i++) {
        const d = dists[off + i];
        if (d > worstDist) {
          worstDist = d;
          worst = i;
        }
      }
      if (worst >= 0) {
        arr[off + worst] = to;
        dists[off + worst] = dist;
      }
      return;
    }
    // Full list: re-select from the old links plus the new one with the same diversity heuristic
    // as for new nodes (as hnswlib does). Keeping merely the closest links would drop the few
    // long links that connect clusters, and queries would get stuck in the wrong cluster.
    const candidates: number[] = [];
    for (let i = 0; i < count; i++) candidates.push(i);
    candidates.push(count);
    const idOf = (i: number) => (i === count ? to : arr[off + i]);
    const distOf = (i: number) => (i === count ? dist : dists[off + i]);
    candidates.sort((a, b) => distOf(a) - distOf(b));
    const keptIds: number[] = [];
    const keptDists: number[] = [];
    for (const c of candidates) {
      if (keptIds.length >= max) break;
      const cid = idOf(c);
      const dc = distOf(c);
      let good = true;
      for (const s of keptIds) {
        if (1 - this.store.dotRows(cid, s) < dc) {
          good = false;
          break;
        }
      }
      if (good) {
        keptIds.push(cid);
        keptDists.push(dc);
      }
    }
    for (let i = 0; i < keptIds.length; i++) {
      arr[off + i] = keptIds[i];
      dists[off + i] = keptDists[i];
    }
    if (level === 0) this.count0[from] = keptIds.length;
    else arr[off - 1] = keptIds.length;
  }

  /** Inserts every store row not yet in the graph. */
  build(progress?: (done: number, total: number) => void): void {
    const total = this.store.size;
    for (let id = this.size; id < total; id++) {
      this.insert(id);
      if (progress && id % 10_000 === 0) progress(id, total);
    }
  }

  /** Approximate top-k by inner product. */
  search(query: Float32Array, k: number, ef = 64, accept?: (id: number) => boolean): ScoredId[] {
    if (this.entry < 0) return [];
    const handle = this.store.setQuery(query);
    let current = this.entry;
    for (let l = this.maxLevel; l > 0; l--) current = this.#greedy(handle, current, l);
    this.#searchLayer(handle, current, Math.max(ef, k), 0, accept);
    const { ids, dists } = this.#drainResults();
    const out: ScoredId[] = [];
    for (let i = 0; i < ids.length && out.length < k; i++) out.push({ id: ids[i], score: 1 - dists[i] });
    return out;
  }

  /**
   * Binary graph format (all integers little-endian), written by `encode`, read by `decode`:
   *   magic "TRBHNSW1" (8 bytes) | u32 m | u32 efConstruction | u32 size | i32 entry | i32 maxLevel
   *   | size × u8 level | size × u8 count0 | size × m0 × i32 level-0 links
   *   | for each node with level ≥ 1, in id order: level × (1 + m) × i32 (count, links).
   */
  encode(): Uint8Array {
    const n = this.size;
    let upperInts = 0;
    for (let i = 0; i < n; i++) upperInts += this.levels[i] * (this.m + 1);
    const bytes = new Uint8Array(28 + n * 2 + n * this.m0 * 4 + upperInts * 4);
    const view = new DataView(bytes.buffer);
    bytes.set(new TextEncoder().encode('TRBHNSW1'), 0);
    view.setUint32(8, this.m, true);
    view.setUint32(12, this.efConstruction, true);
    view.setUint32(16, n, true);
    view.setInt32(20, this.entry, true);
    view.setInt32(24, this.maxLevel, true);
    let o = 28;
    bytes.set(this.levels.subarray(0, n), o);
    o += n;
    bytes.set(this.count0.subarray(0, n), o);
    o += n;
    for (let i = 0; i < n * this.m0; i++, o += 4) view.setInt32(o, this.links0[i], true);
    for (let i = 0; i < n; i++) {
      const block = this.upper[i];
      if (!block) continue;
      for (let j = 0; j < block.length; j++, o += 4) view.setInt32(o, block[j], true);
    }
    return bytes;
  }

  static decode(store: VectorStore, bytes: Uint8Array, where: string): Hnsw {
    const corrupt = (why: string) => new TributaryError('CORRUPT_DATA', `${where}: ${why}`);
    if (bytes.length < 28 || new TextDecoder().decode(bytes.subarray(0, 8)) !== 'TRBHNSW1')
      throw corrupt('not an HNSW graph file');
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const m = view.getUint32(8, true);
    const graph = new Hnsw(store, { m, efConstruction: view.getUint32(12, true) });
    const n = view.getUint32(16, true);
    if (n > store.size) throw corrupt(`graph has ${n} nodes but only ${store.size} vectors exist`);
    graph.#ensureCapacity(Math.max(n, store.capacity));
    graph.entry = view.getInt32(20, true);
    graph.maxLevel = view.getInt32(24, true);
    let o = 28;
    const need = o + n * 2 + n * graph.m0 * 4;
    if (bytes.length < need) throw corrupt('truncated');
    graph.levels.set(bytes.subarray(o, o + n), 0);
    o += n;
    graph.count0.set(bytes.subarray(o, o + n), 0);
    o += n;
    for (let i = 0; i < n * graph.m0; i++, o += 4) graph.links0[i] = view.getInt32(o, true);
    for (let i = 0; i < n; i++) {
      const level = graph.levels[i];
      if (level === 0) continue;
      const block = new Int32Array(level * (m + 1));
      if (o + block.length * 4 > bytes.length) throw corrupt('truncated upper levels');
      for (let j = 0; j < block.length; j++, o += 4) block[j] = view.getInt32(o, true);
      graph.upper[i] = block;
    }
    if (o !== bytes.length) throw corrupt(`${bytes.length - o} trailing bytes`);
    graph.size = n;
    graph.#distsValid = n === 0;
    return graph;
  }
}
