/**
 * `tributary run <pipeline> --once`: a pipeline's stream jobs in bounded mode, then its batch DAG.
 *
 * A stream job whose source topic is another job's output topic is downstream of it. Stages run
 * in dependency order and each bounded run takes its end offsets only when it starts, i.e. after
 * every upstream stage finished and committed, so everything flows through all stages (Flink's
 * bounded execution of a job graph, stage by stage). Independent jobs keep declaration order.
 */
import path from 'node:path';
import { dataDirPaths, TributaryError, type Clock } from '../core/index.js';
import { BatchDag, type BatchJob, type RunRecord } from './batch/dag.js';
import type { Storage } from '../lake/index.js';
import type { StreamJob } from './job.js';
import { planScaledJob, runWorker, type WorkerResult } from './scale.js';
import { openCheckpointStorage } from './task-store.js';
import { runJob, startJob, type JobStatus } from './runner.js';
import { lineageFor } from './lineage/emitter.js';
import type { JobEnvironment, JobRegistry } from './batch/registry.js';

export interface PipelineOnceOptions {
  /** Data dir for checkpoints and run history (omit for an in-memory run). */
  dataDir?: string;
  /** Partition the batch jobs compute (e.g. a date). */
  partition?: string | null;
  clock?: Clock;
  signal?: AbortSignal;
}

export interface PipelineOnceResult {
  streams: JobStatus[];
  batch: RunRecord[];
  ok: boolean;
}

/** Stream jobs in upstream-first order (by topics); throws on a cycle. */
export function orderStreamJobs(jobs: readonly StreamJob[]): StreamJob[] {
  const producers = new Map<string, StreamJob[]>();
  for (const job of jobs)
    for (const topic of job.outputTopics) producers.set(topic, [...(producers.get(topic) ?? []), job]);
  const state = new Map<StreamJob, 'visiting' | 'done'>();
  const out: StreamJob[] = [];
  const visit = (job: StreamJob, trail: string[]) => {
    const s = state.get(job);
    if (s === 'done') return;
    if (s === 'visiting')
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `stream jobs form a cycle: ${[...trail, job.name].join(' → ')}`,
      );
    state.set(job, 'visiting');
    for (const topic of job.source.topics)
      for (const up of producers.get(topic) ?? []) if (up !== job) visit(up, [...trail, job.name]);
    state.set(job, 'done');
    out.push(job);
  };
  for (const job of jobs) visit(job, []);
  return out;
}

/**
 * @example
 * const result = await runPipelineOnce({ streams: [bronzeJob, liveSalesJob], batch: [silverJob, goldJob] }, { dataDir, partition: '2026-11-21' });
 * process.exitCode = result.ok ? 0 : 1;
 */
export async function runPipelineOnce(
  jobs: { streams?: readonly StreamJob[]; batch?: readonly BatchJob[] },
  options: PipelineOnceOptions = {},
): Promise<PipelineOnceResult> {
  const streams: JobStatus[] = [];
  for (const job of orderStreamJobs(jobs.streams ?? [])) {
    streams.push(
      await runJob(job, {
        once: true,
        ...(options.dataDir === undefined ? {} : { dataDir: options.dataDir }),
        ...(options.clock === undefined ? {} : { clock: options.clock }),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      }),
    );
  }
  let batch: RunRecord[] = [];
  if ((jobs.batch ?? []).length > 0) {
    const dag = new BatchDag([...(jobs.batch ?? [])], {
      ...(options.dataDir === undefined
        ? {}
        : { historyFile: batchHistoryFile(options.dataDir), lineage: lineageFor(options.dataDir) }),
      ...(options.clock === undefined ? {} : { clock: options.clock }),
    });
    batch = await dag.runAll({
      partition: options.partition ?? null,
      trigger: 'pipeline',
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }
  return {
    streams,
    batch,
    ok: streams.every((s) => s.state === 'finished') && batch.every((r) => r.status === 'succeeded'),
  };
}

/** Where batch run history lives under a data dir. */
export function batchHistoryFile(dataDir: string): string {
  return path.join(dataDirPaths(dataDir).jobs, 'batch-history.jsonl');
}

export interface RegisteredRunOptions {
  /** Bounded: run everything once (`tributary run <pipeline> --once`). Otherwise run until `signal`. */
  once: boolean;
  partition?: string | null;
  signal?: AbortSignal;
  /**
   * Run the stream jobs as one worker of each job's group (`tributary run <pipeline> --worker`,
   * scale.ts): several processes share the jobs' partitions. Batch jobs are left to the
   * non-worker run (`tributary up` or `run`), so that N workers do not run the DAG N times.
   */
  worker?: boolean;
}

/**
 * Runs a registered pipeline: bounded (`once`) through `runPipelineOnce`, or continuously — every
 * stream job started, the batch jobs on their cron schedules — until `signal` aborts, then stops
 * the stream jobs gracefully (final checkpoint) and closes what the pipeline opened.
 */
export async function runRegisteredPipeline(
  registry: JobRegistry,
  name: string,
  env: JobEnvironment,
  options: RegisteredRunOptions,
): Promise<PipelineOnceResult> {
  const built = await registry.get(name).factory(env);
  const dataDir = env.config.dataDir;
  try {
    if (options.worker === true) {
      // Task checkpoints follow the lake: local disk, or the lake's bucket (workers on several machines).
      const checkpoints = openCheckpointStorage(env.config);
      try {
        return await runWorkers(built.stream ?? [], dataDir, checkpoints, options);
      } finally {
        await checkpoints.close();
      }
    }
    if (options.once) {
      return await runPipelineOnce(
        { streams: built.stream ?? [], batch: built.batch ?? [] },
        {
          dataDir,
          partition: options.partition ?? null,
          ...(options.signal ? { signal: options.signal } : {}),
        },
      );
    }
    const signal = options.signal ?? new AbortController().signal;
    const handles = (built.stream ?? []).map((job) => startJob(job, { dataDir, signal }));
    const dag = new BatchDag([...(built.batch ?? [])], {
      historyFile: batchHistoryFile(dataDir),
      lineage: lineageFor(dataDir),
    });
    const scheduler = dag.runScheduler(signal);
    const streams = await Promise.all(handles.map((h) => h.done));
    await scheduler;
    return {
      streams,
      batch: await dag.listHistory({ limit: 100 }),
      ok: streams.every((s) => s.state !== 'failed'),
    };
  } finally {
    await built.close?.();
  }
}

/** Every stream job of a pipeline as one worker of its group; bounded runs go upstream-first. */
async function runWorkers(
  jobs: readonly StreamJob[],
  dataDir: string,
  checkpoints: Storage,
  options: RegisteredRunOptions,
): Promise<PipelineOnceResult> {
  const signal = options.signal ?? new AbortController().signal;
  // Every job must scale out before any starts: refuse up front, naming the job and why.
  for (const job of jobs) planScaledJob(job);
  const results: WorkerResult[] = [];
  if (options.once) {
    for (const job of orderStreamJobs(jobs))
      results.push(await runWorker(job, { dataDir, checkpoints, once: true, signal }));
  } else {
    results.push(...(await Promise.all(jobs.map((job) => runWorker(job, { dataDir, checkpoints, signal })))));
  }
  const streams = results.flatMap((r) => r.tasks);
  const expected = options.once ? 'finished' : 'stopped';
  return { streams, batch: [], ok: streams.every((s) => s.state === expected || s.state === 'finished') };
}
