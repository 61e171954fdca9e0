import { appendFile, mkdir, open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { TributaryError, writeFileAtomic } from '../../core/index.js';

/** What a finished request answered; replayed verbatim for a repeated Idempotency-Key. */
export interface StoredResponse {
  requestHash: string;
  status: number;
  body: unknown;
  atMs: number;
}

/**
 * Remembers Idempotency-Key → response, bounded (oldest forgotten first beyond `entriesMax`, and
 * entries older than `ttlMs`), optionally durable in a file.
 *
 * File format (UTF-8 JSON lines, appended and fsynced before the response is sent):
 *   {"k":"<scope>\u0000<key>","h":"<sha256 of request>","s":<status>,"b":<response body>,"t":<epoch ms>}
 * On open the file is replayed (last line for a key wins; a torn last line is ignored); when it
 * holds more than 2 × entriesMax lines it is rewritten atomically with the live entries only.
 */
export class IdempotencyStore {
  readonly #file: string | undefined;
  readonly #entriesMax: number;
  readonly #ttlMs: number;
  readonly #entries = new Map<string, StoredResponse>();
  readonly #inFlight = new Set<string>();
  #lines = 0;
  #loaded = false;
  #chain: Promise<unknown> = Promise.resolve();

  constructor(options: { file?: string | undefined; entriesMax?: number; ttlMs?: number } = {}) {
    this.#file = options.file;
    this.#entriesMax = options.entriesMax ?? 10_000;
    this.#ttlMs = options.ttlMs ?? 24 * 3600 * 1000;
  }

  async #load(): Promise<void> {
    if (this.#loaded || this.#file === undefined) {
      this.#loaded = true;
      return;
    }
    const text = await readFile(this.#file, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return '';
      throw error;
    });
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      try {
        const entry = JSON.parse(line) as { k: string; h: string; s: number; b: unknown; t: number };
        this.#entries.delete(entry.k);
        this.#entries.set(entry.k, { requestHash: entry.h, status: entry.s, body: entry.b, atMs: entry.t });
        this.#lines++;
      } catch {
        // A torn final line from a crash mid-append: that request was never acknowledged.
      }
    }
    this.#trim(Date.now());
    this.#loaded = true;
  }

  #trim(nowMs: number): void {
    for (const [key, entry] of this.#entries) {
      if (this.#entries.size <= this.#entriesMax && nowMs - entry.atMs <= this.#ttlMs) break;
      this.#entries.delete(key);
    }
  }

  /**
   * Claims `key` for a request. Returns the stored response when the key completed before, or
   * null when the caller should run the request (and then `complete` or `release` the key).
   * Throws CONFLICT while another request with the key runs, and VALIDATION_FAILED when the key
   * was used for a different request body.
   */
  async begin(key: string, requestHash: string, nowMs: number): Promise<StoredResponse | null> {
    await this.#load();
    const stored = this.#entries.get(key);
    if (stored && nowMs - stored.atMs <= this.#ttlMs) {
      if (stored.requestHash !== requestHash) {
        throw new TributaryError(
          'VALIDATION_FAILED',
          'Idempotency-Key was already used with a different request',
          { details: { status: 422 } },
        );
      }
      return stored;
    }
    if (this.#inFlight.has(key))
      throw new TributaryError('CONFLICT', 'a request with this Idempotency-Key is still in progress');
    this.#inFlight.add(key);
    return null;
  }

  release(key: string): void {
    this.#inFlight.delete(key);
  }

  /** Stores the response (durably when file-backed) and releases the key. */
  async complete(key: string, response: StoredResponse): Promise<void> {
    try {
      this.#entries.delete(key);
      this.#entries.set(key, response);
      this.#trim(response.atMs);
      if (this.#file !== undefined) {
        const file = this.#file;
        const line = `${JSON.stringify({ k: key, h: response.requestHash, s: response.status, b: response.body, t: response.atMs })}\n`;
        const run = this.#chain.then(async () => {
          await mkdir(path.dirname(file), { recursive: true });
          await appendFile(file, line);
          const handle = await open(file, 'r+');
          try {
            await handle.sync();
          } finally {
            await handle.close();
          }
          if (++this.#lines > 2 * this.#entriesMax) await this.#compact(file);
        });
        this.#chain = run.catch(() => undefined);
        await run;
      }
    } finally {
      this.#inFlight.delete(key);
    }
  }

  async #compact(file: string): Promise<void> {
    const lines = [...this.#entries].map(([k, e]) =>
      JSON.stringify({ k, h: e.requestHash, s: e.status, b: e.body, t: e.atMs }),
    );
    await writeFileAtomic(file, lines.length === 0 ? '' : `${lines.join('\n')}\n`);
    this.#lines = lines.length;
  }

  get size(): number {
    return this.#entries.size;
  }
}
