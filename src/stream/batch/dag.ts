/**
 * Batch jobs and their DAG runner (seed 001's ETL and seed 004's daily Spark report, done as
 * declared jobs): order by dependencies, cron schedules, retries with backoff, persisted run
 * history, backfill over a partition range, idempotent reruns.
 *
 * Storage-agnostic: a job's `run(ctx)` does the work (a DuckDB statement over lake tables, a
 * TypeScript transform...); the runner only decides when and in which order, retries, and records
 * what happened. Reruns are idempotent when jobs write with partition overwrite and the run's
 * `ctx.commitId` (stable across retries of one run, new for each run).
 */
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { CronExpressionParser } from 'cron-parser';
import {
  childLogger,
  limits,
  retry,
  systemClock,
  toTributaryError,
  TributaryError,
  type Clock,
} from '../../core/index.js';
import type { LineageEmitter } from '../lineage/emitter.js';
import { uuidOf } from '../lineage/event.js';

export interface BatchJobContext {
  job: string;
  /** The partition this run computes (e.g. a date '2026-11-22'), or null for an unpartitioned run. */
  partition: string | null;
  runId: string;
  /** Use as the lake commit id: a retry of the same run is recognised, a new run is applied. */
  commitId: string;
  attempt: number;
  signal: AbortSignal;
}

export interface BatchJobResult {
  rowsIn?: number;
  rowsOut?: number;
}

export interface BatchJob {
  name: string;
  description?: string;
  /**
   * Tables (or topics) read; a job producing one of them runs first. Also the run's lineage inputs
   * (`bronze.x` a table, `topic:x` or a plain name a topic, `postgres://host/db.schema.table` a
   * source; see src/stream/lineage/event.ts).
   */
  inputs?: string[];
  /** Tables written (the run's lineage outputs). */
  outputs?: string[];
  /** Explicit dependencies by job name, besides those inferred from inputs/outputs. */
  dependsOn?: string[];
  /** Cron expression (UTC), e.g. '0 2 * * *' for 02:00 daily. */
  schedule?: string;
  /**
   * Also run when one of `inputs` commits (an asset sensor, as in Dagster): `debounceMs` after the
   * last such commit, never two runs of the job at once. For small aggregates that should follow a
   * stream job's commits within seconds instead of waiting for the next scheduled run.
   */
  onInputCommit?: { debounceMs: number };
  /** For scheduled runs: the partition a run at `atMs` computes (default: yesterday's UTC date). */
  partitionFor?: (atMs: number) => string | null;
  /** Retries after the first failure. Default 2. */
  retries?: number;
  /** First retry delay, doubled per attempt with jitter (core's `retry`) up to limits.retryBackoffMsMax. Default 1 s. */
  backoffMs?: number;
  run(ctx: BatchJobContext): Promise<BatchJobResult | void>;
}

/** Something that executes SQL for a job (the lead wires DuckDB over the lake here). */
export interface SqlEngine {
  execute(sql: string, ctx: BatchJobContext): Promise<BatchJobResult>;
}

/**
 * A job defined by one SQL statement; `{partition}` in the text is replaced by the run's partition
 * (quoted as a SQL string literal).
 * @example sqlJob({ name: 'gold.daily_chunks', inputs: ['bronze.embeddings'], outputs: ['gold.daily_chunks'],
 *   schedule: '0 2 * * *', engine, sql: 'SELECT company_id, count(*) AS chunks FROM bronze.embeddings WHERE day = {partition} GROUP BY 1' })
 */
export function sqlJob(definition: Omit<BatchJob, 'run'> & { sql: string; engine: SqlEngine }): BatchJob {
  const { sql, engine, ...rest } = definition;
  return {
    ...rest,
    run: (ctx) => {
      const text = sql.replace(
        /\{partition\}/g,
        ctx.partition === null ? 'NULL' : `'${ctx.partition.replace(/'/g, "''")}'`,
      );
      return engine.execute(text, ctx);
    },
  };
}

export type RunStatus = 'succeeded' | 'failed' | 'skipped';

export interface RunRecord {
  runId: string;
  job: string;
  partition: string | null;
  status: RunStatus;
  attempts: number;
  startedAtMs: number;
  durationMs: number;
  rowsIn: number | null;
  rowsOut: number | null;
  error: string | null;
  /** Why the run happened. */
  trigger: 'manual' | 'schedule' | 'backfill' | 'pipeline' | 'commit';
}

/**
 * Run history: JSON Lines, one `RunRecord` per line, appended when a run ends
 * (`<dataDir>/jobs/batch-history.jsonl`), e.g.
 *   {"runId":"gold.daily-1763769600000-1","job":"gold.daily","partition":"2026-11-21","status":"succeeded",
 *    "attempts":1,"startedAtMs":1763769600000,"durationMs":812,"rowsIn":5000,"rowsOut":12,"error":null,"trigger":"schedule"}
 * A torn last line (crash mid-append) is skipped on read.
 */
export function encodeRunRecord(record: RunRecord): string {
  return `${JSON.stringify(record)}\n`;
}

export class RunHistory {
  constructor(readonly file: string) {}

  async append(record: RunRecord): Promise<void> {
    await mkdir(path.dirname(this.file), { recursive: true });
    await appendFile(this.file, encodeRunRecord(record));
  }

  async list(filter: { job?: string; limit?: number } = {}): Promise<RunRecord[]> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch {
      return [];
    }
    const records: RunRecord[] = [];
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      try {
        const r = JSON.parse(line) as RunRecord;
        if (filter.job === undefined || r.job === filter.job) records.push(r);
      } catch {
        // torn final line
      }
    }
    return filter.limit === undefined ? records : records.slice(-filter.limit);
  }
}

/** Daily partitions from `from` to `to` inclusive, as YYYY-MM-DD (UTC). */
export function dateRange(from: string, to: string): string[] {
  const parse = (s: string, name: string) => {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(s) || Number.isNaN(Date.parse(`${s}T00:00:00Z`))) {
      throw new TributaryError('INVALID_ARGUMENT', `${name} ${JSON.stringify(s)} is not a date (YYYY-MM-DD)`);
    }
    return Date.parse(`${s}T00:00:00Z`);
  };
  const a = parse(from, 'from');
  const b = parse(to, 'to');
  if (b < a)
    throw new TributaryError('INVALID_ARGUMENT', `backfill range ends (${to}) before it starts (${from})`);
  if ((b - a) / 86_400_000 > 3660)
    throw new TributaryError('INVALID_ARGUMENT', `backfill range ${from}..${to} is longer than 10 years`);
  const out: string[] = [];
  for (let t = a; t <= b; t += 86_400_000) out.push(new Date(t).toISOString().slice(0, 10));
  return out;
}

export interface DagOptions {
  /** Where run history is kept; omit to keep it in memory only. */
  historyFile?: string;
  clock?: Clock;
  /**
   * Where runs report OpenLineage START / COMPLETE / FAIL events (`lineageFor(dataDir)`); none when
   * omitted. The platform's DAGs pass their data dir's emitter, so every pipeline's jobs report.
   */
  lineage?: LineageEmitter;
}

export interface RunOptions {
  partition?: string | null;
  /** Also run the job's upstream jobs first (for the same partition). Default false. */
  withUpstream?: boolean;
  trigger?: RunRecord['trigger'];
  signal?: AbortSignal;
}

/** Jobs with dependencies, validated acyclic at construction. */
export class BatchDag {
  readonly jobs: ReadonlyMap<string, BatchJob>;
  readonly history: RunHistory | null;
  readonly #memoryHistory: RunRecord[] = [];
  readonly #clock: Clock;
  readonly #upstream = new Map<string, string[]>();
  readonly #order: string[];
  #runSeq = 0;
  readonly #logger = childLogger('batch');
  readonly #lineage: LineageEmitter | undefined;

  constructor(jobs: BatchJob[], options: DagOptions = {}) {
    this.#lineage = options.lineage;
    const byName = new Map<string, BatchJob>();
    for (const job of jobs) {
      if (byName.has(job.name))
        throw new TributaryError('ALREADY_EXISTS', `batch job ${job.name} is declared twice`);
      if (job.schedule !== undefined) parseSchedule(job.schedule, job.name);
      byName.set(job.name, job);
    }
    this.jobs = byName;
    this.history = options.historyFile === undefined ? null : new RunHistory(options.historyFile);
    this.#clock = options.clock ?? systemClock;
    const producers = new Map<string, string>();
    for (const job of jobs) for (const out of job.outputs ?? []) producers.set(out, job.name);
    for (const job of jobs) {
      const ups = new Set<string>();
      for (const dep of job.dependsOn ?? []) {
        if (!byName.has(dep))
          throw new TributaryError(
            'NOT_FOUND',
            `batch job ${job.name} depends on unknown job ${dep}; jobs: ${[...byName.keys()].join(', ')}`,
          );
        ups.add(dep);
      }
      for (const input of job.inputs ?? []) {
        const producer = producers.get(input);
        if (producer !== undefined && producer !== job.name) ups.add(producer);
      }
      this.#upstream.set(job.name, [...ups]);
    }
    this.#order = this.#topological();
  }

  /** Job names in dependency order (upstream first; ties by declaration order). */
  order(): string[] {
    return [...this.#order];
  }

  upstreamOf(name: string): string[] {
    return [...(this.#upstream.get(name) ?? [])];
  }

  #topological(): string[] {
    const state = new Map<string, 'visiting' | 'done'>();
    const out: string[] = [];
    const visit = (name: string, trail: string[]) => {
      const s = state.get(name);
      if (s === 'done') return;
      if (s === 'visiting')
        throw new TributaryError(
          'INVALID_ARGUMENT',
          `batch jobs form a cycle: ${[...trail, name].join(' → ')}`,
        );
      state.set(name, 'visiting');
      for (const up of this.#upstream.get(name) ?? []) visit(up, [...trail, name]);
      state.set(name, 'done');
      out.push(name);
    };
    for (const name of this.jobs.keys()) visit(name, []);
    return out;
  }

  #job(name: string): BatchJob {
    const job = this.jobs.get(name);
    if (job === undefined)
      throw new TributaryError(
        'NOT_FOUND',
        `no batch job ${name}; jobs: ${[...this.jobs.keys()].join(', ') || '(none)'}`,
      );
    return job;
  }

  /** Runs one job (retrying), records the run and returns its record. Never throws for job failures. */
  async run(name: string, options: RunOptions = {}): Promise<RunRecord> {
    const job = this.#job(name);
    if (options.withUpstream) {
      const needed = new Set<string>();
      const collect = (n: string) => {
        for (const up of this.#upstream.get(n) ?? []) {
          if (needed.has(up)) continue;
          needed.add(up);
          collect(up);
        }
      };
      collect(name);
      for (const up of this.#order.filter((n) => needed.has(n))) {
        const r = await this.run(up, { ...options, withUpstream: false });
        if (r.status === 'failed')
          return this.#record(
            job,
            options,
            'skipped',
            0,
            this.#clock.now(),
            0,
            null,
            `upstream job ${up} failed`,
          );
      }
    }
    const partition = options.partition ?? null;
    const runId = `${name}-${this.#clock.now()}-${++this.#runSeq}`;
    const retries = job.retries ?? 2;
    const controller = new AbortController();
    const signal = options.signal ?? controller.signal;
    const startedAtMs = this.#clock.now();
    const t0 = performance.now();
    let lastError: unknown = null;
    let attempts = 0;
    const lineage = this.#lineage?.run({
      job: name,
      processingType: 'BATCH',
      inputs: job.inputs ?? [],
      outputs: job.outputs ?? [],
      runId: uuidOf(runId),
    });
    const facts = { runId, partition, trigger: options.trigger ?? 'manual' };
    lineage?.emit('START', facts);
    try {
      const result = await retry(
        async (attempt) => {
          attempts = attempt;
          try {
            return (
              (await job.run({
                job: name,
                partition,
                runId,
                commitId: `batch:${name}:${partition ?? '*'}:${runId}`,
                attempt,
                signal,
              })) ?? {}
            );
          } catch (error) {
            this.#logger.warn({ job: name, partition, attempt, err: error }, 'batch job attempt failed');
            throw error;
          }
        },
        {
          attemptsMax: retries + 1,
          baseMs: job.backoffMs ?? 1000,
          maxMs: limits.retryBackoffMsMax,
          clock: this.#clock,
          signal,
        },
      );
      lineage?.emit('COMPLETE', {
        ...facts,
        attempts,
        ...(result.rowsIn === undefined ? {} : { rowsIn: result.rowsIn }),
        ...(result.rowsOut === undefined ? {} : { rowsOut: result.rowsOut }),
      });
      return this.#record(
        job,
        options,
        'succeeded',
        attempts,
        startedAtMs,
        performance.now() - t0,
        result,
        null,
        runId,
      );
    } catch (error) {
      lastError = error;
    }
    const message = toTributaryError(lastError).message;
    lineage?.emit('FAIL', { ...facts, attempts }, message);
    return this.#record(
      job,
      options,
      'failed',
      attempts,
      startedAtMs,
      performance.now() - t0,
      null,
      message,
      runId,
    );
  }

  async #record(
    job: BatchJob,
    options: RunOptions,
    status: RunStatus,
    attempts: number,
    startedAtMs: number,
    durationMs: number,
    result: BatchJobResult | null,
    error: string | null,
    runId = `${job.name}-${startedAtMs}-${++this.#runSeq}`,
  ): Promise<RunRecord> {
    const record: RunRecord = {
      runId,
      job: job.name,
      partition: options.partition ?? null,
      status,
      attempts,
      startedAtMs,
      durationMs: Math.round(durationMs * 1000) / 1000,
      rowsIn: result?.rowsIn ?? null,
      rowsOut: result?.rowsOut ?? null,
      error,
      trigger: options.trigger ?? 'manual',
    };
    if (this.history === null) this.#memoryHistory.push(record);
    else {
      try {
        await this.history.append(record);
      } catch (error) {
        // The run happened either way; a history line lost to a full disk must not turn into an
        // unhandled failure of whoever triggered the run (a commit, the scheduler).
        this.#logger.error(
          { err: error, job: job.name, runId },
          'could not record the batch run in its history',
        );
      }
    }
    return record;
  }

  /** Every job in dependency order for one partition; downstream of a failure is skipped. */
  async runAll(options: Omit<RunOptions, 'withUpstream'> = {}): Promise<RunRecord[]> {
    const records: RunRecord[] = [];
    const failed = new Set<string>();
    for (const name of this.#order) {
      const blocked = (this.#upstream.get(name) ?? []).find((up) => failed.has(up));
      if (blocked !== undefined) {
        failed.add(name);
        records.push(
          await this.#record(
            this.#job(name),
            options,
            'skipped',
            0,
            this.#clock.now(),
            0,
            null,
            `upstream job ${blocked} did not succeed`,
          ),
        );
        continue;
      }
      const record = await this.run(name, options);
      if (record.status !== 'succeeded') failed.add(name);
      records.push(record);
    }
    return records;
  }

  /** Runs `name` once per partition, in order; reruns replace what earlier runs wrote (idempotent jobs). */
  async backfill(
    name: string,
    partitions: string[],
    options: Omit<RunOptions, 'partition'> = {},
  ): Promise<RunRecord[]> {
    const records: RunRecord[] = [];
    for (const partition of partitions)
      records.push(await this.run(name, { ...options, partition, trigger: 'backfill' }));
    return records;
  }

  async listHistory(filter: { job?: string; limit?: number } = {}): Promise<RunRecord[]> {
    if (this.history !== null) return this.history.list(filter);
    const list = this.#memoryHistory.filter((r) => filter.job === undefined || r.job === filter.job);
    return filter.limit === undefined ? list : list.slice(-filter.limit);
  }

  /** Next time (epoch ms) each scheduled job is due after `afterMs`. */
  nextRuns(afterMs: number): { job: string; atMs: number }[] {
    const out: { job: string; atMs: number }[] = [];
    for (const job of this.jobs.values()) {
      if (job.schedule === undefined) continue;
      out.push({ job: job.name, atMs: parseSchedule(job.schedule, job.name, afterMs).next().getTime() });
    }
    return out.sort((a, b) => a.atMs - b.atMs);
  }

  /**
   * Runs scheduled jobs when due until `signal` aborts: sleeps (injected clock) until the next due
   * time, then runs the due jobs in dependency order for their partition.
   */
  /**
   * Runs the jobs that declare `onInputCommit` whenever one of their input tables commits, until
   * `signal` aborts; resolves once the last run started has ended. `commits` is the lake (anything
   * that reports commits by qualified table name).
   */
  async runOnInputCommits(
    commits: { onCommit(listener: (event: { table: string }) => void): () => void },
    signal: AbortSignal,
  ): Promise<void> {
    const watched = [...this.jobs.values()].filter(
      (job) => job.onInputCommit && (job.inputs ?? []).length > 0,
    );
    if (watched.length === 0 || signal.aborted) return;
    const timers = new Map<string, NodeJS.Timeout>();
    let running: Promise<unknown> = Promise.resolve();
    const unsubscribe = commits.onCommit((event) => {
      for (const job of watched) {
        if (!job.inputs!.includes(event.table)) continue;
        clearTimeout(timers.get(job.name));
        timers.set(
          job.name,
          setTimeout(() => {
            timers.delete(job.name);
            // One run after another: a run records its own failure in the history.
            running = running
              .then(() =>
                signal.aborted
                  ? undefined
                  : this.run(job.name, { partition: null, trigger: 'commit', signal }),
              )
              .catch((error: unknown) =>
                this.#logger.error({ err: error, job: job.name }, 'batch run after an input commit failed'),
              );
          }, job.onInputCommit!.debounceMs),
        );
      }
    });
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    unsubscribe();
    for (const timer of timers.values()) clearTimeout(timer);
    await running;
  }

  async runScheduler(signal: AbortSignal): Promise<void> {
    let after = this.#clock.now();
    while (!signal.aborted) {
      const next = this.nextRuns(after);
      if (next.length === 0) return;
      const atMs = next[0].atMs;
      const waitMs = atMs - this.#clock.now();
      if (waitMs > 0) {
        try {
          await this.#clock.sleep(waitMs, signal);
        } catch {
          return;
        }
      }
      const due = new Set(next.filter((n) => n.atMs === atMs).map((n) => n.job));
      for (const name of this.#order) {
        if (!due.has(name)) continue;
        const job = this.#job(name);
        const partition = (job.partitionFor ?? yesterday)(atMs);
        await this.run(name, { partition, trigger: 'schedule', signal });
      }
      after = atMs;
    }
  }
}

function yesterday(atMs: number): string {
  return new Date(atMs - 86_400_000).toISOString().slice(0, 10);
}

function parseSchedule(expression: string, job: string, currentDate?: number) {
  try {
    return CronExpressionParser.parse(expression, {
      tz: 'UTC',
      ...(currentDate === undefined ? {} : { currentDate }),
    });
  } catch (error) {
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `batch job ${job}: schedule ${JSON.stringify(expression)} is not a cron expression: ${(error as Error).message}`,
      { cause: error },
    );
  }
}
