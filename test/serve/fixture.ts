import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LocalStorage, openLake, type Lake } from '../../src/lake/index.js';
import { openSqlEngine, type SqlEngine } from '../../src/sql/index.js';
import { z } from 'zod';
import {
  createApp,
  createEventBus,
  KeyStore,
  createLakeTableProvider,
  startServer,
  type ApiRouter,
  type AppOptions,
  type PipelineModule,
  type PlatformStatus,
  type RunningServer,
  type TributaryApp,
} from '../../src/serve/index.js';

/** The SELECT behind each fixture table, so a test can commit it again (same rows, a real commit). */
function fixtureTables(
  minutes: number,
): Record<string, { layer: 'silver' | 'gold'; partitionBy: string[]; select: string }> {
  const perCompany = (select: (company: string, factor: number) => string) =>
    (
      [
        ['acme', 3],
        ['globex', 5],
      ] as const
    )
      .map(([company, factor]) => select(company, factor))
      .join(' UNION ALL ');
  return {
    sales_by_minute: {
      layer: 'gold',
      partitionBy: ['company'],
      select: perCompany(
        (company, factor) =>
          `SELECT '${company}' AS company, TIMESTAMP '2026-11-22 10:00:00' + INTERVAL (i) MINUTE AS window_start, (i * ${factor} % 17 + 1)::BIGINT AS orders,
                  round((i * ${factor} % 17 + 1) * 19.5, 2)::DOUBLE AS revenue, 'Product ' || (i % 4) AS top_product
           FROM range(${minutes}) t(i)`,
      ),
    },
    orders: {
      layer: 'silver',
      partitionBy: ['company'],
      select: perCompany(
        (company) =>
          `SELECT '${company}' AS company, i::BIGINT AS order_id, (i * 7 % 100)::DOUBLE AS amount, CASE WHEN i % 3 = 0 THEN 'shipped' ELSE 'open' END AS status
           FROM range(50) t(i)`,
      ),
    },
    platform_totals: {
      layer: 'gold',
      partitionBy: [],
      select: `SELECT DATE '2026-11-01' + INTERVAL (i) DAY AS day, (1000 + i * 37)::BIGINT AS events FROM range(20) t(i)`,
    },
  };
}

/**
 * A real lake for API tests, written through the lake's commit protocol (manifests, Hive
 * partitions), served by the provider `tributary up` runs (`createLakeTableProvider`):
 *   gold.sales_by_minute  partitioned by company={acme,globex} (tenant table)
 *   gold.platform_totals  unpartitioned, no tenant column (platform table)
 *   silver.orders         partitioned by company={acme,globex}
 */
export async function writeLake(lake: Lake, minutes = 30): Promise<void> {
  for (const [name, table] of Object.entries(fixtureTables(minutes))) {
    await lake.table(table.layer, name).writeQuery(table.select, { partitionBy: table.partitionBy });
  }
}

/** Commits a fixture table again with the same rows: a real commit, nothing else changes. */
export async function recommit(lake: Lake, name: string, minutes = 30): Promise<void> {
  const table = fixtureTables(minutes)[name];
  if (!table) throw new Error(`no fixture table ${name}`);
  await lake
    .table(table.layer, name)
    .writeQuery(table.select, { partitionBy: table.partitionBy, mode: 'overwrite' });
}

export const sampleStatus = (nowMs: number): PlatformStatus => ({
  generatedAtMs: nowMs,
  pipelines: [
    {
      name: 'platform',
      title: 'Platform jobs',
      state: 'running',
      jobs: ['compaction'],
      lastRunMs: nowMs - 60_000,
      lastRunStatus: 'ok',
    },
    {
      name: 'sales',
      title: 'Sales',
      state: 'running',
      jobs: ['sales-per-minute'],
      lastRunMs: nowMs - 5_000,
      lastRunStatus: 'ok',
      tenant: 'acme',
    },
  ],
  jobs: [
    {
      name: 'sales-per-minute',
      pipeline: 'sales',
      state: 'running',
      throughputPerSecond: 420,
      recordsIn: 120_000,
      recordsOut: 4_000,
      consumerLag: 12,
      watermarkMs: nowMs - 2_000,
      lastCheckpoint: { id: 41, atMs: nowMs - 3_000, durationMs: 18 },
      dlqCount: 2,
      lateCount: 5,
      tenant: 'acme',
    },
    {
      name: 'compaction',
      pipeline: 'platform',
      state: 'idle',
      recordsIn: 0,
      consumerLag: 0,
      watermarkMs: null,
      dlqCount: 0,
      lateCount: 0,
    },
  ],
  sources: [
    {
      name: 'sales/inbox',
      pipeline: 'sales',
      kind: 'spool',
      state: 'backoff',
      records: 1_200,
      recordsPerSecond: 12.5,
      refused: 1,
      lastError: 'bad.csv: undecodable: unclosed quote on line 3',
      lastErrorAtMs: nowMs - 10_000,
      position: 'orders-2.csv',
      restarts: 2,
    },
  ],
});

/** A pipeline contributing one tenant-filtered route and a dashboard page. */
export const salesPipeline: PipelineModule = {
  name: 'sales',
  title: 'Sales',
  description: 'Orders per minute per company',
  tenantScoped: true,
  routes: (api) =>
    api.route({
      method: 'get',
      path: '/api/sales/summary',
      summary: 'Sales summary for the caller’s company',
      tags: ['sales'],
      scope: 'read',
      query: z.object({
        company: z
          .string()
          .regex(/^[a-z]+$/)
          .optional(),
      }),
      responses: {
        200: { description: 'summary', schema: z.object({ company: z.string(), orders: z.number() }) },
      },
      handler: ({ auth, query }) =>
        Promise.resolve({
          company: auth?.tenant ?? query.company ?? 'all',
          orders: auth?.tenant === 'globex' ? 7 : 3,
        }),
    }),
  page: {
    id: 'sales',
    title: 'Sales',
    description: 'Orders and revenue per minute (gold.sales_by_minute)',
    tiles: [
      {
        id: 'orders-total',
        label: 'Orders (latest minute)',
        source: {
          route: '/api/tables/gold/sales_by_minute?sort=-window_start&limit=1',
          field: 'rows.0.orders',
          event: 'window.sales',
          eventField: 'orders',
        },
        format: 'integer',
      },
      {
        id: 'revenue',
        label: 'Revenue (latest minute)',
        source: {
          route: '/api/tables/gold/sales_by_minute?sort=-window_start&limit=1',
          field: 'rows.0.revenue',
          event: 'window.sales',
          eventField: 'revenue',
        },
        format: 'number',
      },
    ],
    charts: [
      {
        id: 'orders-per-minute',
        title: 'Orders per minute',
        kind: 'line',
        route: '/api/tables/gold/sales_by_minute?sort=window_start&limit=60',
        x: 'window_start',
        y: 'orders',
        event: 'window.sales',
        maxPoints: 60,
      },
      {
        id: 'revenue-per-minute',
        title: 'Revenue per minute',
        kind: 'bar',
        route: '/api/tables/gold/sales_by_minute?sort=window_start&limit=30',
        x: 'window_start',
        y: 'revenue',
      },
    ],
    tables: [
      {
        id: 'latest',
        title: 'Latest windows',
        route: '/api/tables/gold/sales_by_minute?sort=-window_start&limit=10',
      },
    ],
  },
};

export interface Fixture {
  dir: string;
  url: string;
  keys: { admin: string; read: string; ingest: string; acme: string; globex: string; revoked: string };
  store: KeyStore;
  lake: Lake;
  sql: SqlEngine;
  /** Commits a fixture table again (same rows): cached reads of it go stale, `lake.commit` is published. */
  recommit(name: string): Promise<void>;
  api: TributaryApp;
  server: RunningServer;
  close(): Promise<void>;
}

export async function startFixture(overrides: Partial<AppOptions> = {}): Promise<Fixture> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tributary-serve-'));
  const lake = await openLake({ storage: new LocalStorage(path.join(dir, 'lake')) });
  await writeLake(lake);
  const sql = await openSqlEngine(lake, { refreshIntervalMs: 0 });
  const store = KeyStore.open(path.join(dir, 'keys.json'), { reloadMs: 0 });
  const keys = {
    admin: (await store.create({ scopes: ['admin'], name: 'admin' })).key,
    read: (await store.create({ scopes: ['read'], name: 'reader' })).key,
    ingest: (await store.create({ scopes: ['ingest'], name: 'ingester' })).key,
    acme: (await store.create({ scopes: ['read'], tenant: 'acme', name: 'acme' })).key,
    globex: (await store.create({ scopes: ['read', 'ingest'], tenant: 'globex', name: 'globex' })).key,
    revoked: '',
  };
  const revoked = await store.create({ scopes: ['admin'], name: 'old' });
  await store.revoke(revoked.record.id);
  keys.revoked = revoked.key;
  const api = createApp({
    keys: store,
    tables: createLakeTableProvider({ lake, sql }),
    status: { getStatus: () => Promise.resolve(sampleStatus(Date.now())) },
    events: createEventBus(),
    pipelines: [salesPipeline],
    rateLimit: { ratePerSecond: 10_000, burst: 10_000 },
    sseKeepAliveMs: 500,
    statusTickMs: 0,
    ...overrides,
  });
  const server = await startServer(api.app, { port: 0 });
  return {
    dir,
    url: server.url,
    keys,
    store,
    lake,
    sql,
    recommit: (name) => recommit(lake, name),
    api,
    server,
    async close() {
      await api.close();
      await server.close(200);
      sql.close();
      await lake.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

// Tests read arbitrary JSON answers; `any` keeps their assertions short.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

export async function getJson(
  url: string,
  key?: string,
  init: RequestInit = {},
): Promise<{ status: number; body: Json; headers: Headers }> {
  const response = await fetch(url, {
    ...init,
    headers: {
      ...(key ? { authorization: `Bearer ${key}` } : {}),
      ...(init.headers as Record<string, string>),
    },
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Non-JSON bodies (metrics, HTML) are returned as text.
  }
  return { status: response.status, body, headers: response.headers };
}

/**
 * An API serving only `routes` (as one test pipeline's), with a small body limit by default and
 * no UI or status ticks: for tests of the router's own behaviour.
 */
export function routesApp(
  keys: KeyStore,
  routes: (api: ApiRouter) => void,
  bodyLimitBytes = 4096,
): TributaryApp {
  return createApp({
    keys,
    ui: false,
    statusTickMs: 0,
    bodyLimitBytes,
    pipelines: [{ name: 'echo', title: 'Echo', routes }],
  });
}
