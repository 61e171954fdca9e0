import { PGlite } from '@electric-sql/pglite';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgliteReader, postgresReader } from '../../../src/pipelines/northwind/extract.js';
import { loadNorthwind, pgliteTarget, postgresTarget } from '../../../src/pipelines/northwind/load.js';
import {
  expectGoldMatches,
  reachablePg,
  realPgUrl,
  runPipeline,
  scratchDatabase,
  type PipelineRun,
} from './harness.js';
import { referenceGold, type ReferenceGold } from './reference.js';

// Scale 2 keeps the suite quick while giving every rule-breaking kind and every country mess a
// few rows (scale 1 has them too; 2 doubles the customers the RFM quintiles split).
const scale = 2;

let db: PGlite;
let ref: ReferenceGold;

beforeAll(async () => {
  db = new PGlite();
  await loadNorthwind(pgliteTarget(db), { scale });
  ref = await referenceGold({ query: async <T>(sql: string) => (await db.query<T>(sql)).rows });
});
afterAll(async () => {
  await db?.close();
});

describe.each(['lake', 'directory'] as const)('northwind batch over PGlite into the %s', (kind) => {
  let run: PipelineRun;

  beforeAll(async () => {
    run = await runPipeline(pgliteReader(db, 'pglite:memory'), new Date('2026-11-22T10:00:00Z'), kind);
  });
  afterAll(async () => {
    await run?.close();
  });

  it('extracts the six tables of seed 001 to bronze with metadata columns', async () => {
    expect(run.report.bronze.tables.map((t) => t.table).sort()).toEqual([
      'bronze.categories',
      'bronze.customers',
      'bronze.employees',
      'bronze.order_details',
      'bronze.orders',
      'bronze.products',
    ]);
    const [orders] = await run.rows<Record<string, unknown>>(
      `SELECT count(*) AS n, min(_source) AS source, min(ingestion_date) AS d, count(DISTINCT _ingestion_timestamp) AS ts FROM bronze.orders`,
    );
    expect(orders).toEqual({
      n: String(830 * scale),
      source: 'pglite:memory/public.orders',
      d: '2026-11-22',
      ts: '1',
    });
    // bytea survives byte for byte.
    const [pic] = await run.rows<{ n: string }>(
      `SELECT octet_length(picture) AS n FROM bronze.categories WHERE category_id = 1`,
    );
    const src = await db.query<{ n: number }>(
      `SELECT octet_length(picture) AS n FROM categories WHERE category_id = 1`,
    );
    expect(Number(pic?.n)).toBe(src.rows[0]?.n);
  });

  it('gold equals an independent PostgreSQL computation (revenue to the cent, ranks, categories, RFM)', async () => {
    await expectGoldMatches(run, ref);
  });

  it('standardises every country spelling and quarantines each broken rule with its reason', async () => {
    const raw = await run.rows<{ country_raw: string; country: string }>(
      `SELECT DISTINCT country_raw, country FROM silver.sales WHERE country IN ('United States', 'United Kingdom', 'Germany') ORDER BY 1`,
    );
    expect(raw.length).toBeGreaterThan(3);
    const countries = await run.rows<{ country: string }>(`SELECT DISTINCT country FROM silver.sales`);
    expect(countries.map((c) => c.country)).not.toContain('USA');
    expect(countries.map((c) => c.country)).not.toContain('UK');
    const reasons = await run.rows<{ reason: string }>(
      `SELECT DISTINCT reason FROM silver.sales_quarantine ORDER BY 1`,
    );
    expect(reasons.map((r) => r.reason)).toEqual([
      'missing_category',
      'missing_order_date',
      'quantity_not_positive',
      'unknown_customer',
    ]);
  });

  it('is idempotent: a second run the same day replaces bronze, silver and gold instead of adding rows', async () => {
    const counts = `SELECT (SELECT count(*) FROM bronze.order_details) AS b, (SELECT count(*) FROM silver.sales) AS s,
      (SELECT count(*) FROM silver.sales_quarantine) AS q, (SELECT count(*) FROM gold.customer_rfm) AS g, (SELECT count(*) FROM gold.kpi_summary) AS k`;
    const before = await run.rows(counts);
    await run.rerun(new Date('2026-11-22T18:00:00Z'));
    expect(await run.rows(counts)).toEqual(before);
    expect(await run.rows(`SELECT DISTINCT ingestion_date FROM bronze.orders`)).toEqual([
      { ingestion_date: '2026-11-22' },
    ]);
    await expectGoldMatches(run, ref);
  });

  it('a run on the next day adds a bronze partition and silver reads only that day', async () => {
    await run.rerun(new Date('2026-11-23T06:00:00Z'));
    const days = await run.rows<{ ingestion_date: string; n: string }>(
      `SELECT ingestion_date, count(*) AS n FROM bronze.orders GROUP BY 1 ORDER BY 1`,
    );
    expect(days).toEqual([
      { ingestion_date: '2026-11-22', n: String(830 * scale) },
      { ingestion_date: '2026-11-23', n: String(830 * scale) },
    ]);
    await expectGoldMatches(run, ref);
  });

  it('keeps silver and gold history by run date: the next day adds a partition, the earlier one stays', async () => {
    // Seed 001: silver/{entity}/{date} and gold/{metric}/{date}. After the runs of the 22nd (twice)
    // and the 23rd, every silver and gold table holds exactly those two dates, each with the full figures.
    for (const table of [
      'silver.sales',
      'silver.sales_quarantine',
      'gold.kpi_summary',
      'gold.top_countries',
      'gold.category_sales',
      'gold.customer_rfm',
    ]) {
      const days = await run.rows<{ d: string }>(
        `SELECT DISTINCT ingestion_date AS d FROM ${table} ORDER BY 1`,
      );
      expect(days, table).toEqual([{ d: '2026-11-22' }, { d: '2026-11-23' }]);
    }
    const perDay = await run.rows<{ d: string; n: string }>(
      `SELECT ingestion_date AS d, count(*) AS n FROM gold.customer_rfm GROUP BY 1 ORDER BY 1`,
    );
    expect(perDay.map((r) => Number(r.n))).toEqual([ref.rfm.size, ref.rfm.size]);
    await expectGoldMatches(run, ref, '2026-11-22');
    await expectGoldMatches(run, ref, '2026-11-23');
  });
});

describe('northwind batch over a real PostgreSQL', () => {
  let admin: pg.Client | null = null;
  let scratch: Awaited<ReturnType<typeof scratchDatabase>> | undefined;

  beforeAll(async () => {
    admin = await reachablePg(realPgUrl);
    if (admin === null) {
      console.warn(`northwind: PostgreSQL at ${realPgUrl} is not reachable; real-server tests skipped`);
      return;
    }
    scratch = await scratchDatabase(admin, realPgUrl, `northwind_test_${process.pid}`);
    await loadNorthwind(postgresTarget(scratch.client), { scale });
  });
  afterAll(async () => {
    await scratch?.drop();
    await admin?.end();
  });

  it('gold equals the computation done by the real server', async (context) => {
    if (scratch === undefined) return context.skip();
    const client = scratch.client;
    // Small pages so keyset pagination crosses many page boundaries.
    const run = await runPipeline(
      postgresReader(client, 'postgres://127.0.0.1:5432/northwind', 1000),
      new Date(),
      'lake',
    );
    try {
      const ref = await referenceGold({
        query: async <T>(sql: string) => (await client.query(sql)).rows as T[],
      });
      await expectGoldMatches(run, ref);
    } finally {
      await run.close();
    }
  });

  it('the same seed gives the same database in PGlite and in PostgreSQL', async (context) => {
    if (scratch === undefined) return context.skip();
    const lite = new PGlite();
    try {
      await loadNorthwind(pgliteTarget(lite), { scale });
      const digest = `SELECT md5(string_agg(order_id || ':' || product_id || ':' || unit_price || ':' || quantity || ':' || discount, ',' ORDER BY order_id, product_id)) AS h FROM order_details`;
      const a = (await lite.query<{ h: string }>(digest)).rows[0]?.h;
      const b = (await scratch.client.query<{ h: string }>(digest)).rows[0]?.h;
      expect(a).toBeDefined();
      expect(a).toBe(b);
    } finally {
      await lite.close();
    }
  });
});
