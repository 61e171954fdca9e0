import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { metricsRegistry } from '../../src/core/index.js';
import { LocalStorage, openLake, type Lake } from '../../src/lake/index.js';
import { createMemoryLog, partitionForKey, type Log } from '../../src/log/index.js';
import { bucket, bucketColumn, lakeSink, lakeTableTarget, runJob, stream } from '../../src/stream/index.js';
import {
  viewEvents,
  viewShowTypes,
  viewsJob,
  viewsTopic,
  viewUserBuckets,
  type ViewEvent,
} from '../../src/stream/testing/partitioned-lake.js';
import { queryLake } from '../lake/helpers.js';

let dir: string;
let lake: Lake;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tributary-lakeparts-'));
  lake = await openLake({ storage: new LocalStorage(path.join(dir, 'lake')) });
});
afterEach(async () => {
  await lake.close();
  await rm(dir, { recursive: true, force: true });
});

const utf8 = (s: string) => new TextEncoder().encode(s);

async function viewsLog(events: readonly ViewEvent[]): Promise<Log> {
  const log = createMemoryLog();
  await log.createTopic(viewsTopic, { partitions: 2 });
  for (let i = 0; i < events.length; i += 10_000) {
    await log.append(
      events
        .slice(i, i + 10_000)
        .map((e) => ({ topic: viewsTopic, key: e.user_id, value: JSON.stringify(e) })),
    );
  }
  return log;
}

describe('bucket', () => {
  it("is Kafka's partitioner: murmur2 of the UTF-8 bytes with the sign bit cleared, modulo the count", () => {
    // Kafka UtilsTest vectors: murmur2("21") = -973932308, murmur2("foobar") = -790332482.
    expect(bucket('21', 16)).toBe((-973932308 & 0x7fffffff) % 16);
    expect(bucket('foobar', 16)).toBe((-790332482 & 0x7fffffff) % 16);
    // Math.abs would give a different bucket for a negative hash.
    expect(bucket('21', 16)).not.toBe(Math.abs(-973932308) % 16);
    expect(bucket(21, 16)).toBe(bucket('21', 16));
    expect(bucket('user-42', 12)).toBe(partitionForKey(utf8('user-42'), 12));
    expect(bucket(null, 16)).toBeNull();
    expect(() => bucket('x', 0)).toThrow(/bucket count must be a positive integer/);
    expect(() => bucketColumn('b', 'user_id', 1.5)).toThrow(/bucket count/);
  });
});

describe('lake sink partitioned by columns', () => {
  it('100k distinct users over 3 days × 3 show types × 16 buckets: ≤ 144 files, exactly once across a crash', async () => {
    const days = 3;
    const events = viewEvents(110_000, { users: 100_000, days });
    const log = await viewsLog(events);
    const table = lake.table('silver', 'views');
    const dataDir = path.join(dir, 'data');
    let batches = 0;
    await expect(
      runJob(viewsJob(log, table), {
        dataDir,
        once: true,
        pollMaxRecords: 20_000,
        onBatch: () => {
          if (++batches === 3) throw new Error('simulated crash');
        },
      }),
    ).rejects.toThrow('simulated crash');
    const status = await runJob(viewsJob(log, table), { dataDir, once: true, pollMaxRecords: 20_000 });
    expect(status.state).toBe('finished');

    const snapshot = (await table.snapshot())!;
    expect(snapshot.partitionColumns).toEqual(['event_date', 'show_type', 'user_bucket']);
    expect(snapshot.files.reduce((n, f) => n + f.rows, 0)).toBe(events.length);
    // One file per partition: buffers (and their rows) survived the restart in the checkpoint.
    expect(snapshot.files.length).toBeLessThanOrEqual(viewUserBuckets * days * viewShowTypes.length);
    expect(snapshot.files.length).toBe(144);
    expect(new Set(snapshot.files.map((f) => f.partition)).size).toBe(snapshot.files.length);

    const [counts] = await queryLake(
      lake,
      'select count(*)::int n, count(distinct view_id)::int ids, count(distinct user_id)::int users from silver.views',
    );
    expect(counts).toEqual({ n: events.length, ids: events.length, users: 100_000 });
    // Read back with the partition columns' own types (DATE, VARCHAR, BIGINT) from the paths.
    const types = await queryLake(
      lake,
      "select column_name, column_type as data_type from (describe silver.views) where column_name in ('event_date', 'show_type', 'user_bucket') order by column_name",
    );
    expect(types).toEqual([
      { column_name: 'event_date', data_type: 'DATE' },
      { column_name: 'show_type', data_type: 'VARCHAR' },
      { column_name: 'user_bucket', data_type: 'BIGINT' },
    ]);
    const rows = await queryLake(
      lake,
      "select view_id::int id, strftime(event_date, '%Y-%m-%d') d, show_type, user_bucket::int b from silver.views",
    );
    for (const row of rows) {
      const event = events[row.id as number];
      expect(row).toEqual({
        id: event.view_id,
        d: new Date(event.ts).toISOString().slice(0, 10),
        show_type: event.show_type,
        b: bucket(event.user_id, viewUserBuckets),
      });
    }
    // The '/' and the space of 'live/talk show' are escaped in the directory name.
    const dayDirs = await readdir(path.join(lake.storage.root, 'silver', 'views', 'event_date=2026-11-20'));
    expect(dayDirs.sort()).toEqual(['show_type=live%2Ftalk%20show', 'show_type=movie', 'show_type=series']);
  }, 120_000);
});

interface Row {
  id: number;
  city: string | null;
  level: number | null;
  user: string;
  ts: number;
}

/** Awkward partition values: escaping, traversal attempts, NULL and its spelling, non-ASCII. */
const cities = [
  'Paris',
  'a/b',
  '..',
  '../etc',
  'x=y',
  '50%',
  'São Paulo',
  '__HIVE_DEFAULT_PARTITION__',
  null,
];

describe('lake sink partition columns: bad values and options', () => {
  it('refuses a column named twice or not an identifier, when the job is built', () => {
    const target = lakeTableTarget(lake.table('silver', 'opts'));
    expect(() => lakeSink(target, { pathFormat: 'day=YYYY-MM-dd', partitionBy: ['day'] })).toThrow(
      /partition column day is named twice/,
    );
    expect(() => lakeSink(target, { partitionBy: ['a-b'] })).toThrow(/must be an identifier/);
    expect(() => lakeSink(target, { openPartitionsMax: 0 })).toThrow(/openPartitionsMax/);
  });

  it('sends a record whose value cannot name a directory to the DLQ, and keeps the others', async () => {
    const log = createMemoryLog();
    await log.createTopic('things', { partitions: 1 });
    const values = [
      { id: 1, kind: 'ok' },
      { id: 2, kind: { nested: true } },
      { id: 3, kind: 'x'.repeat(201) },
      { id: 4, kind: 'é'.repeat(40) },
      { id: 5 },
      // The longest value allowed: its file name carries a hash instead of the whole path.
      { id: 6, kind: 'y'.repeat(200) },
    ];
    await log.append(values.map((v) => ({ topic: 'things', value: JSON.stringify(v) })));
    const table = lake.table('silver', 'things');
    const status = await runJob(
      stream('things', { checkpointIntervalMs: 0 })
        .from<Record<string, unknown>>(log, { topics: ['things'] })
        .to(lakeSink(lakeTableTarget(table), { pathFormat: null, partitionBy: ['kind'] })),
      { dataDir: path.join(dir, 'things'), once: true },
    );
    expect(status.counters.dlq).toBe(3);
    const dlq = await log.fetch('things.dlq', 0, 0, { maxRecords: 10 });
    const reasons = dlq.map((r) => Buffer.from(r.headers['tributary-error-message'] ?? '').toString());
    expect(reasons[0]).toMatch(/lake sink silver.things: partition column kind: .*got object/);
    expect(reasons[1]).toMatch(/partition column kind: its value is 201 bytes once escaped/);
    // 40 × 'é' is 240 bytes escaped (%C3%A9 each).
    expect(reasons[2]).toMatch(/its value is 240 bytes/);
    expect(await queryLake(lake, 'select id::int id, kind from silver.things order by id')).toEqual([
      { id: 1, kind: 'ok' },
      { id: 5, kind: null },
      { id: 6, kind: 'y'.repeat(200) },
    ]);
  });
});

describe('lake sink partitions (property)', () => {
  it('every row lands in the partition its columns name, and none is lost to LRU rolling', async () => {
    let evictedRuns = 0;
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            city: fc.constantFrom(...cities),
            level: fc.option(fc.integer({ min: -3, max: 3 }), { nil: null }),
            user: fc.constantFrom('u1', 'u2', 'u3', 'u4', 'u5', 'u6'),
            minute: fc.integer({ min: 0, max: 3 * 24 * 60 }),
          }),
          { minLength: 1, maxLength: 120 },
        ),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 40 }),
        fc.boolean(),
        async (drawn, openPartitionsMax, flushSize, byDay) => {
          const rows: Row[] = drawn.map((d, id) => ({
            id,
            city: d.city,
            level: d.level,
            user: d.user,
            ts: Date.UTC(2026, 10, 20) + d.minute * 60_000,
          }));
          const log = createMemoryLog();
          await log.createTopic('rows', { partitions: 1 });
          await log.append(rows.map((r) => ({ topic: 'rows', value: JSON.stringify(r) })));
          const table = lake.table('silver', `prop_${run++}`);
          const sink = lakeSink<Row>(lakeTableTarget(table), {
            pathFormat: byDay ? 'day=YYYY-MM-dd' : null,
            partitionBy: ['city', 'level', bucketColumn('user_bucket', 'user', 4)],
            openPartitionsMax,
            flushSize,
            rotateIntervalMs: Number.POSITIVE_INFINITY,
          });
          await runJob(
            stream('prop', { checkpointIntervalMs: 0 })
              .from<Row>(log, { topics: ['rows'], timestamp: (r) => r.ts })
              .to(sink),
            { dataDir: path.join(dir, `prop-${run}`), once: true, pollMaxRecords: 17 },
          );
          if (sink.evicted > 0) evictedRuns++;
          // The Hive spelling of NULL is refused (it would read back as NULL): to the DLQ.
          const refused = rows.filter((r) => r.city === '__HIVE_DEFAULT_PARTITION__');
          const kept = rows.filter((r) => r.city !== '__HIVE_DEFAULT_PARTITION__');
          const dlq = (await log.listTopics()).includes('rows.dlq')
            ? await log.fetch('rows.dlq', 0, 0, { maxRecords: 1_000 })
            : [];
          expect(dlq.length).toBe(refused.length);
          if (kept.length === 0) return;
          const snapshot = (await table.snapshot())!;
          expect(snapshot.partitionColumns).toEqual([
            ...(byDay ? ['day'] : []),
            'city',
            'level',
            'user_bucket',
          ]);
          const back = await queryLake(
            lake,
            `select id::int id, city, "level"::int as "level", user_bucket::int b${byDay ? ', day' : ''} from silver.${table.name} order by id`,
          );
          expect(back).toEqual(
            kept.map((r) => ({
              id: r.id,
              city: r.city,
              level: r.level,
              b: bucket(r.user, 4),
              ...(byDay ? { day: new Date(r.ts).toISOString().slice(0, 10) } : {}),
            })),
          );
          // Every file sits under its partition's directory, inside the table.
          for (const file of snapshot.files) {
            expect(file.path.startsWith(`${file.partition}/`)).toBe(true);
            expect(file.path.split('/').includes('..')).toBe(false);
          }
        },
      ),
      { seed: 20261203, numRuns: 25 },
    );
    // The bound was hit (and rows survived it) in a good share of the runs, and operators see it.
    expect(evictedRuns).toBeGreaterThan(5);
    expect(
      await metricsRegistry.getSingleMetricAsString('tributary_lake_sink_partitions_evicted_total'),
    ).toMatch(/tributary_lake_sink_partitions_evicted_total\{job="prop",table="silver\.prop_\d+"\} [1-9]/);
  }, 120_000);
});
