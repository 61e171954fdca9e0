/**
 * Issue 17 §6: limits that hold. The in-memory rate limiter keeps the buckets of keys in use when
 * a flood of new keys passes its bound (least recently used are dropped); a route past its
 * timeout stops its query, and an ask route its embedding / chat requests, instead of letting
 * them run on.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isTributaryError, ManualClock } from '../../src/core/index.js';
import { LocalStorage, openLake } from '../../src/lake/index.js';
import { OpenAiEmbedder, RetrievalIndex } from '../../src/ml/index.js';
import { createApp, KeyStore, MemoryRateLimiter, registerAskRoute } from '../../src/serve/index.js';
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

describe('route timeout on ask', () => {
  it('aborts the embedding request of an ask route that answered TIMEOUT', async () => {
    // An OpenAI-compatible embeddings endpoint that answers while the index is built, then hangs.
    let hang = false;
    const hung: { aborted: Promise<number> }[] = [];
    const endpoint = http.createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        if (hang) {
          const startedMs = Date.now();
          hung.push({
            aborted: new Promise((resolve) => response.on('close', () => resolve(Date.now() - startedMs))),
          });
          return;
        }
        const { input } = JSON.parse(body) as { input: string[] };
        response.setHeader('content-type', 'application/json');
        response.end(
          JSON.stringify({
            data: input.map((_, index) => ({ index, embedding: [1, index % 2, 0.5, 0.25] })),
          }),
        );
      });
    });
    await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve));
    const port = (endpoint.address() as AddressInfo).port;
    const dir = await mkdtemp(path.join(os.tmpdir(), 'fault-ask-timeout-'));
    const index = new RetrievalIndex({
      dir,
      embedder: new OpenAiEmbedder({
        baseUrl: `http://127.0.0.1:${port}/v1`,
        model: 'hanging',
        dimensions: 4,
      }),
    });
    await index.upsert([{ id: 'a', text: 'Refunds take five business days.', metadata: {} }]);
    hang = true;
    const keys = KeyStore.open(path.join(dir, 'keys.json'));
    const key = (await keys.create({ scopes: ['read'] })).key;
    const api = createApp({
      keys,
      ui: false,
      statusTickMs: 0,
      requestTimeoutMs: 300,
      pipelines: [
        {
          name: 'fault',
          title: 'Fault',
          routes: (router) => registerAskRoute(router, { pipeline: 'fault', index }),
        },
      ],
    });
    const server = await listen(api.app);
    try {
      const response = await fetch(`${server.url}/api/fault/ask`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ question: 'How long do refunds take?' }),
      });
      expect(response.status).toBe(504);
      expect(hung.length).toBe(1);
      // The embedding request is dropped with the answer (its own timeout would be 30 s or more,
      // and its retries would follow); no retry reaches the endpoint afterwards.
      expect(await hung[0].aborted).toBeLessThan(2_000);
      await new Promise((resolve) => setTimeout(resolve, 700));
      expect(hung.length).toBe(1);
    } finally {
      await api.close();
      await server.close();
      endpoint.closeAllConnections();
      await new Promise((resolve) => endpoint.close(resolve));
      await rm(dir, { recursive: true, force: true });
    }
  });
});
