import { toTributaryError, TributaryError } from '../core/index.js';
import { InProcessMembership, LocalConsumer, type LocalLogCore } from './local-group.js';
import { validateOffset } from './records.js';
import type { Signals } from './signals.js';
import type {
  Consumer,
  ConsumerOptions,
  FetchOptions,
  LogRecord,
  StartPosition,
  TopicPartitionOffset,
} from './types.js';

/**
 * Committed offsets and in-process group membership, shared by the two local backends (memory and
 * embedded). Both keep offsets in memory and coordinate groups inside the process; what differs
 * stays in the backend: how a topic's partitions are stored (found through `LocalLogCore`), and
 * whether offsets are persisted (the embedded log writes `groups/<group>.json` after each change and
 * calls `restore` on open).
 */
export class LocalGroups {
  readonly membership: InProcessMembership;
  readonly #core: LocalLogCore;
  /** group → topic → partition → committed offset (next offset to read). */
  readonly #committed = new Map<string, Map<string, Map<number, number>>>();

  constructor(core: LocalLogCore) {
    this.#core = core;
    this.membership = new InProcessMembership(core);
  }

  /**
   * Checks every offset first (its partition exists, the offset is valid), then records them all,
   * so a bad entry leaves the group's offsets untouched.
   */
  commit(group: string, offsets: TopicPartitionOffset[]): void {
    for (const o of offsets) {
      this.#core.bounds(o.topic, o.partition);
      validateOffset(o.offset, `commit ${group} ${o.topic}/${o.partition}`);
    }
    for (const o of offsets) this.#groupTopic(group, o.topic).set(o.partition, o.offset);
  }

  /** Lists `group` (with no offsets yet) when it is not known already. */
  ensureGroup(group: string): void {
    if (!this.#committed.has(group)) this.#committed.set(group, new Map<string, Map<number, number>>());
  }

  /** Sets a group's offsets as read back from storage (replaces what was held for it). */
  restore(group: string, byTopic: Map<string, Map<number, number>>): void {
    this.#committed.set(group, byTopic);
  }

  /** A group's offsets as `{topic: {partition: offset}}`, the shape the embedded log persists. */
  snapshot(group: string): Record<string, Record<string, number>> {
    const offsets: Record<string, Record<string, number>> = {};
    for (const [topic, byPartition] of this.#committed.get(group) ?? []) {
      offsets[topic] = Object.fromEntries([...byPartition].map(([p, o]) => [String(p), o]));
    }
    return offsets;
  }

  /** Forgets a deleted topic's offsets; returns the groups that had some (in commit order). */
  dropTopic(topic: string): string[] {
    const groups: string[] = [];
    for (const [group, byTopic] of this.#committed) {
      if (byTopic.delete(topic)) groups.push(group);
    }
    return groups;
  }

  /** A copy, so callers cannot change the committed offsets. */
  committedOffsets(group: string, topic: string): Map<number, number> {
    return new Map<number, number>(this.#committed.get(group)?.get(topic) ?? []);
  }

  committedOffset(group: string, topic: string, partition: number): number | undefined {
    return this.#committed.get(group)?.get(topic)?.get(partition);
  }

  /**
   * The offsets `resetOffsets` commits for each of the topic's `partitions`: its start, its end,
   * or the first offset at or after a timestamp. Refused while the group has members on the topic,
   * as Kafka does, because they would keep reading from their old positions.
   */
  async resetTargets(
    group: string,
    topic: string,
    partitions: number,
    to: StartPosition,
  ): Promise<TopicPartitionOffset[]> {
    if (this.membership.hasMembers(group, topic)) {
      throw new TributaryError(
        'CONFLICT',
        `group ${group} has active consumers on topic ${topic}; close them before resetting offsets (as Kafka requires)`,
      );
    }
    const offsets: TopicPartitionOffset[] = [];
    for (let partition = 0; partition < partitions; partition++) {
      const bounds = this.#core.bounds(topic, partition);
      const offset =
        to === 'earliest'
          ? bounds.startOffset
          : to === 'latest'
            ? bounds.endOffset
            : await this.#core.offsetForTimestamp(topic, partition, to.timestamp);
      offsets.push({ topic, partition, offset });
    }
    return offsets;
  }

  /** Groups with committed offsets or with members in this process, sorted. */
  groups(): string[] {
    return [...new Set([...this.#committed.keys(), ...this.membership.groups()])].sort();
  }

  consumer(options: ConsumerOptions): Consumer {
    return new LocalConsumer(this.#core, this.membership, options);
  }

  #groupTopic(group: string, topic: string): Map<number, number> {
    let byTopic = this.#committed.get(group);
    if (byTopic === undefined) this.#committed.set(group, (byTopic = new Map<string, Map<number, number>>()));
    let byPartition = byTopic.get(topic);
    if (byPartition === undefined) byTopic.set(topic, (byPartition = new Map<number, number>()));
    return byPartition;
  }
}

/**
 * The consumer-group half of `Log` for the local backends, on top of their `LocalGroups`. A backend
 * extends it and supplies its storage through `LocalLogCore` plus `partitionsOf`; `commitOffsets`
 * stays in each backend because only the embedded log persists commits.
 */
export abstract class LocalGroupLog implements LocalLogCore {
  abstract readonly signals: Signals;
  /** Committed offsets and group membership of this log. */
  protected readonly groups = new LocalGroups(this);

  abstract assertOpen(): void;
  abstract partitionCount(topic: string): number | undefined;
  abstract bounds(topic: string, partition: number): { startOffset: number; endOffset: number };
  abstract fetch(
    topic: string,
    partition: number,
    offset: number,
    options?: FetchOptions,
  ): Promise<LogRecord[]>;
  abstract offsetForTimestamp(topic: string, partition: number, timestamp: number): Promise<number>;
  abstract commitOffsets(group: string, offsets: TopicPartitionOffset[]): Promise<void>;
  /** The topic's partition count; throws NOT_FOUND when the topic does not exist. */
  protected abstract partitionsOf(topic: string): number;

  committedOffsets(group: string, topic: string): Promise<Map<number, number>> {
    return promised(() => {
      this.assertOpen();
      return this.groups.committedOffsets(group, topic);
    });
  }

  committedOffset(group: string, topic: string, partition: number): number | undefined {
    return this.groups.committedOffset(group, topic, partition);
  }

  async resetOffsets(group: string, topic: string, to: StartPosition): Promise<void> {
    this.assertOpen();
    const partitions = this.partitionsOf(topic);
    await this.commitOffsets(group, await this.groups.resetTargets(group, topic, partitions, to));
  }

  listGroups(): Promise<string[]> {
    return promised(() => {
      this.assertOpen();
      return this.groups.groups();
    });
  }

  consumer(options: ConsumerOptions): Consumer {
    this.assertOpen();
    return this.groups.consumer(options);
  }
}

/** A local backend's topic by name; NOT_FOUND names the topics that do exist. */
export function findTopic<T>(topics: ReadonlyMap<string, T>, name: string): T {
  const topic = topics.get(name);
  if (topic === undefined) {
    throw new TributaryError(
      'NOT_FOUND',
      `topic ${name} does not exist; topics: ${[...topics.keys()].sort().join(', ') || '(none)'}`,
    );
  }
  return topic;
}

/** One partition of a local backend's topic (whatever its store type); NOT_FOUND when missing. */
export function findPartition<P>(
  topics: ReadonlyMap<string, { partitions: readonly P[] }>,
  topic: string,
  partition: number,
): P {
  const stored = findTopic(topics, topic);
  const p = stored.partitions[partition];
  if (p === undefined) {
    throw new TributaryError(
      'NOT_FOUND',
      `topic ${topic} has no partition ${partition} (it has ${stored.partitions.length})`,
    );
  }
  return p;
}

/**
 * Runs synchronous work as a promise, so errors become rejections like in the async backends (a
 * caller's `.catch` sees them, never a synchronous throw).
 */
export function promised<T>(work: () => T): Promise<T> {
  try {
    return Promise.resolve(work());
  } catch (error) {
    return Promise.reject(toTributaryError(error));
  }
}
