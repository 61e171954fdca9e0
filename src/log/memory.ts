import { systemClock, TributaryError, type Clock } from '../core/index.js';
import { findPartition, findTopic, LocalGroupLog, promised } from './local-offsets.js';
import { Partitioner } from './partitioner.js';
import {
  normalizeRecord,
  recordPayloadBytes,
  resolveFetchOptions,
  validateOffset,
  validateTopicConfig,
  validateTopicName,
} from './records.js';
import { partitionKey, Signals } from './signals.js';
import type {
  AppendResult,
  FetchOptions,
  Log,
  LogRecord,
  ProducerRecord,
  TopicConfig,
  TopicDescription,
  TopicPartitionOffset,
} from './types.js';

export interface MemoryLogOptions {
  /** Time source for default timestamps and time retention (tests pass a ManualClock). */
  clock?: Clock;
  /** Retention applied when a topic's config leaves it out. */
  defaultRetentionMs?: number;
  defaultRetentionBytes?: number;
}

interface MemoryPartition {
  /** Records from `startOffset` on; `records[i].offset === startOffset + i`. */
  records: LogRecord[];
  startOffset: number;
  sizeBytes: number;
}

interface MemoryTopic {
  name: string;
  retentionMs: number;
  retentionBytes: number;
  partitions: MemoryPartition[];
}

/** Extra operations of the in-memory backend (beyond `Log`). */
export interface MemoryLog extends Log {
  readonly kind: 'memory';
  /** Applies time and size retention now (it also runs after every append). */
  enforceRetention(): Promise<void>;
}

/**
 * A `Log` held in memory: same contract as the embedded and Kafka backends (groups, long polls,
 * timestamps, retention), nothing survives the process. For tests and for the stream engine's
 * unit tests.
 *
 * @example
 * const log = createMemoryLog();
 * await log.createTopic('events', { partitions: 4 });
 * await log.append([{ topic: 'events', key: 'user-1', value: '{"n":1}' }]);
 * const records = await log.fetch('events', 0, 0, { waitMs: 100 });
 */
export function createMemoryLog(options: MemoryLogOptions = {}): MemoryLog {
  return new MemoryLogImpl(options);
}

/** Committed offsets are held in memory only (see LocalGroupLog for the shared group operations). */
class MemoryLogImpl extends LocalGroupLog implements MemoryLog {
  readonly kind = 'memory' as const;
  readonly signals = new Signals();
  readonly #clock: Clock;
  readonly #defaultRetentionMs: number;
  readonly #defaultRetentionBytes: number;
  readonly #topics = new Map<string, MemoryTopic>();
  readonly #partitioner = new Partitioner();
  #closed = false;

  constructor(options: MemoryLogOptions) {
    super();
    this.#clock = options.clock ?? systemClock;
    this.#defaultRetentionMs = options.defaultRetentionMs ?? -1;
    this.#defaultRetentionBytes = options.defaultRetentionBytes ?? -1;
  }

  assertOpen(): void {
    if (this.#closed) throw new TributaryError('CLOSED', 'the memory log is closed');
  }

  createTopic(name: string, config: TopicConfig, options?: { ifNotExists?: boolean }): Promise<void> {
    return promised(() => {
      this.assertOpen();
      validateTopicName(name);
      validateTopicConfig(name, config);
      if (this.#topics.has(name)) {
        if (options?.ifNotExists) return;
        throw new TributaryError('ALREADY_EXISTS', `topic ${name} already exists`);
      }
      this.#topics.set(name, {
        name,
        retentionMs: config.retentionMs ?? this.#defaultRetentionMs,
        retentionBytes: config.retentionBytes ?? this.#defaultRetentionBytes,
        partitions: Array.from({ length: config.partitions }, () => ({
          records: [],
          startOffset: 0,
          sizeBytes: 0,
        })),
      });
      return;
    });
  }

  ensureTopic(name: string, config: TopicConfig): Promise<void> {
    return this.createTopic(name, config, { ifNotExists: true });
  }

  deleteTopic(name: string): Promise<void> {
    return promised(() => {
      this.assertOpen();
      this.#topic(name);
      this.#topics.delete(name);
      this.groups.dropTopic(name);
      return;
    });
  }

  listTopics(): Promise<string[]> {
    return promised(() => {
      this.assertOpen();
      return [...this.#topics.keys()].sort();
    });
  }

  describeTopic(name: string): Promise<TopicDescription> {
    return promised(() => {
      this.assertOpen();
      const topic = this.#topic(name);
      return {
        name,
        retentionMs: topic.retentionMs,
        retentionBytes: topic.retentionBytes,
        partitions: topic.partitions.map((p, partition) => ({
          partition,
          startOffset: p.startOffset,
          endOffset: p.startOffset + p.records.length,
          sizeBytes: p.sizeBytes,
        })),
      };
    });
  }

  append(records: ProducerRecord[]): Promise<AppendResult[]> {
    return promised(() => {
      {
        this.assertOpen();
        const nowMs = this.#clock.now();
        this.#partitioner.beginBatch();
        // Validate everything first so a bad record leaves the log untouched.
        const normalized = records.map((record, index) => {
          const topic = this.#topic(record.topic);
          const count = topic.partitions.length;
          return normalizeRecord(record, index, count, nowMs, this.#partitioner);
        });
        const results: AppendResult[] = [];
        const touched = new Set<MemoryTopic>();
        for (const record of normalized) {
          const topic = this.#topics.get(record.topic)!;
          const partition = topic.partitions[record.partition];
          const offset = partition.startOffset + partition.records.length;
          partition.records.push({ ...record, offset });
          partition.sizeBytes += recordPayloadBytes(record);
          results.push({ topic: record.topic, partition: record.partition, offset });
          touched.add(topic);
        }
        for (const topic of touched) this.#applyRetention(topic);
        for (const r of new Set(results.map((r) => partitionKey(r.topic, r.partition))))
          this.signals.notify(r);
        return results;
      }
    });
  }

  async fetch(
    topic: string,
    partition: number,
    offset: number,
    options?: FetchOptions,
  ): Promise<LogRecord[]> {
    this.assertOpen();
    validateOffset(offset, `fetch ${topic}/${partition}`);
    const resolved = resolveFetchOptions(options);
    const deadline = Date.now() + resolved.waitMs;
    for (;;) {
      const stored = this.#partition(topic, partition);
      const from = Math.max(offset, stored.startOffset) - stored.startOffset;
      const out: LogRecord[] = [];
      let bytes = 0;
      for (let i = from; i < stored.records.length && out.length < resolved.maxRecords; i++) {
        const record = stored.records[i];
        const size = recordPayloadBytes(record);
        if (out.length > 0 && bytes + size > resolved.maxBytes) break;
        bytes += size;
        out.push(copyRecord(record));
      }
      const remainingMs = deadline - Date.now();
      if (out.length > 0 || remainingMs <= 0 || resolved.signal?.aborted || this.#closed) return out;
      await this.signals.wait([partitionKey(topic, partition)], remainingMs, resolved.signal);
      this.assertOpen();
    }
  }

  offsetForTimestamp(topic: string, partition: number, timestamp: number): Promise<number> {
    return promised(() => {
      this.assertOpen();
      const stored = this.#partition(topic, partition);
      const index = stored.records.findIndex((r) => r.timestamp >= timestamp);
      return stored.startOffset + (index < 0 ? stored.records.length : index);
    });
  }

  commitOffsets(group: string, offsets: TopicPartitionOffset[]): Promise<void> {
    return promised(() => {
      this.assertOpen();
      this.groups.commit(group, offsets);
    });
  }

  partitionCount(topic: string): number | undefined {
    return this.#topics.get(topic)?.partitions.length;
  }

  bounds(topic: string, partition: number): { startOffset: number; endOffset: number } {
    const p = this.#partition(topic, partition);
    return { startOffset: p.startOffset, endOffset: p.startOffset + p.records.length };
  }

  enforceRetention(): Promise<void> {
    return promised(() => {
      this.assertOpen();
      for (const topic of this.#topics.values()) this.#applyRetention(topic);
      return;
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.groups.membership.closeAll();
    this.#closed = true;
    this.signals.notifyAll();
  }

  /** Drops the oldest records past the topic's age or size limit; the newest record always stays. */
  #applyRetention(topic: MemoryTopic): void {
    const oldestKeptMs = topic.retentionMs >= 0 ? this.#clock.now() - topic.retentionMs : -Infinity;
    for (const p of topic.partitions) {
      let drop = 0;
      let size = p.sizeBytes;
      while (drop < p.records.length - 1) {
        const record = p.records[drop];
        const tooBig = topic.retentionBytes >= 0 && size > topic.retentionBytes;
        if (!tooBig && record.timestamp >= oldestKeptMs) break;
        size -= recordPayloadBytes(record);
        drop++;
      }
      if (drop > 0) {
        p.records.splice(0, drop);
        p.startOffset += drop;
        p.sizeBytes = size;
      }
    }
  }

  protected partitionsOf(topic: string): number {
    return this.#topic(topic).partitions.length;
  }

  #topic(name: string): MemoryTopic {
    return findTopic(this.#topics, name);
  }

  #partition(topic: string, partition: number): MemoryPartition {
    return findPartition(this.#topics, topic, partition);
  }
}

/** Readers get their own header object, so one consumer cannot change what another reads. */
function copyRecord(record: LogRecord): LogRecord {
  return { ...record, headers: { ...record.headers } };
}
