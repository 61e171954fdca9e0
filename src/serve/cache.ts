/**
 * Cache of serialized gold-table reads. Entries are grouped by table; a commit to the table drops
 * all of them (`invalidate`). A read that started before a commit and finishes after it must not
 * repopulate the cache with stale rows, so `set` only stores when the table's generation is still
 * the one observed when the read began.
 */
/**
 * A response cache, in process (`ReadCache`, the default) or shared (`RedisReadCache`): entries
 * grouped by the table they were read from; `invalidate(table)` (on the table's commit) makes all
 * of its entries misses. A reader takes `generation(table)` before it reads and hands it to `set`,
 * so a read that straddles a commit never stores stale rows. The in-process cache answers
 * synchronously (the gold table route's fast path relies on it); the Redis one with promises.
 */
export interface ResponseCache {
  readonly backend: 'memory' | 'redis';
  generation(table: string): number | Promise<number>;
  get(
    table: string,
    key: string,
  ): Uint8Array<ArrayBuffer> | undefined | Promise<Uint8Array<ArrayBuffer> | undefined>;
  set(table: string, key: string, generation: number, body: string): void | Promise<void>;
  invalidate(table: string): void | Promise<void>;
  close?(): Promise<void>;
}

export interface ReadCacheOptions {
  entriesMax?: number;
  bytesMax?: number;
}

interface Entry {
  table: string;
  /** UTF-8 bytes, encoded once: a hit is written to the socket without re-encoding. */
  body: Uint8Array<ArrayBuffer>;
}

export class ReadCache implements ResponseCache {
  readonly backend = 'memory' as const;
  readonly #entriesMax: number;
  readonly #bytesMax: number;
  /** Insertion-ordered: the first entry is the least recently used. */
  #entries = new Map<string, Entry>();
  #generations = new Map<string, number>();
  #bytes = 0;
  /** The most recently used entry (last in `#entries`), if known. */
  #newest: Entry | undefined;
  hits = 0;
  misses = 0;

  constructor(options: ReadCacheOptions = {}) {
    this.#entriesMax = options.entriesMax ?? 2000;
    this.#bytesMax = options.bytesMax ?? 64 * 1024 * 1024;
  }

  generation(table: string): number {
    return this.#generations.get(table) ?? 0;
  }

  get(table: string, query: string): Uint8Array<ArrayBuffer> | undefined {
    const key = `${table}\u0000${query}`;
    const entry = this.#entries.get(key);
    if (!entry) {
      this.misses += 1;
      return undefined;
    }
    this.hits += 1;
    // Re-inserting moves the entry to the recent end; a run of hits on one entry (a dashboard
    // polling one page) skips the two map writes.
    if (entry !== this.#newest) {
      this.#entries.delete(key);
      this.#entries.set(key, entry);
      this.#newest = entry;
    }
    return entry.body;
  }

  set(table: string, query: string, generation: number, body: string): void {
    if (generation !== this.generation(table) || body.length > this.#bytesMax / 4) return;
    const bytes = new TextEncoder().encode(body);
    const key = `${table}\u0000${query}`;
    const previous = this.#entries.get(key);
    if (previous) {
      this.#bytes -= previous.body.length;
      this.#entries.delete(key);
    }
    const entry = { table, body: bytes };
    this.#entries.set(key, entry);
    this.#newest = entry;
    this.#bytes += bytes.length;
    for (const [oldKey, old] of this.#entries) {
      if (this.#entries.size <= this.#entriesMax && this.#bytes <= this.#bytesMax) break;
      this.#entries.delete(oldKey);
      this.#bytes -= old.body.length;
    }
  }

  invalidate(table: string): void {
    this.#generations.set(table, this.generation(table) + 1);
    for (const [key, entry] of this.#entries) {
      if (entry.table === table) {
        this.#entries.delete(key);
        this.#bytes -= entry.body.length;
      }
    }
  }

  get size(): number {
    return this.#entries.size;
  }
}
