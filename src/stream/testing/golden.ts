/**
 * The golden job of the stream engine's end-to-end tests (test/stream/golden.test.ts): sales per
 * country in 10-second tumbling windows, with a filter, validation (poison records go to the DLQ)
 * and a topic sink. Also the entry point of the worker process those tests start and `kill -9`:
 *
 *   node dist/src/stream/testing/golden.js <dataDir> [--checkpoint-interval-ms=N] [--hold-after=N]
 *
 * runs the job in bounded mode over the embedded log in `<dataDir>/log`, checkpointing after every
 * batch (or every N ms), and prints `batch <n>` after each batch so the parent can kill it mid-run.
 * `--hold-after=N` stops the worker after batch N's outputs are written (it prints `held` and
 * waits), so the parent can kill it at that exact point instead of racing a running worker.
 *
 *   node dist/src/stream/testing/golden.js <dataDir> --worker [--batch-delay-ms=N]
 *
 * runs instead as one worker of the scaled-out job (scale.ts), bounded, over the log served for
 * `<dataDir>` (`tributary log serve`); it prints `task start|stop <task>` as partitions move and
 * `batch <n>` after each task batch, sleeping N ms after each (so a test can add a worker mid-run).
 *
 *   node dist/src/stream/testing/golden.js --config-worker [--batch-delay-ms=N] [--lease-ttl-ms=N]
 *     [--checkpoint-interval-ms=N (default 1000)]
 *
 * is the same worker configured as a deployed one is, from the environment (`loadConfig`): its own
 * data dir, the log of `log` (e.g. `kafka://…` with `kafkaSasl*`), the lake and the tasks'
 * checkpoints in `storage` (e.g. `s3://…`); the job also writes its windows to the lake table
 * `gold.golden_by_country` (test/stream/scale-machines.test.ts).
 */
import { dataDirPaths, loadConfig, TributaryError } from '../../core/index.js';
import { openLakeFromConfig, type Lake } from '../../lake/index.js';
import { connectRemoteLog, openEmbeddedLog, openLog, readLogServerInfo, type Log } from '../../log/index.js';
import { stream, type StreamJob } from '../job.js';
import { lakeTableTarget } from '../lake.js';
import { runJob } from '../runner.js';
import { runWorker } from '../scale.js';
import { lakeSink, topicSink } from '../sinks.js';
import { openCheckpointStorage } from '../task-store.js';
import { tumbling } from '../windows.js';
import { numberFlag, reportBatches } from './worker-args.js';

export interface GoldenSale {
  id: number;
  country: string;
  amount: number;
  ts: number;
}

export const goldenOutputTopic = 'golden.by_country';

export const goldenLakeTable = 'golden_by_country';

/** The golden job; with `lake`, its windows also go to the lake table `gold.golden_by_country`. */
export function goldenJob(log: Log, options: { checkpointIntervalMs?: number; lake?: Lake } = {}): StreamJob {
  const lake = options.lake;
  return stream('golden', { checkpointIntervalMs: options.checkpointIntervalMs })
    .from<GoldenSale>(log, {
      topics: ['golden.sales'],
      validate: (v) => {
        const s = v as GoldenSale;
        if (typeof s.amount !== 'number' || typeof s.country !== 'string' || typeof s.ts !== 'number') {
          throw new Error(`not a sale: ${JSON.stringify(v)}`);
        }
        return s;
      },
      timestamp: (s) => s.ts,
      // Larger than the generator's disorder: no record is late, so results do not depend on how
      // partitions interleave (1 vs N partitions must give identical outputs).
      outOfOrdernessMs: 5_000,
    })
    .filter((s) => s.amount > 0)
    .keyBy((s) => s.country)
    .window(tumbling({ sizeMs: 10_000 }))
    .aggregate({
      init: () => ({ count: 0, total: 0 }),
      add: (a, s) => {
        a.count++;
        a.total += s.amount;
        return a;
      },
    })
    .map((w) => ({
      country: w.key,
      start: w.windowStart,
      count: w.value.count,
      total: w.value.total,
      kind: w.kind,
    }))
    .to(
      topicSink(goldenOutputTopic),
      ...(lake === undefined
        ? []
        : [lakeSink(lakeTableTarget(lake.table('gold', goldenLakeTable)), { compactAfterFiles: 0 })]),
    );
}

/** Deterministic sales with bounded disorder (< 5 s) and a poison record every 997. */
export function goldenSales(n: number, seed = 1): (string | null)[] {
  let s = seed;
  const countries = ['FR', 'DE', 'US', 'BR', 'JP', 'IN'];
  const out: (string | null)[] = [];
  for (let i = 0; i < n; i++) {
    s = (s * 48271) % 2147483647;
    if (i % 997 === 500) {
      out.push(i % 2 === 0 ? '{broken' : JSON.stringify({ id: i, country: null }));
      continue;
    }
    out.push(
      JSON.stringify({
        id: i,
        country: countries[s % countries.length],
        amount: (s % 200) - 10,
        ts: 1_700_000_000_000 + i * 20 - (s % 4000),
      }),
    );
  }
  return out;
}

async function mainWorker(dataDir: string, args: string[]): Promise<void> {
  const delayMs = numberFlag(args, 'batch-delay-ms') ?? 0;
  const info = readLogServerInfo(dataDirPaths(dataDir).log);
  if (info === null) throw new TributaryError('UNAVAILABLE', `no log server runs for ${dataDir}`);
  const log = await connectRemoteLog({ host: info.host, port: info.port, token: info.token });
  try {
    let batches = 0;
    await runWorker(goldenJob(log, { checkpointIntervalMs: 0 }), {
      dataDir,
      once: true,
      pollMaxRecords: 250,
      onTask: (event, task) => process.stdout.write(`task ${event} ${task}\n`),
      onBatch: async () => {
        process.stdout.write(`batch ${++batches}\n`);
        if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      },
    });
  } finally {
    await log.close();
  }
  process.stdout.write('done\n');
}

/** `--config-worker`: a worker configured from the environment, as a deployed replica is. */
async function mainConfiguredWorker(args: string[]): Promise<void> {
  const delayMs = numberFlag(args, 'batch-delay-ms') ?? 0;
  const leaseTtlMs = numberFlag(args, 'lease-ttl-ms');
  // Object storage costs a few requests per checkpoint: not one after every batch here.
  const checkpointIntervalMs = numberFlag(args, 'checkpoint-interval-ms') ?? 1_000;
  const config = loadConfig();
  const log = await openLog(config);
  const lake = await openLakeFromConfig(config);
  const checkpoints = openCheckpointStorage(config);
  try {
    let batches = 0;
    await runWorker(goldenJob(log, { checkpointIntervalMs, lake }), {
      dataDir: config.dataDir,
      checkpoints,
      once: true,
      pollMaxRecords: 250,
      ...(leaseTtlMs === null ? {} : { leaseTtlMs }),
      onTask: (event, task) => process.stdout.write(`task ${event} ${task}\n`),
      onBatch: async () => {
        process.stdout.write(`batch ${++batches}\n`);
        if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      },
    });
  } finally {
    await checkpoints.close();
    await lake.close();
    await log.close();
  }
  process.stdout.write('done\n');
}

async function main(dataDir: string, args: string[]): Promise<void> {
  if (args.includes('--worker')) return mainWorker(dataDir, args);
  const checkpointIntervalMs = numberFlag(args, 'checkpoint-interval-ms') ?? 0;
  const holdAfter = numberFlag(args, 'hold-after');
  const log = await openEmbeddedLog({ dir: dataDirPaths(dataDir).log, fsync: 'always' });
  try {
    await runJob(goldenJob(log, { checkpointIntervalMs }), {
      dataDir,
      once: true,
      pollMaxRecords: 250,
      onBatch: reportBatches(holdAfter),
    });
  } finally {
    await log.close();
  }
  process.stdout.write('done\n');
}

if (process.argv[1] !== undefined && /stream[/\\]testing[/\\]golden\.js$/.test(process.argv[1])) {
  if (process.argv[2] === '--config-worker') await mainConfiguredWorker(process.argv.slice(3));
  else await main(process.argv[2] ?? '.tributary', process.argv.slice(3));
}
