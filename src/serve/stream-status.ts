import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { dataDirPaths, processAlive, writeFileAtomic } from '../core/index.js';
import {
  RunHistory,
  batchHistoryFile,
  jobStatus,
  readJobStatusFiles,
  type JobStatus as StreamJobStatus,
  type RunRecord,
} from '../stream/index.js';
import type { JobStatus, PipelineStatus, PlatformStatus, StatusProvider } from './types.js';

export interface PipelineDescriptor {
  name: string;
  title?: string;
  /** Stream and batch job names belonging to the pipeline. */
  jobs: string[];
  tenant?: string;
}

export interface StreamStatusOptions {
  dataDir: string;
  /** Which jobs make up which pipeline; jobs not listed are shown on their own. */
  pipelines?: PipelineDescriptor[] | (() => PipelineDescriptor[]);
  /** Read status files of jobs run by other processes (default true). */
  readFiles?: boolean;
  nowMs?: () => number;
}

const stateMap: Record<StreamJobStatus['state'], JobStatus['state']> = {
  starting: 'starting',
  running: 'running',
  finished: 'stopped',
  stopped: 'stopped',
  failed: 'failed',
};

/**
 * Which jobs make up which pipeline, as `tributary up` last built them: `jobs/pipelines.json`,
 * `{"<pipeline>": ["<job>", …]}`, so `tributary status` without a running `up` can still group jobs.
 */
export function pipelineJobsFile(dataDir: string): string {
  return path.join(dataDirPaths(dataDir).jobs, 'pipelines.json');
}

export async function recordPipelineJobs(dataDir: string, jobs: Record<string, string[]>): Promise<void> {
  await writeFileAtomic(pipelineJobsFile(dataDir), `${JSON.stringify(jobs)}\n`);
}

export async function readPipelineJobs(dataDir: string): Promise<Record<string, string[]>> {
  try {
    return JSON.parse(await readFile(pipelineJobsFile(dataDir), 'utf8')) as Record<string, string[]>;
  } catch {
    return {};
  }
}

/**
 * A status file is the job's state at its last checkpoint; when the process that wrote it is gone
 * (or the file predates pids), a job it calls running or starting is stopped, last seen then.
 */
function withLiveness(s: StreamJobStatus): StreamJobStatus {
  if (s.state !== 'running' && s.state !== 'starting') return s;
  if (s.pid !== undefined && processAlive(s.pid)) return s;
  return { ...s, state: 'stopped' };
}

/**
 * Platform status from the stream layer: jobs running in this process (`jobStatus()`), status files
 * of jobs in other processes, and the batch run history. Throughput is the change of records in
 * between two calls, so the dashboard's periodic polls (and `status.tick`) measure it.
 */
export function createStreamStatusProvider(options: StreamStatusOptions): StatusProvider {
  const samples = new Map<string, { atMs: number; recordsIn: number; perSecond: number }>();
  const now = options.nowMs ?? (() => Date.now());
  return {
    async getStatus(): Promise<PlatformStatus> {
      const nowMs = now();
      const byName = new Map<string, StreamJobStatus>();
      // A scaled-out job reports per task (scale.ts): one line per task, `<job> [<task>]`.
      const nameOf = (s: StreamJobStatus) => (s.task === undefined ? s.job : `${s.job} [${s.task}]`);
      if (options.readFiles !== false)
        for (const s of await readJobStatusFiles(options.dataDir)) byName.set(nameOf(s), withLiveness(s));
      for (const s of jobStatus()) byName.set(nameOf(s), s);
      const descriptors =
        typeof options.pipelines === 'function' ? options.pipelines() : (options.pipelines ?? []);
      const pipelineOf = new Map<string, PipelineDescriptor>();
      for (const d of descriptors) for (const job of d.jobs) pipelineOf.set(job, d);

      const jobs: JobStatus[] = [...byName].map(([name, s]) => {
        const previous = samples.get(name);
        let perSecond = previous?.perSecond ?? 0;
        if (previous && nowMs - previous.atMs >= 500)
          perSecond = ((s.counters.in - previous.recordsIn) * 1000) / (nowMs - previous.atMs);
        if (!previous || nowMs - previous.atMs >= 500)
          samples.set(name, { atMs: nowMs, recordsIn: s.counters.in, perSecond });
        const pipeline = pipelineOf.get(s.job);
        return {
          name,
          ...(pipeline ? { pipeline: pipeline.name } : {}),
          state: stateMap[s.state],
          throughputPerSecond: Math.max(0, perSecond),
          recordsIn: s.counters.in,
          recordsOut: s.counters.outputs,
          consumerLag: Object.values(s.lag).reduce((n, v) => n + v, 0),
          watermarkMs: s.watermark,
          lastCheckpoint: s.lastCheckpoint
            ? {
                id: s.lastCheckpoint.checkpointId,
                atMs: s.lastCheckpoint.atMs,
                durationMs: s.lastCheckpoint.durationMs,
              }
            : null,
          dlqCount: s.counters.dlq,
          lateCount: s.counters.late,
          ...(s.error ? { error: s.error } : {}),
          lastSeenMs: s.updatedAtMs,
          ...(pipeline?.tenant ? { tenant: pipeline.tenant } : {}),
        };
      });

      const runs: RunRecord[] = await new RunHistory(batchHistoryFile(options.dataDir))
        .list({ limit: 1000 })
        .catch(() => []);
      const lastRun = new Map<string, RunRecord>();
      for (const run of runs) {
        const seen = lastRun.get(run.job);
        if (!seen || seen.startedAtMs < run.startedAtMs) lastRun.set(run.job, run);
      }
      const pipelines: PipelineStatus[] = descriptors.map((d) => {
        const states = d.jobs.map((j) => byName.get(j)?.state);
        const runsOf = d.jobs.map((j) => lastRun.get(j)).filter((r): r is RunRecord => r !== undefined);
        const latest = runsOf.sort((a, b) => b.startedAtMs - a.startedAtMs)[0];
        return {
          name: d.name,
          ...(d.title ? { title: d.title } : {}),
          state: states.includes('failed')
            ? 'failed'
            : states.includes('running') || states.includes('starting')
              ? 'running'
              : states.some((s) => s)
                ? 'stopped'
                : 'idle',
          jobs: d.jobs,
          lastRunMs: latest ? latest.startedAtMs : null,
          lastRunStatus: latest ? (latest.status === 'failed' ? 'failed' : 'ok') : null,
          ...(d.tenant ? { tenant: d.tenant } : {}),
        };
      });
      return { generatedAtMs: nowMs, pipelines, jobs };
    },
  };
}
