/**
 * A column-partitioned lake sink job for the tests and the benchmark: viewing events (seed 003's
 * shape) → `silver.views` partitioned by `event_date` (event time), `show_type` and
 * `user_bucket = bucket(user_id, 16)`. Also the entry point of the worker process the crash test
 * starts and `kill -9`s:
 *
 *   node dist/src/stream/testing/partitioned-lake.js <dataDir> [--hold-after=N] [--open-partitions-max=N]
 *
 * runs the job in bounded mode over the embedded log in `<dataDir>/log` into the lake in
 * `<dataDir>/lake`, checkpointing after every batch, and prints `batch <n>` after each batch (its
 * files are staged then, not yet committed). `--hold-after=N` stops after batch N (prints `held`
 * and waits) so the parent can kill it at that point.
 */
import { dataDirPaths } from '../../core/index.js';
import { LocalStorage, openLake, type LakeTable } from '../../lake/index.js';
import { openEmbeddedLog, type Log } from '../../log/index.js';
import { stream, type StreamJob } from '../job.js';
import { lakeTableTarget } from '../lake.js';
import { bucketColumn } from '../lake-partitions.js';
import { runJob } from '../runner.js';
import { lakeSink, type LakeSinkOptions } from '../sinks.js';
import { numberFlag, reportBatches } from './worker-args.js';

export interface ViewEvent {
  view_id: number;
  user_id: string;
  /** One of `viewShowTypes` (one has a '/' and a space: escaped in the path). */
  show_type: string;
  watch_s: number;
  ts: number;
}

export const viewsTopic = 'views';
export const viewShowTypes = ['movie', 'series', 'live/talk show'] as const;
export const viewUserBuckets = 16;
export const viewsStartMs = Date.UTC(2026, 10, 20);

/**
 * `n` events over `days` UTC days in random order: users `u0 … u<users-1>` each watch at least
 * once (when n ≥ users), the rest are repeat viewers. Deterministic for a seed.
 */
export function viewEvents(n: number, options: { users: number; days: number; seed?: number }): ViewEvent[] {
  let s = options.seed ?? 1;
  const next = () => (s = (s * 48271) % 2147483647);
  const spanMs = options.days * 86_400_000;
  const out: ViewEvent[] = [];
  for (let i = 0; i < n; i++) {
    const user = i < options.users ? i : next() % options.users;
    out.push({
      view_id: i,
      user_id: `u${user}`,
      show_type: viewShowTypes[next() % viewShowTypes.length],
      watch_s: next() % 7200,
      ts: viewsStartMs + (next() % spanMs),
    });
  }
  return out;
}

/** The sink settings of the job: one file per partition unless flushSize or the LRU bound rolls. */
export function viewsSinkOptions(
  overrides: Partial<LakeSinkOptions<ViewEvent>> = {},
): LakeSinkOptions<ViewEvent> {
  return {
    pathFormat: 'event_date=YYYY-MM-dd',
    partitionBy: ['show_type', bucketColumn('user_bucket', 'user_id', viewUserBuckets)],
    flushSize: 1_000_000,
    // A date partition spans one day of event time: never rotate inside it.
    rotateIntervalMs: 2 * 86_400_000,
    compactAfterFiles: 0,
    ...overrides,
  };
}

export function viewsJob(
  log: Log,
  table: LakeTable,
  options: { checkpointIntervalMs?: number; sink?: Partial<LakeSinkOptions<ViewEvent>> } = {},
): StreamJob {
  return stream('views-to-lake', { checkpointIntervalMs: options.checkpointIntervalMs ?? 0 })
    .from<ViewEvent>(log, { topics: [viewsTopic], timestamp: (e) => e.ts })
    .to(lakeSink(lakeTableTarget(table, { types: { event_date: 'DATE' } }), viewsSinkOptions(options.sink)));
}

async function main(dataDir: string, args: string[]): Promise<void> {
  const holdAfter = numberFlag(args, 'hold-after');
  const openPartitionsMax = numberFlag(args, 'open-partitions-max');
  const log = await openEmbeddedLog({ dir: dataDirPaths(dataDir).log, fsync: 'always' });
  const lake = await openLake({ storage: new LocalStorage(dataDirPaths(dataDir).lake) });
  try {
    const job = viewsJob(log, lake.table('silver', 'views'), {
      sink: openPartitionsMax === null ? {} : { openPartitionsMax },
    });
    await runJob(job, {
      dataDir,
      once: true,
      pollMaxRecords: 250,
      onBatch: reportBatches(holdAfter),
    });
  } finally {
    await lake.close();
    await log.close();
  }
  process.stdout.write('done\n');
}

if (process.argv[1] !== undefined && /stream[/\\]testing[/\\]partitioned-lake\.js$/.test(process.argv[1])) {
  await main(process.argv[2] ?? '.tributary', process.argv.slice(3));
}
