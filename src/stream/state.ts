/**
 * Keyed state for `process` steps: per key, named ValueStates and MapStates with an optional TTL.
 *
 * TTL is measured in event time (the watermark), not wall time as in Flink: an entry written by a
 * record at event time t expires once the watermark passes t + ttlMs. That keeps bounded runs and
 * replays after a restart deterministic (Kafka Streams' window retention works the same way).
 * Values must be JSON-serialisable (they are written to checkpoints).
 */
import type { Operator } from './operators.js';
import type { SideFileRef } from './side-file.js';
import { outcomeAccepted, type Key, type RecordContext, type RecordMeta } from './types.js';

export interface ValueState<T> {
  get(): T | undefined;
  set(value: T): void;
  clear(): void;
}

export interface MapState<V> {
  get(field: string): V | undefined;
  set(field: string, value: V): void;
  delete(field: string): void;
  entries(): [string, V][];
  clear(): void;
}

export interface ProcessContext<O> extends RecordMeta {
  readonly key: Key;
  /** Current watermark of the job (event time up to which input is complete). */
  readonly watermark: number;
  emit(value: O, timestampMs?: number): void;
  valueState<T>(name: string): ValueState<T>;
  mapState<V>(name: string): MapState<V>;
}

export interface ProcessOptions {
  /** Entries not written for this long (event time) disappear. */
  ttlMs?: number;
}

/** [value, written-at event time] */
type Stamped = [unknown, number];

/**
 * The `maps` of every key that never used a MapState: one shared, frozen empty object (replaced by
 * the key's own on first use), so a key that holds only a value — a dedup's seen flag, for
 * hundreds of thousands of keys — carries one object less. It encodes as `{}` like its own would.
 */
const noMaps: Record<string, Record<string, Stamped>> = Object.freeze({});

/** A key's state as a checkpoint stores it. */
export interface KeyState {
  values: Record<string, Stamped>;
  maps: Record<string, Record<string, Stamped>>;
}

export interface KeyedStateSnapshot {
  /** Every key's state; empty when `changelog` holds it. */
  keys: [Key, KeyState][];
  /**
   * The changelog file beside the checkpoint that holds every key's state instead, and how many
   * keys it holds (state-changelog.ts); absent in checkpoints without a directory of their own.
   */
  changelog?: SideFileRef & { keys: number };
}

/**
 * A ValueState bound to one key's state, as `ctx.valueState(name)` returns it. A class rather than
 * an object of three closures: a process step asks for its state on every record (dedup does, once
 * per event), and one small object per call is a quarter of the garbage of four.
 */
class KeyValueState<T> implements ValueState<T> {
  constructor(
    private readonly op: ProcessOperator,
    private readonly state: KeyState,
    private readonly name: string,
  ) {}
  get(): T | undefined {
    const s = this.state.values[this.name];
    return this.op.alive(s) ? (s[0] as T) : undefined;
  }
  set(value: T): void {
    this.state.values[this.name] = [value, this.op.currentTs];
  }
  clear(): void {
    delete this.state.values[this.name];
  }
}

/** The `ctx` a process function gets: a view of the operator's current key and record. */
class ProcessContextImpl implements ProcessContext<unknown> {
  constructor(
    private readonly op: ProcessOperator,
    private readonly record: RecordContext,
  ) {}
  get key(): Key {
    return this.op.currentKey;
  }
  get watermark(): number {
    return this.op.watermark;
  }
  get topic(): string {
    return this.record.topic;
  }
  get partition(): number {
    return this.record.partition;
  }
  get offset(): number {
    return this.record.offset;
  }
  get timestamp(): number {
    return this.op.currentTs;
  }
  emit(value: unknown, timestampMs?: number): void {
    this.op.emit(value, timestampMs);
  }
  valueState<T>(name: string): ValueState<T> {
    return this.op.valueState<T>(name);
  }
  mapState<V>(name: string): MapState<V> {
    return this.op.mapState<V>(name);
  }
}

export class ProcessOperator implements Operator {
  next: Operator | null = null;
  watermark = -Infinity;
  readonly #store = new Map<Key, KeyState>();
  readonly #ttl: number;
  #current: KeyState | null = null;
  #currentKey: Key = '';
  #currentTs = 0;
  #lastSweep = -Infinity;
  readonly #context: ProcessContext<unknown>;

  constructor(
    private readonly fn: (value: unknown, ctx: ProcessContext<unknown>) => void,
    options: ProcessOptions,
    private readonly ctx: RecordContext,
  ) {
    this.#ttl = options.ttlMs ?? Infinity;
    this.#context = new ProcessContextImpl(this, ctx);
  }

  get currentKey(): Key {
    return this.#currentKey;
  }

  get currentTs(): number {
    return this.#currentTs;
  }

  emit(value: unknown, timestampMs: number | undefined): void {
    this.#emitted = true;
    if (this.next === null) this.ctx.outcome |= outcomeAccepted;
    else this.next.push(value, timestampMs ?? this.#currentTs, this.#currentKey);
  }

  /** Whether the current record's fn emitted: then the stages after it settle its outcome. */
  #emitted = false;

  /**
   * Keys whose state may have changed since `clearChanges` (every key a record touched, and keys
   * swept by TTL): what an incremental checkpoint writes. Null unless `trackChanges` was called.
   */
  #changed: Set<Key> | null = null;

  push(value: unknown, ts: number, key: Key): void {
    // Any key a record reaches counts as changed: a process function may change a value it got
    // from `get()` in place, without `set`.
    this.#changed?.add(key);
    let state = this.#store.get(key);
    if (state === undefined) {
      state = { values: {}, maps: noMaps };
      this.#store.set(key, state);
    }
    this.#current = state;
    this.#currentKey = key;
    this.#currentTs = ts;
    this.#emitted = false;
    this.fn(value, this.#context);
    // A record kept in state (or dropped on purpose, e.g. a duplicate) without output is accepted
    // here; one passed on is settled by the stages after (a window may find it late).
    if (!this.#emitted) this.ctx.outcome |= outcomeAccepted;
  }

  valueState<T>(name: string): ValueState<T> {
    return new KeyValueState<T>(this, this.#current!, name);
  }

  /** Whether a stamped entry is still alive at the current watermark (not past its TTL). */
  alive(stamp: Stamped | undefined): stamp is Stamped {
    return stamp !== undefined && stamp[1] + this.#ttl > this.watermark;
  }

  mapState<V>(name: string): MapState<V> {
    const state = this.#current!;
    if (state.maps === noMaps) state.maps = {};
    const map = (state.maps[name] ??= {});
    return {
      get: (field) => {
        const s = map[field];
        return this.alive(s) ? (s[0] as V) : undefined;
      },
      set: (field, value) => {
        map[field] = [value, this.#currentTs];
      },
      delete: (field) => {
        delete map[field];
      },
      entries: () =>
        Object.entries(map).flatMap(([field, s]) =>
          this.alive(s) ? [[field, s[0] as V] as [string, V]] : [],
        ),
      clear: () => {
        state.maps[name] = {};
      },
    };
  }

  advanceWatermark(watermarkMs: number): void {
    if (watermarkMs <= this.watermark) return;
    this.watermark = watermarkMs;
    // Sweep expired entries at most every ttl/2 of event time: bounded work, bounded memory.
    if (this.#ttl === Infinity || watermarkMs - this.#lastSweep < this.#ttl / 2) return;
    this.#lastSweep = watermarkMs;
    for (const [key, state] of this.#store) {
      let live = 0;
      let expired = 0;
      for (const [name, s] of Object.entries(state.values)) {
        if (this.alive(s)) live++;
        else {
          delete state.values[name];
          expired++;
        }
      }
      for (const [name, map] of Object.entries(state.maps)) {
        for (const [field, s] of Object.entries(map)) {
          if (this.alive(s)) live++;
          else {
            delete map[field];
            expired++;
          }
        }
        if (Object.keys(map).length === 0) delete state.maps[name];
      }
      if (live === 0) this.#store.delete(key);
      // A key left with nothing is deleted even when nothing of it expired (it never held state).
      if (live === 0 || expired > 0) this.#changed?.add(key);
    }
  }

  /** Starts recording which keys change, for incremental checkpoints (state-changelog.ts). */
  trackChanges(): void {
    this.#changed ??= new Set();
  }

  get changedKeys(): number {
    return this.#changed?.size ?? 0;
  }

  /** The keys changed since `clearChanges`, each with its state now (undefined: deleted). */
  *changes(): Generator<[Key, KeyState | undefined]> {
    for (const key of this.#changed ?? []) yield [key, this.#store.get(key)];
  }

  clearChanges(): void {
    this.#changed?.clear();
  }

  /** Every key's state (live view: do not change the store while iterating). */
  entries(): IterableIterator<[Key, KeyState]> {
    return this.#store.entries();
  }

  snapshot(): KeyedStateSnapshot {
    return { keys: [...this.#store] };
  }

  restore(snapshot: KeyedStateSnapshot): void {
    this.#store.clear();
    for (const [key, state] of snapshot.keys) this.#store.set(key, state);
  }

  stateSize(): number {
    return this.#store.size;
  }
}
