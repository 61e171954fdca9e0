import { toTributaryError, TributaryError } from '../core/index.js';
import { describeStartPosition, notAssigned, resolveFetchOptions, validateOffset } from './records.js';
import { groupKey, partitionKey, type Signals } from './signals.js';
import type {
  Consumer,
  ConsumerOptions,
  FetchOptions,
  LogRecord,
  StartPosition,
  TopicPartition,
  TopicPartitionOffset,
} from './types.js';

/**
 * What the in-process group coordinator needs from a local backend (memory or embedded). Offsets
 * and bounds are held in memory by both backends, so these are synchronous.
 */
export interface LocalLogCore {
  readonly signals: Signals;
  assertOpen(): void;
  /** Partition count of a topic, or undefined when it does not exist (yet). */
  partitionCount(topic: string): number | undefined;
  bounds(topic: string, partition: number): { startOffset: number; endOffset: number };
  committedOffset(group: string, topic: string, partition: number): number | undefined;
  /** Returns a new array on every call (the caller may keep and change it). */
  fetch(topic: string, partition: number, offset: number, options?: FetchOptions): Promise<LogRecord[]>;
  offsetForTimestamp(topic: string, partition: number, timestamp: number): Promise<number>;
  commitOffsets(group: string, offsets: TopicPartitionOffset[]): Promise<void>;
}

/**
 * How members of a group learn which partitions are theirs. The in-process default assigns among
 * the members of this process; the embedded backend can plug in file leases so members in several
 * processes split the partitions.
 */
export interface Membership {
  /** Partitions `member` may read now, given the current subscriptions. */
  assignmentFor(member: LocalConsumer): TopicPartition[];
  join(member: LocalConsumer): void;
  leave(member: LocalConsumer): Promise<void>;
  /** A subscribed topic appeared or changed its partition count: recompute assignments. */
  refresh(member: LocalConsumer): void;
}

const tpKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

/**
 * Kafka's range assignor, per topic: members sorted by id, partitions in order; the first
 * `partitions % members` members get one extra. Deterministic, so every process computes the same
 * answer from the same member list.
 */
export function rangeAssign(
  members: { id: string; topics: readonly string[] }[],
  partitionCount: (topic: string) => number | undefined,
): Map<string, TopicPartition[]> {
  const result = new Map<string, TopicPartition[]>(members.map((m) => [m.id, []]));
  const topics = new Set(members.flatMap((m) => m.topics));
  for (const topic of [...topics].sort()) {
    const count = partitionCount(topic) ?? 0;
    const subscribed = members
      .filter((m) => m.topics.includes(topic))
      .map((m) => m.id)
      .sort();
    if (count === 0 || subscribed.length === 0) continue;
    const each = Math.floor(count / subscribed.length);
    const extra = count % subscribed.length;
    let next = 0;
    subscribed.forEach((id, index) => {
      const take = each + (index < extra ? 1 : 0);
      const list = result.get(id)!;
      for (let i = 0; i < take; i++) list.push({ topic, partition: next + i });
      next += take;
    });
  }
  return result;
}

/** Group membership among consumers of this process. */
export class InProcessMembership implements Membership {
  readonly #members = new Map<string, Set<LocalConsumer>>();
  readonly #core: LocalLogCore;

  constructor(core: LocalLogCore) {
    this.#core = core;
  }

  join(member: LocalConsumer): void {
    let set = this.#members.get(member.group);
    if (set === undefined) this.#members.set(member.group, (set = new Set()));
    set.add(member);
    this.rebalance(member.group);
  }

  leave(member: LocalConsumer): Promise<void> {
    const set = this.#members.get(member.group);
    set?.delete(member);
    if (set !== undefined && set.size === 0) this.#members.delete(member.group);
    this.rebalance(member.group);
    return Promise.resolve();
  }

  assignmentFor(member: LocalConsumer): TopicPartition[] {
    const members = [...(this.#members.get(member.group) ?? [])];
    return rangeAssign(members, (t) => this.#core.partitionCount(t)).get(member.id) ?? [];
  }

  refresh(member: LocalConsumer): void {
    this.rebalance(member.group);
  }

  /** Recomputes every member's assignment; members see it at once and are woken from long polls. */
  rebalance(group: string): void {
    for (const member of this.#members.get(group) ?? []) member.applyAssignment(this.assignmentFor(member));
    this.#core.signals.notify(groupKey(group));
  }

  groups(): string[] {
    return [...this.#members.keys()];
  }

  hasMembers(group: string, topic: string): boolean {
    return [...(this.#members.get(group) ?? [])].some((m) => m.topics.includes(topic));
  }

  async closeAll(): Promise<void> {
    for (const set of [...this.#members.values()]) for (const member of [...set]) await member.close();
  }
}

let memberSequence = 0;

/** A group member reading from a local backend. */
export class LocalConsumer implements Consumer {
  readonly group: string;
  readonly id: string;
  readonly topics: readonly string[];
  readonly #core: LocalLogCore;
  readonly #membership: Membership;
  readonly #from: StartPosition;
  readonly #onAssignment: ConsumerOptions['onAssignment'];
  #assignment: TopicPartition[] = [];
  readonly #positions = new Map<string, number>();
  readonly #paused = new Set<string>();
  #callbacks: Promise<void> = Promise.resolve();
  #callbackError: unknown = undefined;
  #partitionCounts = '';
  #cursor = 0;
  #closed = false;

  constructor(core: LocalLogCore, membership: Membership, options: ConsumerOptions) {
    if (!options.group) throw new TributaryError('INVALID_ARGUMENT', 'consumer group name must not be empty');
    if (options.topics.length === 0)
      throw new TributaryError('INVALID_ARGUMENT', 'a consumer needs at least one topic');
    this.group = options.group;
    this.topics = [...new Set(options.topics)];
    this.id = `${options.group}-${process.pid}-${String(++memberSequence).padStart(6, '0')}`;
    this.#core = core;
    this.#membership = membership;
    this.#from = options.from ?? 'earliest';
    this.#onAssignment = options.onAssignment;
    this.#partitionCounts = this.#countsSignature();
    membership.join(this);
  }

  /** Called by the membership with this member's new partitions. */
  applyAssignment(next: TopicPartition[]): void {
    if (this.#closed) return;
    const before = new Map(this.#assignment.map((tp) => [tpKey(tp.topic, tp.partition), tp]));
    const after = new Map(next.map((tp) => [tpKey(tp.topic, tp.partition), tp]));
    const assigned = next.filter((tp) => !before.has(tpKey(tp.topic, tp.partition)));
    const revoked = this.#assignment.filter((tp) => !after.has(tpKey(tp.topic, tp.partition)));
    if (assigned.length === 0 && revoked.length === 0) return;
    for (const tp of revoked) {
      this.#positions.delete(tpKey(tp.topic, tp.partition));
      this.#paused.delete(tpKey(tp.topic, tp.partition));
    }
    this.#assignment = next.map((tp) => ({ ...tp }));
    const callback = this.#onAssignment;
    if (callback !== undefined) {
      // A partition is read only once its callback has run (the callback may seek it), even when
      // this reassignment lands while a poll is already past its wait for earlier callbacks.
      const keys = assigned.map((tp) => tpKey(tp.topic, tp.partition));
      for (const key of keys) this.#awaitingCallback.set(key, (this.#awaitingCallback.get(key) ?? 0) + 1);
      // Callbacks run in order; a failure surfaces from the next poll instead of being lost.
      this.#callbacks = this.#callbacks
        .then(() => callback(assigned, revoked))
        .catch((error: unknown) => {
          this.#callbackError = error;
        })
        .finally(() => {
          for (const key of keys) {
            const left = (this.#awaitingCallback.get(key) ?? 1) - 1;
            if (left > 0) this.#awaitingCallback.set(key, left);
            else this.#awaitingCallback.delete(key);
          }
        });
    }
  }

  /** Newly assigned partitions → how many of their `onAssignment` callbacks have not finished yet. */
  readonly #awaitingCallback = new Map<string, number>();

  assignment(): TopicPartition[] {
    return this.#assignment.map((tp) => ({ ...tp }));
  }

  position(tp: TopicPartition): number {
    const key = this.#assertAssigned(tp);
    const known = this.#positions.get(key);
    if (known !== undefined) return known;
    const sync = this.#startPositionSync(tp);
    if (sync === undefined) {
      throw new TributaryError(
        'CONFLICT',
        `position of ${tp.topic}/${tp.partition} for group ${this.group} is resolved by timestamp on the first poll`,
      );
    }
    this.#positions.set(key, sync);
    return sync;
  }

  seek(tp: TopicPartition, offset: number): void {
    validateOffset(offset, `seek ${tp.topic}/${tp.partition}`);
    this.#positions.set(this.#assertAssigned(tp), offset);
  }

  pause(tps: TopicPartition[]): void {
    for (const tp of tps) this.#paused.add(this.#assertAssigned(tp));
  }

  resume(tps: TopicPartition[]): void {
    for (const tp of tps) this.#paused.delete(tpKey(tp.topic, tp.partition));
    this.#core.signals.notify(groupKey(this.group));
  }

  async commit(offsets?: TopicPartitionOffset[]): Promise<void> {
    this.#assertOpen();
    const list =
      offsets ??
      this.#assignment.flatMap((tp) => {
        const position = this.#positions.get(tpKey(tp.topic, tp.partition));
        return position === undefined ? [] : [{ ...tp, offset: position }];
      });
    if (list.length > 0) await this.#core.commitOffsets(this.group, list);
  }

  async poll(options?: FetchOptions): Promise<LogRecord[]> {
    this.#assertOpen();
    const resolved = resolveFetchOptions(options);
    const deadline = Date.now() + resolved.waitMs;
    for (;;) {
      await this.#settle();
      const records = await this.#pollOnce(resolved.maxRecords, resolved.maxBytes);
      const remainingMs = deadline - Date.now();
      if (records.length > 0 || remainingMs <= 0 || resolved.signal?.aborted || this.#closed) return records;
      const keys = [
        groupKey(this.group),
        ...this.#assignment.map((tp) => partitionKey(tp.topic, tp.partition)),
      ];
      // Topics that do not exist yet get created later: wake on a timer to notice them.
      const waitMs = this.#assignment.length === 0 ? Math.min(remainingMs, 100) : remainingMs;
      await this.#core.signals.wait(keys, waitMs, resolved.signal);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#assignment = [];
    this.#positions.clear();
    await this.#membership.leave(this);
  }

  get closed(): boolean {
    return this.#closed;
  }

  async #settle(): Promise<void> {
    const counts = this.#countsSignature();
    if (counts !== this.#partitionCounts) {
      // A subscribed topic appeared or grew: everyone in the group recomputes.
      this.#partitionCounts = counts;
      this.#membership.refresh(this);
    }
    await this.#callbacks;
    if (this.#callbackError !== undefined) {
      const error = this.#callbackError;
      this.#callbackError = undefined;
      throw toTributaryError(error);
    }
  }

  async #pollOnce(maxRecords: number, maxBytes: number): Promise<LogRecord[]> {
    const active = this.#assignment.filter((tp) => {
      const key = tpKey(tp.topic, tp.partition);
      return !this.#paused.has(key) && !this.#awaitingCallback.has(key);
    });
    if (active.length === 0) return [];
    let out: LogRecord[] = [];
    let bytes = 0;
    const start = this.#cursor++ % active.length;
    for (let i = 0; i < active.length && out.length < maxRecords && bytes < maxBytes; i++) {
      const tp = active[(start + i) % active.length];
      const key = tpKey(tp.topic, tp.partition);
      let position = this.#positions.get(key);
      if (position === undefined) {
        position = (await this.#startPosition(tp)) ?? 0;
        this.#positions.set(key, position);
      }
      if (position >= this.#core.bounds(tp.topic, tp.partition).endOffset) continue;
      const records = await this.#core.fetch(tp.topic, tp.partition, position, {
        maxRecords: maxRecords - out.length,
        maxBytes: maxBytes - bytes,
      });
      // The assignment may have changed while we awaited; drop records of revoked partitions.
      if (!this.#assignment.some((a) => a.topic === tp.topic && a.partition === tp.partition)) continue;
      if (this.#positions.get(key) !== position) continue;
      // fetch returns a new array: the first partition's records need no copy.
      if (out.length === 0) out = records;
      else for (const record of records) out.push(record);
      if (records.length > 0) this.#positions.set(key, records[records.length - 1].offset + 1);
      // The byte budget left only matters to the next partition's fetch.
      if (i + 1 < active.length)
        for (const record of records) bytes += (record.value?.length ?? 0) + (record.key?.length ?? 0);
    }
    return out;
  }

  #startPositionSync(tp: TopicPartition): number | undefined {
    const committed = this.#core.committedOffset(this.group, tp.topic, tp.partition);
    if (committed !== undefined) return committed;
    const bounds = this.#core.bounds(tp.topic, tp.partition);
    if (this.#from === 'earliest') return bounds.startOffset;
    if (this.#from === 'latest') return bounds.endOffset;
    return undefined;
  }

  async #startPosition(tp: TopicPartition): Promise<number | undefined> {
    const sync = this.#startPositionSync(tp);
    if (sync !== undefined) return sync;
    if (typeof this.#from === 'object')
      return this.#core.offsetForTimestamp(tp.topic, tp.partition, this.#from.timestamp);
    throw new TributaryError('INTERNAL', `unresolvable start position ${describeStartPosition(this.#from)}`);
  }

  #countsSignature(): string {
    return this.topics.map((t) => this.#core.partitionCount(t) ?? 0).join(',');
  }

  #assertAssigned(tp: TopicPartition): string {
    const key = tpKey(tp.topic, tp.partition);
    if (!this.#assignment.some((a) => a.topic === tp.topic && a.partition === tp.partition))
      throw notAssigned(tp, this.group);
    return key;
  }

  #assertOpen(): void {
    if (this.#closed) throw new TributaryError('CLOSED', `consumer of group ${this.group} is closed`);
    this.#core.assertOpen();
  }
}
