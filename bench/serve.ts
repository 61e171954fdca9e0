import path from 'node:path';
import { Hono } from 'hono';
import { LocalStorage, openLake, type Lake } from '../src/lake/index.js';
import { createApp, createLakeTableProvider, KeyStore, startServer } from '../src/serve/index.js';
import { openSqlEngine } from '../src/sql/index.js';
import { httpLoad, type HttpLoadResult } from './http-load.js';
import { median } from './stats.js';
import type { Benchmark } from './types.js';

const connections = 50;
const durationSeconds = 10;
/** Alternating hello/gold rounds; p99 is the median of the rounds' p99s (max also reported). */
const rounds = 5;

/** gold.sales_by_minute, one day of minutes per company, committed through the lake like a batch job's. */
async function writeGoldTable(lake: Lake): Promise<void> {
  await lake.table('gold', 'sales_by_minute').writeQuery(
    ['acme', 'globex']
      .map(
        (company) =>
          `SELECT '${company}' AS company, TIMESTAMP '2026-11-22 00:00:00' + INTERVAL (i) MINUTE AS window_start, (i % 17 + 1)::BIGINT AS orders, round((i % 17 + 1) * 19.5, 2)::DOUBLE AS revenue
           FROM range(1440) t(i)`,
      )
      .join(' UNION ALL '),
    { partitionBy: ['company'] },
  );
}

/**
 * `api.gold_read`: the cached gold endpoint (auth, rate limit, cache lookup, security headers,
 * metrics) under 50 connections for 10 s, against a bare hello-world Hono route on the same server
 * in the same run. ratio = ours / hello requests per second.
 */
export const serveBenchmarks: Benchmark[] = [
  {
    name: 'api.gold_read',
    description: `cached gold table read, ${connections} connections × ${durationSeconds} s (autocannon) vs bare Hono hello route`,
    async run(context) {
      const { dir } = context;
      const progress = (message: string) => context.progress(message);
      // The provider `tributary up` serves: manifests for descriptions, the read-only SQL engine for rows.
      const lake = await openLake({ storage: new LocalStorage(path.join(dir, 'lake')) });
      await writeGoldTable(lake);
      const sql = await openSqlEngine(lake);
      const keys = KeyStore.open(path.join(dir, 'keys.json'));
      const { key } = await keys.create({ scopes: ['read'], name: 'bench' });
      const tables = createLakeTableProvider({ lake, sql });
      const api = createApp({
        keys,
        tables,
        ui: false,
        statusTickMs: 0,
        rateLimit: { ratePerSecond: 1e9, burst: 1e9 },
      });
      const root = new Hono();
      root.get('/hello', (c) => c.text('hello'));
      root.route('/', api.app);
      const server = await startServer(root, { port: 0 });
      const goldUrl = `${server.url}/api/tables/gold/sales_by_minute?filter[company]=acme&sort=-window_start&limit=60`;
      try {
        const warm = await fetch(goldUrl, { headers: { authorization: `Bearer ${key}` } });
        if (!warm.ok) throw new Error(`warm-up read failed: ${warm.status} ${await warm.text()}`);
        const bytes = (await warm.text()).length;
        // The machine is shared, so load drifts during a run: alternate short hello and gold rounds
        // (same total time each) so both see the same conditions.
        const hello: HttpLoadResult[] = [];
        const gold: HttpLoadResult[] = [];
        const roundSeconds = durationSeconds / rounds;
        progress(`gold response ${bytes} bytes; ${rounds} alternating rounds of ${roundSeconds} s each`);
        // Untimed warm-up so JIT compilation lands in neither measurement.
        await httpLoad({ url: `${server.url}/hello`, connections, durationSeconds: 1 });
        await httpLoad({
          url: goldUrl,
          connections,
          durationSeconds: 1,
          headers: { authorization: `Bearer ${key}` },
        });
        for (let round = 0; round < rounds; round += 1) {
          hello.push(
            await httpLoad({ url: `${server.url}/hello`, connections, durationSeconds: roundSeconds }),
          );
          gold.push(
            await httpLoad({
              url: goldUrl,
              connections,
              durationSeconds: roundSeconds,
              headers: { authorization: `Bearer ${key}` },
            }),
          );
          progress(
            `round ${round + 1}: hello ${Math.round(hello.at(-1)!.requests.average)} req/s, gold ${Math.round(gold.at(-1)!.requests.average)} req/s (p99 ${gold.at(-1)!.latency.p99} ms)`,
          );
        }
        const failures = gold.reduce((n, r) => n + r.non2xx + r.errors, 0);
        if (failures > 0) throw new Error(`gold runs had ${failures} non-2xx responses or errors`);
        const rate = (runs: HttpLoadResult[]) =>
          runs.reduce((n, r) => n + r.requests.total, 0) / durationSeconds;
        const goldRate = rate(gold);
        const helloRate = rate(hello);
        return {
          value: goldRate,
          unit: 'req/s',
          baseline: helloRate,
          baseline_name: 'hono hello route, same server',
          ratio: goldRate / helloRate,
          goal: 'ratio >= 0.6 and p99 <= 20 ms',
          p99_ms: median(gold.map((r) => r.latency.p99)),
          p99_max_ms: Math.max(...gold.map((r) => r.latency.p99)),
          p50_ms: median(gold.map((r) => r.latency.p50)),
          hello_p99_ms: median(hello.map((r) => r.latency.p99)),
          response_bytes: bytes,
          cache_hits: api.cache.hits,
        };
      } finally {
        await api.close();
        await server.close(500);
        sql.close();
        await lake.close();
      }
    },
  },
];
