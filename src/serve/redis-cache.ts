import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { childLogger } from '../core/index.js';
import type { ResponseCache } from './cache.js';

export interface RedisReadCacheOptions {
  /** Key prefix, so several deployments (or tests) share one Redis. Default `tributary:cache:`. */
  prefix?: string;
  /** Entries expire after this long even without a commit (bounds Redis memory). Default 10 min. */
  ttlMs?: number;
  /** Largest body stored; larger answers are served uncached. Default 4 MiB. */
  bodyBytesMax?: number;
  /** A Redis command slower than this counts as a miss (the API never waits on the cache). */
  commandTimeoutMs?: number;
}

const log = childLogger('cache');

/**
 * The response cache in Redis, shared by every API process of a deployment. Keys:
 *   `<prefix>gen:<table>`               the table's generation, INCR on each commit (no TTL)
 *   `<prefix>e:<table>:<sha1(key)>`     `<generation>\n<body>`, with a TTL
 * A lookup is one MGET of both; the entry is a hit only when its generation is the table's
 * current one, so invalidation is one INCR whatever the number of entries (stale entries are
 * never read again and expire), and a read that straddled a commit stored its old generation.
 * A failing or slow Redis makes lookups misses and stores no-ops: the API keeps answering.
 */
export class RedisReadCache implements ResponseCache {
  readonly backend = 'redis' as const;
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #ttlMs: number;
  readonly #bodyBytesMax: number;

  constructor(url: string, options: RedisReadCacheOptions = {}) {
    this.#prefix = options.prefix ?? 'tributary:cache:';
    this.#ttlMs = options.ttlMs ?? 600_000;
    this.#bodyBytesMax = options.bodyBytesMax ?? 4 * 1024 * 1024;
    this.#redis = new Redis(url, {
      maxRetriesPerRequest: 1,
      enableOfflineQueue: true,
      connectTimeout: 2000,
      commandTimeout: options.commandTimeoutMs ?? 500,
    });
    this.#redis.on('error', () => undefined);
  }

  #generationKey(table: string): string {
    return `${this.#prefix}gen:${table}`;
  }

  #entryKey(table: string, key: string): string {
    return `${this.#prefix}e:${table}:${createHash('sha1').update(key).digest('hex')}`;
  }

  async generation(table: string): Promise<number> {
    try {
      return Number((await this.#redis.get(this.#generationKey(table))) ?? 0);
    } catch (error) {
      log.warn({ err: error, table }, 'redis cache: generation unavailable');
      // A generation no entry carries: the read is served and not stored.
      return -1;
    }
  }

  async get(table: string, key: string): Promise<Uint8Array<ArrayBuffer> | undefined> {
    let reply: (Buffer | null)[];
    try {
      reply = await this.#redis.mgetBuffer(this.#generationKey(table), this.#entryKey(table, key));
    } catch (error) {
      log.warn({ err: error, table }, 'redis cache: lookup failed, answering uncached');
      return undefined;
    }
    const [generation, entry] = reply;
    if (entry == null) return undefined;
    const newline = entry.indexOf(0x0a);
    if (
      newline < 0 ||
      entry.subarray(0, newline).toString('latin1') !== (generation?.toString('latin1') ?? '0')
    )
      return undefined;
    const body = new Uint8Array(entry.length - newline - 1);
    body.set(entry.subarray(newline + 1));
    return body;
  }

  async set(table: string, key: string, generation: number, body: string): Promise<void> {
    if (generation < 0 || Buffer.byteLength(body) > this.#bodyBytesMax) return;
    try {
      await this.#redis.set(this.#entryKey(table, key), `${generation}\n${body}`, 'PX', this.#ttlMs);
    } catch (error) {
      log.warn({ err: error, table }, 'redis cache: store failed');
    }
  }

  async invalidate(table: string): Promise<void> {
    try {
      await this.#redis.incr(this.#generationKey(table));
    } catch (error) {
      // Entries stay until their TTL: the one case a Redis outage can serve stale reads.
      log.error({ err: error, table }, 'redis cache: invalidation failed');
    }
  }

  async ping(): Promise<void> {
    await this.#redis.ping();
  }

  async close(): Promise<void> {
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }
}
