/**
 * Window assigners (tumbling, hopping, session) and the keyed window operator.
 *
 * Layout: window-major. Open windows are `Slot`s (one per window start, for all keys), each holding
 * a `Map<key, Entry>`; the slot of the last record is cached, so the common case (in-order-ish
 * records of the current window) costs one integer compare, one `Map.get` and the user's `add`.
 * Firing on a watermark walks slots in end order and emits every entry of a closed slot — no scan
 * over all keys. Sessions differ (per-key, merging) and live in `SessionWindowOperator`.
 *
 * Semantics follow Flink: a window [start, end) fires when watermark >= end - 1; a record is late
 * when its window's end - 1 + allowedLateness <= watermark; a record inside the allowed lateness of
 * a fired window updates it and re-emits (`kind: 'update'`). Late records are never dropped: they go
 * to the late side output (see runtime.ts).
 */
import { TributaryError } from '../core/index.js';
import type { Operator } from './operators.js';
import {
  outcomeAccepted,
  outcomeLate,
  type Key,
  type RecordContext,
  type WindowEmitKind,
  type WindowResult,
} from './types.js';

export interface TumblingWindow {
  kind: 'tumbling';
  sizeMs: number;
  offsetMs: number;
}
export interface HoppingWindow {
  kind: 'hopping';
  sizeMs: number;
  slideMs: number;
  offsetMs: number;
}
export interface SessionWindow {
  kind: 'session';
  gapMs: number;
}
export type WindowSpec = TumblingWindow | HoppingWindow | SessionWindow;

function positiveInt(name: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0) {
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `${name} must be a positive integer of milliseconds, got ${value}`,
    );
  }
  return value;
}

/**
 * Fixed, non-overlapping windows.
 * @example tumbling({ sizeMs: 60_000 }) // one-minute windows [12:00, 12:01), [12:01, 12:02) ...
 */
export function tumbling(options: { sizeMs: number; offsetMs?: number }): TumblingWindow {
  return { kind: 'tumbling', sizeMs: positiveInt('sizeMs', options.sizeMs), offsetMs: options.offsetMs ?? 0 };
}

/**
 * Overlapping windows of `sizeMs` starting every `slideMs`; each record lands in sizeMs/slideMs windows.
 * @example hopping({ sizeMs: 300_000, slideMs: 60_000 }) // 5-minute windows every minute
 */
export function hopping(options: { sizeMs: number; slideMs: number; offsetMs?: number }): HoppingWindow {
  const sizeMs = positiveInt('sizeMs', options.sizeMs);
  const slideMs = positiveInt('slideMs', options.slideMs);
  if (slideMs > sizeMs)
    throw new TributaryError('INVALID_ARGUMENT', `slideMs (${slideMs}) must not exceed sizeMs (${sizeMs})`);
  return { kind: 'hopping', sizeMs, slideMs, offsetMs: options.offsetMs ?? 0 };
}

/**
 * Per-key activity windows closed by `gapMs` of inactivity (in event time).
 * @example session({ gapMs: 30 * 60_000 })
 */
export function session(options: { gapMs: number }): SessionWindow {
  return { kind: 'session', gapMs: positiveInt('gapMs', options.gapMs) };
}

/** How a window folds records. `merge` is required for session windows (sessions merge). */
export interface Aggregator<V, A, R> {
  init(): A;
  add(acc: A, value: V): A;
  merge?(a: A, b: A): A;
  result(acc: A, key: Key, windowStart: number, windowEnd: number): R;
}

export interface WindowOptions {
  /** Keep a fired window this long (event time) to absorb late records as updates. Default 0. */
  allowedLatenessMs?: number;
  /** Emit `early` results for changed windows every this many ms of processing time (unbounded runs). */
  earlyEveryMs?: number;
}

/** Accumulators must survive a checkpoint: JSON-serialisable values (numbers, strings, plain objects, arrays). */
export interface WindowStateSnapshot {
  kind: 'slots' | 'sessions';
  slots?: { start: number; end: number; fired: boolean; entries: [Key, unknown, number][] }[];
  sessions?: [Key, [number, number, unknown, number, boolean][]][];
}

/** Called for a record that arrived after its window's allowed lateness. */
export type LateHandler = (value: unknown, timestampMs: number, key: Key, reason: string) => void;

class Entry {
  acc: unknown;
  count = 0;
  dirty = false;
  constructor(acc: unknown) {
    this.acc = acc;
  }
}

class Slot {
  readonly start: number;
  readonly end: number;
  readonly entries = new Map<Key, Entry>();
  fired = false;
  dirty: Key[] = [];
  constructor(start: number, end: number) {
    this.start = start;
    this.end = end;
  }
}

/** Base for both window operators: emission and shared settings. */
abstract class WindowOperatorBase implements Operator {
  next: Operator | null = null;
  protected readonly agg: Aggregator<unknown, unknown, unknown>;
  protected readonly lateness: number;
  protected readonly early: boolean;
  /** Watermark the operator has fired up to (inclusive); -Infinity before any. */
  watermark = -Infinity;
  protected readonly ctx: RecordContext;
  protected readonly jobName: string;
  lateHandler: LateHandler = () => undefined;
  /** A step after the window failed on one result: the task sends it to the DLQ (or fails the job). */
  errorHandler: (error: unknown, description: string) => void = (error) => {
    throw error;
  };
  /** Largest window end this operator has opened (for the end-of-input frontier). */
  maxEnd = -Infinity;

  constructor(
    agg: Aggregator<unknown, unknown, unknown>,
    options: WindowOptions,
    ctx: RecordContext,
    jobName: string,
  ) {
    this.agg = agg;
    this.lateness = options.allowedLatenessMs ?? 0;
    this.early = options.earlyEveryMs !== undefined;
    this.ctx = ctx;
    this.jobName = jobName;
  }

  abstract push(value: unknown, timestampMs: number, key: Key): void;
  abstract advanceWatermark(watermarkMs: number): void;
  abstract emitEarly(): void;
  abstract snapshot(): WindowStateSnapshot;
  abstract restore(snapshot: WindowStateSnapshot): void;
  abstract stateSize(): number;

  protected emit(
    key: Key,
    start: number,
    end: number,
    acc: unknown,
    count: number,
    kind: WindowEmitKind,
  ): void {
    const next = this.next;
    if (next === null) return;
    const result: WindowResult<unknown> = {
      key,
      windowStart: start,
      windowEnd: end,
      value: this.agg.result(acc, key, start, end),
      count,
      kind,
    };
    // Window outputs are identified by window + key + kind + count, so a replay after a restart
    // produces the same ids for the same content (deduplicated by the topic sink).
    const ctx = this.ctx;
    const savedId = ctx.outId;
    const savedFanout = ctx.fanout;
    ctx.outId = `w|${typeof key === 'number' ? 'n' : 's'}${key}|${start}|${end}|${kind}|${count}`;
    ctx.fanout = 0;
    try {
      next.push(result, end - 1, key);
    } catch (error) {
      // One bad result must not stop the other keys of the window from being emitted.
      this.errorHandler(error, `${kind} result of window [${start}, ${end}) for key ${JSON.stringify(key)}`);
    } finally {
      ctx.outId = savedId;
      ctx.fanout = savedFanout;
    }
  }
}

/** Tumbling and hopping windows (fixed boundaries). */
export class FixedWindowOperator extends WindowOperatorBase {
  readonly #size: number;
  readonly #slide: number;
  readonly #offset: number;
  readonly #slots = new Map<number, Slot>();
  /** Slots ordered by end (ascending); fired/purged from the front. */
  #order: Slot[] = [];
  #last: Slot | null = null;
  #dirtySlots: Slot[] = [];

  constructor(
    spec: TumblingWindow | HoppingWindow,
    agg: Aggregator<unknown, unknown, unknown>,
    options: WindowOptions,
    ctx: RecordContext,
    jobName: string,
  ) {
    super(agg, options, ctx, jobName);
    this.#size = spec.sizeMs;
    this.#slide = spec.kind === 'hopping' ? spec.slideMs : spec.sizeMs;
    this.#offset = spec.offsetMs;
  }

  push(value: unknown, ts: number, key: Key): void {
    const slide = this.#slide;
    const rem = (ts - this.#offset) % slide;
    const lastStart = ts - (rem < 0 ? rem + slide : rem);
    if (slide === this.#size) {
      let slot = this.#last;
      if (slot === null || slot.start !== lastStart) {
        slot = this.#slotFor(lastStart);
        if (slot === null) {
          this.#late(value, ts, key, lastStart);
          return;
        }
      }
      this.#add(slot, key, value);
      return;
    }
    // Hopping: the record belongs to every window whose start is in (ts - size, lastStart].
    // Windows already past their lateness get a late side-output record each (Flink drops the
    // record for those windows silently); the input counts as accepted if any window took it.
    for (let start = lastStart; start > ts - this.#size; start -= slide) {
      const slot = this.#slotFor(start);
      if (slot === null) this.#late(value, ts, key, start);
      else this.#add(slot, key, value);
    }
  }

  #add(slot: Slot, key: Key, value: unknown): void {
    let entry = slot.entries.get(key);
    if (entry === undefined) {
      entry = new Entry(this.agg.init());
      slot.entries.set(key, entry);
    }
    entry.acc = this.agg.add(entry.acc, value);
    entry.count++;
    this.ctx.outcome |= outcomeAccepted;
    if (slot.fired) {
      // A key's first record in an already-closed window (within lateness) is its final result.
      this.emit(key, slot.start, slot.end, entry.acc, entry.count, entry.count === 1 ? 'final' : 'update');
    } else if (this.early && !entry.dirty) {
      entry.dirty = true;
      if (slot.dirty.length === 0) this.#dirtySlots.push(slot);
      slot.dirty.push(key);
    }
  }

  #late(value: unknown, ts: number, key: Key, start: number): void {
    this.ctx.outcome |= outcomeLate;
    const end = start + this.#size;
    this.lateHandler(
      value,
      ts,
      key,
      `window [${start}, ${end}) closed: watermark ${this.watermark} >= window end - 1 + allowed lateness ${this.lateness}`,
    );
  }

  /** The slot for `start`, created when needed; null when that window is past its allowed lateness. */
  #slotFor(start: number): Slot | null {
    let slot = this.#slots.get(start);
    if (slot === undefined) {
      const end = start + this.#size;
      if (end - 1 + this.lateness <= this.watermark) return null;
      slot = new Slot(start, end);
      if (end > this.maxEnd) this.maxEnd = end;
      // A window whose end has already passed the watermark exists only to absorb a late record
      // within the allowed lateness: it is final from birth, and its records emit updates.
      if (end - 1 <= this.watermark) slot.fired = true;
      this.#slots.set(start, slot);
      const order = this.#order;
      let i = order.length;
      while (i > 0 && order[i - 1].end > end) i--;
      order.splice(i, 0, slot);
    }
    this.#last = slot;
    return slot;
  }

  advanceWatermark(watermarkMs: number): void {
    if (watermarkMs <= this.watermark) return;
    this.watermark = watermarkMs;
    const order = this.#order;
    let purge = 0;
    for (let i = 0; i < order.length; i++) {
      const slot = order[i];
      if (slot.end - 1 > watermarkMs) break;
      if (!slot.fired) {
        slot.fired = true;
        for (const [key, entry] of slot.entries) {
          entry.dirty = false;
          this.emit(key, slot.start, slot.end, entry.acc, entry.count, 'final');
        }
        slot.dirty.length = 0;
      }
      if (slot.end - 1 + this.lateness <= watermarkMs && purge === i) purge = i + 1;
    }
    if (purge > 0) {
      for (let i = 0; i < purge; i++) this.#slots.delete(order[i].start);
      order.splice(0, purge);
      this.#last = null;
    }
  }

  emitEarly(): void {
    const slots = this.#dirtySlots;
    this.#dirtySlots = [];
    for (const slot of slots) {
      const keys = slot.dirty;
      slot.dirty = [];
      if (slot.fired) continue;
      for (const key of keys) {
        const entry = slot.entries.get(key);
        if (entry === undefined || !entry.dirty) continue;
        entry.dirty = false;
        this.emit(key, slot.start, slot.end, entry.acc, entry.count, 'early');
      }
    }
  }

  snapshot(): WindowStateSnapshot {
    return {
      kind: 'slots',
      slots: this.#order.map((slot) => ({
        start: slot.start,
        end: slot.end,
        fired: slot.fired,
        entries: [...slot.entries].map(([key, entry]): [Key, unknown, number] => [
          key,
          entry.acc,
          entry.count,
        ]),
      })),
    };
  }

  restore(snapshot: WindowStateSnapshot): void {
    this.#slots.clear();
    this.#order = [];
    this.#last = null;
    for (const saved of snapshot.slots ?? []) {
      const slot = new Slot(saved.start, saved.end);
      slot.fired = saved.fired;
      for (const [key, acc, count] of saved.entries) {
        const entry = new Entry(acc);
        entry.count = count;
        slot.entries.set(key, entry);
      }
      this.#slots.set(slot.start, slot);
      this.#order.push(slot);
      if (slot.end > this.maxEnd) this.maxEnd = slot.end;
    }
  }

  stateSize(): number {
    let n = 0;
    for (const slot of this.#order) n += slot.entries.size;
    return n;
  }
}

interface Session {
  start: number;
  /** Exclusive end: last record time + gap. */
  end: number;
  acc: unknown;
  count: number;
  fired: boolean;
  dirty: boolean;
}

/** Session windows: per key, a list of non-overlapping sessions sorted by start, merged on bridging records. */
export class SessionWindowOperator extends WindowOperatorBase {
  readonly #gap: number;
  readonly #sessions = new Map<Key, Session[]>();
  /** Smallest session end - 1 over all keys; lets watermark advances that fire nothing skip the scan. */
  #minEnd = Infinity;
  readonly #merge: (a: unknown, b: unknown) => unknown;

  constructor(
    spec: SessionWindow,
    agg: Aggregator<unknown, unknown, unknown>,
    options: WindowOptions,
    ctx: RecordContext,
    jobName: string,
  ) {
    super(agg, options, ctx, jobName);
    this.#gap = spec.gapMs;
    if (agg.merge === undefined) {
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `job ${jobName}: session windows need an aggregator with merge(a, b)`,
      );
    }
    this.#merge = agg.merge.bind(agg);
  }

  push(value: unknown, ts: number, key: Key): void {
    const gap = this.#gap;
    let list = this.#sessions.get(key);
    if (list === undefined) {
      list = [];
      this.#sessions.set(key, list);
    }
    // Sessions the new record's [ts, ts + gap) touches.
    let first = -1;
    let lastIdx = -1;
    for (let i = 0; i < list.length; i++) {
      const s = list[i];
      // Inclusive like Flink's TimeWindow.intersects: sessions exactly gapMs apart merge.
      if (s.start <= ts + gap && ts <= s.end) {
        if (first < 0) first = i;
        lastIdx = i;
      }
    }
    if (first < 0) {
      if (ts + gap - 1 + this.lateness <= this.watermark) {
        this.ctx.outcome |= outcomeLate;
        this.lateHandler(
          value,
          ts,
          key,
          `session window [${ts}, ${ts + gap}) closed: watermark ${this.watermark} >= end - 1 + allowed lateness ${this.lateness}`,
        );
        return;
      }
      const session: Session = {
        start: ts,
        end: ts + gap,
        acc: this.agg.add(this.agg.init(), value),
        count: 1,
        fired: false,
        dirty: false,
      };
      let i = 0;
      while (i < list.length && list[i].start < ts) i++;
      list.splice(i, 0, session);
      this.#touched(key, session);
      return;
    }
    const target = list[first];
    for (let i = first + 1; i <= lastIdx; i++) {
      const other = list[i];
      target.acc = this.#merge(target.acc, other.acc);
      target.count += other.count;
      target.end = Math.max(target.end, other.end);
      target.fired = target.fired && other.fired;
    }
    if (lastIdx > first) list.splice(first + 1, lastIdx - first);
    target.start = Math.min(target.start, ts);
    target.end = Math.max(target.end, ts + gap);
    target.acc = this.agg.add(target.acc, value);
    target.count++;
    this.#touched(key, target);
  }

  #touched(key: Key, session: Session): void {
    this.ctx.outcome |= outcomeAccepted;
    if (session.end > this.maxEnd) this.maxEnd = session.end;
    if (session.end - 1 <= this.watermark) {
      session.fired = true;
      this.emit(
        key,
        session.start,
        session.end,
        session.acc,
        session.count,
        session.count === 1 ? 'final' : 'update',
      );
    } else {
      session.fired = false;
      session.dirty = true;
      if (session.end - 1 < this.#minEnd) this.#minEnd = session.end - 1;
    }
  }

  advanceWatermark(watermarkMs: number): void {
    if (watermarkMs <= this.watermark) return;
    this.watermark = watermarkMs;
    if (this.#minEnd > watermarkMs && this.lateness === 0) return;
    let minEnd = Infinity;
    for (const [key, list] of this.#sessions) {
      let keep = 0;
      for (let i = 0; i < list.length; i++) {
        const s = list[i];
        if (s.end - 1 <= watermarkMs && !s.fired) {
          s.fired = true;
          s.dirty = false;
          this.emit(key, s.start, s.end, s.acc, s.count, 'final');
        }
        if (s.end - 1 + this.lateness > watermarkMs) {
          list[keep++] = s;
          if (!s.fired && s.end - 1 < minEnd) minEnd = s.end - 1;
        }
      }
      list.length = keep;
      if (keep === 0) this.#sessions.delete(key);
    }
    this.#minEnd = minEnd;
  }

  emitEarly(): void {
    for (const [key, list] of this.#sessions) {
      for (const s of list) {
        if (!s.dirty || s.fired) continue;
        s.dirty = false;
        this.emit(key, s.start, s.end, s.acc, s.count, 'early');
      }
    }
  }

  snapshot(): WindowStateSnapshot {
    return {
      kind: 'sessions',
      sessions: [...this.#sessions].map(
        ([key, list]): [Key, [number, number, unknown, number, boolean][]] => [
          key,
          list.map((s): [number, number, unknown, number, boolean] => [
            s.start,
            s.end,
            s.acc,
            s.count,
            s.fired,
          ]),
        ],
      ),
    };
  }

  restore(snapshot: WindowStateSnapshot): void {
    this.#sessions.clear();
    let minEnd = Infinity;
    for (const [key, list] of snapshot.sessions ?? []) {
      this.#sessions.set(
        key,
        list.map(([start, end, acc, count, fired]) => {
          if (!fired && end - 1 < minEnd) minEnd = end - 1;
          if (end > this.maxEnd) this.maxEnd = end;
          return { start, end, acc, count, fired, dirty: false };
        }),
      );
    }
    this.#minEnd = minEnd;
  }

  stateSize(): number {
    let n = 0;
    for (const list of this.#sessions.values()) n += list.length;
    return n;
  }
}

export type WindowOperator = FixedWindowOperator | SessionWindowOperator;

export function createWindowOperator(
  spec: WindowSpec,
  agg: Aggregator<unknown, unknown, unknown>,
  options: WindowOptions,
  ctx: RecordContext,
  jobName: string,
): WindowOperator {
  return spec.kind === 'session'
    ? new SessionWindowOperator(spec, agg, options, ctx, jobName)
    : new FixedWindowOperator(spec, agg, options, ctx, jobName);
}
