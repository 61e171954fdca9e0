/**
 * Shared types of the stream engine: keys, record metadata, window results and the sink contract.
 *
 * Records flow through a job's operators as `(value, timestampMs, key)` triples; everything else a
 * step may want to know about the record (source topic/partition/offset) is in one mutable
 * `RecordContext` the task reuses for every record, so the hot path allocates nothing per event.
 */
import type { Log, LogRecord } from '../log/index.js';

/** Keys are strings or numbers; integer keys are the fastest (V8 hashes small integers cheaply). */
export type Key = string | number;

/** Read-only view of the record being processed, handed to user functions as their second argument. */
export interface RecordMeta {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  /** Event time of the record as assigned by the source's timestamp extractor. */
  readonly timestamp: number;
}

/** Outcome bits a terminal operator sets on the current input record (for the reconciliation counters). */
export const outcomeAccepted = 1;
export const outcomeLate = 2;
/** The record waits in front of an async stage; its disposition is settled when the stage finishes. */
export const outcomeParked = 4;

/** The task's per-record scratch object (one per task, reused). */
export class RecordContext implements RecordMeta {
  topic = '';
  partition = -1;
  offset = -1;
  timestamp = 0;
  /** The source record, for DLQ and late side output (null for records not read from a log). */
  raw: LogRecord | null = null;
  /** Bitwise OR of outcome* flags set downstream while this input record is processed. */
  outcome = 0;
  /** Stable identity of what is being emitted: source position, or window + key for window results. */
  outId = '';
  /** Number of outputs emitted for `outId` so far (flatMap fan-out gets distinct ids). */
  fanout = 0;

  /** Identity of the current output: `outId` when set (window results), else the source position. */
  sourceId(): string {
    return this.outId !== '' ? this.outId : `${this.topic}/${this.partition}/${this.offset}`;
  }
}

/** Where a window result came from. `early`: periodic update before the window closed; `final`: on
 * watermark; `update`: a late record within the allowed lateness changed an already final window. */
export type WindowEmitKind = 'early' | 'final' | 'update';

export interface WindowResult<R> {
  key: Key;
  windowStart: number;
  windowEnd: number;
  value: R;
  /** Records aggregated into this window so far. */
  count: number;
  kind: WindowEmitKind;
}

/** What sinks and operators may use from the running task. */
export interface SinkContext {
  readonly jobName: string;
  /** Index of the sink within the job (stable across restarts; part of output ids). */
  readonly sinkIndex: number;
  /** Monotonic-ish wall clock, injectable. */
  now(): number;
  /** True for bounded (`--once`) runs: no wall-clock driven behaviour. */
  readonly bounded: boolean;
  /** The sink's state from the last completed checkpoint (undefined on a fresh start). */
  readonly restored: unknown;
  /**
   * What the sink's `intent()` returned in an earlier run of this job that wrote outputs and then
   * died before its first checkpoint (undefined otherwise, and always when `restored` is set).
   */
  readonly intent: unknown;
  /**
   * Null when the job keeps durable checkpoints (names derived from checkpoint ids must then be
   * the same across restarts). Without a data dir every run starts from nothing, so this is a
   * random id unique to the run, to keep two runs' file names and commit ids apart.
   */
  readonly epoch: string | null;
  /** The job's source log (the default destination of topic sinks). */
  readonly log: Log | null;
  /**
   * The task this sink instance serves when the job runs scaled out (`runWorker`, scale.ts), e.g.
   * `s1-p2`; null when one process runs the whole job. Part of lake file names and commit ids, so
   * tasks writing the same table never collide.
   */
  readonly taskId?: string | null;
  /**
   * The job's (or task's) checkpoint directory, where a sink may keep files its checkpoint state
   * names (the lake sink's spill file); null without a data dir.
   */
  readonly stateDir?: string | null;
}

/**
 * A sink takes part in checkpoints like a two-phase-commit participant:
 * `write` buffers synchronously; `flush` (after each input batch) may make outputs visible when the
 * sink can deduplicate replays itself; `preCommit` returns the state to store in the checkpoint
 * (e.g. staged files); `commit` runs once the checkpoint manifest is durable (and again on restart
 * for the last checkpoint's state, so it must be idempotent).
 */
export interface Sink<T> {
  readonly name: string;
  /**
   * Datasets the sink writes, for lineage (`gold.x` a table, `topic:x` a topic; see
   * src/stream/lineage/event.ts). Default: the name itself when it is `topic:<t>` or
   * `lake:<layer>.<table>` (the built-in sinks), else none.
   */
  readonly datasets?: readonly string[];
  open(context: SinkContext): Promise<void>;
  /** `id` is deterministic for the output (same input, same job → same id), for deduplication. */
  write(value: T, timestampMs: number, key: Key | null, id: string): void;
  /**
   * False for a sink whose `write` never reads `id` (the lake sink: replays are recognised by
   * deterministic file names and commit ids). When no sink of a job reads ids the engine does not
   * compute them (a SHA-256 per output) and passes ''. Default true.
   */
  readonly usesIds?: boolean;
  flush(): Promise<void>;
  preCommit(checkpointId: number): Promise<unknown>;
  commit(checkpointId: number, state: unknown): Promise<void>;
  /**
   * Called once, before the first output, by a run whose job has no checkpoint yet; the runner
   * stores the result durably (see checkpoint.ts, `INTENT`) before anything is written, and hands it
   * back as `context.intent` if the run dies before its first checkpoint. The topic sink records
   * its topic's end offsets, so a restart can find what the dead run already wrote.
   */
  intent?(): Promise<unknown>;
  /** Periodic hook (timer tick) for time-based rolling; `bounded` runs never call it. */
  tick?(nowMs: number): Promise<void>;
  /** Input ended (bounded run): write out everything buffered, it will be committed right after. */
  endOfInput?(): Promise<void>;
  close(): Promise<void>;
  /**
   * A fresh, unopened sink with the same configuration. A scaled-out job (scale.ts) runs one task
   * per partition, and every task needs sinks of its own (buffers, staged files, dedup ids).
   */
  forTask?(): Sink<T>;
}

/** A lookup table for stream–table joins: a `Map`, or anything with `get`. */
export interface TableLookup<K, R> {
  get(key: K): R | undefined;
}
