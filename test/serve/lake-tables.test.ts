import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStorage, openLake, type Lake } from '../../src/lake/index.js';
import { openSqlEngine, type SqlEngine } from '../../src/sql/index.js';
import {
  createApp,
  createLakeTableProvider,
  KeyStore,
  startServer,
  type RunningServer,
  type TributaryApp,
} from '../../src/serve/index.js';
import { getJson } from './fixture.js';

/** The API over the real lake and SQL engine: manifests for listings, views for rows. */
let dir: string;
let lake: Lake;
let sql: SqlEngine;
let api: TributaryApp;
let server: RunningServer;
let readKey: string;
let acmeKey: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tributary-serve-lake-'));
  lake = await openLake({ storage: new LocalStorage(path.join(dir, 'lake')) });
  await lake.table('gold', 'revenue').append(
    [
      { company: 'acme', day: '2026-11-20', revenue: 10.5, orders: 3 },
      { company: 'acme', day: '2026-11-21', revenue: 12, orders: 4 },
      { company: 'globex', day: '2026-11-21', revenue: 99, orders: 9 },
    ],
    { partitionBy: ['company'] },
  );
  sql = await openSqlEngine(lake, { refreshIntervalMs: 0 });
  const keys = KeyStore.open(path.join(dir, 'keys.json'));
  readKey = (await keys.create({ scopes: ['read'] })).key;
  acmeKey = (await keys.create({ scopes: ['read'], tenant: 'acme' })).key;
  api = createApp({ keys, tables: createLakeTableProvider({ lake, sql }), statusTickMs: 0, ui: false });
  server = await startServer(api.app);
});

afterAll(async () => {
  await api?.close();
  await server?.close(100);
  sql?.close();
  await lake?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('lake table provider', () => {
  it('lists lake tables from manifests', async () => {
    const { body } = await getJson(`${server.url}/api/tables`, readKey);
    expect(body.tables).toHaveLength(1);
    expect(body.tables[0]).toMatchObject({
      layer: 'gold',
      name: 'revenue',
      files: 2,
      rows: 3,
      tenantColumn: 'company',
    });
    expect(body.tables[0].partitions.map((p: { path: string }) => p.path)).toEqual([
      'company=acme',
      'company=globex',
    ]);
  });

  it('reads rows with bound filters, tenant scoping, and refreshes the cache on commit', async () => {
    const url = `${server.url}/api/tables/gold/revenue?sort=-revenue&revenue=gt:11`;
    const first = await getJson(url, readKey);
    expect(first.status).toBe(200);
    expect(first.body.rows.map((r: { company: string }) => r.company)).toEqual(['globex', 'acme']);
    expect(first.headers.get('x-cache')).toBe('miss');
    expect((await getJson(url, readKey)).headers.get('x-cache')).toBe('hit');
    const tenant = await getJson(url, acmeKey);
    expect(tenant.body.rows).toEqual([expect.objectContaining({ company: 'acme', revenue: 12 })]);
    await lake
      .table('gold', 'revenue')
      .append([{ company: 'acme', day: '2026-11-22', revenue: 50, orders: 8 }]);
    const after = await getJson(url, readKey);
    expect(after.headers.get('x-cache')).toBe('miss');
    expect(after.body.rows.map((r: { revenue: number }) => r.revenue)).toEqual([99, 50, 12]);
  });

  it('refuses hostile column names and values without reaching SQL errors', async () => {
    for (const query of [
      'filter[revenue;drop]=1',
      'sort=revenue desc',
      'orders=1;select',
      'columns=company,%22x%22',
    ]) {
      expect((await getJson(`${server.url}/api/tables/gold/revenue?${query}`, readKey)).status, query).toBe(
        400,
      );
    }
    expect((await getJson(`${server.url}/api/tables/gold/absent`, readKey)).status).toBe(404);
  });
});
