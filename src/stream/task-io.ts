/**
 * What one task of a scaled-out job (scale.ts) reads through: a consumer over exactly the partitions
 * its worker was assigned (the worker's group membership decides which; the task itself joins no
 * group). Its lease and checkpoints are in task-store.ts.
 */
import { TributaryError } from '../core/index.js';
import {
  notAssigned,
  startOffsets,
  type Consumer,
  type FetchOptions,
  type Log,
  type LogRecord,
  type StartPosition,
  type TopicPartition,
  type TopicPartitionOffset,
} from '../log/index.js';

const tpKey = (tp: TopicPartition) => `${tp.topic}/${tp.partition}`;

/**
 * A consumer of fixed partitions. Start positions (the group's committed offset, else `from`) are
 * resolved before it is returned, so `position` is synchronous like a group member's.
 */
export async function openAssignedConsumer(
  log: Log,
  partitions: readonly TopicPartition[],
  group: string,
  from: StartPosition,
): Promise<Consumer> {
  const positions = new Map<string, number>();
  for (const start of await startOffsets(log, group, partitions, from))
    positions.set(tpKey(start), start.offset);
  for (const tp of partitions) {
    if (!positions.has(tpKey(tp)))
      throw new TributaryError('NOT_FOUND', `topic ${tp.topic} has no partition ${tp.partition}`);
  }
  return new AssignedConsumer(log, partitions, group, positions);
}

class AssignedConsumer implements Consumer {
  readonly #log: Log;
  readonly #partitions: TopicPartition[];
  readonly #positions: Map<string, number>;
  readonly #paused = new Set<string>();
  #cursor = 0;
  #closed = false;

  constructor(
    log: Log,
    partitions: readonly TopicPartition[],
    readonly group: string,
    positions: Map<string, number>,
  ) {
    this.#log = log;
    this.#partitions = partitions.map((tp) => ({ ...tp }));
    this.#positions = positions;
  }

  assignment(): TopicPartition[] {
    return this.#partitions.map((tp) => ({ ...tp }));
  }

  position(tp: TopicPartition): number {
    const position = this.#positions.get(tpKey(tp));
    if (position === undefined) throw notAssigned(tp, this.group);
    return position;
  }

  seek(tp: TopicPartition, offset: number): void {
    this.position(tp);
    this.#positions.set(tpKey(tp), offset);
  }

  pause(tps: TopicPartition[]): void {
    for (const tp of tps) this.#paused.add(tpKey(tp));
  }

  resume(tps: TopicPartition[]): void {
    for (const tp of tps) this.#paused.delete(tpKey(tp));
  }

  async commit(offsets?: TopicPartitionOffset[]): Promise<void> {
    const list =
      offsets ?? this.#partitions.map((tp) => ({ ...tp, offset: this.#positions.get(tpKey(tp))! }));
    if (list.length > 0) await this.#log.commitOffsets(this.group, list);
  }

  async poll(options: FetchOptions = {}): Promise<LogRecord[]> {
    if (this.#closed) throw new TributaryError('CLOSED', `task consumer of group ${this.group} is closed`);
    const active = this.#partitions.filter((tp) => !this.#paused.has(tpKey(tp)));
    if (active.length === 0) {
      if ((options.waitMs ?? 0) > 0) await new Promise((r) => setTimeout(r, Math.min(options.waitMs!, 100)));
      return [];
    }
    const maxRecords = options.maxRecords ?? 5_000;
    const start = this.#cursor++ % active.length;
    // Every partition once without waiting; only when all are empty, one long poll (tasks mostly
    // read a single partition, so that is the one that gets the wait).
    for (let i = 0; i < active.length; i++) {
      const records = await this.#fetch(active[(start + i) % active.length], maxRecords, 0);
      if (records.length > 0) return records;
    }
    return this.#fetch(active[start], maxRecords, options.waitMs ?? 0);
  }

  async #fetch(tp: TopicPartition, maxRecords: number, waitMs: number): Promise<LogRecord[]> {
    const key = tpKey(tp);
    const position = this.#positions.get(key)!;
    const records = await this.#log.fetch(tp.topic, tp.partition, position, { maxRecords, waitMs });
    // A seek while the fetch was in flight wins over its result.
    if (this.#positions.get(key) !== position || records.length === 0) return [];
    this.#positions.set(key, records[records.length - 1].offset + 1);
    return records;
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}
