import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { metricsRegistry } from '../../src/core/index.js';
import { ReadCache, RedisReadCache, type PipelineModule, type ResponseCache } from '../../src/serve/index.js';
import { getJson, startFixture, type Fixture } from './fixture.js';

const redisUrl = 'redis://127.0.0.1:6379';
const text = (bytes: Uint8Array | undefined) =>
  bytes === undefined ? undefined : Buffer.from(bytes).toString('utf8');
const uniquePrefix = () => `tributary:test:${randomBytes(6).toString('hex')}:`;

/** One contract for every response cache: what the API relies on, whatever the backend. */
function responseCacheContract(name: string, make: () => ResponseCache) {
  describe(`${name}: the response cache contract`, () => {
    let cache: ResponseCache;
    afterEach(async () => cache?.close?.());

    it('misses, stores, hits; a commit to the table makes its entries misses, others stay', async () => {
      cache = make();
      expect(await cache.get('gold.a', 'k1')).toBeUndefined();
      await cache.set('gold.a', 'k1', await cache.generation('gold.a'), '{"rows":[1]}');
      await cache.set('gold.b', 'k1', await cache.generation('gold.b'), '{"rows":[2]}');
      expect(text(await cache.get('gold.a', 'k1'))).toBe('{"rows":[1]}');
      expect(await cache.get('gold.a', 'k2')).toBeUndefined();
      await cache.invalidate('gold.a');
      expect(await cache.get('gold.a', 'k1')).toBeUndefined();
      expect(text(await cache.get('gold.b', 'k1'))).toBe('{"rows":[2]}');
    });

    it('never stores a read that started before a commit', async () => {
      cache = make();
      const before = await cache.generation('gold.a');
      await cache.invalidate('gold.a'); // the commit lands while the read runs
      await cache.set('gold.a', 'k', before, 'stale');
      expect(await cache.get('gold.a', 'k')).toBeUndefined();
      await cache.set('gold.a', 'k', await cache.generation('gold.a'), 'fresh');
      expect(text(await cache.get('gold.a', 'k'))).toBe('fresh');
    });

    it('keeps bodies byte for byte (UTF-8, newlines)', async () => {
      cache = make();
      const body = '{"city":"Zürich","note":"a\\nb","emoji":"🦆"}\n';
      await cache.set('gold.u', 'k', await cache.generation('gold.u'), body);
      expect(text(await cache.get('gold.u', 'k'))).toBe(body);
    });
  });
}

responseCacheContract('ReadCache (in process)', () => new ReadCache());
// Redis runs locally on this machine (and in CI); each test uses its own key prefix.
responseCacheContract('RedisReadCache', () => new RedisReadCache(redisUrl, { prefix: uniquePrefix() }));

describe('RedisReadCache', () => {
  it('is shared: a commit seen by one API process invalidates the entries of another', async () => {
    const prefix = uniquePrefix();
    const a = new RedisReadCache(redisUrl, { prefix });
    const b = new RedisReadCache(redisUrl, { prefix });
    try {
      await a.set('gold.t', 'k', await a.generation('gold.t'), 'one');
      expect(text(await b.get('gold.t', 'k'))).toBe('one');
      await b.invalidate('gold.t');
      expect(await a.get('gold.t', 'k')).toBeUndefined();
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('an unreachable Redis makes lookups misses and stores no-ops, never errors', async () => {
    const cache = new RedisReadCache('redis://127.0.0.1:1', { commandTimeoutMs: 200 });
    try {
      expect(await cache.get('gold.t', 'k')).toBeUndefined();
      const generation = await cache.generation('gold.t');
      expect(generation).toBe(-1);
      await cache.set('gold.t', 'k', generation, 'x');
      await cache.invalidate('gold.t');
    } finally {
      await cache.close();
    }
  });
});

async function counter(backend: string, result: string): Promise<number> {
  const metric = await metricsRegistry.getSingleMetric('tributary_api_response_cache_total')?.get();
  return metric?.values.find((v) => v.labels.backend === backend && v.labels.result === result)?.value ?? 0;
}

/**
 * The API invalidates Redis in the background when a table commits; this one lets a test wait
 * for those invalidations instead of sleeping.
 */
class ObservedRedisCache extends RedisReadCache {
  readonly #pending = new Set<Promise<void>>();

  override invalidate(table: string): Promise<void> {
    const done = super.invalidate(table);
    this.#pending.add(done);
    void done.finally(() => this.#pending.delete(done));
    return done;
  }

  /** Resolves when every invalidation started so far has reached Redis. */
  async settled(): Promise<void> {
    await Promise.all([...this.#pending]);
  }
}

describe('cacheable routes (RouteDefinition.cache) over Redis', () => {
  let f: Fixture;
  let cache: ObservedRedisCache;
  let calls = 0;
  const module: PipelineModule = {
    name: 'cached',
    title: 'Cached',
    tenantScoped: true,
    routes: (api) =>
      api.route({
        method: 'get',
        path: '/api/cached/totals',
        summary: 'Totals (cached until gold.sales_by_minute commits)',
        scope: 'read',
        responses: { 200: { description: 'totals' } },
        cache: { tables: ['gold.sales_by_minute'] },
        handler: ({ auth, c }) => {
          calls += 1;
          return Promise.resolve({ tenant: auth?.tenant ?? null, calls, q: c.req.query('q') ?? null });
        },
      }),
  };

  beforeAll(async () => {
    cache = new ObservedRedisCache(redisUrl, { prefix: uniquePrefix() });
    f = await startFixture({ pipelines: [module], responseCache: cache });
  });
  afterAll(async () => f?.close());

  it('answers from Redis until the table commits, per tenant and query, counting hits and misses', async () => {
    const hits = await counter('redis', 'hit');
    const misses = await counter('redis', 'miss');
    const first = await getJson(`${f.url}/api/cached/totals?q=1`, f.keys.read);
    expect(first.headers.get('x-cache')).toBe('miss');
    expect(first.body).toEqual({ tenant: null, calls: 1, q: '1' });
    const second = await getJson(`${f.url}/api/cached/totals?q=1`, f.keys.read);
    expect(second.headers.get('x-cache')).toBe('hit');
    expect(second.body).toEqual(first.body);
    expect(second.headers.get('x-ratelimit-remaining')).not.toBeNull();
    // Another tenant, another query string: their own entries.
    expect((await getJson(`${f.url}/api/cached/totals?q=1`, f.keys.acme)).body).toEqual({
      tenant: 'acme',
      calls: 2,
      q: '1',
    });
    expect((await getJson(`${f.url}/api/cached/totals?q=2`, f.keys.read)).body.calls).toBe(3);
    // A commit to the table behind the route: the next read is computed again.
    await f.recommit('sales_by_minute');
    await cache.settled();
    const third = await getJson(`${f.url}/api/cached/totals?q=1`, f.keys.read);
    expect(third.headers.get('x-cache')).toBe('miss');
    expect(third.body.calls).toBe(4);
    expect((await counter('redis', 'hit')) - hits).toBe(1);
    expect((await counter('redis', 'miss')) - misses).toBe(4);
    // A commit to another table leaves the entry alone.
    await f.recommit('platform_totals');
    await cache.settled();
    expect((await getJson(`${f.url}/api/cached/totals?q=1`, f.keys.read)).headers.get('x-cache')).toBe('hit');
  });

  it('caches gold table reads in Redis too, until the table commits', async () => {
    const route = `${f.url}/api/tables/gold/platform_totals?sort=day&limit=5`;
    const first = await getJson(route, f.keys.read);
    expect(first.status).toBe(200);
    expect(first.headers.get('x-cache')).toBe('miss');
    const second = await getJson(route, f.keys.read);
    expect(second.headers.get('x-cache')).toBe('hit');
    expect(second.body).toEqual(first.body);
    await f.recommit('platform_totals');
    await cache.settled();
    expect((await getJson(route, f.keys.read)).headers.get('x-cache')).toBe('miss');
  });

  it('documents the cache in OpenAPI', async () => {
    const { body } = await getJson(`${f.url}/openapi.json`);
    expect(body.paths['/api/cached/totals'].get['x-tributary-cache-tables']).toEqual([
      'gold.sales_by_minute',
    ]);
  });
});
