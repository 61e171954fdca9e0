import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalStorage, openLake, type Lake } from '../../../src/lake/index.js';
import { createMemoryLog, type Log } from '../../../src/log/index.js';
import { runJob } from '../../../src/stream/index.js';
import { canonicalCountry } from '../../../src/pipelines/northwind/countries.js';
import {
  liveHistoryJob,
  liveHistoryTable,
  liveSalesJob,
  liveTable,
  liveTableSql,
  liveTopic,
  liveTotalsSink,
  liveWindowsJob,
  liveWindowsJobName,
  liveWindowsTable,
  parseDurationMs,
  parseRate,
  simulateSales,
  type SaleEvent,
} from '../../../src/pipelines/northwind/live.js';

async function expectedTotals(log: Log): Promise<Map<string, { cents: number; n: number }>> {
  const totals = new Map<string, { cents: number; n: number }>();
  const records = await log.fetch(liveTopic, 0, 0, { maxRecords: 1_000_000 });
  for (const record of records) {
    const event = JSON.parse(new TextDecoder().decode(record.value!)) as SaleEvent;
    const country = canonicalCountry(event.pays)!;
    const t = totals.get(country) ?? { cents: 0, n: 0 };
    t.cents += Math.round(event.montant * 100);
    t.n += 1;
    totals.set(country, t);
  }
  return totals;
}

describe('northwind live sales', () => {
  let dir: string;
  let lake: Lake;
  let log: Log;
  let instance: DuckDBInstance;
  let duck: DuckDBConnection;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'northwind-live-'));
    lake = await openLake({ storage: new LocalStorage(path.join(dir, 'lake')) });
    log = createMemoryLog();
    instance = await DuckDBInstance.create(':memory:');
    duck = await instance.connect();
  });
  afterEach(async () => {
    duck.closeSync();
    instance.closeSync();
    await lake.close();
    await log.close();
    await rm(dir, { recursive: true, force: true });
  });

  const sink = () =>
    liveTotalsSink({
      write: async (rows) =>
        void (await lake.table(liveTable).writeQuery(liveTableSql(rows), { mode: 'overwrite' })),
    });

  async function liveRows(): Promise<Map<string, { cents: number; n: number }>> {
    await lake.prepareViews(duck);
    const rows = (
      await duck.runAndReadAll(
        `SELECT pays, total_ventes_live, nb_transactions FROM gold.live_sales_by_country`,
      )
    ).getRowObjectsJson();
    return new Map(
      rows.map((r) => [
        r.pays as string,
        { cents: Math.round(Number(r.total_ventes_live) * 100), n: Number(r.nb_transactions) },
      ]),
    );
  }

  it('parses rates and durations, and refuses nonsense', () => {
    expect(parseRate('1000/s')).toBe(1000);
    expect(parseRate('60/m')).toBe(1);
    expect(parseRate('2/ms')).toBe(2000);
    expect(parseDurationMs('10s')).toBe(10_000);
    expect(parseDurationMs('250ms')).toBe(250);
    expect(() => parseRate('fast')).toThrow(/--rate/);
    expect(() => parseDurationMs('-1s')).toThrow(/--duration/);
  });

  it('the simulator keeps to its rate (token bucket)', async () => {
    const report = await simulateSales(log, { ratePerSecond: 2000, count: 600 });
    expect(report.events).toBe(600);
    // 600 events at 2000/s with a 100-event initial bucket: at least (600 - 100) / 2000 s.
    expect(report.elapsedMs).toBeGreaterThanOrEqual(240);
    const description = await log.describeTopic(liveTopic);
    expect(description.partitions[0]?.endOffset).toBe(600);
  });

  it('events produced → per-country totals match, to the cent, with canonical countries', async () => {
    await simulateSales(log, { ratePerSecond: 1_000_000, count: 5000 });
    const status = await runJob(liveSalesJob(log, sink()), { dataDir: dir, once: true });
    expect(status.state).toBe('finished');
    const expected = await expectedTotals(log);
    expect(await liveRows()).toEqual(expected);
    expect([...expected.keys()]).toContain('United States');
    expect([...expected.keys()]).not.toContain('Etats-Unis');
  });

  it('a bad event goes to the DLQ and the totals still reconcile', async () => {
    await simulateSales(log, { ratePerSecond: 1_000_000, count: 100 });
    await log.append([
      { topic: liveTopic, value: '{"order_id": 1, "pays": "France"}' },
      { topic: liveTopic, value: 'not json' },
    ]);
    const status = await runJob(liveSalesJob(log, sink()), { dataDir: dir, once: true });
    expect(status.counters.dlq).toBe(2);
    const rows = await liveRows();
    const transactions = [...rows.values()].reduce((s, r) => s + r.n, 0);
    expect(transactions).toBe(100);
  });

  it('keeps every sale in bronze.live_sales by sale day and country, once across a crash, without a second DLQ', async () => {
    await simulateSales(log, { ratePerSecond: 1_000_000, count: 1500, seed: 5 });
    const expected = await expectedTotals(log);
    const us = expected.get('United States') ?? { cents: 0, n: 0 };
    expected.set('United States', { cents: us.cents + 1250, n: us.n + 1 });
    await log.append([
      { topic: liveTopic, value: '{"order_id": 1, "pays": "France"}' },
      { topic: liveTopic, value: 'not json' },
      {
        topic: liveTopic,
        value: JSON.stringify({
          order_id: 7,
          product_id: 1,
          pays: 'Etats-Unis',
          montant: 12.5,
          ts: '2026-11-21T23:59:59Z',
        }),
      },
    ]);
    const table = lake.table(liveHistoryTable);
    let batches = 0;
    await expect(
      runJob(liveHistoryJob(log, table, { checkpointIntervalMs: 0 }), {
        dataDir: dir,
        once: true,
        pollMaxRecords: 400,
        onBatch: () => {
          if (++batches === 3) throw new Error('simulated crash');
        },
      }),
    ).rejects.toThrow(/simulated crash/);
    const status = await runJob(liveHistoryJob(log, table), {
      dataDir: dir,
      once: true,
      pollMaxRecords: 400,
    });
    expect(status.state).toBe('finished');
    // The live job owns the topic's DLQ: the history job skips what it refuses.
    expect(status.counters.dlq).toBe(0);
    expect((await log.listTopics()).includes(`${liveTopic}.dlq`)).toBe(false);

    const snapshot = (await table.snapshot())!;
    expect(snapshot.partitionColumns).toEqual(['sale_date', 'pays']);
    await lake.prepareViews(duck);
    const byCountry = (
      await duck.runAndReadAll(
        `SELECT pays, count(*)::INT AS n, count(DISTINCT order_id)::INT AS orders, sum(montant * 100)::BIGINT AS cents
         FROM bronze.live_sales GROUP BY pays`,
      )
    ).getRowObjectsJson();
    expect(
      new Map(byCountry.map((r) => [r.pays as string, { cents: Number(r.cents), n: r.n as number }])),
    ).toEqual(expected);
    for (const row of byCountry) expect(row.orders).toBe(row.n);
    const late = (
      await duck.runAndReadAll(
        `SELECT sale_date::VARCHAR AS d, pays, pays_source, typeof(sale_date) AS t FROM bronze.live_sales WHERE order_id = 7`,
      )
    ).getRowObjectsJson();
    expect(late).toEqual([{ d: '2026-11-21', pays: 'United States', pays_source: 'Etats-Unis', t: 'DATE' }]);
  });

  it('restart mid-stream (crash after a batch, then more events) → no double count', async () => {
    await simulateSales(log, { ratePerSecond: 1_000_000, count: 3000, seed: 11 });
    let batches = 0;
    const crashed = runJob(liveSalesJob(log, sink(), { checkpointIntervalMs: 0 }), {
      dataDir: dir,
      once: true,
      pollMaxRecords: 500,
      onBatch: () => {
        batches += 1;
        if (batches === 3) throw new Error('simulated crash');
      },
    });
    await expect(crashed).rejects.toThrow(/simulated crash/);
    const partial = await liveRows().catch(() => new Map());
    const partialCount = [...partial.values()].reduce((s, r) => s + r.n, 0);
    // Some batches were checkpointed and committed before the crash, not all of them.
    expect(partialCount).toBeGreaterThan(0);
    expect(partialCount).toBeLessThan(3000);
    await simulateSales(log, { ratePerSecond: 1_000_000, count: 2000, seed: 12, firstOrderId: 2_000_000 });
    const status = await runJob(liveSalesJob(log, sink()), { dataDir: dir, once: true });
    expect(status.state).toBe('finished');
    expect(await liveRows()).toEqual(await expectedTotals(log));
  });

  // Two minutes of sales in event time: a re-sent sale (same order_id), a sale 5 s out of order
  // (on time), one that arrives after its minute closed (late), and one invalid event.
  const minute = Date.UTC(2026, 10, 22, 10, 0, 0);
  const sale = (order_id: number, pays: string, montant: number, atSeconds: number) => ({
    topic: liveTopic,
    key: String(order_id),
    value: JSON.stringify({ order_id, product_id: 1, pays, montant, ts: minute + atSeconds * 1000 }),
  });
  const windowedSales = [
    sale(1, 'France', 10, 1),
    sale(2, 'france ', 5.5, 30),
    sale(3, 'Deutschland', 3, 40),
    sale(1, 'France', 10, 45), // re-sent: counted once
    sale(4, 'France', 7.25, 61),
    sale(5, 'Germany', 1, 70), // watermark 70 s − 5 s = 65 s: the first minute closes
    sale(6, 'France', 2, 50), // its minute closed: late
    sale(7, 'France', 4, 68), // 2 s behind the newest sale: on time
    { topic: liveTopic, value: 'not json' },
  ];

  it('windowed view: 1-minute event-time windows per country, late sales to <job>.late, each order once', async () => {
    await log.ensureTopic(liveTopic, { partitions: 1 });
    await log.append(windowedSales);
    const status = await runJob(liveWindowsJob(log, lake.table(liveWindowsTable)), {
      dataDir: dir,
      once: true,
    });
    expect(status.state).toBe('finished');
    expect(status.counters.late).toBe(1);
    expect(status.counters.dlq).toBe(0);
    const late = await log.fetch(`${liveWindowsJobName}.late`, 0, 0, { maxRecords: 10 });
    expect(late.map((r) => (JSON.parse(new TextDecoder().decode(r.value!)) as SaleEvent).order_id)).toEqual([
      6,
    ]);
    await lake.prepareViews(duck);
    const rows = (
      await duck.runAndReadAll(
        `SELECT window_date::VARCHAR AS d, strftime(window_start, '%H:%M:%S') AS s, strftime(window_end, '%H:%M:%S') AS e,
           pays, total_ventes::VARCHAR AS total, nb_transactions::INT AS n
         FROM ${liveWindowsTable} ORDER BY window_start, pays`,
      )
    ).getRowObjectsJson();
    expect(rows).toEqual([
      { d: '2026-11-22', s: '10:00:00', e: '10:01:00', pays: 'France', total: '15.50', n: 2 },
      { d: '2026-11-22', s: '10:00:00', e: '10:01:00', pays: 'Germany', total: '3.00', n: 1 },
      { d: '2026-11-22', s: '10:01:00', e: '10:02:00', pays: 'France', total: '11.25', n: 2 },
      { d: '2026-11-22', s: '10:01:00', e: '10:02:00', pays: 'Germany', total: '1.00', n: 1 },
    ]);
  });

  it('the running totals count a re-sent sale (same order_id) once', async () => {
    await log.ensureTopic(liveTopic, { partitions: 1 });
    await log.append(windowedSales);
    const status = await runJob(liveSalesJob(log, sink()), { dataDir: dir, once: true });
    expect(status.state).toBe('finished');
    // Every valid sale, late or not, counts in the running totals; order 1 once.
    expect(await liveRows()).toEqual(
      new Map([
        ['France', { cents: 1000 + 550 + 725 + 200 + 400, n: 5 }],
        ['Germany', { cents: 300 + 100, n: 2 }],
      ]),
    );
  });
});
