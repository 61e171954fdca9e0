import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { catalogIndex } from '../../../src/pipelines/northwind/catalog.js';
import { dataDirPaths, loadConfig, openDataDir, type TributaryConfig } from '../../../src/core/index.js';
import { openLakeFromConfig, type Lake } from '../../../src/lake/index.js';
import { openEmbeddedLog, type Log } from '../../../src/log/index.js';
import { createApp, KeyStore, startServer, type LiveEvent } from '../../../src/serve/index.js';
import { openSqlEngine, type SqlEngine } from '../../../src/sql/index.js';
import {
  configureLineage,
  lakeAndLogSchemas,
  lineageFor,
  readLineageGraph,
  runPipelineOnce,
} from '../../../src/stream/index.js';
import {
  liveEventType,
  northwindPipeline,
  replaceDatePartition,
} from '../../../src/pipelines/northwind/index.js';
import { liveTopic, liveWindowsJobName, simulateSales } from '../../../src/pipelines/northwind/live.js';
import { quarantineReasons } from '../../../src/pipelines/northwind/sql.js';
import { pipelineAppOptions } from '../../../src/pipelines/index.js';
import type { PipelineServices } from '../../../src/pipelines/types.js';

/**
 * The pipeline as the platform runs it: embedded log and PGlite under a fresh data dir, the lake,
 * the SQL engine, and `runPipelineOnce` (what `tributary run northwind --once` does): the live job
 * drains the topic, then bronze → silver → gold.
 */
describe('pipeline northwind, run once on a clean data dir', () => {
  let dataDir: string;
  let config: TributaryConfig;
  let log: Log;
  let lake: Lake;
  let sql: SqlEngine;
  let services: PipelineServices;
  const events: LiveEvent[] = [];

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'northwind-pipeline-'));
    config = loadConfig({ env: {}, dotenv: false, cwd: dataDir, overrides: { dataDir } });
    await openDataDir(dataDir);
    log = await openEmbeddedLog({ dir: dataDirPaths(dataDir).log, fsync: 'never' });
    lake = await openLakeFromConfig(config);
    sql = await openSqlEngine(lake, { refreshIntervalMs: 0 });
    // As the platform does (acquirePlatform): lineage with schemas from this lake and log.
    configureLineage(dataDir, { schemas: lakeAndLogSchemas({ lake, log }) });
    services = {
      config,
      log,
      lake,
      query: (text, params) => sql.query(text, params),
      publish: (e) => events.push(e),
    };
  });
  afterAll(async () => {
    sql?.close();
    await lake?.close();
    await log?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('seeds the embedded database, drains live events and fills every gold table', async () => {
    await northwindPipeline.seedDemo!(services);
    await simulateSales(log, { ratePerSecond: 1_000_000, count: 250 });
    const jobs = await northwindPipeline.jobs(services);
    const result = await runPipelineOnce(
      { streams: jobs.stream ?? [], batch: jobs.batch ?? [] },
      { dataDir },
    );
    expect(result.batch.map((r) => [r.job, r.status])).toEqual([
      ['northwind.bronze', 'succeeded'],
      ['northwind.silver', 'succeeded'],
      ['northwind.gold', 'succeeded'],
      ['northwind.catalog_index', 'succeeded'],
    ]);
    expect(result.ok).toBe(true);
    const [kpi] = await sql.query('SELECT * FROM gold.kpi_summary');
    expect(Number(kpi?.order_count)).toBeGreaterThan(800);
    const live = await sql.query('SELECT sum(nb_transactions) AS n FROM gold.live_sales_by_country');
    expect(Number(live[0]?.n)).toBe(250);
    // The history job kept every sale, partitioned by sale day and country.
    const history = await sql.query(
      'SELECT pays, count(*)::INT AS n FROM bronze.live_sales GROUP BY pays ORDER BY pays',
    );
    expect(history).toEqual(
      await sql.query('SELECT pays, nb_transactions::INT AS n FROM gold.live_sales_by_country ORDER BY pays'),
    );
    expect((await lake.table('bronze.live_sales').snapshot())?.partitionColumns).toEqual([
      'sale_date',
      'pays',
    ]);
    expect(events.some((e) => e.type === liveEventType)).toBe(true);
    // Combined view: batch revenue per country plus the live revenue, each once.
    const combined = await sql.query(
      `SELECT c.country, c.batch_revenue, c.live_revenue, c.total_revenue, t.revenue, l.total_ventes_live
       FROM gold.revenue_by_country_combined c
       LEFT JOIN gold.top_countries t ON t.country = c.country
       LEFT JOIN gold.live_sales_by_country l ON l.pays = c.country`,
    );
    for (const row of combined) {
      expect(Number(row.batch_revenue)).toBeCloseTo(Number(row.revenue ?? 0), 2);
      expect(Number(row.live_revenue)).toBeCloseTo(Number(row.total_ventes_live ?? 0), 2);
      expect(Number(row.total_revenue)).toBeCloseTo(Number(row.batch_revenue) + Number(row.live_revenue), 2);
    }
    const top = await sql.query('SELECT sum(revenue) AS r FROM gold.top_countries');
    expect(top[0]?.r).toBe(kpi?.total_revenue);
  });

  it('reports lineage: PostgreSQL → bronze → silver → gold, and the live topic → live table', async () => {
    await lineageFor(dataDir).flush();
    const graph = await readLineageGraph(dataDir);
    const edges = new Set(graph.edges.map((e) => `${e.from} -> ${e.to}`));
    for (const edge of [
      'pglite://tributary/northwind.public.orders -> job:tributary/northwind.bronze',
      'job:tributary/northwind.bronze -> tributary://lake/bronze.orders',
      'tributary://lake/bronze.orders -> job:tributary/northwind.silver',
      'job:tributary/northwind.silver -> tributary://lake/silver.sales',
      'tributary://lake/silver.sales -> job:tributary/northwind.gold',
      'job:tributary/northwind.gold -> tributary://lake/gold.kpi_summary',
      'tributary://topic/ventes-temps-reel -> job:tributary/northwind.live_sales',
      'job:tributary/northwind.live_sales -> tributary://lake/gold.live_sales_by_country',
    ])
      expect(edges).toContain(edge);
    const node = (id: string) => graph.nodes.find((n) => n.id === id);
    expect(node('pglite://tributary/northwind.public.orders')?.kind).toBe('source');
    expect(node('tributary://topic/ventes-temps-reel')?.kind).toBe('topic');
    expect(node('job:tributary/northwind.gold')).toMatchObject({ kind: 'job', state: 'COMPLETE' });
    expect(node('job:tributary/northwind.live_sales')).toMatchObject({
      state: 'COMPLETE',
      processingType: 'STREAMING',
    });
    // Schema facets: lake tables with their committed columns, the topic with its JSON fields.
    expect(node('tributary://lake/gold.kpi_summary')?.fields?.map((f) => f.name)).toContain('order_count');
    expect(node('tributary://topic/ventes-temps-reel')?.fields?.map((f) => f.name)).toContain('montant');
  });

  it('silver is a data-quality run: results per rule in gold.quality_results that reconcile with the tables', async () => {
    const results = await sql.query(
      `SELECT rule, action, passed, failed, rows_in, rows_passed, rows_flagged, rows_quarantined, rows_refused, status
       FROM gold.quality_results WHERE table_name = 'silver.sales' ORDER BY rule`,
    );
    expect(results.map((r) => r.rule)).toEqual([...quarantineReasons].sort());
    const [counts] = await sql.query(
      'SELECT (SELECT count(*) FROM silver.sales) AS kept, (SELECT count(*) FROM silver.sales_quarantine) AS quarantined, (SELECT count(*) FROM bronze.order_details) AS lines',
    );
    for (const r of results) {
      expect(r.status).toBe('passed');
      expect(r.rows_in).toBe(counts?.lines);
      expect([r.rows_passed, r.rows_quarantined, r.rows_flagged, r.rows_refused]).toEqual([
        counts?.kept,
        counts?.quarantined,
        0,
        0,
      ]);
      expect(Number(r.passed) + Number(r.failed)).toBe(r.rows_in);
    }
    // Each quarantined line carries the first rule it failed and the detail.
    const [detail] = await sql.query(
      `SELECT reason, quality_reason FROM silver.sales_quarantine WHERE reason = 'quantity_not_positive' LIMIT 1`,
    );
    expect(detail?.quality_reason).toMatch(/^quantity = 0 is outside \(0, \+inf\]$/);
  });

  it('answers questions from the product catalogue index, filtered by category, with citations', async () => {
    const index = catalogIndex(services);
    const answer = await index.ask('Which products are packed in bottles?', {
      filters: { category: 'Beverages' },
    });
    expect(answer.mode).not.toBe('none');
    expect(answer.citations.length).toBeGreaterThan(0);
    for (const citation of answer.citations) expect(citation).toMatchObject({ category: 'Beverages' });
    const none = await index.ask('Which products are packed in bottles?', { filters: { category: 'Toys' } });
    expect(none).toEqual({ answer: 'There is no product in category Toys.', citations: [], mode: 'none' });
  });

  it('a second run the same day leaves the same rows and counts only the new live events', async () => {
    const before = await sql.query(
      'SELECT (SELECT count(*) FROM bronze.orders) AS o, (SELECT count(*) FROM silver.sales) AS s, (SELECT total_revenue FROM gold.kpi_summary) AS r',
    );
    await log.append([
      {
        topic: liveTopic,
        value: JSON.stringify({ order_id: 9, product_id: 1, pays: 'U.S.A.', montant: 10.01, ts: Date.now() }),
      },
    ]);
    const jobs = await northwindPipeline.jobs(services);
    const result = await runPipelineOnce(
      { streams: jobs.stream ?? [], batch: jobs.batch ?? [] },
      { dataDir },
    );
    expect(result.ok).toBe(true);
    expect(
      await sql.query(
        'SELECT (SELECT count(*) FROM bronze.orders) AS o, (SELECT count(*) FROM silver.sales) AS s, (SELECT total_revenue FROM gold.kpi_summary) AS r',
      ),
    ).toEqual(before);
    const live = await sql.query('SELECT sum(nb_transactions) AS n FROM gold.live_sales_by_country');
    expect(Number(live[0]?.n)).toBe(251);
    expect(await sql.query('SELECT count(*)::INT AS n FROM bronze.live_sales')).toEqual([{ n: 251 }]);
  });

  it('serves the gold tables and the live view through the API, with auth', async () => {
    const keys = KeyStore.open(path.join(dataDir, 'keys.json'));
    const readKey = (await keys.create({ scopes: ['read'] })).key;
    // Built as `tributary up` builds it.
    const api = createApp({
      keys,
      ...pipelineAppOptions({ definitions: [northwindPipeline], services, sql }),
      statusTickMs: 0,
      ui: false,
    });
    const server = await startServer(api.app);
    const get = async (route: string, key?: string) => {
      const response = await fetch(
        `${server.url}${route}`,
        key === undefined ? {} : { headers: { authorization: `Bearer ${key}` } },
      );
      return {
        status: response.status,
        body: (await response.json()) as { rows: Record<string, unknown>[] } & Record<string, unknown>,
      };
    };
    try {
      expect((await get('/api/northwind/kpis')).status).toBe(401);
      const kpis = await get('/api/northwind/kpis', readKey);
      expect(kpis.status).toBe(200);
      expect(kpis.body.rows).toHaveLength(1);
      const top3 = await get('/api/northwind/top-countries?limit=3', readKey);
      expect(top3.body.rows.map((r) => r.rank)).toEqual([1, 2, 3]);
      expect((await get('/api/northwind/top-countries?limit=0', readKey)).status).toBe(400);
      const segments = await get('/api/northwind/rfm/segments', readKey);
      const customers = segments.body.rows.reduce((sum, r) => sum + Number(r.customers), 0);
      expect(customers).toBe(Number(kpis.body.rows[0]?.customer_count));
      const champions = await get('/api/northwind/rfm/customers?segment=Champions&limit=5', readKey);
      expect(champions.body.rows.every((r) => r.segment === 'Champions')).toBe(true);
      expect((await get('/api/northwind/rfm/customers?segment=%27%3B%20drop', readKey)).status).toBe(400);
      const live = await get('/api/northwind/live/summary', readKey);
      expect(Number(live.body.rows[0]?.nb_transactions)).toBe(251);
      for (const route of [
        '/api/northwind/categories',
        '/api/northwind/live',
        '/api/northwind/revenue-by-country',
      ]) {
        const answer = await get(route, readKey);
        expect(answer.status, route).toBe(200);
        expect(answer.body.rows.length, route).toBeGreaterThan(0);
      }
      // The page's data-quality tile and table read gold.quality_results through the table route.
      const page = northwindPipeline.serve(services).page!;
      const tile = page.tiles.find((t) => t.id === 'quality-silver-sales')!;
      const tileRows = await get(tile.source.route!, readKey);
      expect(tileRows.status).toBe(200);
      expect(Number(tileRows.body.rows[0]?.rows_quarantined)).toBeGreaterThan(0);
      const qualityTable = await get(
        page.tables!.find((t) => t.id === 'quality-silver-sales')!.route,
        readKey,
      );
      expect(qualityTable.body.rows.map((r) => r.rule)).toEqual([...quarantineReasons].sort());
      // The windowed view: the first run's 250 sales closed their minutes at end of input; the
      // second run's sale lands in a later minute, or, in a minute already closed, in <job>.late.
      const minutes = await get('/api/northwind/live/minutes', readKey);
      expect(minutes.status).toBe(200);
      const windowed = minutes.body.rows.reduce((sum, r) => sum + Number(r.nb_transactions), 0);
      const lateTopic = `${liveWindowsJobName}.late`;
      const late = (await log.listTopics()).includes(lateTopic)
        ? (await log.fetch(lateTopic, 0, 0, { maxRecords: 10 })).length
        : 0;
      expect(windowed).toBeGreaterThanOrEqual(250);
      expect(windowed + late).toBe(251);
      // History by date: an earlier run date's partition stays readable with ?date=, the routes
      // read the latest date otherwise, and a date without a partition is a 404 naming it.
      const runDay = new Date().toISOString().slice(0, 10);
      await replaceDatePartition(
        lake.table('gold.kpi_summary'),
        '2000-01-01',
        `SELECT * EXCLUDE (ingestion_date) REPLACE (CAST(1 AS DECIMAL(18,2)) AS total_revenue) FROM gold.kpi_summary`,
        'test:kpi:2000-01-01',
      );
      expect((await get('/api/northwind/kpis', readKey)).body.rows).toEqual(kpis.body.rows);
      expect((await get(`/api/northwind/kpis?date=${runDay}`, readKey)).body.rows).toEqual(kpis.body.rows);
      const old = await get('/api/northwind/kpis?date=2000-01-01', readKey);
      expect(old.status).toBe(200);
      expect(old.body.rows[0]?.total_revenue).toBe(1);
      const absent = await get('/api/northwind/top-countries?date=1999-02-03', readKey);
      expect(absent.status).toBe(404);
      expect(JSON.stringify(absent.body)).toContain('1999-02-03');
      expect((await get('/api/northwind/kpis?date=yesterday', readKey)).status).toBe(400);
      const pipelines = await get('/api/pipelines', readKey);
      expect(JSON.stringify(pipelines.body)).toContain('northwind');
    } finally {
      await api.close();
      await server.close(100);
    }
  });
});
