/**
 * The `Log` contract: a durable, partitioned, append-only record log. The embedded backend
 * (segment files under the data dir) is the default; the Kafka backend implements the same
 * interface, and one contract suite (`contract.case.ts`) runs against every backend.
 *
 * Offsets are per partition, start at 0 and only grow; JavaScript numbers are exact up to 2^53.
 */

export type Bytes = Uint8Array;

/** What a producer hands to `append`. Strings are encoded as UTF-8. */
export interface ProducerRecord {
  topic: string;
  key?: Bytes | string | null;
  value: Bytes | string | null;
  headers?: Record<string, Bytes | string>;
  /** Event/creation time in epoch ms; defaults to the append time. */
  timestamp?: number;
  /** Explicit partition; by default murmur2(key) as Kafka's default partitioner, round-robin for null keys. */
  partition?: number;
}

/** A record as stored and read back. */
export interface LogRecord {
  topic: string;
  partition: number;
  offset: number;
  timestamp: number;
  key: Bytes | null;
  value: Bytes | null;
  headers: Record<string, Bytes>;
}

export interface AppendResult {
  topic: string;
  partition: number;
  offset: number;
}

export interface TopicConfig {
  partitions: number;
  /** Delete segments older than this (ms); -1 keeps forever. */
  retentionMs?: number;
  /** Keep at most about this many bytes per partition; -1 is unbounded. */
  retentionBytes?: number;
}

export interface PartitionInfo {
  partition: number;
  /** First offset still stored (moves forward with retention). */
  startOffset: number;
  /** Offset the next appended record will get (= high watermark). */
  endOffset: number;
  sizeBytes: number;
  /**
   * Set when the partition's stored data is damaged (embedded log): why its reads and writes are
   * refused until an operator repairs it (`tributary topics inspect|repair`).
   */
  fenced?: string;
}

export interface TopicDescription {
  name: string;
  partitions: PartitionInfo[];
  retentionMs: number;
  retentionBytes: number;
}

export type StartPosition = 'earliest' | 'latest' | { timestamp: number };

export interface TopicPartition {
  topic: string;
  partition: number;
}

export interface TopicPartitionOffset extends TopicPartition {
  offset: number;
}

export interface FetchOptions {
  maxRecords?: number;
  maxBytes?: number;
  /** Wait up to this long for data when none is available (long poll). 0 returns at once. */
  waitMs?: number;
  signal?: AbortSignal;
}

export interface ConsumerOptions {
  group: string;
  topics: string[];
  /** Where to start in partitions the group has no committed offset for. Default earliest. */
  from?: StartPosition;
  /** Called when this member's assignment changes (another member joined or left). */
  onAssignment?: (assigned: TopicPartition[], revoked: TopicPartition[]) => void | Promise<void>;
}

/**
 * A member of a consumer group. Members of one group (in one process or, for the embedded
 * backend, several processes on one machine) share the partitions of the subscribed topics.
 */
export interface Consumer {
  readonly group: string;
  assignment(): TopicPartition[];
  /** Next records from assigned partitions, in offset order per partition. */
  poll(options?: FetchOptions): Promise<LogRecord[]>;
  /** Position (next offset to read) of an assigned partition. */
  position(tp: TopicPartition): number;
  seek(tp: TopicPartition, offset: number): void;
  /** Commits explicit offsets (the next offset to read), or the current positions when omitted. */
  commit(offsets?: TopicPartitionOffset[]): Promise<void>;
  /** Stops fetching from partitions without losing the assignment (back-pressure). */
  pause(tps: TopicPartition[]): void;
  resume(tps: TopicPartition[]): void;
  close(): Promise<void>;
}

export interface Log {
  readonly kind: 'embedded' | 'kafka' | 'memory' | 'remote';
  createTopic(name: string, config: TopicConfig, options?: { ifNotExists?: boolean }): Promise<void>;
  /** Creates the topic when missing; an existing topic is used as it is (like Kafka auto-create). */
  ensureTopic(name: string, config: TopicConfig): Promise<void>;
  deleteTopic(name: string): Promise<void>;
  listTopics(): Promise<string[]>;
  describeTopic(name: string): Promise<TopicDescription>;
  /**
   * Appends records (possibly to several topics and partitions) and resolves when all are durable
   * under the backend's durability policy. Order is kept per partition.
   */
  append(records: ProducerRecord[]): Promise<AppendResult[]>;
  /**
   * Reads a partition from `offset` on. Returns [] at the end unless `waitMs` lets data arrive.
   * An offset below the start offset (data removed by retention) reads from the start offset; the
   * gap shows in the returned offsets. Only acknowledged (durable) records are visible.
   */
  fetch(topic: string, partition: number, offset: number, options?: FetchOptions): Promise<LogRecord[]>;
  /** First offset whose timestamp is >= `timestamp` (the end offset when none is). */
  offsetForTimestamp(topic: string, partition: number, timestamp: number): Promise<number>;
  commitOffsets(group: string, offsets: TopicPartitionOffset[]): Promise<void>;
  /** Committed offsets of `group` for `topic`, by partition; partitions never committed are absent. */
  committedOffsets(group: string, topic: string): Promise<Map<number, number>>;
  /** Sets a group's offsets on a topic to earliest, latest or a timestamp. */
  resetOffsets(group: string, topic: string, to: StartPosition): Promise<void>;
  listGroups(): Promise<string[]>;
  consumer(options: ConsumerOptions): Consumer;
  close(): Promise<void>;
}
