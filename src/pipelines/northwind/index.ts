/**
 * Pipeline `northwind` (seed 001): PostgreSQL Northwind + the live sales topic → bronze / silver /
 * gold → KPIs, country ranking, category sales, RFM segments, live sales by country; API routes
 * and a dashboard page.
 *
 * Batch DAG (declared once, run by the stream layer's BatchDag; daily at 02:00 UTC under
 * `tributary up`, and by `tributary run northwind --once`):
 *   northwind.bronze  PostgreSQL → bronze.{categories,customers,employees,orders,order_details,products}
 *                     partition ingestion_date=<run date>, replaced on rerun
 *   northwind.silver  → silver.sales, silver.sales_quarantine         (sql.ts documents the rules)
 *   northwind.gold    → gold.kpi_summary, gold.top_countries, gold.category_sales, gold.customer_rfm,
 *                       gold.revenue_by_country_combined
 *   Silver and gold are partitioned by run date too (ingestion_date); a rerun replaces that date
 *   only, and the API reads the latest date unless `?date=` names one.
 * Stream jobs:
 *   northwind.live_sales          topic ventes-temps-reel → gold.live_sales_by_country (+ the combined table)
 *   northwind.live_sales_history  topic ventes-temps-reel → bronze.live_sales, partitioned by
 *                                 sale_date (event time) and canonical country (pays)
 *   northwind.live_sales_by_minute topic ventes-temps-reel → gold.live_sales_by_minute: 1-minute
 *                                 event-time windows per country, 5 s out-of-orderness, late sales
 *                                 to northwind.live_sales_by_minute.late
 * The live jobs count each order_id once (a re-sent or replayed sale is not counted twice).
 */
import { z } from 'zod';
import { TributaryError, type TributaryConfig } from '../../core/index.js';
import type { Lake } from '../../lake/index.js';
import {
  qualityTable,
  qualityTile,
  registerAskRoute,
  type DashboardPage,
  type LiveEvent,
  type PipelineModule,
} from '../../serve/index.js';
import { catalogIndex, catalogIndexJob } from './catalog.js';
import {
  writeCheckedQuery,
  type BatchJob,
  type BatchJobContext,
  type StreamJob,
} from '../../stream/index.js';
import { resolvePipelineSettings, type PipelineSettingsSpec } from '../settings.js';
import type { PipelineDefinition, PipelineServices } from '../types.js';
import { ingestionDateOf, runBronze } from './batch.js';
import { lakeTarget, replaceDatePartition } from './lake-target.js';
import {
  liveHistoryJob,
  liveHistoryTable,
  liveSalesJob,
  liveTable,
  liveTableSql,
  liveTopic,
  liveTotalsSink,
  liveWindowsJob,
  liveWindowsTable,
  simulateSales,
  type LiveCountryTotals,
} from './live.js';
import { openNorthwindSource } from './source.js';
import {
  bronzeTables,
  ingestionDateColumn,
  medallionJobs,
  revenueByCountryCombinedSql,
  rfmSegments,
  silverQuality,
  silverRules,
  withIngestionDate,
} from './sql.js';
import { rowsResponse } from '../tables.js';

export const pipelineName = 'northwind';
export const combinedTable = 'gold.revenue_by_country_combined';
/** SSE event carrying fresh live totals: `{ rows: [{pays, total_ventes_live, nb_transactions}], total_ventes_live, nb_transactions }`. */
export const liveEventType = 'northwind.live_sales';
const schedule = '0 2 * * *';

/** The pipeline's own settings (not core config keys). */
export const northwindSettings = {
  sourceUrl: {
    description:
      'PostgreSQL Northwind to read (postgres://user@host:port/db); default the embedded PGlite database under the data dir',
    env: ['NORTHWIND_PG_URL'],
    schema: z.string().regex(/^postgres(ql)?:\/\//, 'postgres://user@host:port/db'),
    flag: '--source-url <url>',
  },
} satisfies PipelineSettingsSpec;

/** Where the source is: the data dir (embedded PGlite) and the `sourceUrl` setting. */
export function northwindSourceConfig(config: TributaryConfig, env: NodeJS.ProcessEnv = process.env) {
  const { sourceUrl } = resolvePipelineSettings(pipelineName, northwindSettings, config, env);
  return { dataDir: config.dataDir, sourceUrl };
}

function partitionOf(ctx: BatchJobContext): string {
  return ctx.partition ?? ingestionDateOf(new Date());
}

/** Creates the live table empty (typed) when the live job has not committed yet, so views over it work. */
export async function ensureLiveTable(lake: Lake): Promise<void> {
  if (!(await lake.tableNames()).includes(liveTable)) {
    await lake
      .table(liveTable)
      .writeQuery(liveTableSql([]), { mode: 'overwrite', commitId: 'northwind:live:create' });
  }
}

/** Recomputes gold.revenue_by_country_combined (needs gold.top_countries; a no-op before the first batch run). */
export async function refreshCombined(lake: Lake): Promise<void> {
  const tables = await lake.tableNames();
  if (!tables.includes('gold.top_countries')) return;
  await ensureLiveTable(lake);
  await lake.table(combinedTable).writeQuery(revenueByCountryCombinedSql, { mode: 'overwrite' });
}

/**
 * The source tables as lineage datasets (OpenLineage's PostgreSQL naming: namespace
 * `postgres://host:port`, name `database.schema.table`); the embedded PGlite database is
 * `pglite://tributary/northwind.public.<table>`.
 */
export function northwindSourceDatasets(pgUrl: string | undefined): string[] {
  let prefix = 'pglite://tributary/northwind';
  if (pgUrl !== undefined) {
    try {
      const url = new URL(pgUrl);
      prefix = `postgres://${url.hostname}:${url.port || '5432'}/${decodeURIComponent(url.pathname.slice(1)) || 'postgres'}`;
    } catch {
      prefix = 'postgres://unknown/northwind';
    }
  }
  return bronzeTables.map((t) => `${prefix}.public.${t}`);
}

/** The batch DAG: bronze → silver → gold. */
export function northwindBatchJobs(
  services: Pick<PipelineServices, 'config' | 'lake' | 'query'>,
): BatchJob[] {
  const { lake, config, query } = services;
  const [silver, gold] = medallionJobs('2000-01-01');
  if (silver === undefined || gold === undefined)
    throw new TributaryError('INTERNAL', 'medallion jobs are missing');
  const partitionFor = (atMs: number) => ingestionDateOf(new Date(atMs));
  return [
    {
      name: 'northwind.bronze',
      description: 'Snapshot the six Northwind tables from PostgreSQL into bronze (partition = run date)',
      inputs: northwindSourceDatasets(northwindSourceConfig(config).sourceUrl),
      outputs: bronzeTables.map((t) => `bronze.${t}`),
      schedule,
      partitionFor,
      async run(ctx) {
        const source = await openNorthwindSource(northwindSourceConfig(config), { seedIfEmpty: true });
        try {
          const report = await runBronze({
            reader: source.reader,
            lake: lakeTarget(lake, { commitPrefix: ctx.commitId }),
            ingestionDate: partitionOf(ctx),
          });
          return { rowsIn: report.rows, rowsOut: report.rows };
        } finally {
          await source.close();
        }
      },
    },
    {
      name: silver.name,
      description: silver.description,
      inputs: silver.inputs,
      outputs: silver.outputs.map((o) => o.table),
      dependsOn: ['northwind.bronze'],
      schedule,
      partitionFor,
      async run(ctx) {
        // The same rules and statements as medallionJobs' silver outputs, run as a data-quality
        // run: the counts pass the SQL sandbox first, and gold.quality_results gets the run.
        // Both tables keep history by date: this run replaces only its own date's partition.
        const date = partitionOf(ctx);
        const quality = silverQuality(date);
        const report = await writeCheckedQuery({
          ...quality,
          select: {
            table: (sql) => withIngestionDate(quality.select.table(sql), date),
            quarantine: (sql) => withIngestionDate(quality.select.quarantine(sql), date),
          },
          lake,
          query: (text) => query(text),
          runId: ctx.commitId,
          mode: 'overwrite-partitions',
          partitionBy: [ingestionDateColumn],
          replacePartitions: [{ [ingestionDateColumn]: date }],
        });
        return { rowsIn: report.rowsIn, rowsOut: report.rowsIn - report.rowsRefused };
      },
    },
    {
      name: gold.name,
      description: gold.description,
      inputs: gold.inputs,
      outputs: [...gold.outputs.map((o) => o.table), combinedTable],
      dependsOn: ['northwind.silver'],
      schedule,
      partitionFor,
      async run(ctx) {
        let rowsOut = 0;
        const date = partitionOf(ctx);
        const [, goldOfDate] = medallionJobs(date);
        for (const output of goldOfDate?.outputs ?? []) {
          const result = await replaceDatePartition(
            lake.table(output.table),
            date,
            output.sql,
            `${ctx.commitId}:${output.table}`,
          );
          rowsOut += result.rowsAdded;
        }
        await refreshCombined(lake);
        return { rowsOut };
      },
    },
    catalogIndexJob(services),
  ];
}

function liveSummary(rows: LiveCountryTotals[]) {
  const cents = rows.reduce((sum, r) => sum + r.totalCents, 0);
  return {
    rows: [...rows]
      .sort((a, b) => b.totalCents - a.totalCents)
      .map((r) => ({
        pays: r.pays,
        total_ventes_live: r.totalCents / 100,
        nb_transactions: r.nb_transactions,
      })),
    total_ventes_live: cents / 100,
    nb_transactions: rows.reduce((sum, r) => sum + r.nb_transactions, 0),
  };
}

/**
 * The live job, committing its totals to the lake and pushing them to dashboards, and the history
 * job keeping every sale in the lake by day and country.
 */
export function northwindStreamJobs(
  services: Pick<PipelineServices, 'log' | 'lake' | 'publish'>,
): StreamJob[] {
  const { lake, publish } = services;
  const sink = liveTotalsSink({
    datasets: [liveTable, combinedTable],
    async write(rows) {
      await lake.table(liveTable).writeQuery(liveTableSql(rows), { mode: 'overwrite' });
      await refreshCombined(lake);
    },
    onUpdate(rows) {
      const event: LiveEvent = { type: liveEventType, data: liveSummary(rows) };
      publish?.(event);
    },
  });
  return [
    liveSalesJob(services.log, sink),
    liveHistoryJob(services.log, lake.table(liveHistoryTable)),
    liveWindowsJob(services.log, lake.table(liveWindowsTable)),
  ];
}

const isoDate = z.iso.date().describe('YYYY-MM-DD');
/** The dashboard filters of the sales charts (query parameters). */
const salesFilters = z.object({
  country: z.string().min(1).max(80).optional().describe('Canonical country name'),
  category: z.string().min(1).max(80).optional().describe('Category name'),
  from: isoDate.optional().describe('First order date (inclusive)'),
  to: isoDate.optional().describe('Last order date (inclusive)'),
});

/** A WHERE clause over silver.sales for the given filters, values bound as parameters. */
export function salesWhere(filters: {
  country?: string | undefined;
  category?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
}): { sql: string; params: unknown[] } {
  const conditions: string[] = [];
  const params: unknown[] = [];
  const add = (condition: string, value: unknown) => {
    params.push(value);
    conditions.push(condition.replace('?', `$${params.length}`));
  };
  if (filters.country !== undefined) add('country = ?', filters.country);
  if (filters.category !== undefined) add('category_name = ?', filters.category);
  if (filters.from !== undefined) add('order_date >= CAST(? AS DATE)', filters.from);
  if (filters.to !== undefined) add('order_date <= CAST(? AS DATE)', filters.to);
  return { sql: conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`, params };
}

/** `?date=`: the run date (partition) a batch route reads; default the latest. */
const dateQuery = z.object({
  date: isoDate.optional().describe('Run date (partition) to read; default the latest'),
});
const dateDescription =
  "`date` (YYYY-MM-DD) reads that run date's partition (404 when the table has none); without it, the latest date.";
/** Rows of the run date bound as $1, without the partition column. */
const dateWhere = `WHERE ${ingestionDateColumn} = CAST($1 AS DATE)`;
const dropDate = `* EXCLUDE (${ingestionDateColumn})`;

/**
 * The run date a route reads from a date-partitioned table: `requested` when the table holds rows
 * of that date (else NOT_FOUND naming it), otherwise the latest date (null when the table is empty).
 */
export async function runDate(
  query: PipelineServices['query'],
  table: string,
  requested: string | undefined,
): Promise<string | null> {
  if (requested === undefined) {
    const [latest] = await query(`SELECT CAST(max(${ingestionDateColumn}) AS VARCHAR) AS d FROM ${table}`);
    return (latest?.d as string | null | undefined) ?? null;
  }
  const found = await query(
    `SELECT 1 AS found FROM ${table} WHERE ${ingestionDateColumn} = CAST($1 AS DATE) LIMIT 1`,
    [requested],
  );
  if (found.length === 0)
    throw new TributaryError('NOT_FOUND', `${table} has no partition for date ${requested}`, {
      details: { field: 'date', value: requested },
    });
  return requested;
}

/**
 * The windowed table appears when the first minute closes (the stream lake sink creates it); until
 * then the chart has no points rather than an error.
 */
async function minutesOrNone(
  query: PipelineServices['query'],
  sql: string,
  params: unknown[],
): Promise<Record<string, unknown>[]> {
  try {
    return await query(sql, params);
  } catch (error) {
    if (
      error instanceof TributaryError &&
      error.code === 'NOT_FOUND' &&
      // The engine names the missing table with or without its layer.
      new RegExp(`^table (gold\\.)?${liveWindowsTable.split('.')[1]} does not exist`).test(error.message)
    )
      return [];
    throw error;
  }
}

/** API routes (scope `read`) and the dashboard page. */
export function northwindModule(services: Pick<PipelineServices, 'query'>): PipelineModule {
  const { query } = services;
  const page: DashboardPage = {
    id: 'northwind',
    title: 'Northwind sales',
    description:
      'Batch KPIs from PostgreSQL Northwind (bronze → silver → gold) and live sales from ventes-temps-reel',
    tiles: [
      {
        id: 'revenue',
        label: 'Total revenue',
        source: { route: '/api/northwind/kpis', field: 'rows.0.total_revenue' },
        format: 'number',
      },
      {
        id: 'orders',
        label: 'Orders',
        source: { route: '/api/northwind/kpis', field: 'rows.0.order_count' },
        format: 'integer',
      },
      {
        id: 'customers',
        label: 'Customers',
        source: { route: '/api/northwind/kpis', field: 'rows.0.customer_count' },
        format: 'integer',
      },
      {
        id: 'aov',
        label: 'Average order value',
        source: { route: '/api/northwind/kpis', field: 'rows.0.avg_order_value' },
        format: 'number',
      },
      qualityTile('silver.sales', 'Quarantined lines (last silver run)'),
      {
        id: 'live-revenue',
        label: 'Live sales (since start)',
        source: {
          route: '/api/northwind/live/summary',
          field: 'rows.0.total_ventes_live',
          event: liveEventType,
          eventField: 'total_ventes_live',
        },
        format: 'number',
      },
      {
        id: 'live-count',
        label: 'Live transactions',
        source: {
          route: '/api/northwind/live/summary',
          field: 'rows.0.nb_transactions',
          event: liveEventType,
          eventField: 'nb_transactions',
        },
        format: 'integer',
      },
    ],
    // POST /api/northwind/ask over the product catalogue index, optionally within one category.
    ask: {
      id: 'northwind',
      title: 'Ask the product catalogue',
      route: '/api/northwind/ask',
      placeholder: 'e.g. Which products come in bottles?',
      what: 'catalogue',
      filters: [
        {
          field: 'category',
          label: 'Category',
          suggestions: { route: '/api/northwind/categories', field: 'category_name' },
        },
      ],
      citationFields: ['product_id', 'category'],
    },
    // Sales filters: the country narrows the category chart, the category the country chart, and
    // the order dates both (from silver.sales; unfiltered they read the gold tables).
    filters: [
      {
        id: 'country',
        label: 'Country',
        kind: 'select',
        options: { route: '/api/northwind/top-countries?limit=1000', field: 'country' },
        appliesTo: ['categories'],
      },
      {
        id: 'category',
        label: 'Category',
        kind: 'select',
        options: { route: '/api/northwind/categories', field: 'category_name' },
        appliesTo: ['top-countries'],
      },
      {
        id: 'ordered',
        label: 'Order date',
        kind: 'dateRange',
        params: { from: 'from', to: 'to' },
        appliesTo: ['top-countries', 'categories'],
      },
    ],
    charts: [
      {
        id: 'top-countries',
        title: 'Revenue by country (top 10)',
        kind: 'bar',
        route: '/api/northwind/top-countries?limit=10',
        rowsField: 'rows',
        x: 'country',
        y: 'revenue',
        format: 'number',
      },
      {
        id: 'categories',
        title: 'Sales by category',
        kind: 'bar',
        route: '/api/northwind/categories',
        rowsField: 'rows',
        x: 'category_name',
        y: 'revenue',
        format: 'number',
      },
      {
        id: 'rfm',
        title: 'RFM segments (customers)',
        kind: 'bar',
        route: '/api/northwind/rfm/segments',
        rowsField: 'rows',
        x: 'segment',
        y: 'customers',
        format: 'integer',
      },
      {
        id: 'live',
        title: 'Live sales by country',
        kind: 'bar',
        route: '/api/northwind/live',
        rowsField: 'rows',
        x: 'pays',
        y: 'total_ventes_live',
        event: liveEventType,
        format: 'number',
      },
      {
        id: 'live-minutes',
        title: 'Live sales per minute (event time, all countries)',
        kind: 'line',
        route: '/api/northwind/live/minutes',
        rowsField: 'rows',
        x: 'minute',
        y: 'total_ventes',
        format: 'number',
      },
    ],
    tables: [
      {
        id: 'top3',
        title: 'Top 3 countries',
        route: '/api/northwind/top-countries?limit=3',
        columns: ['rank', 'country', 'revenue'],
      },
      {
        id: 'combined',
        title: 'Revenue by country: batch + live',
        route: '/api/northwind/revenue-by-country',
        columns: ['country', 'batch_revenue', 'live_revenue', 'total_revenue', 'live_transactions'],
      },
      qualityTable('silver.sales', silverRules.length),
    ],
  };
  const limitQuery = z.object({
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    offset: z.coerce.number().int().min(0).max(10_000_000).default(0),
  });
  return {
    name: pipelineName,
    title: 'Northwind sales',
    description: 'PostgreSQL Northwind + live sales → KPIs, countries, categories, RFM, live view',
    page,
    routes(api) {
      // Each answer is cached until the table it reads commits (the platform's response cache).
      // Batch tables read one run date: `?date=` or the latest (see `runDate`).
      const dated = (path: string, summary: string, table: string, sql: (where: string) => string) =>
        api.route({
          method: 'get',
          path,
          summary,
          description: dateDescription,
          tags: ['northwind'],
          scope: 'read',
          query: dateQuery,
          responses: rowsResponse,
          cache: { tables: [table] },
          handler: async ({ query: q }) => {
            const date = await runDate(query, table, q.date);
            return { rows: await query(sql(dateWhere), [date]) };
          },
        });
      const live = (path: string, summary: string, sql: string, table: string) =>
        api.route({
          method: 'get',
          path,
          summary,
          tags: ['northwind'],
          scope: 'read',
          responses: rowsResponse,
          cache: { tables: [table] },
          handler: async () => ({ rows: await query(sql) }),
        });
      dated(
        '/api/northwind/kpis',
        'Total revenue, orders, customers, average order value (gold.kpi_summary)',
        'gold.kpi_summary',
        (where) => `SELECT ${dropDate} FROM gold.kpi_summary ${where}`,
      );
      api.route({
        method: 'get',
        path: '/api/northwind/categories',
        summary: 'Revenue and share per category (gold.category_sales; from silver.sales when filtered)',
        description: `Filters (the dashboard page passes them): \`country\` (canonical name), \`from\` / \`to\` (order date, YYYY-MM-DD, inclusive). ${dateDescription}`,
        tags: ['northwind'],
        scope: 'read',
        query: salesFilters.extend(dateQuery.shape),
        responses: rowsResponse,
        cache: { tables: ['gold.category_sales', 'silver.sales'] },
        handler: async ({ query: q }) => {
          const where = salesWhere({ country: q.country, from: q.from, to: q.to });
          if (where.sql === '') {
            const date = await runDate(query, 'gold.category_sales', q.date);
            return {
              rows: await query(
                `SELECT ${dropDate} FROM gold.category_sales ${dateWhere} ORDER BY revenue DESC`,
                [date],
              ),
            };
          }
          const date = await runDate(query, 'silver.sales', q.date);
          return {
            rows: await query(
              `SELECT category_name, CAST(sum(line_total) AS DECIMAL(18,2)) AS revenue,
                 round(CAST(sum(line_total) AS DOUBLE) / CAST(sum(sum(line_total)) OVER () AS DOUBLE), 6) AS share
               FROM silver.sales ${where.sql} AND ${ingestionDateColumn} = CAST($${where.params.length + 1} AS DATE)
               GROUP BY category_name ORDER BY revenue DESC, category_name`,
              [...where.params, date],
            ),
          };
        },
      });
      dated(
        '/api/northwind/rfm/segments',
        'Customers and revenue per RFM segment (gold.customer_rfm)',
        'gold.customer_rfm',
        (where) =>
          `SELECT segment, count(*) AS customers, sum(monetary) AS revenue FROM gold.customer_rfm ${where} GROUP BY segment
         ORDER BY array_position([${rfmSegments.map((s) => `'${s}'`).join(', ')}], segment)`,
      );
      live(
        '/api/northwind/live',
        'Live revenue and transactions per country (gold.live_sales_by_country)',
        'SELECT * FROM gold.live_sales_by_country ORDER BY total_ventes_live DESC, pays',
        liveTable,
      );
      live(
        '/api/northwind/live/summary',
        'Live revenue and transactions over all countries',
        'SELECT coalesce(sum(total_ventes_live), 0) AS total_ventes_live, coalesce(sum(nb_transactions), 0) AS nb_transactions FROM gold.live_sales_by_country',
        liveTable,
      );
      api.route({
        method: 'get',
        path: '/api/northwind/live/minutes',
        summary:
          'Live revenue and transactions per event-time minute (gold.live_sales_by_minute), oldest first',
        description:
          '`country` narrows to one canonical country; `limit` keeps the latest minutes (default 60). A minute appears once its window closed (watermark = newest sale − 5 s).',
        tags: ['northwind'],
        scope: 'read',
        query: z.object({
          country: z.string().min(1).max(80).optional().describe('Canonical country name'),
          limit: z.coerce.number().int().min(1).max(1440).default(60),
        }),
        responses: rowsResponse,
        cache: { tables: [liveWindowsTable] },
        handler: async ({ query: q }) => ({
          rows: await minutesOrNone(
            query,
            `SELECT * FROM (
               SELECT strftime(window_start, '%Y-%m-%d %H:%M') AS minute, CAST(sum(total_ventes) AS DECIMAL(18,2)) AS total_ventes,
                 CAST(sum(nb_transactions) AS BIGINT) AS nb_transactions
               FROM ${liveWindowsTable} WHERE $1::VARCHAR IS NULL OR pays = $1::VARCHAR
               GROUP BY window_start ORDER BY window_start DESC LIMIT $2
             ) ORDER BY minute`,
            [q.country ?? null, q.limit],
          ),
        }),
      });
      live(
        '/api/northwind/revenue-by-country',
        'Batch (latest run date) + live revenue by country (gold.revenue_by_country_combined)',
        `SELECT * FROM ${combinedTable} ORDER BY total_revenue DESC, country`,
        combinedTable,
      );
      api.route({
        method: 'get',
        path: '/api/northwind/top-countries',
        summary:
          'Countries ranked by revenue (gold.top_countries; from silver.sales when filtered); rank 1 = highest',
        description: `Filters: \`category\` (category name), \`from\` / \`to\` (order date, YYYY-MM-DD, inclusive). ${dateDescription}`,
        tags: ['northwind'],
        scope: 'read',
        query: limitQuery.extend(salesFilters.omit({ country: true }).shape).extend(dateQuery.shape),
        responses: rowsResponse,
        cache: { tables: ['gold.top_countries', 'silver.sales'] },
        handler: async ({ query: q }) => {
          const where = salesWhere({ category: q.category, from: q.from, to: q.to });
          if (where.sql === '') {
            const date = await runDate(query, 'gold.top_countries', q.date);
            return {
              rows: await query(
                `SELECT ${dropDate} FROM gold.top_countries ${dateWhere} ORDER BY "rank" LIMIT $2 OFFSET $3`,
                [date, q.limit, q.offset],
              ),
            };
          }
          const date = await runDate(query, 'silver.sales', q.date);
          const n = where.params.length;
          return {
            rows: await query(
              `SELECT country, CAST(sum(line_total) AS DECIMAL(18,2)) AS revenue,
                 CAST(row_number() OVER (ORDER BY sum(line_total) DESC, country) AS INTEGER) AS "rank"
               FROM silver.sales ${where.sql} AND ${ingestionDateColumn} = CAST($${n + 1} AS DATE)
               GROUP BY country ORDER BY "rank" LIMIT $${n + 2} OFFSET $${n + 3}`,
              [...where.params, date, q.limit, q.offset],
            ),
          };
        },
      });
      api.route({
        method: 'get',
        path: '/api/northwind/rfm/customers',
        summary: 'Customers with their R, F, M scores and segment (gold.customer_rfm)',
        description: dateDescription,
        tags: ['northwind'],
        scope: 'read',
        query: limitQuery.extend({ segment: z.enum(rfmSegments).optional() }).extend(dateQuery.shape),
        responses: rowsResponse,
        cache: { tables: ['gold.customer_rfm'] },
        handler: async ({ query: q }) => {
          const date = await runDate(query, 'gold.customer_rfm', q.date);
          return {
            rows:
              q.segment === undefined
                ? await query(
                    `SELECT ${dropDate} FROM gold.customer_rfm ${dateWhere} ORDER BY monetary DESC, customer_id LIMIT $2 OFFSET $3`,
                    [date, q.limit, q.offset],
                  )
                : await query(
                    `SELECT ${dropDate} FROM gold.customer_rfm ${dateWhere} AND segment = $2 ORDER BY monetary DESC, customer_id LIMIT $3 OFFSET $4`,
                    [date, q.segment, q.limit, q.offset],
                  ),
          };
        },
      });
    },
  };
}

/** The pipeline, as the platform registers it (see ../types.ts for the wiring). */
export const northwindPipeline: PipelineDefinition = {
  name: pipelineName,
  title: 'Northwind sales',
  description: 'PostgreSQL Northwind + live sales topic → bronze/silver/gold → KPIs, RFM, live view',
  async jobs(services) {
    await services.log.ensureTopic(liveTopic, { partitions: 1 });
    return { batch: northwindBatchJobs(services), stream: northwindStreamJobs(services) };
  },
  serve: (services) => {
    const module = northwindModule(services);
    return {
      ...module,
      routes(api) {
        module.routes?.(api);
        registerAskRoute(api, {
          pipeline: pipelineName,
          index: catalogIndex(services),
          what: 'product catalogue',
        });
      },
    };
  },
  settings: northwindSettings,
  async seedDemo(services, progress) {
    const source = await openNorthwindSource(northwindSourceConfig(services.config), {
      seedIfEmpty: true,
      ...(progress ? { progress } : {}),
    });
    await source.close();
    await services.log.ensureTopic(liveTopic, { partitions: 1 });
  },
  // Demo traffic as a declared source: `up` supervises it (restarted if the log refuses appends),
  // shows its rate and last order id in status, and leaves it out of `run --once` (no drain).
  sources: (services) => [
    // Sale events from outside (a shop, `tributary simulate sales` forwarding to `up`).
    { name: 'sales-endpoint', kind: 'ingest', topics: [liveTopic] },
    {
      name: 'sales-simulator',
      kind: 'custom',
      async run(context) {
        // A gentle trickle so the live view moves on the dashboard without filling the disk.
        await simulateSales(services.log, {
          ratePerSecond: 5,
          durationMs: Number.POSITIVE_INFINITY,
          signal: context.signal,
          onAppended: (events, lastOrderId) =>
            context.report({ records: events, position: `${liveTopic} order_id ${lastOrderId}` }),
        });
      },
    },
  ],
};

export { generateNorthwind, northwindSchema, schemaDdl, tableNames } from './generate.js';
export {
  loadNorthwind,
  pgliteTarget,
  postgresTarget,
  type NorthwindTarget,
  type LoadReport,
} from './load.js';
export { openNorthwindSource, generateNorthwindDatabase, type NorthwindSource } from './source.js';
export {
  runNorthwindBatch,
  runBronze,
  type NorthwindLake,
  type BatchReport,
  type BronzeReport,
} from './batch.js';
export { lakeTarget, replaceDatePartition } from './lake-target.js';
export { ParquetDirectory } from './parquet-dir.js';
export { canonicalCountry, countryAliases } from './countries.js';
export * from './sql.js';
export {
  liveTopic,
  liveTable,
  liveJobName,
  liveHistoryJob,
  liveHistoryJobName,
  liveHistoryTable,
  liveWindowsJob,
  liveWindowsJobName,
  liveWindowsTable,
  saleEventSchema,
  simulateSales,
  parseRate,
  parseDurationMs,
  liveSalesJob,
  liveTotalsSink,
  type SaleEvent,
} from './live.js';
