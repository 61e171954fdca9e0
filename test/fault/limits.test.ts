/**
 * Issue 17 §6: limits that hold. The in-memory rate limiter keeps the buckets of keys in use when
 * a flood of new keys passes its bound (least recently used are dropped); a route past its
 * timeout stops its query instead of letting it run on.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isTributaryError, ManualClock } from '../../src/core/index.js';
import { LocalStorage, openLake } from '../../src/lake/index.js';
import { createApp, KeyStore, MemoryRateLimiter } from '../../src/serve/index.js';
import { openSqlEngine } from '../../src/sql/index.js';
import { listen } from '../pipelines/documents/helpers.js';

describe('rate limiter under a key flood', () => {
  it('keeps a limited key limited while 150k new keys pass through', () => {
    const clock = new ManualClock(1_000_000);
    const limiter = new MemoryRateLimiter({ ratePerSecond: 1, burst: 5 }, clock);
    for (let i = 0; i < 5; i++) expect(limiter.takeNow('victim').allowed).toBe(true);
    expect(limiter.takeNow('victim').allowed).toBe(false);
    for (let i = 0; i < 150_000; i++) {
      limiter.takeNow(`flood-${i}`);
      // The victim keeps calling (its bucket is in use); the clock does not move, so no refill.
      if (i % 1000 === 0) expect(limiter.takeNow('victim').allowed, `after ${i} flood keys`).toBe(false);
    }
    expect(limiter.takeNow('victim').allowed).toBe(false);
  });
});

describe('route timeout', () => {
  it('interrupts the query of a route that answered TIMEOUT', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'fault-timeout-'));
    const lake = await openLake({ storage: new LocalStorage(path.join(dir, 'lake')) });
    const sql = await openSqlEngine(lake, { refreshIntervalMs: 0 });
    const keys = KeyStore.open(path.join(dir, 'keys.json'));
    const key = (await keys.create({ scopes: ['read'] })).key;
    let query: Promise<unknown> | undefined;
    const api = createApp({
      keys,
      ui: false,
      statusTickMs: 0,
      requestTimeoutMs: 300,
      pipelines: [
        {
          name: 'fault',
          title: 'Fault',
          routes: (router) =>
            router.route({
              method: 'get',
              path: '/api/fault/slow',
              summary: 'A query that would run for minutes',
              scope: 'read',
              responses: { 200: { description: 'count' } },
              handler: ({ signal }) => {
                query = sql.query('SELECT count(*) AS n FROM range(100000000000) t(x) WHERE x % 7 = 3', [], {
                  signal,
                });
                return query;
              },
            }),
        },
      ],
    });
    const server = await listen(api.app);
    try {
      const response = await fetch(`${server.url}/api/fault/slow`, {
        headers: { authorization: `Bearer ${key}` },
      });
      expect(response.status).toBe(504);
      // The query settles (interrupted) instead of scanning 10^11 rows.
      const outcome = await query!.then(
        () => 'finished',
        (error: unknown) => error,
      );
      expect(isTributaryError(outcome) && outcome.code).toBe('TIMEOUT');
    } finally {
      await api.close();
      await server.close();
      sql.close();
      await lake.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
