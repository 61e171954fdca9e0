import { rm } from 'node:fs/promises';
import path from 'node:path';
import { LocalStorage, openLake } from '../src/lake/index.js';
import { createMemoryLog } from '../src/log/index.js';
import { runJob } from '../src/stream/index.js';
import {
  viewEvents,
  viewsJob,
  viewsTopic,
  viewUserBuckets,
  viewShowTypes,
} from '../src/stream/testing/partitioned-lake.js';
import { median } from './stats.js';
import type { BenchContext, BenchResult, Benchmark } from './types.js';

const recordCount = 200_000;
const users = 100_000;
const days = 3;
const rounds = 3;

/**
 * Records/s from the log through the stream engine into committed lake files: the sink partitioned
 * by 3 columns (`event_date` from event time, `show_type`, `user_bucket` = bucket(user_id, 16):
 * 144 partitions) against the time-only sink of today (year/month/day/hour: 72 partitions), same
 * events, same engine, same lake; median of 3 rounds each, alternating.
 */
async function runSinkPartitioned(context: BenchContext): Promise<BenchResult> {
  const events = viewEvents(recordCount, { users, days });
  const records = events.map((e) => ({ topic: viewsTopic, key: e.user_id, value: JSON.stringify(e) }));
  const once = async (
    partitioned: boolean,
    round: number,
  ): Promise<{ perSecond: number; perCpuSecond: number; files: number }> => {
    const dir = path.join(context.dir, `${partitioned ? 'columns' : 'time'}-${round}`);
    // A fresh log per run: a run's committed group offsets would make the next one start at the end.
    const log = createMemoryLog();
    await log.createTopic(viewsTopic, { partitions: 1 });
    for (let i = 0; i < records.length; i += 10_000) await log.append(records.slice(i, i + 10_000));
    const lake = await openLake({ storage: new LocalStorage(path.join(dir, 'lake')) });
    try {
      const table = lake.table('silver', 'views');
      const job = viewsJob(log, table, {
        checkpointIntervalMs: 10_000,
        sink: partitioned
          ? {}
          : { pathFormat: 'year=YYYY/month=MM/day=dd/hour=HH', partitionBy: [], rotateIntervalMs: 3_600_000 },
      });
      const started = performance.now();
      const cpuStart = process.cpuUsage();
      await runJob(job, { dataDir: path.join(dir, 'data'), once: true, pollMaxRecords: 10_000 });
      const seconds = (performance.now() - started) / 1000;
      const cpu = process.cpuUsage(cpuStart);
      const cpuSeconds = (cpu.user + cpu.system) / 1e6;
      const snapshot = await table.snapshot();
      const rows = snapshot?.files.reduce((n, f) => n + f.rows, 0) ?? 0;
      if (rows !== recordCount)
        throw new Error(`lake.sink_partitioned committed ${rows} rows, expected ${recordCount}`);
      return {
        perSecond: recordCount / seconds,
        perCpuSecond: recordCount / cpuSeconds,
        files: snapshot!.files.length,
      };
    } finally {
      await log.close();
      await lake.close();
      await rm(dir, { recursive: true, force: true });
    }
  };
  const ours: number[] = [];
  const timeOnly: number[] = [];
  // Process CPU time (all threads, DuckDB's included) as well: wall time swings on a shared machine.
  const oursCpu: number[] = [];
  const timeOnlyCpu: number[] = [];
  let files = 0;
  let timeFiles = 0;
  for (let round = 0; round < rounds; round++) {
    const columns = await once(true, round);
    const time = await once(false, round);
    ours.push(columns.perSecond);
    timeOnly.push(time.perSecond);
    oursCpu.push(columns.perCpuSecond);
    timeOnlyCpu.push(time.perCpuSecond);
    files = columns.files;
    timeFiles = time.files;
    context.progress(
      `round ${round + 1}: 3 partition columns ${Math.round(columns.perSecond).toLocaleString('en-US')} records/s (${Math.round(columns.perCpuSecond).toLocaleString('en-US')} per CPU s, ${columns.files} files), time-only ${Math.round(time.perSecond).toLocaleString('en-US')} records/s (${Math.round(time.perCpuSecond).toLocaleString('en-US')} per CPU s, ${time.files} files)`,
    );
  }
  const value = median(ours);
  const base = median(timeOnly);
  return {
    value,
    unit: 'records/s',
    baseline: base,
    baseline_name: 'the same sink partitioned by event time only (year/month/day/hour)',
    ratio: value / base,
    goal: 'ratio >= 0.7',
    records: recordCount,
    partitions: days * viewShowTypes.length * viewUserBuckets,
    files,
    time_only_files: timeFiles,
    records_per_cpu_s: Math.round(median(oursCpu)),
    time_only_records_per_cpu_s: Math.round(median(timeOnlyCpu)),
    cpu_ratio: median(oursCpu) / median(timeOnlyCpu),
    rounds,
  };
}

export const lakeSinkBenchmarks: Benchmark[] = [
  {
    name: 'lake.sink_partitioned',
    description: `${recordCount.toLocaleString('en-US')} view events (${users.toLocaleString('en-US')} users, ${days} days) from the log into a lake sink partitioned by event_date, show_type, bucket(user_id, 16) vs time-only; median of ${rounds} rounds`,
    run: runSinkPartitioned,
  },
];
