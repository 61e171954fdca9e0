/**
 * Runs a stream job against its log: polling, watermarks (with idle detection and wall-clock
 * ticks), early updates, side outputs, sink flushes and checkpoints; bounded (`once`) or unbounded.
 *
 * One process runs one task per job that owns every partition the consumer group assigns to it; all
 * partitions are read concurrently through one consumer (round-robin fetches) and share the job's
 * keyed state, so `keyBy` needs no shuffle inside a process. Scaled out (scale.ts), the same runner
 * runs one task of one stage (`RunJobOptions.task`): fixed partitions, its own checkpoint directory
 * under a lease, and watermark / end markers across the repartition topic.
 *
 * Exactly-once effect: a checkpoint (taken between batches, so nothing is in flight) stores
 * operator state + next offsets + sink pre-commit state, then the manifest; sinks commit after.
 * A restart restores all three and replays from the stored offsets; replayed outputs carry the same
 * ids and are deduplicated by the topic sink, lake files are re-committed under the same commit id.
 * Before the first checkpoint, the sinks' intents (`INTENT`, checkpoint.ts) play the part of the
 * checkpointed sink state for the topic sink's deduplication.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  childLogger,
  counter,
  dataDirPaths,
  gauge,
  histogram,
  limits,
  systemClock,
  toTributaryError,
  TributaryError,
  writeFileAtomic,
  type Clock,
} from '../core/index.js';
import type { Consumer, LogRecord, ProducerRecord, TopicPartition } from '../log/index.js';
import {
  checkpointDir,
  lockJob,
  readCheckpoint,
  readSinkIntent,
  removeSinkIntent,
  resetCheckpoints,
  sinkIntentFormatVersion,
  writeCheckpoint,
  writeSinkIntent,
  type CheckpointManifest,
  type CheckpointState,
  type SinkIntent,
} from './checkpoint.js';
import type { StreamJob } from './job.js';
import { lakeAndLogSchemas, lineageFor, type LineageEmitter, type LineageRun } from './lineage/emitter.js';
import type { LineageEventType } from './lineage/event.js';
import { dlqHeaders, JobTask, shuffleHeaders, zeroCounters, type JobCounters } from './runtime.js';
import { openAssignedConsumer } from './task-io.js';
import type { TaskStore } from './task-store.js';
import { readIdsSince } from './sinks.js';
import { KeyedStateChangelog, type ChangelogRef } from './state-changelog.js';
import type { Sink } from './types.js';

export interface RunJobOptions {
  /**
   * Data dir for checkpoints and status files. Without it checkpoints live in memory: sinks still
   * pre-commit and commit at each one (lake files become visible), but a restart starts over.
   */
  dataDir?: string;
  /** Bounded run: read up to the end offsets seen at start, end the input, fire, commit, resolve. */
  once?: boolean;
  clock?: Clock;
  signal?: AbortSignal;
  /** Wall-clock housekeeping period (idleness, early updates, lake rolling). Default 100 ms. */
  tickMs?: number;
  /** Early-update period; default the smallest `earlyEveryMs` of the job's windows. */
  earlyEveryMs?: number;
  /** Records per poll. Default 5,000. */
  pollMaxRecords?: number;
  /** Called after each batch (tests use it to crash or observe at a point). */
  onBatch?: (handle: JobHandle) => void | Promise<void>;
  /** Runs one task of a scaled-out job (scale.ts) instead of the whole job. */
  task?: TaskAssignment;
  /**
   * Where the run reports OpenLineage events: START when it starts, RUNNING at a checkpoint at most
   * every `limits.lineageRunningIntervalMs` (coalesced: checkpoints are frequent, lineage changes
   * rarely), COMPLETE when it finishes or is stopped, FAIL when it fails. Default: with a data dir
   * its emitter (`lineageFor(dataDir)`), without one none; false turns it off.
   */
  lineage?: LineageEmitter | false;
}

/** Datasets a sink writes, for lineage (see `Sink.datasets`). */
function sinkDatasets(sink: Sink<unknown>): string[] {
  if (sink.datasets !== undefined) return [...sink.datasets];
  return sink.name.startsWith('topic:') || sink.name.startsWith('lake:') ? [sink.name] : [];
}

/** One task of a scaled-out job: what `runWorker` (scale.ts) hands the runner. */
export interface TaskAssignment {
  /** `s0-<topic>-<partition>` or `s1-p<partition>`: checkpoint sub-directory, status and lake file names. */
  id: string;
  /** The partitions the task reads (its worker's group membership assigned them). */
  partitions: TopicPartition[];
  /** Group whose committed offsets show the stage's progress (lag in `tributary status`). */
  group: string;
  /** Upstream task: writes its watermark and end-of-input markers for `origin` to every partition of `topic`. */
  markers?: { topic: string; origin: string };
  /** Downstream task: the upstream partitions (`topic/partition`) whose markers it waits for. */
  origins?: string[];
  /** Bounded runs: the run's number (scale.ts), carried by end markers. */
  boundedRun?: number;
  /** Bounded upstream task: end offsets of this run, the same for every worker (by `topic/partition`). */
  boundedEnds?: Record<string, number>;
  /** The task's lease and checkpoints (task-store.ts): local disk or the lake's object storage. */
  store: TaskStore;
}

/**
 * Where a run keeps its checkpoints and sink intent: the job's directory (one process, checkpoint.ts)
 * or a task's store under its lease (task-store.ts, whose writes are fenced).
 */
interface CheckpointIO {
  read(): Promise<{ manifest: CheckpointManifest; state: CheckpointState } | null>;
  write(state: CheckpointState, createdAtMs: number): Promise<CheckpointManifest>;
  readIntent(): Promise<SinkIntent | null>;
  writeIntent(intent: SinkIntent): Promise<void>;
  removeIntent(): Promise<void>;
  /** Throws FENCED when this run may no longer write (a task whose lease lapsed). */
  assertHeld(): void;
  /**
   * A local directory beside the checkpoints for files a checkpoint names (the lake sink's spill
   * file); absent for a task's store, whose state must be readable from any machine.
   */
  readonly stateDir?: string;
}

function directoryIO(dir: string, job: string): CheckpointIO {
  return {
    read: () => readCheckpoint(dir),
    write: (state, createdAtMs) => writeCheckpoint(dir, state, createdAtMs),
    readIntent: () => readSinkIntent(dir, job),
    writeIntent: (intent) => writeSinkIntent(dir, intent),
    removeIntent: () => removeSinkIntent(dir),
    assertHeld: () => undefined,
    stateDir: dir,
  };
}

export interface CheckpointInfo {
  checkpointId: number;
  durationMs: number;
  sizeBytes: number;
  atMs: number;
}

export interface JobStatus {
  job: string;
  /** The task, for one task of a scaled-out job (scale.ts). */
  task?: string;
  state: 'starting' | 'running' | 'finished' | 'stopped' | 'failed';
  bounded: boolean;
  counters: JobCounters;
  watermark: number | null;
  /** Records not yet read, per `topic/partition`. */
  lag: Record<string, number>;
  stateSize: number;
  lastCheckpoint: CheckpointInfo | null;
  error: string | null;
  updatedAtMs: number;
  /** The process running the job; a status file whose process is gone describes a stopped job. */
  pid?: number;
}

export interface JobHandle {
  readonly job: StreamJob;
  readonly task: JobTask;
  /** Resolves when the run ends (bounded: input done and committed; unbounded: stopped). */
  readonly done: Promise<JobStatus>;
  status(): JobStatus;
  /** Graceful stop: finish the current batch, checkpoint, close. */
  stop(): Promise<JobStatus>;
  /** Takes a checkpoint now (between batches). */
  checkpoint(): Promise<CheckpointInfo | null>;
}

const running = new Map<string, JobHandle>();

/** Status of every job started in this process (for `tributary status` and the dashboard). */
export function jobStatus(): JobStatus[] {
  return [...running.values()].map((h) => h.status());
}

const metrics = {
  in: counter('tributary_stream_records_in_total', 'Records read by stream jobs', ['job']),
  out: counter('tributary_stream_records_out_total', 'Outputs written by stream jobs', ['job']),
  filtered: counter('tributary_stream_records_filtered_total', 'Records dropped by filters', ['job']),
  dlq: counter('tributary_stream_records_dlq_total', 'Records sent to a dead-letter topic', ['job']),
  late: counter('tributary_stream_records_late_total', 'Records sent to the late side output', ['job']),
  lag: gauge('tributary_stream_lag_records', 'Records not yet read, per partition', [
    'job',
    'topic',
    'partition',
  ]),
  watermark: gauge('tributary_stream_watermark_ms', 'Event-time watermark of a job', ['job']),
  stateSize: gauge('tributary_stream_state_entries', 'Keyed state entries (window/key pairs, process keys)', [
    'job',
  ]),
  checkpointSeconds: histogram('tributary_stream_checkpoint_seconds', 'Checkpoint duration', ['job']),
  checkpointBytes: gauge('tributary_stream_checkpoint_bytes', 'Size of the last checkpoint state file', [
    'job',
  ]),
};

/** Path of the status file a job (or one task of it) writes at every checkpoint (read by other processes). */
export function jobStatusFile(dataDir: string, job: string, task?: string): string {
  return path.join(
    dataDirPaths(dataDir).jobs,
    'stream',
    `${task === undefined ? job : `${job}~${task}`}.status.json`,
  );
}

/**
 * Last status every stream job wrote under `dataDir` (at its last checkpoint), for `tributary
 * status` in another process. Jobs running in this process report live via `jobStatus()`.
 */
export async function readJobStatusFiles(dataDir: string): Promise<JobStatus[]> {
  const dir = path.join(dataDirPaths(dataDir).jobs, 'stream');
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const out: JobStatus[] = [];
  for (const name of names.filter((n) => n.endsWith('.status.json')).sort()) {
    try {
      out.push(JSON.parse(await readFile(path.join(dir, name), 'utf8')) as JobStatus);
    } catch {
      // replaced atomically, so only a foreign file can be unreadable; skip it
    }
  }
  return out;
}

/** Runs a job to completion (bounded) or until `signal` aborts (unbounded). */
export async function runJob(job: StreamJob, options: RunJobOptions = {}): Promise<JobStatus> {
  return startJob(job, options).done;
}

/** Starts a job and returns a handle at once. */
export function startJob(job: StreamJob, options: RunJobOptions = {}): JobHandle {
  const name = options.task === undefined ? job.name : `${job.name}~${options.task.id}`;
  const state = running.get(name)?.status().state;
  // A task of a scaled-out job may start here while its previous run (another worker of this
  // process) still finishes: the task lease keeps them apart, the newest handle is the one listed.
  if (options.task === undefined && (state === 'running' || state === 'starting')) {
    throw new TributaryError('CONFLICT', `job ${name} is already running in this process`);
  }
  const run = new JobRun(job, options);
  running.set(name, run);
  return run;
}

const tpKey = (topic: string, partition: number) => `${topic}/${partition}`;

class JobRun implements JobHandle {
  readonly job: StreamJob;
  readonly task: JobTask;
  readonly done: Promise<JobStatus>;
  readonly #options: RunJobOptions;
  readonly #clock: Clock;
  readonly #bounded: boolean;
  readonly #log = childLogger('stream', {});
  #state: JobStatus['state'] = 'starting';
  #error: string | null = null;
  #consumer: Consumer | null = null;
  /** Next offset to read per topic/partition (what a checkpoint stores). */
  readonly #offsets = new Map<string, number>();
  readonly #endOffsets = new Map<string, number>();
  #boundedEnds: Map<string, number> | null = null;
  #checkpointId = 0;
  #lastCheckpoint: CheckpointInfo | null = null;
  #stopRequested = false;
  #checkpointRequested: ((info: CheckpointInfo | null) => void)[] = [];
  /** An `INTENT` file is in force (no durable checkpoint yet): delete it after the first one. */
  #intentPending = false;
  /** Side-output (DLQ, late) ids a dead run wrote after the last checkpoint or intent. */
  readonly #sideSeen = new Set<string>();
  #sideDeduplicated = 0;
  readonly #knownTopics = new Set<string>();
  readonly #reported: JobCounters = zeroCounters();

  constructor(job: StreamJob, options: RunJobOptions) {
    this.job = job;
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#bounded = options.once ?? false;
    this.task = new JobTask(job, { clock: this.#clock, bounded: this.#bounded });
    this.#log = childLogger('stream', { job: job.name });
    this.#lineage =
      options.lineage === false
        ? undefined
        : (options.lineage ?? (options.dataDir === undefined ? undefined : lineageFor(options.dataDir)));
    this.done = this.#run().then(
      () => {
        if (this.#state === 'finished' || this.#state === 'stopped')
          this.#emitLineage('COMPLETE', { stopped: this.#state === 'stopped' });
        return this.status();
      },
      (error: unknown) => {
        this.#state = 'failed';
        this.#error = toTributaryError(error).message;
        this.#log.error({ err: error }, 'stream job failed');
        this.#emitLineage('FAIL', {}, this.#error);
        throw error;
      },
    );
  }

  readonly #lineage: LineageEmitter | undefined;
  #lineageRun: LineageRun | undefined;
  #lineageAtMs = -Infinity;

  /**
   * One OpenLineage event of this run (see `RunJobOptions.lineage`). Inputs are the topics read,
   * outputs what the sinks declare; schema facets are resolved off the hot path by the emitter.
   */
  #emitLineage(eventType: LineageEventType, details: Record<string, unknown>, error?: string): void {
    if (this.#lineage === undefined) return;
    if (eventType === 'START')
      this.#lineageRun = this.#lineage.run({
        job: this.job.name,
        processingType: 'STREAMING',
        inputs: this.job.inputTopics.map((name) => `topic:${name}`),
        outputs: this.job.sinks.flatMap(sinkDatasets),
        schemas: lakeAndLogSchemas({ log: this.job.source.log }),
      });
    // COMPLETE / FAIL only follow a START (a run that never started reports nothing).
    if (this.#lineageRun === undefined) return;
    this.#lineageAtMs = this.#clock.now();
    const c = this.task.counters;
    this.#lineageRun.emit(
      eventType,
      {
        bounded: this.#bounded,
        ...(this.#options.task === undefined ? {} : { task: this.#options.task.id }),
        checkpointId: this.#checkpointId,
        recordsIn: c.in,
        outputs: c.outputs,
        dlq: c.dlq,
        late: c.late,
        ...details,
      },
      error,
    );
  }

  status(): JobStatus {
    const lag: Record<string, number> = {};
    for (const [tp, end] of this.#endOffsets) lag[tp] = Math.max(0, end - (this.#offsets.get(tp) ?? 0));
    const wm = this.task.watermark;
    return {
      job: this.job.name,
      ...(this.#options.task === undefined ? {} : { task: this.#options.task.id }),
      state: this.#state,
      bounded: this.#bounded,
      counters: { ...this.task.counters },
      watermark: Number.isFinite(wm) ? wm : null,
      lag,
      stateSize: this.task.stateSize(),
      lastCheckpoint: this.#lastCheckpoint,
      error: this.#error,
      updatedAtMs: this.#clock.now(),
      pid: process.pid,
    };
  }

  async stop(): Promise<JobStatus> {
    this.#stopRequested = true;
    return this.done;
  }

  checkpoint(): Promise<CheckpointInfo | null> {
    return new Promise((resolve) => this.#checkpointRequested.push(resolve));
  }

  async #run(): Promise<void> {
    const job = this.job;
    const task = this.#options.task;
    if (task !== undefined) return this.#runTask(task.store);
    if (this.#options.dataDir === undefined) return this.#runLocked(null);
    const dir = checkpointDir(this.#options.dataDir, job.name);
    await mkdir(dir, { recursive: true });
    const unlock = lockJob(dir, job.name);
    try {
      await this.#runLocked(directoryIO(dir, job.name));
    } finally {
      unlock();
    }
  }

  /**
   * A task of a scaled-out job: waits for its lease, renews it every ttl/4 while running, and
   * releases it at the end (also after a failure, so the next owner need not wait for expiry).
   */
  async #runTask(store: TaskStore): Promise<void> {
    if (!(await store.acquire(() => this.#stopped()))) {
      this.#state = 'stopped';
      return;
    }
    let renewing = false;
    const renewal = setInterval(() => {
      if (renewing) return;
      renewing = true;
      store
        .renew()
        .catch((error: unknown) => this.#log.warn({ err: error }, 'task lease renewal failed'))
        .finally(() => (renewing = false));
    }, store.ttlMs / 4);
    renewal.unref();
    try {
      await this.#runLocked(store);
    } finally {
      clearInterval(renewal);
      await store.release();
    }
  }

  #stopped(): boolean {
    return this.#stopRequested || this.#options.signal?.aborted === true;
  }

  #io: CheckpointIO | null = null;

  async #runLocked(io: CheckpointIO | null): Promise<void> {
    this.#io = io;
    const job = this.job;
    const log = job.source.log;
    for (const side of job.sides) {
      if (side.source.log !== log)
        throw new TributaryError('INVALID_ARGUMENT', `job ${job.name}: every input must read the same log`);
    }
    for (const topic of job.inputTopics) {
      await log.ensureTopic(topic, { partitions: 1 });
      this.#knownTopics.add(topic);
    }

    // Restore.
    const restored = io === null ? null : await io.read();
    if (io?.stateDir !== undefined) {
      // Keyed state is checkpointed incrementally into changelogs beside the checkpoint (a task's
      // store, readable from any machine, keeps it whole in the state file instead).
      const dir = io.stateDir;
      this.#changelogs = this.task.processes.map((_, i) => new KeyedStateChangelog(dir, i));
      for (let i = 0; i < this.#changelogs.length; i++) {
        const snapshot = restored?.state.task.processes[i] ?? null;
        const keys = await this.#changelogs[i].restore(snapshot);
        if (snapshot !== null) restored!.state.task.processes[i] = { keys };
        this.task.processes[i].trackChanges();
      }
    }
    if (restored !== null) {
      this.task.restore(restored.state.task);
      this.#checkpointId = restored.state.checkpointId;
      for (const [tp, offset] of Object.entries(restored.state.offsets)) this.#offsets.set(tp, offset);
      Object.assign(this.#reported, restored.state.task.counters);
      this.#log.info({ checkpointId: this.#checkpointId }, 'restored from checkpoint');
    }
    if (restored !== null && io !== null) await io.removeIntent();
    // No checkpoint: an earlier run may still have written outputs before dying (its INTENT says
    // from where); that intent stays in force until this run's first checkpoint.
    const intent = restored === null && io !== null ? await io.readIntent() : null;
    const sinks = job.sinks;
    const epoch = io === null ? randomBytes(6).toString('hex') : null;
    for (let i = 0; i < sinks.length; i++) {
      await sinks[i].open({
        jobName: job.name,
        sinkIndex: i,
        now: () => this.#clock.now(),
        bounded: this.#bounded,
        restored: restored?.state.sinks[i],
        intent: intent?.sinks[i] ?? undefined,
        epoch,
        log,
        taskId: this.#options.task?.id ?? null,
        stateDir: io?.stateDir ?? null,
      });
    }
    // Side outputs carry deterministic ids too: drop the replay's repeats the same way.
    const sideSince = restored !== null ? restored.state.sideEndOffsets : intent?.sideEndOffsets;
    if (sideSince !== undefined) {
      const existing = new Set(await log.listTopics());
      for (const topic of this.#sideTopics())
        if (existing.has(topic)) await readIdsSince(log, topic, sideSince[topic] ?? {}, this.#sideSeen);
    }
    if (intent !== null) this.#intentPending = true;
    else if (restored === null && io !== null) await this.#recordIntent(io);
    // The last checkpoint's sink commits may not have happened (crash right after the manifest).
    if (restored !== null)
      for (let i = 0; i < sinks.length; i++)
        await sinks[i].commit(this.#checkpointId, restored.state.sinks[i]);

    const task = this.#options.task;
    const consumer =
      task === undefined
        ? log.consumer({ group: `job.${job.name}`, topics: [...job.inputTopics], from: job.source.from })
        : await openAssignedConsumer(log, task.partitions, task.group, job.source.from);
    this.#consumer = consumer;
    if (task?.origins !== undefined) this.task.expectOrigins(task.origins);
    try {
      await this.#refreshEndOffsets();
      if (this.#bounded && task?.origins === undefined) {
        this.#boundedEnds = new Map(
          task?.boundedEnds === undefined ? this.#endOffsets : Object.entries(task.boundedEnds),
        );
      }

      this.#state = 'running';
      this.#emitLineage('START', {});
      this.#seekAssigned();
      await this.#loop(consumer, io);
      if (this.#bounded && !this.#stopRequested) {
        this.task.endOfInput();
        for (const sink of sinks) await sink.endOfInput?.();
        await this.#flushOutputs();
        await this.#writeMarkers(true);
        this.#inputEnded = true;
      }
      await this.#checkpoint(io);
      if (this.#sideDeduplicated > 0)
        this.#log.info({ deduplicated: this.#sideDeduplicated }, 'dropped replayed side outputs');
      this.#state = this.#bounded && !this.#stopRequested ? 'finished' : 'stopped';
      this.#reportMetrics();
    } finally {
      for (const sink of sinks) await sink.close();
      await consumer.close();
      this.#consumer = null;
      for (const resolve of this.#checkpointRequested.splice(0)) resolve(this.#lastCheckpoint);
    }
  }

  /** Stores the sinks' intents durably before this run writes its first output. */
  async #recordIntent(io: CheckpointIO): Promise<void> {
    const states: unknown[] = [];
    for (const sink of this.job.sinks) states.push((await sink.intent?.()) ?? null);
    await io.writeIntent({
      format: 'tributary.stream.sink-intent',
      version: sinkIntentFormatVersion,
      job: this.job.name,
      sinks: states,
      sideEndOffsets: await this.#sideEndOffsets(),
      createdAtMs: this.#clock.now(),
    });
    this.#intentPending = true;
  }

  /** Topics side outputs may go to: `<input>.dlq`, `<job>.dlq`, `<job>.late` (see runtime.ts). */
  #sideTopics(): string[] {
    const name = this.job.name;
    return [...new Set([...this.job.inputTopics.map((t) => `${t}.dlq`), `${name}.dlq`, `${name}.late`])];
  }

  /** End offsets of the side-output topics that exist (a missing one is all newer on restart). */
  async #sideEndOffsets(): Promise<Record<string, Record<string, number>>> {
    const log = this.job.source.log;
    const existing = new Set(await log.listTopics());
    const out: Record<string, Record<string, number>> = {};
    for (const topic of this.#sideTopics()) {
      if (!existing.has(topic)) continue;
      const description = await log.describeTopic(topic);
      out[topic] = Object.fromEntries(description.partitions.map((p) => [String(p.partition), p.endOffset]));
    }
    return out;
  }

  #assigned: string = '';

  /** Seeks newly assigned partitions to their checkpointed offsets. */
  #seekAssigned(): void {
    const consumer = this.#consumer!;
    const assignment = consumer.assignment();
    const signature = assignment.map((tp) => tpKey(tp.topic, tp.partition)).join(',');
    if (signature === this.#assigned) return;
    this.#assigned = signature;
    const shuffled = this.#options.task?.origins !== undefined;
    for (const tp of assignment) {
      const key = tpKey(tp.topic, tp.partition);
      const offset = this.#offsets.get(key);
      if (offset !== undefined) consumer.seek(tp, offset);
      // A shuffled task's event time is per upstream partition (origins), not per own partition.
      if (!shuffled) this.task.partitionClock(tp.topic, tp.partition);
    }
  }

  async #loop(consumer: Consumer, io: CheckpointIO | null): Promise<void> {
    const tickMs = this.#options.tickMs ?? 100;
    const windowsEarly = this.job.stages.flatMap((s) =>
      s.kind === 'window' && s.options.earlyEveryMs !== undefined ? [s.options.earlyEveryMs] : [],
    );
    const earlyEveryMs =
      this.#options.earlyEveryMs ?? (windowsEarly.length > 0 ? Math.min(...windowsEarly) : Infinity);
    const maxRecords = this.#options.pollMaxRecords ?? 5_000;
    let nextTickMs = this.#clock.now() + tickMs;
    let nextEarlyMs = this.#clock.now() + earlyEveryMs;
    let nextCheckpointMs = this.#clock.now() + this.job.checkpointIntervalMs;
    const signal = this.#options.signal;
    for (;;) {
      if (this.#stopRequested || signal?.aborted) {
        this.#stopRequested = true;
        return;
      }
      this.#seekAssigned();
      if (this.#bounded && this.#boundedDone(consumer)) return;
      // A bounded shuffled task waits for upstream tasks still writing: a long poll, not a spin.
      const waitMs = this.#bounded
        ? consumer.assignment().length === 0 || this.#options.task?.origins !== undefined
          ? 100
          : 0
        : Math.max(0, Math.min(tickMs, nextEarlyMs - this.#clock.now()));
      // No abort signal on the poll: waits are at most one tick, and a stop must still checkpoint.
      let records = await consumer.poll({ maxRecords, waitMs });
      if (this.#boundedEnds !== null) records = this.#clipToBoundedEnds(consumer, records);
      if (records.length > 0) {
        await this.task.processRecords(records);
        // Records come in runs per partition, offsets ascending: the last of a run is its highest.
        let runTopic = '';
        let runPartition = -1;
        for (let i = records.length - 1; i >= 0; i--) {
          const r = records[i];
          if (r.partition === runPartition && r.topic === runTopic) continue;
          runTopic = r.topic;
          runPartition = r.partition;
          const key = tpKey(r.topic, r.partition);
          const seen = this.#offsets.get(key);
          if (seen === undefined || seen < r.offset + 1) this.#offsets.set(key, r.offset + 1);
        }
      }
      await this.#flushOutputs();
      if (records.length > 0) await this.#writeMarkers(false);
      if (this.#options.onBatch !== undefined && records.length > 0) await this.#options.onBatch(this);

      const now = this.#clock.now();
      if (!this.#bounded) {
        if (now >= nextEarlyMs) {
          nextEarlyMs = now + earlyEveryMs;
          this.task.emitEarly();
          await this.#flushOutputs();
        }
        if (now >= nextTickMs) {
          nextTickMs = now + tickMs;
          await this.#refreshEndOffsets();
          const caughtUp = (id: string) => (this.#offsets.get(id) ?? 0) >= (this.#endOffsets.get(id) ?? 0);
          // A shuffled task's clocks are upstream partitions: idle only when its own input is read.
          const ownCaughtUp = () => [...this.#endOffsets.keys()].every(caughtUp);
          this.task.tracker.tick(now, this.#options.task?.origins === undefined ? caughtUp : ownCaughtUp);
          this.task.applyWatermark();
          for (const sink of this.job.sinks) await sink.tick?.(now);
          await this.#flushOutputs();
          await this.#writeMarkers(false);
          this.#reportMetrics();
        }
      }
      if (now >= nextCheckpointMs || this.#checkpointRequested.length > 0) {
        nextCheckpointMs = now + this.job.checkpointIntervalMs;
        await this.#checkpoint(io);
        if (this.#clock.now() - this.#lineageAtMs >= limits.lineageRunningIntervalMs)
          this.#emitLineage('RUNNING', {});
      }
    }
  }

  /** Per process step, where its keyed state is checkpointed; null without a checkpoint directory. */
  #changelogs: KeyedStateChangelog[] | null = null;

  #emptyAssignmentPolls = 0;

  /** Bounded: partitions that reached their start-time end offset are finished. */
  #boundedDone(consumer: Consumer): boolean {
    const task = this.#options.task;
    if (task?.origins !== undefined) {
      // Downstream of a shuffle the input ends when every upstream partition said so (its end
      // marker follows all its records in every repartition partition).
      const run = task.boundedRun ?? 0;
      return task.origins.every((origin) => this.task.endedOrigins.get(origin) === run);
    }
    const ends = this.#boundedEnds!;
    // A backend that assigns partitions asynchronously (leases) gets a few polls to do so.
    if (consumer.assignment().length === 0 && this.#emptyAssignmentPolls++ < 50) return false;
    let all = true;
    const finished: TopicPartition[] = [];
    for (const tp of consumer.assignment()) {
      const key = tpKey(tp.topic, tp.partition);
      const end = ends.get(key) ?? 0;
      const position = this.#offsets.get(key) ?? this.#startOffset(consumer, tp);
      if (position >= end) {
        finished.push(tp);
        const part = this.task.partitionClock(tp.topic, tp.partition);
        if (!part.finished) {
          part.finished = true;
          this.task.tracker.recompute();
          this.task.applyWatermark();
        }
      } else {
        all = false;
      }
    }
    if (finished.length > 0) consumer.pause(finished);
    return all;
  }

  #startOffset(consumer: Consumer, tp: TopicPartition): number {
    try {
      return consumer.position(tp);
    } catch {
      // Timestamp start positions resolve on the first poll.
      return -1;
    }
  }

  #clipToBoundedEnds(consumer: Consumer, records: LogRecord[]): LogRecord[] {
    const ends = this.#boundedEnds!;
    // Nothing to clip when the last record of every partition's run is inside its end.
    let inside = true;
    for (let i = 0; i < records.length && inside; i++) {
      const r = records[i];
      const next = records[i + 1];
      if (next !== undefined && next.partition === r.partition && next.topic === r.topic) continue;
      inside = r.offset < (ends.get(tpKey(r.topic, r.partition)) ?? 0);
    }
    if (inside) return records;
    const clipped = new Set<string>();
    const out = records.filter((r) => {
      const end = ends.get(tpKey(r.topic, r.partition)) ?? 0;
      if (r.offset < end) return true;
      clipped.add(tpKey(r.topic, r.partition));
      return false;
    });
    if (clipped.size > 0) {
      for (const key of clipped) {
        const slash = key.lastIndexOf('/');
        const tp = { topic: key.slice(0, slash), partition: Number(key.slice(slash + 1)) };
        consumer.seek(tp, ends.get(key)!);
      }
    }
    return out;
  }

  #markedWatermark = -Infinity;
  /** Bounded run: the input ended and everything fired (what the final checkpoint records). */
  #inputEnded = false;

  /**
   * Upstream task of a scaled-out job: tells every partition of the repartition topic how far its
   * event time got (after a batch or tick, when it moved) or, at the end of a bounded run, that its
   * input ended. Written after the batch's records, so a downstream task reads them first.
   */
  async #writeMarkers(end: boolean): Promise<void> {
    const markers = this.#options.task?.markers;
    if (markers === undefined) return;
    const wm = this.task.watermark;
    if (!end && !(wm > this.#markedWatermark && Number.isFinite(wm))) return;
    const headers: Record<string, string> = end
      ? {
          [shuffleHeaders.origin]: markers.origin,
          [shuffleHeaders.end]: String(this.#options.task?.boundedRun ?? 0),
        }
      : { [shuffleHeaders.origin]: markers.origin, [shuffleHeaders.watermark]: String(wm) };
    if (!end) this.#markedWatermark = wm;
    const { partitions } = await this.job.source.log.describeTopic(markers.topic);
    await this.job.source.log.append(
      partitions.map((p) => ({
        topic: markers.topic,
        partition: p.partition,
        value: null,
        headers,
        timestamp: 0,
      })),
    );
  }

  async #refreshEndOffsets(): Promise<void> {
    for (const topic of this.job.inputTopics) {
      const description = await this.job.source.log.describeTopic(topic);
      for (const p of description.partitions) this.#endOffsets.set(tpKey(topic, p.partition), p.endOffset);
    }
  }

  async #flushOutputs(): Promise<void> {
    // A task whose lease lapsed (its worker hung past the TTL) writes nothing more: another
    // worker may run it now.
    this.#io?.assertHeld();
    const side = this.task.takeSideOutputs();
    if (side.length > 0) await this.#appendSide(side);
    for (const sink of this.job.sinks) await sink.flush();
  }

  async #appendSide(all: ProducerRecord[]): Promise<void> {
    const log = this.job.source.log;
    const seen = this.#sideSeen;
    const records =
      seen.size === 0
        ? all
        : all.filter((record) => {
            const id = record.headers?.[dlqHeaders.id];
            if (typeof id !== 'string' || !seen.has(id)) return true;
            this.#sideDeduplicated++;
            return false;
          });
    if (records.length === 0) return;
    for (const record of records) {
      if (!this.#knownTopics.has(record.topic)) {
        await log.ensureTopic(record.topic, { partitions: 1 });
        this.#knownTopics.add(record.topic);
      }
    }
    await log.append(records);
  }

  /**
   * Takes a checkpoint; with `dir` null (no data dir) an in-memory one: nothing is stored, but the
   * sinks go through preCommit and commit all the same, so lake files become visible.
   */
  async #checkpoint(io: CheckpointIO | null): Promise<void> {
    const startMs = performance.now();
    io?.assertHeld();
    await this.#flushOutputs();
    const sinks: Sink<unknown>[] = [...this.job.sinks];
    const sinkStates: unknown[] = [];
    for (const sink of sinks) sinkStates.push(await sink.preCommit(this.#checkpointId + 1));
    const id = this.#checkpointId + 1;
    if (io === null) {
      this.#checkpointId = id;
      for (let i = 0; i < sinks.length; i++) await sinks[i].commit(id, sinkStates[i]);
      const durationMs = performance.now() - startMs;
      this.#lastCheckpoint = { checkpointId: id, durationMs, sizeBytes: 0, atMs: this.#clock.now() };
      for (const resolve of this.#checkpointRequested.splice(0)) resolve(this.#lastCheckpoint);
      return;
    }
    const changelogs: (ChangelogRef | null)[] = [];
    for (let i = 0; i < (this.#changelogs?.length ?? 0); i++)
      changelogs.push(await this.#changelogs![i].write(this.task.processes[i]));
    const state: CheckpointState = {
      format: 'tributary.stream.state',
      version: 1,
      job: this.job.name,
      checkpointId: id,
      offsets: Object.fromEntries(this.#offsets),
      task: this.task.snapshot(changelogs),
      sinks: sinkStates,
      sideEndOffsets: await this.#sideEndOffsets(),
      ...(this.#options.task?.boundedRun === undefined
        ? {}
        : { bounded: { run: this.#options.task.boundedRun, finished: this.#inputEnded } }),
    };
    const manifest = await io.write(state, this.#clock.now());
    this.#checkpointId = id;
    if (this.#intentPending) {
      // The manifest now says where the topic sink's outputs start; the intent is superseded.
      await io.removeIntent();
      this.#intentPending = false;
    }
    // Changelog generations the checkpoint does not name are garbage now.
    for (let i = 0; i < changelogs.length; i++) await this.#changelogs![i].collect(changelogs[i]);
    // Second phase: the checkpoint is durable, sinks may make their pre-committed output visible.
    for (let i = 0; i < sinks.length; i++) await sinks[i].commit(id, sinkStates[i]);
    // Committed group offsets are informational (lag in `tributary status`); the checkpoint is the truth.
    const committed = [...this.#offsets].map(([key, offset]) => {
      const slash = key.lastIndexOf('/');
      return { topic: key.slice(0, slash), partition: Number(key.slice(slash + 1)), offset };
    });
    if (committed.length > 0)
      await this.job.source.log.commitOffsets(this.#options.task?.group ?? `job.${this.job.name}`, committed);
    const durationMs = performance.now() - startMs;
    this.#lastCheckpoint = {
      checkpointId: id,
      durationMs,
      sizeBytes: manifest.stateBytes,
      atMs: this.#clock.now(),
    };
    metrics.checkpointSeconds.observe({ job: this.job.name }, durationMs / 1000);
    metrics.checkpointBytes.set({ job: this.job.name }, manifest.stateBytes);
    if (this.#options.dataDir !== undefined) {
      await writeFileAtomic(
        jobStatusFile(this.#options.dataDir, this.job.name, this.#options.task?.id),
        `${JSON.stringify(this.status())}\n`,
      );
    }
    for (const resolve of this.#checkpointRequested.splice(0)) resolve(this.#lastCheckpoint);
  }

  #reportMetrics(): void {
    const c = this.task.counters;
    const r = this.#reported;
    const labels = { job: this.job.name };
    metrics.in.inc(labels, c.in - r.in);
    metrics.out.inc(labels, c.outputs - r.outputs);
    metrics.filtered.inc(labels, c.filtered - r.filtered);
    metrics.dlq.inc(labels, c.dlq - r.dlq);
    metrics.late.inc(labels, c.late - r.late);
    Object.assign(r, c);
    const wm = this.task.watermark;
    if (Number.isFinite(wm)) metrics.watermark.set(labels, wm);
    metrics.stateSize.set(labels, this.task.stateSize());
    for (const [tp, end] of this.#endOffsets) {
      const slash = tp.lastIndexOf('/');
      metrics.lag.set(
        { job: this.job.name, topic: tp.slice(0, slash), partition: tp.slice(slash + 1) },
        Math.max(0, end - (this.#offsets.get(tp) ?? 0)),
      );
    }
  }
}

/**
 * Forgets a job's progress: deletes its checkpoints and moves its group offsets back to the job's
 * `from` position, so the next run starts over with empty state.
 */
export async function resetJob(job: StreamJob, dataDir: string): Promise<void> {
  if (running.get(job.name)?.status().state === 'running') {
    throw new TributaryError('CONFLICT', `job ${job.name} is running; stop it before resetting it`);
  }
  await resetCheckpoints(dataDir, job.name);
  for (const topic of job.inputTopics)
    await job.source.log.resetOffsets(`job.${job.name}`, topic, job.source.from);
}
