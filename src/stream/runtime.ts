/**
 * A compiled job (`JobTask`): the operator chain, its keyed state, watermarks, counters and side
 * outputs (DLQ, late). It does no I/O of its own — the runner (runner.ts) feeds it record batches
 * from the log and writes what it produced — so tests and benchmarks can drive it directly.
 *
 * Counting: every input record gets exactly one disposition, so
 *   in = accepted + filtered + dlq + late
 * `accepted` means the record reached a window, a `process` step or a sink (once, however many
 * outputs a flatMap made of it); `filtered` means a filter / inner join / empty flatMap dropped it;
 * `dlq` wins over everything (a record that fails part-way goes to the DLQ; outputs it produced
 * before failing stay); `late` means every window it belonged to was past its allowed lateness.
 */
import { hash } from 'node:crypto';
import {
  runBounded,
  TributaryError,
  toTributaryError,
  type Clock,
  type ErrorCode,
  type Settled,
} from '../core/index.js';
import { AvroSerde, type LogRecord, type ProducerRecord } from '../log/index.js';
import type { Decoder, SourceDefinition, Stage, StreamJob } from './job.js';
import {
  AsyncCollectOperator,
  FilterOperator,
  FlatMapOperator,
  JoinTableOperator,
  KeyByOperator,
  MapOperator,
  noKey,
  SinkOperator,
  TimestampOperator,
  type Operator,
  type ParkedRecord,
} from './operators.js';
import { ProcessOperator, type KeyedStateSnapshot } from './state.js';
import type { ChangelogRef } from './state-changelog.js';
import { outcomeAccepted, outcomeLate, outcomeParked, RecordContext, type Key } from './types.js';
import { WatermarkTracker, type PartitionClock } from './watermark.js';
import { createWindowOperator, type WindowOperator, type WindowStateSnapshot } from './windows.js';

export interface JobCounters {
  in: number;
  accepted: number;
  filtered: number;
  dlq: number;
  late: number;
  /** Records handed to the sinks (window results, mapped records...). */
  outputs: number;
  /** Window results that failed in a later step (sent to `<job>.dlq`; not input records). */
  failedOutputs: number;
}

/** Counters of a task or run that has seen nothing yet. */
export function zeroCounters(): JobCounters {
  return { in: 0, accepted: 0, filtered: 0, dlq: 0, late: 0, outputs: 0, failedOutputs: 0 };
}

export interface TaskSnapshot {
  watermark: { parts: [string, number][]; current: number };
  windows: WindowStateSnapshot[];
  processes: KeyedStateSnapshot[];
  counters: JobCounters;
  /** Shuffled tasks: origins whose end marker was read, with its bounded run number. */
  endedOrigins?: [string, number][];
}

/**
 * Headers of the records a scaled-out job's upstream tasks write to its repartition topic
 * (scale.ts): every record names its origin (`<topic>/<partition>` upstream); a marker record has
 * no value and carries the origin's watermark (epoch ms, decimal) or the end of its input in a
 * bounded run (the run's number, decimal).
 */
export const shuffleHeaders = {
  origin: 'tributary-origin',
  watermark: 'tributary-watermark',
  end: 'tributary-end',
} as const;

/** Header names on DLQ and late records (stable; dashboards and replays read them). */
export const dlqHeaders = {
  code: 'tributary-error-code',
  message: 'tributary-error-message',
  job: 'tributary-job',
  topic: 'tributary-source-topic',
  partition: 'tributary-source-partition',
  offset: 'tributary-source-offset',
  timestamp: 'tributary-source-timestamp',
  failedAt: 'tributary-failed-at',
  lateReason: 'tributary-late-reason',
  id: 'tributary-id',
} as const;

interface SourceRuntime {
  source: SourceDefinition;
  decode: (record: LogRecord) => unknown;
  /** Async work before a batch is decoded synchronously (Avro: fetch the schemas it names). */
  prepare: ((records: readonly LogRecord[]) => Promise<void>) | null;
  head: Operator;
}

interface AsyncStage {
  collector: AsyncCollectOperator;
  /** Runs the stage over the records parked in one batch: one outcome per record, in order. */
  run: (parked: readonly ParkedRecord[]) => Promise<Settled<unknown>[]>;
  next: Operator;
}

/** A fresh context holding a parked record's metadata, for an async call that outlives the batch loop. */
function metaOf(item: ParkedRecord): RecordContext {
  const meta = new RecordContext();
  restore(meta, item);
  return meta;
}

/** One `fn(value, meta)` call per parked record, `concurrency` at a time. */
function perRecord(
  fn: (value: unknown, meta: RecordContext) => Promise<unknown>,
  concurrency: number,
): AsyncStage['run'] {
  return (parked) => runBounded(parked, concurrency, (item) => fn(item.value, metaOf(item)));
}

/**
 * One `fn(values, metas)` call per `batchSizeMax` parked records, `concurrency` calls at a time; a
 * call that fails (or answers the wrong number of results) fails each record of its batch, and an
 * Error in its answer fails that answer's record alone.
 */
function perBatch(
  fn: (values: unknown[], metas: RecordContext[]) => Promise<unknown[]>,
  batchSizeMax: number,
  concurrency: number,
): AsyncStage['run'] {
  return async (parked) => {
    const batches: (readonly ParkedRecord[])[] = [];
    for (let at = 0; at < parked.length; at += batchSizeMax)
      batches.push(parked.slice(at, at + batchSizeMax));
    const answers = await runBounded(batches, concurrency, async (batch) => {
      const results = await fn(
        batch.map((item) => item.value),
        batch.map(metaOf),
      );
      if (!Array.isArray(results) || results.length !== batch.length) {
        throw new TributaryError(
          'INTERNAL',
          `mapBatchAsync function answered ${Array.isArray(results) ? `${results.length} results` : typeof results} for a batch of ${batch.length}`,
        );
      }
      return results;
    });
    const settled: Settled<unknown>[] = [];
    answers.forEach((answer, b) => {
      for (let i = 0; i < batches[b].length; i++) {
        if (!answer.ok) settled.push({ ok: false, error: answer.error });
        else {
          const value = answer.value[i];
          settled.push(value instanceof Error ? { ok: false, error: value } : { ok: true, value });
        }
      }
    });
    return settled;
  };
}

const textDecoder = new TextDecoder();

/**
 * Buffer's own UTF-8 decoder (what `Buffer#toString()` runs), which accepts any Uint8Array. For the
 * short values records usually hold it costs less than `TextDecoder#decode`, whose argument checks
 * are a large part of decoding 50 bytes. Invalid sequences become U+FFFD in both. It is not in
 * Node's typed API, so a runtime without it falls back to TextDecoder.
 */
const utf8Slice = (Buffer.prototype as unknown as { utf8Slice?: (start: number, end: number) => string })
  .utf8Slice;

function utf8(bytes: Uint8Array): string {
  // TextDecoder drops a leading byte order mark (EF BB BF); utf8Slice would keep it.
  if (utf8Slice === undefined || bytes[0] === 0xef) return textDecoder.decode(bytes);
  return utf8Slice.call(bytes, 0, bytes.length);
}

/**
 * Avro sources decode record by record like the others; the schema lookups (the only async part,
 * one per schema id for the life of the task) happen in `prepare`, once per batch.
 */
function avroDecoder(source: SourceDefinition): Pick<SourceRuntime, 'decode' | 'prepare'> {
  const { registry, subject } = source.avro!;
  const reader = new AvroSerde(registry).reader(subject === undefined ? {} : { subject });
  return {
    decode: (record) => {
      if (record.value === null)
        throw new TributaryError('DECODE_FAILED', 'record has no value (null), expected Avro');
      return reader.decode(record.value);
    },
    prepare: (records) => reader.prepare(records.map((r) => r.value)),
  };
}

function sourceDecoder(source: SourceDefinition): Pick<SourceRuntime, 'decode' | 'prepare'> {
  if (source.decode === 'avro') return avroDecoder(source);
  return { decode: decoderFor(source.decode), prepare: null };
}

function decoderFor(decode: Exclude<Decoder<unknown>, 'avro'>): (record: LogRecord) => unknown {
  if (typeof decode === 'function') return decode;
  if (decode === 'bytes') return (record) => record.value;
  if (decode === 'string') return (record) => (record.value === null ? null : utf8(record.value));
  return (record) => {
    if (record.value === null)
      throw new TributaryError('DECODE_FAILED', 'record has no value (null), expected JSON');
    try {
      return JSON.parse(utf8(record.value)) as unknown;
    } catch (error) {
      throw new TributaryError('DECODE_FAILED', `value is not JSON: ${(error as Error).message}`, {
        cause: error,
      });
    }
  };
}

/**
 * Deterministic output id: same job, sink position and output identity → same id across runs.
 * One-shot `hash` (the same digest as `createHash`): it runs for every output, and skipping the
 * Hash object halves its cost.
 */
export function outputId(jobName: string, outId: string, fanout: number): string {
  return hash('sha256', `${jobName}\u0000${outId}\u0000${fanout}`, 'base64url').slice(0, 22);
}

export interface TaskOptions {
  clock: Clock;
  /** Bounded runs never look at the wall clock for idleness or early firing. */
  bounded: boolean;
}

export class JobTask {
  readonly job: StreamJob;
  readonly ctx = new RecordContext();
  readonly counters: JobCounters = zeroCounters();
  readonly tracker: WatermarkTracker;
  readonly windows: WindowOperator[] = [];
  readonly processes: ProcessOperator[] = [];
  /** DLQ and late records waiting to be appended by the runner. */
  sideOutputs: ProducerRecord[] = [];
  readonly #head: Operator;
  readonly #asyncStages: AsyncStage[] = [];
  readonly #clock: Clock;
  readonly #bounded: boolean;
  /** Pending dispositions of input records parked in front of an async stage, by source position. */
  readonly #parkedOutcomes = new Map<string, number>();

  constructor(job: StreamJob, options: TaskOptions) {
    this.job = job;
    this.#clock = options.clock;
    this.#bounded = options.bounded;
    const sources = [job.source, ...job.sides.map((side) => side.source)];
    this.tracker = new WatermarkTracker(
      Math.max(...sources.map((s) => s.outOfOrdernessMs)),
      Math.min(...sources.map((s) => s.idleTimeoutMs)),
    );
    const ctx = this.ctx;
    const sinkOp = new SinkOperator(
      job.sinks,
      ctx,
      (id, fanout) => outputId(job.name, id, fanout),
      this.counters,
    );
    const mainOps: Operator[] = [];
    const mainAsync: AsyncStage[] = [];
    this.#head = this.#buildChain(job.stages, sinkOp, mainOps, mainAsync);
    this.#sources.set(job.source.topics, {
      source: job.source,
      ...sourceDecoder(job.source),
      head: this.#head,
    });
    const sideAsync: AsyncStage[] = [];
    for (const side of job.sides) {
      const into = mainOps[side.intoStage];
      if (into === undefined)
        throw new TributaryError(
          'INTERNAL',
          `job ${job.name}: side input joins at missing stage ${side.intoStage}`,
        );
      const head = this.#buildChain(side.stages, into, [], sideAsync);
      this.#sources.set(side.source.topics, {
        source: side.source,
        ...sourceDecoder(side.source),
        head,
      });
    }
    // Side inputs' async steps come before the join, so they run first.
    this.#asyncStages.push(...sideAsync, ...mainAsync);
    for (const runtime of this.#sources.values()) if (runtime.prepare !== null) this.#prepares.push(runtime);
  }

  /** Sources with async preparation (Avro); usually none. */
  readonly #prepares: SourceRuntime[] = [];

  /** Sources by their topic lists; `#sourceFor` maps a record's topic to its source runtime. */
  readonly #sources = new Map<readonly string[], SourceRuntime>();
  #lastTopic = '';
  #lastSource: SourceRuntime | null = null;

  #sourceFor(topic: string): SourceRuntime {
    if (topic === this.#lastTopic && this.#lastSource !== null) return this.#lastSource;
    for (const [topics, runtime] of this.#sources) {
      if (topics.includes(topic)) {
        this.#lastTopic = topic;
        this.#lastSource = runtime;
        return runtime;
      }
    }
    throw new TributaryError(
      'INTERNAL',
      `job ${this.job.name} got a record of topic ${topic} it does not read`,
    );
  }

  /** Builds `stages` back to front ending in `tail`; returns the head. `ops[i]` is stage i's operator. */
  #buildChain(
    stages: readonly Stage[],
    tail: Operator,
    ops: Operator[],
    asyncStages: AsyncStage[],
  ): Operator {
    const ctx = this.ctx;
    const job = this.job;
    let next: Operator = tail;
    for (let i = stages.length - 1; i >= 0; i--) {
      const stage = stages[i];
      let op: Operator;
      switch (stage.kind) {
        case 'map':
          op = new MapOperator(stage.fn, ctx);
          break;
        case 'filter':
          op = new FilterOperator(stage.fn, ctx);
          break;
        case 'flatMap':
          op = new FlatMapOperator(stage.fn, ctx);
          break;
        case 'keyBy':
          op = new KeyByOperator(stage.fn, job.name);
          break;
        case 'timestamp':
          op = new TimestampOperator(stage.fn);
          break;
        case 'joinTable':
          op = new JoinTableOperator(stage.table, stage.join, stage.inner);
          break;
        case 'process': {
          const p = new ProcessOperator(stage.fn, stage.options, ctx);
          this.processes.unshift(p);
          op = p;
          break;
        }
        case 'window': {
          const w = createWindowOperator(stage.spec, stage.agg, stage.options, ctx, job.name);
          w.lateHandler = (value, ts, key, reason) => this.#lateRecord(value, ts, key, reason);
          w.errorHandler = (error, description) => this.#failedOutput(error, description);
          this.windows.unshift(w);
          op = w;
          break;
        }
        case 'mapAsync': {
          const collector = new AsyncCollectOperator(ctx);
          asyncStages.unshift({ collector, run: perRecord(stage.fn, stage.concurrency), next });
          op = collector;
          break;
        }
        case 'mapBatchAsync': {
          const collector = new AsyncCollectOperator(ctx);
          asyncStages.unshift({
            collector,
            run: perBatch(stage.fn, stage.batchSizeMax, stage.concurrency),
            next,
          });
          op = collector;
          break;
        }
      }
      op.next = next;
      ops[i] = op;
      next = op;
    }
    return next;
  }

  /** Current watermark of the task (event time up to which windows have fired). */
  get watermark(): number {
    return this.tracker.current;
  }

  /** Partition clock for `topic/partition` (created on first use). */
  partitionClock(topic: string, partition: number): PartitionClock {
    return this.tracker.partition(`${topic}/${partition}`, this.#clock.now());
  }

  /**
   * Processes a batch of log records (any mix of partitions, offset order per partition), running
   * async stages to completion before returning.
   */
  async processRecords(records: readonly LogRecord[]): Promise<void> {
    if (this.job.source.shuffled === true) return this.#processShuffled(records);
    for (const runtime of this.#prepares) {
      const topics = runtime.source.topics;
      await runtime.prepare!(
        this.#sources.size === 1 ? records : records.filter((r) => topics.includes(r.topic)),
      );
    }
    const nowMs = this.#clock.now();
    const async = this.#asyncStages.length > 0;
    let part: PartitionClock | null = null;
    let src = this.#sourceFor(records[0]?.topic ?? this.job.source.topics[0]);
    for (let i = 0; i < records.length; i++) {
      const record = records[i];
      if (part === null || record.partition !== this.ctx.partition || record.topic !== this.ctx.topic) {
        part = this.partitionClock(record.topic, record.partition);
        src = this.#sourceFor(record.topic);
      }
      this.#processOne(record, part, src, nowMs, async);
    }
    if (async) {
      await this.#runAsyncStages();
      this.applyWatermark();
    }
  }

  #processOne(
    record: LogRecord,
    part: PartitionClock,
    src: SourceRuntime,
    nowMs: number,
    async: boolean,
  ): void {
    const ctx = this.ctx;
    part.lastActiveMs = nowMs;
    ctx.topic = record.topic;
    ctx.partition = record.partition;
    ctx.offset = record.offset;
    ctx.raw = record;
    ctx.outcome = 0;
    ctx.outId = '';
    ctx.fanout = 0;
    this.counters.in++;
    try {
      const source = src.source;
      let value = src.decode(record);
      if (source.validate !== undefined) value = source.validate(value);
      const ts = source.timestamp === undefined ? record.timestamp : source.timestamp(value, record);
      if (typeof ts !== 'number' || !Number.isFinite(ts)) {
        throw new TributaryError(
          'VALIDATION_FAILED',
          `timestamp extractor returned ${String(ts)} (expected epoch ms)`,
        );
      }
      ctx.timestamp = ts;
      src.head.push(value, ts, noKey);
      this.#settle(ctx.outcome);
      // Watermark after the record: a record is late relative to what came before it, which
      // keeps a single partition's results independent of how records were batched. With async
      // steps, windows fire after the batch's async results arrived (processRecords).
      const wm = this.tracker.observe(part, ts);
      if (wm > this.#firedWatermark && !async) this.#fire(wm);
    } catch (error) {
      this.#failed(error, record);
    }
  }

  /**
   * Input of a downstream stage of a scaled-out job (scale.ts): records come from a repartition
   * topic, each naming the upstream partition it came from (`tributary-origin`). Event time is
   * tracked per origin, as if the upstream partitions were read directly, so a fast upstream task
   * cannot make a slow one's records late. Marker records carry an origin's watermark (it moves
   * even when none of its records hash to this partition) or the end of its bounded input; they
   * are not input records and are not counted.
   */
  async #processShuffled(records: readonly LogRecord[]): Promise<void> {
    const nowMs = this.#clock.now();
    const async = this.#asyncStages.length > 0;
    const src = this.#sourceFor(this.job.source.topics[0]);
    let lastOrigin: Uint8Array | undefined;
    let part: PartitionClock | null = null;
    for (let i = 0; i < records.length; i++) {
      const record = records[i];
      const originBytes = record.headers[shuffleHeaders.origin];
      if (originBytes === undefined) {
        this.#failed(
          new TributaryError('DECODE_FAILED', `repartition record has no ${shuffleHeaders.origin} header`),
          record,
        );
        continue;
      }
      if (part === null || originBytes !== lastOrigin) {
        lastOrigin = originBytes;
        part = this.tracker.partition(textDecoder.decode(originBytes), nowMs);
      }
      const watermark = record.headers[shuffleHeaders.watermark];
      if (watermark !== undefined) {
        part.lastActiveMs = nowMs;
        const wm = this.tracker.observe(
          part,
          Number(textDecoder.decode(watermark)) + this.tracker.outOfOrdernessMs,
        );
        if (wm > this.#firedWatermark && !async) this.#fire(wm);
        continue;
      }
      const end = record.headers[shuffleHeaders.end];
      if (end !== undefined) {
        this.endedOrigins.set(part.id, Number(textDecoder.decode(end)));
        continue;
      }
      this.#processOne(record, part, src, nowMs, async);
    }
    if (async) {
      await this.#runAsyncStages();
      this.applyWatermark();
    }
  }

  /**
   * Origins (upstream partitions) whose end-of-input marker this task has read, with the bounded
   * run it belongs to (scale.ts); checkpointed, since the markers are not read again after a restore.
   */
  readonly endedOrigins = new Map<string, number>();

  /** A shuffled task holds the watermark for every upstream partition, seen or not (yet). */
  expectOrigins(origins: readonly string[]): void {
    for (const origin of origins) this.tracker.partition(origin, this.#clock.now());
  }

  /**
   * Pushes an already-decoded value as if read from partition 0 of the first topic (tests,
   * benchmarks, in-process sources). Errors propagate to the caller.
   */
  pushValue(value: unknown, ts: number, part: PartitionClock): void {
    const ctx = this.ctx;
    ctx.offset++;
    ctx.outcome = 0;
    ctx.timestamp = ts;
    this.counters.in++;
    this.#head.push(value, ts, noKey);
    this.#settle(ctx.outcome);
    const wm = this.tracker.observe(part, ts);
    if (wm > this.#firedWatermark) this.#fire(wm);
  }

  #firedWatermark = -Infinity;

  #settle(outcome: number): void {
    const c = this.counters;
    if (outcome & outcomeParked) this.#parkedOutcomes.set(this.ctx.sourceId(), outcome & ~outcomeParked);
    else if (outcome & outcomeAccepted) c.accepted++;
    else if (outcome & outcomeLate) c.late++;
    else c.filtered++;
  }

  #fire(watermarkMs: number): void {
    this.#firedWatermark = watermarkMs;
    const ctx = this.ctx;
    const saved = ctx.outcome;
    for (const w of this.windows) w.advanceWatermark(watermarkMs);
    for (const p of this.processes) p.advanceWatermark(watermarkMs);
    ctx.outcome = saved;
  }

  /** Re-applies the tracker's watermark to operators (after wall-clock ticks or end of input). */
  applyWatermark(): void {
    const wm = this.tracker.current;
    if (wm > this.#firedWatermark) {
      try {
        this.#fire(wm);
      } catch (error) {
        this.#failed(error, null);
      }
    }
  }

  /** Emits early results of windows that changed since the last call (unbounded runs). */
  emitEarly(): void {
    if (this.#bounded) return;
    try {
      for (const w of this.windows) w.emitEarly();
    } catch (error) {
      this.#failed(error, null);
    }
  }

  async #runAsyncStages(): Promise<void> {
    const ctx = this.ctx;
    for (const stage of this.#asyncStages) {
      const parked = stage.collector.parked;
      if (parked.length === 0) continue;
      stage.collector.parked = [];
      const results = await stage.run(parked);
      for (let i = 0; i < parked.length; i++) {
        const item = parked[i];
        restore(ctx, item);
        ctx.outcome = 0;
        const result = results[i];
        try {
          if (!result.ok) throw result.error;
          // Distinct id space per parked item: an async result may fan out again downstream.
          ctx.fanout = item.fanout * 1_000_000;
          stage.next.push(result.value, item.ts, item.key);
          this.#settleParked(item.outId, ctx.outcome);
        } catch (error) {
          this.#settleParked(item.outId, -1);
          this.#failed(error, item.raw, false);
        }
      }
    }
    // Inputs whose parked items all finished get their disposition now.
    for (const [outId, outcome] of this.#parkedOutcomes) {
      this.#parkedOutcomes.delete(outId);
      const c = this.counters;
      if (outcome < 0) c.dlq++;
      else if (outcome & outcomeAccepted) c.accepted++;
      else if (outcome & outcomeLate) c.late++;
      else c.filtered++;
    }
  }

  #settleParked(outId: string, outcome: number): void {
    const prev = this.#parkedOutcomes.get(outId);
    if (prev === undefined) return;
    if (prev < 0) return;
    this.#parkedOutcomes.set(outId, outcome < 0 ? -1 : prev | outcome);
  }

  #failed(error: unknown, record: LogRecord | null, count = true): void {
    const err = toTributaryError(error, 'BAD_RECORD');
    if (this.job.onError === 'fail') {
      const where = record === null ? '' : ` at ${record.topic}/${record.partition}@${record.offset}`;
      throw new TributaryError(err.code, `job ${this.job.name}${where}: ${err.message}`, {
        cause: error,
        details: err.details,
      });
    }
    if (count) this.counters.dlq++;
    const code: ErrorCode = err.code;
    const headers: Record<string, string> = {
      [dlqHeaders.code]: code,
      [dlqHeaders.message]: err.message.slice(0, 2000),
      [dlqHeaders.job]: this.job.name,
      [dlqHeaders.failedAt]: String(this.#bounded ? 0 : this.#clock.now()),
    };
    if (record !== null) {
      headers[dlqHeaders.topic] = record.topic;
      headers[dlqHeaders.partition] = String(record.partition);
      headers[dlqHeaders.offset] = String(record.offset);
      headers[dlqHeaders.timestamp] = String(record.timestamp);
      headers[dlqHeaders.id] = outputId(
        this.job.name,
        `dlq|${record.topic}/${record.partition}/${record.offset}`,
        0,
      );
    }
    this.sideOutputs.push({
      topic: `${record?.topic ?? this.job.name}.dlq`,
      key: record?.key ?? null,
      value: record?.value ?? null,
      headers,
      timestamp: record?.timestamp ?? 0,
    });
  }

  /** A failure downstream of a window, on one window result (not an input record). */
  #failedOutput(error: unknown, description: string): void {
    const err = toTributaryError(error, 'BAD_RECORD');
    if (this.job.onError === 'fail') {
      throw new TributaryError(err.code, `job ${this.job.name}, ${description}: ${err.message}`, {
        cause: error,
      });
    }
    this.counters.failedOutputs++;
    this.sideOutputs.push({
      topic: `${this.job.name}.dlq`,
      key: null,
      value: description,
      headers: {
        [dlqHeaders.code]: err.code,
        [dlqHeaders.message]: err.message.slice(0, 2000),
        [dlqHeaders.job]: this.job.name,
        [dlqHeaders.failedAt]: String(this.#bounded ? 0 : this.#clock.now()),
        [dlqHeaders.id]: outputId(this.job.name, `dlq|${this.ctx.sourceId()}`, 0),
      },
    });
  }

  #lateRecord(value: unknown, ts: number, key: Key, reason: string): void {
    const ctx = this.ctx;
    let encoded: string;
    try {
      encoded = JSON.stringify(value) ?? 'null';
    } catch {
      encoded = JSON.stringify(String(value));
    }
    const headers: Record<string, string> = {
      [dlqHeaders.code]: 'LATE_RECORD',
      [dlqHeaders.lateReason]: reason,
      [dlqHeaders.job]: this.job.name,
      [dlqHeaders.topic]: ctx.topic,
      [dlqHeaders.partition]: String(ctx.partition),
      [dlqHeaders.offset]: String(ctx.offset),
      [dlqHeaders.id]: outputId(this.job.name, `late|${ctx.sourceId()}`, ctx.fanout++),
    };
    this.sideOutputs.push({
      topic: `${this.job.name}.late`,
      key: key === noKey ? null : String(key),
      value: encoded,
      headers,
      timestamp: ts,
    });
  }

  /** Takes the side outputs produced since the last call. */
  takeSideOutputs(): ProducerRecord[] {
    const out = this.sideOutputs;
    this.sideOutputs = [];
    return out;
  }

  /** Bounded run: input ended, event time goes to +∞ and every remaining window fires. */
  endOfInput(): void {
    // What gets checkpointed is the frontier of what has been finalised, not +∞: the end of the
    // last window fired. A later bounded run of the same job sends records for those windows to
    // the late output instead of re-opening them with a second, partial result.
    let frontier = this.tracker.current;
    for (const p of this.tracker.parts)
      frontier = Math.max(frontier, p.maxTs - this.tracker.outOfOrdernessMs);
    for (const w of this.windows) frontier = Math.max(frontier, w.maxEnd - 1);
    this.tracker.finishAll();
    this.applyWatermark();
    this.tracker.current = frontier;
    this.#firedWatermark = frontier;
    for (const w of this.windows) w.watermark = frontier;
    for (const p of this.processes) p.watermark = frontier;
    for (const p of this.tracker.parts) p.finished = false;
  }

  stateSize(): number {
    let n = 0;
    for (const w of this.windows) n += w.stateSize();
    for (const p of this.processes) n += p.stateSize();
    return n;
  }

  /**
   * The task's state for a checkpoint. `changelogs` (state-changelog.ts), by process step: the
   * changelog holding that step's keys, which the snapshot then names instead of carrying them.
   */
  snapshot(changelogs?: readonly (ChangelogRef | null)[]): TaskSnapshot {
    return {
      watermark: this.tracker.snapshot(),
      windows: this.windows.map((w) => w.snapshot()),
      processes: this.processes.map((p, i) => {
        const changelog = changelogs?.[i];
        return changelog ? { keys: [], changelog } : p.snapshot();
      }),
      counters: { ...this.counters },
      ...(this.endedOrigins.size > 0 ? { endedOrigins: [...this.endedOrigins] } : {}),
    };
  }

  restore(snapshot: TaskSnapshot): void {
    if (
      snapshot.windows.length !== this.windows.length ||
      snapshot.processes.length !== this.processes.length
    ) {
      throw new TributaryError(
        'CONFLICT',
        `job ${this.job.name}: checkpoint has ${snapshot.windows.length} window and ${snapshot.processes.length} process steps, the job now has ${this.windows.length} and ${this.processes.length}; reset its state to change the job's shape`,
      );
    }
    this.tracker.restore(snapshot.watermark, this.#clock.now());
    const wm = this.tracker.current;
    this.#firedWatermark = wm;
    snapshot.windows.forEach((s, i) => {
      const w = this.windows[i];
      w.restore(s);
      w.watermark = wm;
    });
    snapshot.processes.forEach((s, i) => {
      const p = this.processes[i];
      p.restore(s);
      p.watermark = wm;
    });
    Object.assign(this.counters, snapshot.counters);
    for (const [origin, run] of snapshot.endedOrigins ?? []) this.endedOrigins.set(origin, run);
  }
}

function restore(ctx: RecordContext, item: ParkedRecord): void {
  ctx.topic = item.topic;
  ctx.partition = item.partition;
  ctx.offset = item.offset;
  ctx.raw = item.raw;
  ctx.outId = item.outId;
  // Distinct id space per parked item: an async result may fan out again downstream.
  ctx.fanout = item.fanout * 1_000_000;
  ctx.timestamp = item.ts;
}

export { outcomeAccepted, outcomeLate };
