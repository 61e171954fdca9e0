import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rootLogger } from '../../../src/core/index.js';
import { createSpoolSource } from '../../../src/connectors/index.js';
import { LocalStorage, openLake, type Lake } from '../../../src/lake/index.js';
import { createMemoryLog, type Log } from '../../../src/log/index.js';
import {
  generateViewing,
  LiveBoard,
  refreshViewingGold,
  toCsv,
  viewingModule,
  viewingSpoolOptions,
  viewingTopics,
  viewingValidateJob,
} from '../../../src/pipelines/viewing/index.js';
import {
  createApp,
  createLakeTableProvider,
  KeyStore,
  RedisReadCache,
  startServer,
} from '../../../src/serve/index.js';
import { openSqlEngine, type SqlEngine } from '../../../src/sql/index.js';
import { runJob } from '../../../src/stream/index.js';

/**
 * The viewing API with its answers cached in the real Redis (127.0.0.1:6379): a repeated read is a
 * cache hit on /metrics, and right after a gold commit the route answers the new value.
 */
const logger = rootLogger.child({}, { level: 'silent' });
let dir: string;
let lake: Lake;
let sql: SqlEngine;
let log: Log;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tributary-viewing-redis-'));
  lake = await openLake({ storage: new LocalStorage(path.join(dir, 'lake')) });
  sql = await openSqlEngine(lake);
  log = createMemoryLog();
  await log.createTopic(viewingTopics.events, { partitions: 2 });
});
afterAll(async () => {
  sql.close();
  await lake.close();
  await rm(dir, { recursive: true, force: true });
});

async function ingest(name: string, seed: number): Promise<void> {
  const spool = path.join(dir, `spool-${name}`);
  await mkdir(spool);
  await writeFile(
    path.join(spool, `${name}.csv`),
    toCsv(generateViewing({ users: 20, days: 4, seed }).records),
  );
  await createSpoolSource({ ...viewingSpoolOptions(spool), stableMs: 0 }, { log, logger }).poll();
  await runJob(viewingValidateJob({ log, lake }), { dataDir: path.join(dir, 'state'), once: true });
  await refreshViewingGold(lake, `redis-test-${name}`);
}

describe('viewing API with the Redis response cache', () => {
  it('serves repeated reads from Redis (hits on /metrics) and fresh values right after a gold commit', async () => {
    await ingest('first', 31);
    const keys = KeyStore.open(path.join(dir, 'keys.json'));
    const adminKey = (await keys.create({ scopes: ['admin'] })).key;
    const cache = new RedisReadCache('redis://127.0.0.1:6379', {
      prefix: `test-viewing-${process.pid}-${Date.now()}:`,
    });
    const api = createApp({
      keys,
      tables: createLakeTableProvider({ lake, sql }),
      responseCache: cache,
      pipelines: [
        viewingModule({ lake, log, query: (text, params) => sql.query(text, params), live: new LiveBoard() }),
      ],
      statusTickMs: 0,
      ui: false,
    });
    const server = await startServer(api.app);
    const get = async (route: string) =>
      (await fetch(`${server.url}${route}`, { headers: { authorization: `Bearer ${adminKey}` } })).text();
    const hits = async () => {
      const metrics = await get('/metrics');
      const line = metrics
        .split('\n')
        .find(
          (l) =>
            l.startsWith('tributary_api_response_cache_total') &&
            l.includes('backend="redis"') &&
            l.includes('result="hit"'),
        );
      return line === undefined ? 0 : Number(line.split(' ').at(-1));
    };
    try {
      const before = await hits();
      const first = JSON.parse(await get('/api/viewing/devices')) as { rows: { watch_hours: number }[] };
      const again = JSON.parse(await get('/api/viewing/devices')) as typeof first;
      expect(again).toEqual(first);
      expect(await hits()).toBeGreaterThan(before);

      // More events, a new gold commit: the next read answers the new totals, not the cached ones.
      await ingest('second', 32);
      const after = JSON.parse(await get('/api/viewing/devices')) as typeof first;
      const total = (r: typeof first) => r.rows.reduce((n, row) => n + Number(row.watch_hours), 0);
      expect(total(after)).toBeGreaterThan(total(first));
      const [fresh] = await sql.query('SELECT sum(watch_hours) AS h FROM gold.device_mix');
      expect(total(after)).toBeCloseTo(Number(fresh.h), 9);
    } finally {
      await api.close();
      await server.close(100);
    }
  });
});
