/**
 * The job API: a stream job reads like a sentence.
 *
 * @example
 * const job = stream('chunks-per-company')
 *   .from(log, { topics: ['embeddings.ready'], decode: 'json', timestamp: (r) => r.ts, outOfOrdernessMs: 5_000 })
 *   .keyBy((r) => r.company_id)
 *   .window(tumbling({ sizeMs: 60_000 }), { allowedLatenessMs: 10_000 })
 *   .count()
 *   .map((w) => ({ company_id: w.key, window_start: w.windowStart, window_end: w.windowEnd, chunk_count: w.value }))
 *   .to(topicSink('analytics.flink', { key: (r) => String(r.company_id) }));
 * await runJob(job, { dataDir, once: true });
 *
 * A definition is plain data (stages + sinks); `compileJob` (runtime.ts) turns it into operators and
 * `runJob` (runner.ts) drives it from the log with watermarks, checkpoints and sinks.
 */
import { TributaryError } from '../core/index.js';
import type { Log, LogRecord, SchemaRegistry, StartPosition } from '../log/index.js';
import type { ProcessContext, ProcessOptions } from './state.js';
import type { Key, RecordMeta, Sink, TableLookup, WindowResult } from './types.js';
import type { Aggregator, WindowOptions, WindowSpec } from './windows.js';

/**
 * How a record's value becomes the job's value: JSON text, UTF-8 text, the raw bytes, Avro in the
 * Confluent wire format (schema looked up by the id in the value, see `schemaRegistry`), or a
 * function of the record.
 */
export type Decoder<T> = 'json' | 'string' | 'bytes' | 'avro' | ((record: LogRecord) => T);

export interface SourceOptions<T> {
  topics: string[];
  /** Where to start when the job has no checkpoint. Default 'earliest'. */
  from?: StartPosition;
  /** How to turn a record into a value. Default 'json'. A throw sends the record to the DLQ. */
  decode?: Decoder<T>;
  /** `decode: 'avro'`: where the schema ids in the values are looked up (`openSchemaRegistry`). */
  schemaRegistry?: SchemaRegistry;
  /**
   * `decode: 'avro'`: resolve every value into this subject's latest schema (read at job start), so
   * the job sees one shape whatever compatible version wrote a record; a record the subject's
   * schema cannot read goes to the DLQ. Default: each value as the schema it was written with.
   */
  subject?: string;
  /** Checks (and may narrow) the decoded value, e.g. `(v) => schema.parse(v)`; a throw goes to the DLQ. */
  validate?: (value: unknown) => T;
  /** Event time of a value; default the log record's timestamp. */
  timestamp?: (value: T, record: LogRecord) => number;
  /** Watermark = max event time seen - this (bounded out-of-orderness). Default 0. */
  outOfOrdernessMs?: number;
  /** A partition with no new records for this long (wall time) stops holding the watermark back. Default 10 s. */
  idleTimeoutMs?: number;
}

export interface SourceDefinition {
  log: Log;
  topics: string[];
  from: StartPosition;
  decode: Decoder<unknown>;
  /** Set with `decode: 'avro'`. */
  avro?: { registry: SchemaRegistry; subject: string | undefined };
  validate: ((value: unknown) => unknown) | undefined;
  timestamp: ((value: unknown, record: LogRecord) => number) | undefined;
  outOfOrdernessMs: number;
  idleTimeoutMs: number;
  /**
   * Set on the input of a downstream stage of a scaled-out job (scale.ts): a repartition topic
   * whose records name their upstream partition; event time is tracked per upstream partition.
   */
  shuffled?: boolean;
}

export type Stage =
  | { kind: 'map'; fn: (value: unknown, meta: RecordMeta) => unknown }
  | { kind: 'filter'; fn: (value: unknown, meta: RecordMeta) => boolean }
  | { kind: 'flatMap'; fn: (value: unknown, meta: RecordMeta) => Iterable<unknown> }
  | { kind: 'mapAsync'; fn: (value: unknown, meta: RecordMeta) => Promise<unknown>; concurrency: number }
  | {
      kind: 'mapBatchAsync';
      fn: (values: unknown[], metas: RecordMeta[]) => Promise<unknown[]>;
      batchSizeMax: number;
      concurrency: number;
    }
  | { kind: 'keyBy'; fn: (value: unknown) => Key }
  | { kind: 'timestamp'; fn: (value: unknown) => number }
  | { kind: 'window'; spec: WindowSpec; options: WindowOptions; agg: Aggregator<unknown, unknown, unknown> }
  | { kind: 'process'; fn: (value: unknown, ctx: ProcessContext<unknown>) => void; options: ProcessOptions }
  | {
      kind: 'joinTable';
      table: TableLookup<Key, unknown> | ((key: Key) => unknown);
      join: (value: unknown, row: unknown, key: Key) => unknown;
      inner: boolean;
    };

export type ErrorPolicy = 'dlq' | 'fail';

export interface JobOptions {
  /** What to do with a record that fails to decode, validate or process. Default 'dlq'. */
  onError?: ErrorPolicy;
  /** Wall time between checkpoints in unbounded runs. Default 10 s. */
  checkpointIntervalMs?: number;
}

/** A complete, runnable job definition. */
export interface StreamJob {
  readonly name: string;
  readonly source: SourceDefinition;
  readonly stages: readonly Stage[];
  readonly sinks: readonly Sink<unknown>[];
  readonly onError: ErrorPolicy;
  readonly checkpointIntervalMs: number;
  /** Topics this job writes (sinks that name one); used to order stages of a pipeline. */
  readonly outputTopics: readonly string[];
  /** Other inputs (windowed joins): their records run through `stages` into main stage `intoStage`. */
  readonly sides: readonly SideInput[];
  /** Every topic the job reads (main source and sides). */
  readonly inputTopics: readonly string[];
}

export interface SideInput {
  source: SourceDefinition;
  stages: readonly Stage[];
  intoStage: number;
}

const jobNamePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$/;

/** Starts a job definition. Names are used in topics (`<job>.late`), state paths and metrics. */
export function stream(name: string, options: JobOptions = {}): JobBuilder {
  if (!jobNamePattern.test(name)) {
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `job name ${JSON.stringify(name)} must match ${jobNamePattern.source}`,
    );
  }
  return new JobBuilder(name, options);
}

export class JobBuilder {
  /** Inputs joined into the main stream (see KeyedStream.joinWindow). */
  readonly sides: SideInput[] = [];

  constructor(
    readonly name: string,
    readonly options: JobOptions,
  ) {}

  /** Reads one or more topics of a log. */
  from<T = unknown>(log: Log, options: SourceOptions<T>): Stream<T> {
    if (options.topics.length === 0)
      throw new TributaryError('INVALID_ARGUMENT', `job ${this.name}: from() needs at least one topic`);
    if (options.decode === 'avro' && options.schemaRegistry === undefined)
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `job ${this.name}: decode 'avro' needs schemaRegistry (openSchemaRegistry(config))`,
      );
    const source: SourceDefinition = {
      log,
      topics: [...options.topics],
      from: options.from ?? 'earliest',
      decode: options.decode ?? 'json',
      ...(options.decode === 'avro'
        ? { avro: { registry: options.schemaRegistry!, subject: options.subject } }
        : {}),
      validate: options.validate,
      timestamp: options.timestamp as SourceDefinition['timestamp'],
      outOfOrdernessMs: options.outOfOrdernessMs ?? 0,
      idleTimeoutMs: options.idleTimeoutMs ?? 10_000,
    };
    return new Stream<T>(this, source, []);
  }
}

/** A step's count option (a concurrency, a batch size): a whole number of at least 1. */
function countOption(step: string, name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1)
    throw new TributaryError('INVALID_ARGUMENT', `${step} ${name} must be >= 1, got ${value}`);
  return value;
}

export class Stream<T> {
  constructor(
    protected readonly builder: JobBuilder,
    protected readonly source: SourceDefinition,
    protected readonly stages: readonly Stage[],
  ) {}

  protected with(stage: Stage): Stage[] {
    return [...this.stages, stage];
  }

  map<U>(fn: (value: T, meta: RecordMeta) => U): Stream<U> {
    return new Stream<U>(
      this.builder,
      this.source,
      this.with({ kind: 'map', fn: fn as (value: unknown, meta: RecordMeta) => unknown }),
    );
  }

  filter(fn: (value: T, meta: RecordMeta) => boolean): Stream<T> {
    return new Stream<T>(
      this.builder,
      this.source,
      this.with({ kind: 'filter', fn: fn as (value: unknown, meta: RecordMeta) => boolean }),
    );
  }

  flatMap<U>(fn: (value: T, meta: RecordMeta) => Iterable<U>): Stream<U> {
    return new Stream<U>(
      this.builder,
      this.source,
      this.with({ kind: 'flatMap', fn: fn as (value: unknown, meta: RecordMeta) => Iterable<unknown> }),
    );
  }

  /**
   * Async step (HTTP, database, model inference) with at most `concurrency` calls in flight. Results
   * keep input order (so per-key order too); a batch's calls all finish before its offsets can be
   * checkpointed, so nothing in flight is lost or repeated across a restart.
   */
  mapAsync<U>(
    fn: (value: T, meta: RecordMeta) => Promise<U>,
    options: { concurrency?: number } = {},
  ): Stream<U> {
    const concurrency = countOption('mapAsync', 'concurrency', options.concurrency ?? 8);
    return new Stream<U>(
      this.builder,
      this.source,
      this.with({
        kind: 'mapAsync',
        fn: fn as (value: unknown, meta: RecordMeta) => Promise<unknown>,
        concurrency,
      }),
    );
  }

  /**
   * Async step called once per batch of records rather than once per record (model inference,
   * bulk look-ups): `fn` gets up to `batchSizeMax` values from one poll, with their metadata, and
   * answers one result per value, in order. At most `concurrency` calls run at once; results keep
   * input order, and a batch's calls all finish before its offsets are checkpointed, as in
   * `mapAsync`. A call that rejects, or answers a different number of results, fails every record
   * of its batch (dead-lettered, or failing the job under `onError: 'fail'`); an `Error` instance in
   * the answer fails its own record only.
   *
   * @example
   * reviews.mapBatchAsync(async (texts) => model.scoreBatch(texts), { batchSizeMax: 32 })
   */
  mapBatchAsync<U>(
    fn: (values: T[], metas: RecordMeta[]) => Promise<(U | Error)[]>,
    options: { batchSizeMax?: number; concurrency?: number } = {},
  ): Stream<U> {
    const batchSizeMax = countOption('mapBatchAsync', 'batchSizeMax', options.batchSizeMax ?? 64);
    const concurrency = countOption('mapBatchAsync', 'concurrency', options.concurrency ?? 1);
    return new Stream<U>(
      this.builder,
      this.source,
      this.with({
        kind: 'mapBatchAsync',
        fn: fn as (values: unknown[], metas: RecordMeta[]) => Promise<unknown[]>,
        batchSizeMax,
        concurrency,
      }),
    );
  }

  /** Re-assigns event time from the (transformed) value. */
  withTimestamp(fn: (value: T) => number): Stream<T> {
    return new Stream<T>(
      this.builder,
      this.source,
      this.with({ kind: 'timestamp', fn: fn as (value: unknown) => number }),
    );
  }

  /**
   * Keys the stream. In one process all partitions share one keyed state, so no shuffle is needed;
   * scaled out over worker processes (scale.ts) a `keyBy` before keyed state repartitions through
   * `<job>.repartition`, so `fn` must be deterministic. See README "Parallelism".
   */
  keyBy(fn: (value: T) => Key): KeyedStream<T> {
    return new KeyedStream<T>(
      this.builder,
      this.source,
      this.with({ kind: 'keyBy', fn: fn as (value: unknown) => Key }),
    );
  }

  /** Writes every value to the sinks and completes the job definition. */
  to(...sinks: Sink<T>[]): StreamJob {
    if (sinks.length === 0)
      throw new TributaryError('INVALID_ARGUMENT', `job ${this.builder.name}: to() needs at least one sink`);
    const outputTopics = sinks.flatMap((s) => ('topic' in s && typeof s.topic === 'string' ? [s.topic] : []));
    const sides = [...this.builder.sides];
    return {
      sides,
      inputTopics: [...new Set([...this.source.topics, ...sides.flatMap((side) => side.source.topics)])],
      name: this.builder.name,
      source: this.source,
      stages: this.stages,
      sinks: sinks,
      onError: this.builder.options.onError ?? 'dlq',
      checkpointIntervalMs: this.builder.options.checkpointIntervalMs ?? 10_000,
      outputTopics,
    };
  }
}

export class KeyedStream<T> extends Stream<T> {
  override map<U>(fn: (value: T, meta: RecordMeta) => U): KeyedStream<U> {
    return new KeyedStream<U>(
      this.builder,
      this.source,
      this.with({ kind: 'map', fn: fn as (value: unknown, meta: RecordMeta) => unknown }),
    );
  }

  override filter(fn: (value: T, meta: RecordMeta) => boolean): KeyedStream<T> {
    return new KeyedStream<T>(
      this.builder,
      this.source,
      this.with({ kind: 'filter', fn: fn as (value: unknown, meta: RecordMeta) => boolean }),
    );
  }

  /** Groups records of each key into windows; finish with aggregate / count / reduce. */
  window(spec: WindowSpec, options: WindowOptions = {}): WindowedStream<T> {
    return new WindowedStream<T>(this.builder, this.source, this.stages, spec, options);
  }

  /**
   * Keyed stateful step: `fn(value, ctx)` reads/writes `ctx.valueState(name)` / `ctx.mapState(name)`
   * of the current key and calls `ctx.emit(out)`.
   */
  process<O>(fn: (value: T, ctx: ProcessContext<O>) => void, options: ProcessOptions = {}): KeyedStream<O> {
    return new KeyedStream<O>(
      this.builder,
      this.source,
      this.with({
        kind: 'process',
        fn: fn as (value: unknown, ctx: ProcessContext<unknown>) => void,
        options,
      }),
    );
  }

  /**
   * Windowed inner join with another keyed stream of the same job.
   * @example
   * const job = stream('orders-with-payments');
   * const orders = job.from<Order>(log, { topics: ['orders'] }).keyBy((o) => o.id);
   * const payments = job.from<Payment>(log, { topics: ['payments'] }).keyBy((p) => p.orderId);
   * orders.joinWindow(payments, tumbling({ sizeMs: 60_000 })).map(({ left, right }) => ({ ...left, paid: right.amount }))
   */
  joinWindow<R>(
    other: KeyedStream<R>,
    spec: WindowSpec,
    options: WindowOptions = {},
  ): Stream<JoinedPair<T, R>> {
    return joinWindowImpl(this, other, spec, options);
  }

  /**
   * Stream–table join on the key: `table` is a Map (or anything with `get`) or a lookup function,
   * e.g. a dimension table loaded from the lake or Postgres. `inner` drops records without a row
   * (they count as filtered); otherwise `join` gets `undefined`.
   */
  joinTable<R, U>(
    table: TableLookup<Key, R> | ((key: Key) => R | undefined),
    join: (value: T, row: R | undefined, key: Key) => U,
    options: { inner?: boolean } = {},
  ): KeyedStream<U> {
    return new KeyedStream<U>(
      this.builder,
      this.source,
      this.with({
        kind: 'joinTable',
        table: table as TableLookup<Key, unknown>,
        join: join as (value: unknown, row: unknown, key: Key) => unknown,
        inner: options.inner ?? false,
      }),
    );
  }
}

/** What a windowed join emits per matching pair. */
export interface JoinedPair<L, R> {
  key: Key;
  windowStart: number;
  windowEnd: number;
  left: L;
  right: R;
}

type Tagged = { s: 0 | 1; v: unknown };

/**
 * Windowed stream–stream join (inner): records of both streams with the same key in the same
 * window are paired when the window closes (Flink's window join). Both streams come from the same
 * `stream(name)` builder and are keyed; records travel in one task, so no shuffle is needed.
 */
function joinWindowImpl<L, R>(
  left: KeyedStream<L>,
  right: KeyedStream<R>,
  spec: WindowSpec,
  options: WindowOptions,
): Stream<JoinedPair<L, R>> {
  const l = left as unknown as { builder: JobBuilder; source: SourceDefinition; stages: readonly Stage[] };
  const r = right as unknown as { builder: JobBuilder; source: SourceDefinition; stages: readonly Stage[] };
  if (l.builder !== r.builder) {
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `joinWindow: both streams must come from the same stream('${l.builder.name}') builder`,
    );
  }
  if (spec.kind === 'session')
    throw new TributaryError('INVALID_ARGUMENT', 'joinWindow supports tumbling and hopping windows');
  if (l.source.log !== r.source.log)
    throw new TributaryError('INVALID_ARGUMENT', 'joinWindow: both streams must read the same log');
  const overlap = l.source.topics.filter((t) => r.source.topics.includes(t));
  if (overlap.length > 0)
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `joinWindow: both sides read ${overlap.join(', ')}; use distinct topics`,
    );
  const leftStages: Stage[] = [...l.stages, { kind: 'map', fn: (v) => ({ s: 0, v }) satisfies Tagged }];
  const windowIndex = leftStages.length;
  l.builder.sides.push({
    source: r.source,
    stages: [...r.stages, { kind: 'map', fn: (v) => ({ s: 1, v }) satisfies Tagged }],
    intoStage: windowIndex,
  });
  type Acc = { l: unknown[]; r: unknown[] };
  const agg: Aggregator<unknown, unknown, unknown> = {
    init: () => ({ l: [], r: [] }),
    add: (acc, value) => {
      const a = acc as Acc;
      const t = value as Tagged;
      (t.s === 0 ? a.l : a.r).push(t.v);
      return a;
    },
    result: (acc) => acc,
  };
  const stages: Stage[] = [
    ...leftStages,
    { kind: 'window', spec, options: { ...options, earlyEveryMs: undefined }, agg },
    {
      kind: 'flatMap',
      fn: (value) => {
        const w = value as WindowResult<Acc>;
        const out: JoinedPair<unknown, unknown>[] = [];
        // Only final results: an update re-emitting earlier pairs would duplicate them.
        if (w.kind !== 'final') return out;
        for (const a of w.value.l)
          for (const b of w.value.r)
            out.push({ key: w.key, windowStart: w.windowStart, windowEnd: w.windowEnd, left: a, right: b });
        return out;
      },
    },
  ];
  return new Stream<JoinedPair<L, R>>(l.builder, l.source, stages);
}

export class WindowedStream<T> {
  constructor(
    private readonly builder: JobBuilder,
    private readonly source: SourceDefinition,
    private readonly stages: readonly Stage[],
    private readonly spec: WindowSpec,
    private readonly options: WindowOptions,
  ) {}

  /** `add` may mutate and return `acc` (cheapest) or return a new accumulator. */
  aggregate<A, R = A>(agg: {
    init(this: void): A;
    add(this: void, acc: A, value: T): A;
    merge?(this: void, a: A, b: A): A;
    result?(this: void, acc: A, key: Key, windowStart: number, windowEnd: number): R;
  }): Stream<WindowResult<R>> {
    const full: Aggregator<unknown, unknown, unknown> = {
      init: agg.init,
      add: agg.add,
      result: agg.result ?? ((acc: A) => acc),
    };
    if (agg.merge !== undefined) full.merge = agg.merge;
    return new Stream<WindowResult<R>>(this.builder, this.source, [
      ...this.stages,
      { kind: 'window', spec: this.spec, options: this.options, agg: full },
    ]);
  }

  count(): Stream<WindowResult<number>> {
    return this.aggregate<number>({ init: () => 0, add: (acc) => acc + 1, merge: (a, b) => a + b });
  }

  /** Folds values with `fn`; the window result is the reduced value. */
  reduce(fn: (a: T, b: T) => T): Stream<WindowResult<T>> {
    // `{ v }` rather than a sentinel symbol: accumulators must be JSON for checkpoints.
    type Acc = { v: T } | null;
    return this.aggregate<Acc, T>({
      init: () => null,
      add: (acc, value) => (acc === null ? { v: value } : { v: fn(acc.v, value) }),
      merge: (a, b) => (a === null ? b : b === null ? a : { v: fn(a.v, b.v) }),
      result: (acc) => acc!.v,
    });
  }
}
