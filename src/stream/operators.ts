/**
 * The operator chain a job compiles to. Each operator gets `(value, timestampMs, key)` and pushes
 * zero or more results to `next`. Operators are small classes with monomorphic `push` methods so
 * V8 inlines the common chains (map → keyBy → window) instead of going through closures per stage.
 */
import { TributaryError } from '../core/index.js';
import {
  outcomeAccepted,
  outcomeParked,
  type Key,
  type RecordContext,
  type RecordMeta,
  type Sink,
  type TableLookup,
} from './types.js';

export interface Operator {
  next: Operator | null;
  push(value: unknown, timestampMs: number, key: Key): void;
}

export class MapOperator implements Operator {
  next: Operator | null = null;
  constructor(
    private readonly fn: (value: unknown, meta: RecordMeta) => unknown,
    private readonly ctx: RecordContext,
  ) {}
  push(value: unknown, ts: number, key: Key): void {
    this.next!.push(this.fn(value, this.ctx), ts, key);
  }
}

export class FilterOperator implements Operator {
  next: Operator | null = null;
  constructor(
    private readonly fn: (value: unknown, meta: RecordMeta) => boolean,
    private readonly ctx: RecordContext,
  ) {}
  push(value: unknown, ts: number, key: Key): void {
    if (this.fn(value, this.ctx)) this.next!.push(value, ts, key);
  }
}

export class FlatMapOperator implements Operator {
  next: Operator | null = null;
  constructor(
    private readonly fn: (value: unknown, meta: RecordMeta) => Iterable<unknown>,
    private readonly ctx: RecordContext,
  ) {}
  push(value: unknown, ts: number, key: Key): void {
    for (const out of this.fn(value, this.ctx)) this.next!.push(out, ts, key);
  }
}

export class KeyByOperator implements Operator {
  next: Operator | null = null;
  constructor(
    private readonly fn: (value: unknown) => Key,
    private readonly jobName: string,
  ) {}
  push(value: unknown, ts: number): void {
    const key = this.fn(value);
    if (typeof key !== 'number' && typeof key !== 'string') {
      throw new TributaryError(
        'VALIDATION_FAILED',
        `job ${this.jobName}: keyBy returned ${typeof key}; keys must be strings or numbers`,
      );
    }
    this.next!.push(value, ts, key);
  }
}

/** Replaces the event time of records (after a map computed a better one). */
export class TimestampOperator implements Operator {
  next: Operator | null = null;
  constructor(private readonly fn: (value: unknown) => number) {}
  push(value: unknown, _ts: number, key: Key): void {
    const ts = this.fn(value);
    if (!Number.isFinite(ts))
      throw new TributaryError('VALIDATION_FAILED', `timestamp extractor returned ${ts}`);
    this.next!.push(value, ts, key);
  }
}

export class JoinTableOperator implements Operator {
  next: Operator | null = null;
  constructor(
    private readonly table: TableLookup<Key, unknown> | ((key: Key) => unknown),
    private readonly join: (value: unknown, row: unknown, key: Key) => unknown,
    private readonly inner: boolean,
  ) {}
  push(value: unknown, ts: number, key: Key): void {
    const row = typeof this.table === 'function' ? this.table(key) : this.table.get(key);
    if (row === undefined && this.inner) return;
    this.next!.push(this.join(value, row, key), ts, key);
  }
}

export class SinkOperator implements Operator {
  next: Operator | null = null;
  /** Whether any sink reads output ids; else they are not computed (see `Sink.usesIds`). */
  readonly #ids: boolean;
  constructor(
    private readonly sinks: readonly Sink<unknown>[],
    private readonly ctx: RecordContext,
    private readonly idFor: (outId: string, fanout: number) => string,
    private readonly counters: { outputs: number },
  ) {
    this.#ids = sinks.some((sink) => sink.usesIds !== false);
  }
  push(value: unknown, ts: number, key: Key): void {
    const ctx = this.ctx;
    const fanout = ctx.fanout++;
    const id = this.#ids ? this.idFor(ctx.sourceId(), fanout) : '';
    ctx.outcome |= outcomeAccepted;
    this.counters.outputs++;
    const k = key === noKey ? null : key;
    for (const sink of this.sinks) sink.write(value, ts, k, id);
  }
}

/** Key of records no `keyBy` has keyed yet (the empty string would collide with a real key). */
export const noKey: Key = '\u0000no-key';

/** A record parked in front of an async stage, with the context to restore when it resumes. */
export interface ParkedRecord {
  value: unknown;
  ts: number;
  key: Key;
  topic: string;
  partition: number;
  offset: number;
  raw: RecordContext['raw'];
  outId: string;
  fanout: number;
}

/** Collects records for an async stage; the task runs the stage after the synchronous pass of a batch. */
export class AsyncCollectOperator implements Operator {
  next: Operator | null = null;
  parked: ParkedRecord[] = [];
  constructor(private readonly ctx: RecordContext) {}
  push(value: unknown, ts: number, key: Key): void {
    const c = this.ctx;
    c.outcome |= outcomeParked;
    this.parked.push({
      value,
      ts,
      key,
      topic: c.topic,
      partition: c.partition,
      offset: c.offset,
      raw: c.raw,
      outId: c.sourceId(),
      fanout: c.fanout++,
    });
  }
}
