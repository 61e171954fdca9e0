import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTributaryError } from '../../src/core/index.js';
import { LocalStorage, openLake } from '../../src/lake/index.js';
import { createMemoryLog, type Log } from '../../src/log/index.js';
import { openSqlEngine } from '../../src/sql/index.js';
import {
  planScaledJob,
  runJob,
  lakeSink,
  lakeTableTarget,
  runWorker,
  stream,
  topicSink,
  tumbling,
  type WorkerResult,
} from '../../src/stream/index.js';
import {
  goldenJob,
  goldenOutputTopic,
  goldenSales,
  type GoldenSale,
} from '../../src/stream/testing/golden.js';

// Workers of one scaled-out job inside one process (the memory log's groups are in-process): the
// plan, the repartition and per-origin watermarks, rebalances with state handed over through
// checkpoints. Separate processes over a served embedded log: test/stream/golden.test.ts.
let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'tributary-scale-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const n = 6_000;
const text = (b: Uint8Array | null | undefined) => (b ? Buffer.from(b).toString('utf8') : '');

async function seeded(partitions: number): Promise<Log> {
  const log = createMemoryLog();
  await log.createTopic('golden.sales', { partitions });
  const values = goldenSales(n);
  await log.append(values.map((value, i) => ({ topic: 'golden.sales', key: `k${i % 17}`, value })));
  return log;
}

async function outputs(log: Log): Promise<string[]> {
  const d = await log.describeTopic(goldenOutputTopic);
  const records = (
    await Promise.all(
      d.partitions.map((p) => log.fetch(goldenOutputTopic, p.partition, 0, { maxRecords: 100_000 })),
    )
  ).flat();
  return records.map((r) => text(r.value)).sort();
}

async function straight(): Promise<string[]> {
  const log = await seeded(1);
  await runJob(goldenJob(log), { dataDir: path.join(root, `straight-${Math.random()}`), once: true });
  return outputs(log);
}

function sum(results: WorkerResult[], key: 'in' | 'accepted' | 'filtered' | 'dlq' | 'late', task: RegExp) {
  return results
    .flatMap((r) => r.tasks)
    .filter((t) => task.test(t.task ?? ''))
    .reduce((s, t) => s + t.counters[key], 0);
}

describe('planScaledJob', () => {
  const log = createMemoryLog();
  it('splits at the keyBy that feeds keyed state', () => {
    const stages = planScaledJob(goldenJob(log));
    expect(stages.map((s) => s.job.stages.map((x) => x.kind))).toEqual([
      ['filter', 'keyBy'],
      ['keyBy', 'window', 'map'],
    ]);
    expect(stages[0].repartitionTopic).toBe('golden.repartition');
    expect(stages[1].job.inputTopics).toEqual(['golden.repartition']);
    expect(stages[1].shuffled).toBe(true);
  });

  it('keeps a stateless job in one stage', () => {
    const job = stream('plain')
      .from(log, { topics: ['a'] })
      .keyBy((v) => String(v))
      .map((v) => v)
      .to(topicSink('b'));
    expect(planScaledJob(job)).toHaveLength(1);
  });

  it('refuses windowed joins and a second keyed re-key, saying why', () => {
    const twice = stream('twice')
      .from<{ a: string; b: string }>(log, { topics: ['a'] })
      .keyBy((v) => v.a)
      .window(tumbling({ sizeMs: 1000 }))
      .count()
      .keyBy((w) => String(w.value))
      .window(tumbling({ sizeMs: 1000 }))
      .count()
      .to(topicSink('b'));
    try {
      planScaledJob(twice);
      throw new Error('expected a refusal');
    } catch (error) {
      expect(isTributaryError(error) && error.code).toBe('INVALID_ARGUMENT');
      expect(String(error)).toMatch(/repartitions once/);
    }
  });
});

describe('runWorker (in-process workers)', () => {
  let expected: string[];
  beforeAll(async () => {
    expected = await straight();
    expect(expected.length).toBeGreaterThan(10);
  });

  it('one bounded worker gives the single-process results, counts reconcile', async () => {
    const log = await seeded(4);
    const dataDir = path.join(root, 'one');
    const result = await runWorker(goldenJob(log), { dataDir, once: true, pollMaxRecords: 300 });
    expect(await outputs(log)).toEqual(expected);
    // Upstream: in = accepted (repartitioned) + filtered + dlq; downstream reads what went across.
    const upIn = sum([result], 'in', /^s0-/);
    expect(upIn).toBe(n);
    expect(upIn).toBe(
      sum([result], 'accepted', /^s0-/) + sum([result], 'filtered', /^s0-/) + sum([result], 'dlq', /^s0-/),
    );
    expect(sum([result], 'in', /^s1-/)).toBe(sum([result], 'accepted', /^s0-/));
    expect(sum([result], 'late', /^s1-/)).toBe(0);
    expect(sum([result], 'dlq', /^s0-/)).toBe(
      (await log.describeTopic('golden.sales.dlq')).partitions[0].endOffset,
    );
  });

  it('two bounded workers at once give the same results', async () => {
    const log = await seeded(4);
    const dataDir = path.join(root, 'two');
    const results = await Promise.all([
      runWorker(goldenJob(log), { dataDir, once: true, pollMaxRecords: 200 }),
      runWorker(goldenJob(log), { dataDir, once: true, pollMaxRecords: 200 }),
    ]);
    expect(await outputs(log)).toEqual(expected);
    // Both took part.
    expect(results.every((r) => r.tasks.length > 0)).toBe(true);
  });

  it('2 workers then 3 (unbounded, rebalancing), then 1 bounded worker to finish: same results', async () => {
    const log = await seeded(6);
    const dataDir = path.join(root, 'two-then-three');
    const controllers = [new AbortController(), new AbortController(), new AbortController()];
    const moves: string[] = [];
    let batches = 0;
    // Paced so the third worker joins mid-run.
    const onBatch = async () => {
      batches++;
      await new Promise((r) => setTimeout(r, 5));
    };
    const worker = (i: number) =>
      runWorker(goldenJob(log, { checkpointIntervalMs: 50 }), {
        dataDir,
        signal: controllers[i].signal,
        pollMaxRecords: 100,
        tickMs: 20,
        onBatch,
        onTask: (event, task) => moves.push(`${i} ${event} ${task}`),
      });
    const running = [worker(0), worker(1)];
    while (batches < 20) await new Promise((r) => setTimeout(r, 10));
    running.push(worker(2));
    // Until the upstream stage has read everything (the bounded worker below finishes the rest).
    for (;;) {
      await new Promise((r) => setTimeout(r, 50));
      const up = await log.committedOffsets('job.golden', 'golden.sales');
      const ends = (await log.describeTopic('golden.sales')).partitions.map((p) => p.endOffset);
      if (ends.every((e, p) => up.get(p) === e)) break;
    }
    for (const c of controllers) c.abort();
    await Promise.all(running);
    // The third worker took tasks over from the first two (stop on one side, start on the other).
    expect(moves.some((m) => m.startsWith('2 start'))).toBe(true);
    expect(moves.some((m) => /^[01] stop/.test(m))).toBe(true);
    await runWorker(goldenJob(log), { dataDir, once: true });
    expect(await outputs(log)).toEqual(expected);
  });
});

describe('bounded runs of a scaled-out job', () => {
  it('each bounded run after the last one (or after an unbounded phase) reads to the new end offsets', async () => {
    const log = createMemoryLog();
    await log.createTopic('golden.sales', { partitions: 3 });
    const values = goldenSales(3_000);
    const append = (from: number, to: number) =>
      log.append(
        values.slice(from, to).map((value, i) => ({ topic: 'golden.sales', key: `k${from + i}`, value })),
      );
    const dataDir = path.join(root, 'bounded-runs');
    const s0In = (r: WorkerResult) =>
      r.tasks.filter((t) => t.task?.startsWith('s0-')).reduce((n, t) => n + t.counters.in, 0);
    const runFile = (n: number) => path.join(dataDir, 'checkpoints', 'golden', `bounded-${n}.json`);
    const ends = async () =>
      Object.fromEntries(
        (await log.describeTopic('golden.sales')).partitions.map((p) => [
          `golden.sales/${p.partition}`,
          p.endOffset,
        ]),
      );

    await append(0, 1_000);
    const first = await runWorker(goldenJob(log), { dataDir, once: true });
    // Counters are cumulative per task (restored from checkpoints).
    expect(s0In(first)).toBe(1_000);
    expect(JSON.parse(await readFile(runFile(1), 'utf8')).ends).toEqual(await ends());

    await append(1_000, 2_000);
    const controller = new AbortController();
    const unbounded = runWorker(goldenJob(log, { checkpointIntervalMs: 20 }), {
      dataDir,
      signal: controller.signal,
      tickMs: 10,
    });
    for (;;) {
      await new Promise((r) => setTimeout(r, 20));
      const up = await log.committedOffsets('job.golden', 'golden.sales');
      const e = await ends();
      if (Object.entries(e).every(([tp, end]) => up.get(Number(tp.split('/')[1])) === end)) break;
    }
    controller.abort();
    expect(s0In(await unbounded)).toBe(2_000);

    await append(2_000, 3_000);
    const last = await runWorker(goldenJob(log), { dataDir, once: true });
    expect(s0In(last)).toBe(3_000);
    expect(JSON.parse(await readFile(runFile(2), 'utf8')).ends).toEqual(await ends());
    expect(existsSync(runFile(3))).toBe(false);
  });
});

describe('a scaled-out job writing the lake', () => {
  it('two workers commit one table: every window row once, files named per task', async () => {
    const lake = await openLake({ storage: new LocalStorage(path.join(root, 'lake-scaled')) });
    const byCountry = (log: Log, table: string) =>
      stream(`lake-${table}`, { checkpointIntervalMs: 0 })
        .from<GoldenSale>(log, {
          topics: ['golden.sales'],
          validate: (v) => {
            const sale = v as GoldenSale;
            if (typeof sale.country !== 'string' || typeof sale.amount !== 'number')
              throw new Error('not a sale');
            return sale;
          },
          timestamp: (sale) => sale.ts,
          outOfOrdernessMs: 5_000,
        })
        .keyBy((sale) => sale.country)
        .window(tumbling({ sizeMs: 10_000 }))
        .count()
        .map((w) => ({ country: String(w.key), start: w.windowStart, n: w.value }))
        .to(lakeSink(lakeTableTarget(lake.table('gold', table)), { flushSize: 40, compactAfterFiles: 0 }));
    try {
      const single = await seeded(1);
      await runJob(byCountry(single, 'single'), { dataDir: path.join(root, 'lake-single'), once: true });
      const scaled = await seeded(4);
      const dataDir = path.join(root, 'lake-two');
      await Promise.all([
        runWorker(byCountry(scaled, 'scaled'), { dataDir, once: true, pollMaxRecords: 150 }),
        runWorker(byCountry(scaled, 'scaled'), { dataDir, once: true, pollMaxRecords: 150 }),
      ]);
      const sql = await openSqlEngine(lake);
      try {
        const rows = (table: string) =>
          sql.query(`select country, start, n from gold.${table} order by country, start`);
        const expectedRows = await rows('single');
        expect(expectedRows.length).toBeGreaterThan(10);
        expect(await rows('scaled')).toEqual(expectedRows);
      } finally {
        sql.close();
      }
      // Each file comes from one task of the downstream stage, named after it.
      const listed = await new LocalStorage(path.join(root, 'lake-scaled')).list('gold/scaled/');
      const parquet = listed.map((o) => o.path).filter((p) => p.endsWith('.parquet'));
      expect(parquet.length).toBeGreaterThan(1);
      expect(parquet.every((p) => /lake-scaled-s1-p\d+-s0-/.test(p))).toBe(true);
    } finally {
      await lake.close();
    }
  });
});

describe('scaled-out = one process (property, fixed seed)', () => {
  interface Ev {
    k: number;
    ts: number;
    v: number;
  }
  const job = (log: Log, sizeMs: number) =>
    stream('prop', { checkpointIntervalMs: 0 })
      .from<Ev>(log, { topics: ['prop.in'], timestamp: (e) => e.ts, outOfOrdernessMs: 2_000 })
      .filter((e) => e.v % 7 !== 0)
      .keyBy((e) => e.k)
      .window(tumbling({ sizeMs }))
      .aggregate({
        init: () => ({ n: 0, sum: 0 }),
        add: (a, e) => ({ n: a.n + 1, sum: a.sum + e.v }),
      })
      .map((w) => ({ k: w.key, start: w.windowStart, n: w.value.n, sum: w.value.sum, kind: w.kind }))
      .to(topicSink('prop.out'));

  const scenario = fc.record({
    partitions: fc.integer({ min: 1, max: 4 }),
    workers: fc.integer({ min: 1, max: 3 }),
    sizeMs: fc.constantFrom(500, 1_000, 3_000),
    events: fc.array(
      fc.record({
        k: fc.integer({ min: 0, max: 15 }),
        jitter: fc.integer({ min: 0, max: 1_900 }),
        v: fc.nat(1000),
      }),
      { minLength: 50, maxLength: 600 },
    ),
  });

  async function load(partitions: number, events: { k: number; jitter: number; v: number }[]): Promise<Log> {
    const log = createMemoryLog();
    await log.createTopic('prop.in', { partitions });
    // Event time grows 10 ms per event with disorder under the 2 s bound: nothing is late, so the
    // results do not depend on how partitions interleave.
    await log.append(
      events.map((e, i) => ({
        topic: 'prop.in',
        key: `k${e.k}`,
        value: JSON.stringify({ k: e.k, ts: 1_000_000 + i * 10 - e.jitter, v: e.v }),
      })),
    );
    return log;
  }

  async function read(log: Log): Promise<string[]> {
    const d = await log.describeTopic('prop.out');
    const all = await Promise.all(
      d.partitions.map((p) => log.fetch('prop.out', p.partition, 0, { maxRecords: 100_000 })),
    );
    return all
      .flat()
      .map((r) => text(r.value))
      .sort();
  }

  it('window results of N concurrent workers equal a single-process run', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(scenario, async ({ partitions, workers, sizeMs, events }) => {
        run++;
        const single = await load(partitions, events);
        await runJob(job(single, sizeMs), { dataDir: path.join(root, `prop-single-${run}`), once: true });
        const scaled = await load(partitions, events);
        const dataDir = path.join(root, `prop-scaled-${run}`);
        await Promise.all(
          Array.from({ length: workers }, () =>
            runWorker(job(scaled, sizeMs), { dataDir, once: true, pollMaxRecords: 37, idleExitMs: 500 }),
          ),
        );
        expect(await read(scaled)).toEqual(await read(single));
      }),
      { seed: 20261122, numRuns: 12 },
    );
  });

  it('a source partition far ahead in event time does not make a slower one late across the shuffle', async () => {
    // Partition 0 is 100 s ahead; with 0 ms out-of-orderness, a downstream task that took event
    // time from its own input (instead of per upstream partition) would drop partition 1 as late.
    const seededSkew = async () => {
      const log = createMemoryLog();
      await log.createTopic('prop.in', { partitions: 2 });
      const records = [];
      for (let i = 0; i < 400; i++) {
        const partition = i % 2;
        const ts = (partition === 0 ? 100_000 : 0) + i * 10;
        records.push({ topic: 'prop.in', partition, value: JSON.stringify({ k: i % 5, ts, v: i + 1 }) });
      }
      await log.append(records);
      return log;
    };
    const skewJob = (log: Log) =>
      stream('skew', { checkpointIntervalMs: 0 })
        .from<Ev>(log, { topics: ['prop.in'], timestamp: (e) => e.ts })
        .keyBy((e) => e.k)
        .window(tumbling({ sizeMs: 1_000 }))
        .count()
        .map((w) => ({ k: w.key, start: w.windowStart, n: w.value }))
        .to(topicSink('prop.out'));
    const single = await seededSkew();
    const status = await runJob(skewJob(single), { dataDir: path.join(root, 'skew-single'), once: true });
    expect(status.counters.late).toBe(0);
    const scaled = await seededSkew();
    const result = await runWorker(skewJob(scaled), {
      dataDir: path.join(root, 'skew-scaled'),
      once: true,
      pollMaxRecords: 50,
      repartitionPartitions: 3,
    });
    expect(result.tasks.reduce((n, t) => n + t.counters.late, 0)).toBe(0);
    expect(await read(scaled)).toEqual(await read(single));
  });
});
