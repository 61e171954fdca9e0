import { randomBytes } from 'node:crypto';
import { Admin, Consumer as KafkaClientConsumer, Producer, type ClusterMetadata } from '@platformatic/kafka';
import { childLogger, toTributaryError, TributaryError, limits } from '../../core/index.js';
import { Partitioner } from '../partitioner.js';
import {
  normalizeRecord,
  resolveFetchOptions,
  validateOffset,
  validateTopicConfig,
  validateTopicName,
  type NormalizedRecord,
} from '../records.js';
import type {
  AppendResult,
  Consumer,
  ConsumerOptions,
  FetchOptions,
  Log,
  LogRecord,
  ProducerRecord,
  StartPosition,
  TopicConfig,
  TopicDescription,
  TopicPartition,
  TopicPartitionOffset,
} from '../types.js';

export interface KafkaLogOptions {
  /** `host:port` of one or more brokers. */
  brokers: string[];
  clientId?: string;
  /** Retention for topics created without their own (-1 = broker default). */
  retentionMs?: number;
  retentionBytes?: number;
  /** Replication factor for created topics (-1 = broker default). */
  replicas?: number;
  /** Request timeout. */
  timeoutMs?: number;
  /** SASL credentials (a `tributary up` Kafka listener: any user name / the API key with PLAIN). */
  sasl?: { mechanism: 'PLAIN' | 'SCRAM-SHA-256'; username: string; password: string };
}

const logger = childLogger('log.kafka');
/** Kafka's ListOffsets sentinels. */
const latestTimestamp = -1n;
const earliestTimestamp = -2n;
/** Batch attribute bit of transaction control batches (never user records). */
const controlBatchBit = 0x20;

/** Text of a client error and everything it wraps (the client nests per-partition errors). */
function errorText(error: unknown, depth = 0): string {
  if (depth > 4 || error === null || typeof error !== 'object') return String(error);
  const e = error as { message?: string; errors?: unknown[]; cause?: unknown; apiId?: string };
  const parts = [e.apiId ?? '', e.message ?? ''];
  for (const inner of e.errors ?? []) parts.push(errorText(inner, depth + 1));
  if (e.cause !== undefined) parts.push(errorText(e.cause, depth + 1));
  return parts.filter(Boolean).join(' | ');
}

function mapError(error: unknown, what: string): TributaryError {
  if (error instanceof TributaryError) return error;
  const text = errorText(error);
  if (text.includes('TOPIC_ALREADY_EXISTS'))
    return new TributaryError('ALREADY_EXISTS', `${what}: ${text}`, { cause: error });
  // The client reports UNKNOWN_TOPIC_OR_PARTITION in metadata as its own "Unknown topic <name>.".
  if (text.includes('UNKNOWN_TOPIC') || text.includes('Unknown topic')) {
    return new TributaryError('NOT_FOUND', `${what}: ${text}`, { cause: error });
  }
  if (text.includes('INVALID_TOPIC_EXCEPTION') || text.includes('INVALID_PARTITIONS')) {
    return new TributaryError('INVALID_ARGUMENT', `${what}: ${text}`, { cause: error });
  }
  return new TributaryError('EXTERNAL', `${what}: Kafka error: ${text}`, { cause: error });
}

interface TopicMetadata {
  id: string;
  partitions: number;
  leaders: number[];
}

/**
 * Splits records (in order) so that no record's timestamp is 2^31 ms or more after the first
 * record of its partition in the same send. @platformatic/kafka 1.35 zig-zag-encodes the int64
 * varint of a record's timestampDelta with `>> 31n` instead of `>> 63n`, which writes a wrong
 * timestamp for such deltas (found by running the Log contract against the Kafka listener; any
 * broker decodes the same wrong value). Negative deltas are encoded correctly.
 */
function timestampSafeChunks(records: NormalizedRecord[]): NormalizedRecord[][] {
  const chunks: NormalizedRecord[][] = [];
  let current: NormalizedRecord[] = [];
  let firsts = new Map<string, number>();
  for (const record of records) {
    const key = `${record.topic}\u0000${record.partition}`;
    const first = firsts.get(key);
    if (first !== undefined && record.timestamp - first >= limits.kafkaBatchTimestampDeltaMsMax) {
      chunks.push(current);
      current = [];
      firsts = new Map();
    }
    if (!firsts.has(key)) firsts.set(key, record.timestamp);
    current.push(record);
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/**
 * The `Log` on Apache Kafka through `@platformatic/kafka`: an idempotent producer (acks=all), reads
 * by offset with Fetch requests to partition leaders, consumer groups through Kafka's group
 * coordinator, offsets in `__consumer_offsets`. Keys go to the same partitions as in the embedded
 * log (murmur2, computed here and sent as explicit partitions).
 *
 * @example
 * const log = await openKafkaLog({ brokers: ['127.0.0.1:9092'] });
 * await log.ensureTopic('events', { partitions: 6 });
 */
export async function openKafkaLog(options: KafkaLogOptions): Promise<Log> {
  const log = new KafkaLog(options);
  try {
    await log.connect();
  } catch (error) {
    await log.close().catch(() => undefined);
    throw new TributaryError(
      'UNAVAILABLE',
      `cannot reach Kafka at ${options.brokers.join(',')}: ${errorText(error)}`,
      {
        cause: error,
      },
    );
  }
  return log;
}

class KafkaLog implements Log {
  readonly kind = 'kafka' as const;
  readonly #options: KafkaLogOptions;
  readonly #clientId: string;
  readonly #admin: Admin;
  readonly #producer: Producer;
  /** Never joins a group: used for Fetch, ListOffsets and committed-offset reads. */
  readonly #reader: KafkaClientConsumer;
  readonly #partitioner = new Partitioner();
  readonly #topics = new Map<string, TopicMetadata>();
  readonly #members = new Set<KafkaGroupConsumer>();
  #closed = false;

  constructor(options: KafkaLogOptions) {
    this.#options = options;
    this.#clientId = options.clientId ?? `tributary-${process.pid}`;
    const base = this.baseOptions;
    this.#admin = new Admin({ ...base, clientId: `${this.#clientId}-admin` });
    this.#producer = new Producer({
      ...base,
      clientId: `${this.#clientId}-producer`,
      idempotent: true,
      acks: -1,
    });
    this.#reader = new KafkaClientConsumer({
      ...base,
      clientId: `${this.#clientId}-reader`,
      groupId: `tributary-reader-${randomBytes(6).toString('hex')}`,
    });
  }

  get baseOptions() {
    return {
      bootstrapBrokers: this.#options.brokers,
      timeout: this.#options.timeoutMs ?? 30_000,
      retries: 3,
      ...(this.#options.sasl === undefined ? {} : { sasl: { ...this.#options.sasl } }),
    };
  }

  get clientId(): string {
    return this.#clientId;
  }

  async connect(): Promise<void> {
    await this.#admin.listTopics();
  }

  #assertOpen(): void {
    if (this.#closed) throw new TributaryError('CLOSED', 'the Kafka log is closed');
  }

  /** Partition count, topic id and leaders of a topic (cached; refreshed on demand). */
  async topicMetadata(topic: string, refresh = false): Promise<TopicMetadata> {
    const cached = this.#topics.get(topic);
    if (cached !== undefined && !refresh) return cached;
    let metadata: ClusterMetadata;
    try {
      metadata = await this.#admin.metadata({ topics: [topic], forceUpdate: true, autocreateTopics: false });
    } catch (error) {
      const mapped = mapError(error, `metadata of topic ${topic}`);
      if (mapped.code === 'NOT_FOUND' || /UNKNOWN_TOPIC/.test(mapped.message)) {
        throw new TributaryError('NOT_FOUND', `topic ${topic} does not exist`, { cause: error });
      }
      throw mapped;
    }
    const info = metadata.topics.get(topic);
    if (info === undefined) throw new TributaryError('NOT_FOUND', `topic ${topic} does not exist`);
    const entry = {
      id: info.id,
      partitions: info.partitionsCount,
      leaders: info.partitions.map((p) => p.leader),
    };
    this.#topics.set(topic, entry);
    return entry;
  }

  async createTopic(name: string, config: TopicConfig, options?: { ifNotExists?: boolean }): Promise<void> {
    this.#assertOpen();
    validateTopicName(name);
    validateTopicConfig(name, config);
    const retentionMs = config.retentionMs ?? this.#options.retentionMs;
    const retentionBytes = config.retentionBytes ?? this.#options.retentionBytes;
    const configs = [
      ...(retentionMs === undefined ? [] : [{ name: 'retention.ms', value: String(retentionMs) }]),
      ...(retentionBytes === undefined ? [] : [{ name: 'retention.bytes', value: String(retentionBytes) }]),
    ];
    try {
      await this.#admin.createTopics({
        topics: [name],
        partitions: config.partitions,
        replicas: this.#options.replicas ?? -1,
        configs,
      });
    } catch (error) {
      const mapped = mapError(error, `create topic ${name}`);
      if (mapped.code === 'ALREADY_EXISTS') {
        if (options?.ifNotExists) return;
        throw new TributaryError('ALREADY_EXISTS', `topic ${name} already exists`, { cause: error });
      }
      throw mapped;
    }
    // Topic creation is asynchronous in Kafka: wait until the metadata shows leaders.
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        const meta = await this.topicMetadata(name, true);
        if (meta.partitions === config.partitions && meta.leaders.every((l) => l >= 0)) return;
      } catch (error) {
        if (!(error instanceof TributaryError && error.code === 'NOT_FOUND')) throw error;
      }
      if (Date.now() > deadline)
        throw new TributaryError('TIMEOUT', `topic ${name} was created but has no leaders after 30 s`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  ensureTopic(name: string, config: TopicConfig): Promise<void> {
    return this.createTopic(name, config, { ifNotExists: true });
  }

  async deleteTopic(name: string): Promise<void> {
    this.#assertOpen();
    await this.topicMetadata(name, true);
    try {
      await this.#admin.deleteTopics({ topics: [name] });
    } catch (error) {
      throw mapError(error, `delete topic ${name}`);
    }
    this.#topics.delete(name);
  }

  async listTopics(): Promise<string[]> {
    this.#assertOpen();
    try {
      return (await this.#admin.listTopics({ includeInternals: false })).sort();
    } catch (error) {
      throw mapError(error, 'list topics');
    }
  }

  async describeTopic(name: string): Promise<TopicDescription> {
    this.#assertOpen();
    const meta = await this.topicMetadata(name, true);
    const partitions = Array.from({ length: meta.partitions }, (_, p) => p);
    const [starts, ends] = await Promise.all([
      this.#listOffsets(name, partitions, earliestTimestamp),
      this.#listOffsets(name, partitions, latestTimestamp),
    ]);
    let retentionMs = -1;
    let retentionBytes = -1;
    try {
      const [description] = await this.#admin.describeConfigs({
        resources: [
          { resourceType: 2, resourceName: name, configurationKeys: ['retention.ms', 'retention.bytes'] },
        ],
      });
      for (const c of description?.configs ?? []) {
        if (c.name === 'retention.ms' && c.value !== null) retentionMs = Number(c.value);
        if (c.name === 'retention.bytes' && c.value !== null) retentionBytes = Number(c.value);
      }
    } catch (error) {
      logger.warn({ err: error, topic: name }, 'could not read topic retention configs');
    }
    const sizes = await this.#partitionSizes(name).catch(() => new Map<number, number>());
    return {
      name,
      retentionMs,
      retentionBytes,
      partitions: partitions.map((p) => ({
        partition: p,
        startOffset: starts[p] ?? 0,
        endOffset: ends[p] ?? 0,
        sizeBytes: sizes.get(p) ?? 0,
      })),
    };
  }

  async #partitionSizes(topic: string): Promise<Map<number, number>> {
    const meta = await this.topicMetadata(topic);
    const dirs = await this.#admin.describeLogDirs({
      topics: [{ name: topic, partitions: Array.from({ length: meta.partitions }, (_, p) => p) }],
    });
    const sizes = new Map<number, number>();
    for (const broker of dirs) {
      for (const result of broker.results) {
        for (const t of result.topics) {
          if (t.name !== topic) continue;
          // Replicas on several brokers: report the largest copy.
          for (const p of t.partitions)
            sizes.set(p.partitionIndex, Math.max(sizes.get(p.partitionIndex) ?? 0, Number(p.partitionSize)));
        }
      }
    }
    return sizes;
  }

  async #listOffsets(topic: string, partitions: number[], timestamp: bigint): Promise<number[]> {
    try {
      const result = await this.#reader.listOffsets({
        topics: [topic],
        partitions: { [topic]: partitions },
        timestamp,
      });
      // The client answers with an array indexed by partition number (holes elsewhere).
      const offsets = result.get(topic) ?? [];
      return partitions.map((p) => (offsets[p] === undefined ? -1 : Number(offsets[p])));
    } catch (error) {
      throw mapError(error, `list offsets of ${topic}`);
    }
  }

  async append(records: ProducerRecord[]): Promise<AppendResult[]> {
    this.#assertOpen();
    if (records.length === 0) return [];
    const counts = new Map<string, number>();
    for (const r of records)
      if (!counts.has(r.topic)) counts.set(r.topic, (await this.topicMetadata(r.topic)).partitions);
    const nowMs = Date.now();
    this.#partitioner.beginBatch();
    const normalized: NormalizedRecord[] = records.map((record, i) => {
      const count = counts.get(record.topic)!;
      return normalizeRecord(record, i, count, nowMs, this.#partitioner);
    });
    const results: AppendResult[] = [];
    for (const chunk of timestampSafeChunks(normalized)) results.push(...(await this.#send(chunk)));
    return results;
  }

  /** The send in flight: sends go one at a time (see `#send`). */
  #sending: Promise<unknown> = Promise.resolve();

  /**
   * One producer send at a time. @platformatic/kafka's idempotent producer advances a partition's
   * sequence number only when a send's answer arrives, so two concurrent sends to one partition
   * carry the same sequence and the broker refuses the second (OUT_OF_ORDER_SEQUENCE_NUMBER);
   * concurrent appends happen whenever several tasks of a worker share this log.
   */
  #send(normalized: NormalizedRecord[]): Promise<AppendResult[]> {
    const run = this.#sending.then(() => this.#sendNow(normalized));
    this.#sending = run.catch(() => undefined);
    return run;
  }

  async #sendNow(normalized: NormalizedRecord[]): Promise<AppendResult[]> {
    let result;
    try {
      result = await this.#producer.send({
        messages: normalized.map((n) => ({
          topic: n.topic,
          partition: n.partition,
          timestamp: BigInt(n.timestamp),
          ...(n.key === null ? {} : { key: Buffer.from(n.key.buffer, n.key.byteOffset, n.key.byteLength) }),
          ...(n.value === null
            ? {}
            : { value: Buffer.from(n.value.buffer, n.value.byteOffset, n.value.byteLength) }),
          headers: new Map(
            Object.entries(n.headers).map(([k, v]) => [
              Buffer.from(k),
              Buffer.from(v.buffer, v.byteOffset, v.byteLength),
            ]),
          ),
        })),
      });
    } catch (error) {
      throw mapError(error, 'append');
    }
    // The broker returns the base offset per partition; records of one partition are consecutive.
    const base = new Map<string, number>();
    for (const o of result.offsets ?? []) base.set(`${o.topic}\u0000${o.partition}`, Number(o.offset));
    const seen = new Map<string, number>();
    return normalized.map((n) => {
      const key = `${n.topic}\u0000${n.partition}`;
      const index = seen.get(key) ?? 0;
      seen.set(key, index + 1);
      const first = base.get(key);
      if (first === undefined)
        throw new TributaryError('EXTERNAL', `Kafka did not report an offset for ${n.topic}/${n.partition}`);
      return { topic: n.topic, partition: n.partition, offset: first + index };
    });
  }

  async fetch(
    topic: string,
    partition: number,
    offset: number,
    options?: FetchOptions,
  ): Promise<LogRecord[]> {
    this.#assertOpen();
    validateOffset(offset, `fetch ${topic}/${partition}`);
    const resolved = resolveFetchOptions(options);
    const meta = await this.topicMetadata(topic);
    if (partition < 0 || partition >= meta.partitions) {
      throw new TributaryError(
        'NOT_FOUND',
        `topic ${topic} has no partition ${partition} (it has ${meta.partitions})`,
      );
    }
    let response;
    try {
      response = await this.#reader.fetch({
        node: meta.leaders[partition],
        maxWaitTime: resolved.waitMs,
        minBytes: resolved.waitMs > 0 ? 1 : 0,
        maxBytes: resolved.maxBytes,
        topics: [
          {
            topicId: meta.id,
            partitions: [
              {
                partition,
                currentLeaderEpoch: -1,
                fetchOffset: BigInt(offset),
                lastFetchedEpoch: -1,
                partitionMaxBytes: resolved.maxBytes,
              },
            ],
          },
        ],
      });
    } catch (error) {
      this.#topics.delete(topic);
      throw mapError(error, `fetch ${topic}/${partition} at ${offset}`);
    }
    const out: LogRecord[] = [];
    for (const t of response.responses) {
      for (const p of t.partitions) {
        if (p.errorCode !== 0) {
          // OFFSET_OUT_OF_RANGE (1) below the log start: read from the start, like the other backends.
          if (p.errorCode === 1 && offset < Number(p.logStartOffset))
            return this.fetch(topic, partition, Number(p.logStartOffset), options);
          this.#topics.delete(topic);
          throw new TributaryError(
            'EXTERNAL',
            `fetch ${topic}/${partition} at ${offset}: Kafka error code ${p.errorCode}`,
          );
        }
        for (const batch of p.records ?? []) {
          if ((batch.attributes & controlBatchBit) !== 0) continue;
          for (const r of batch.records) {
            const recordOffset = Number(batch.firstOffset) + r.offsetDelta;
            if (recordOffset < offset || out.length >= resolved.maxRecords) continue;
            const headers: Record<string, Uint8Array> = {};
            for (const [k, v] of r.headers)
              if (k !== null) headers[k.toString('utf8')] = v ?? new Uint8Array(0);
            out.push({
              topic,
              partition,
              offset: recordOffset,
              timestamp: Number(batch.firstTimestamp + r.timestampDelta),
              key: r.key,
              value: r.value,
              headers,
            });
          }
        }
      }
    }
    return out;
  }

  async offsetForTimestamp(topic: string, partition: number, timestamp: number): Promise<number> {
    this.#assertOpen();
    const [offset] = await this.#listOffsets(topic, [partition], BigInt(timestamp));
    if (offset === undefined || offset < 0)
      return (await this.#listOffsets(topic, [partition], latestTimestamp))[0] ?? 0;
    return offset;
  }

  async commitOffsets(group: string, offsets: TopicPartitionOffset[]): Promise<void> {
    this.#assertOpen();
    for (const o of offsets) validateOffset(o.offset, `commit ${group} ${o.topic}/${o.partition}`);
    const member = [...this.#members].find((m) => m.group === group && !m.closed);
    if (member !== undefined) return member.commit(offsets);
    const byTopic = new Map<string, { partition: number; offset: bigint }[]>();
    for (const o of offsets) {
      let list = byTopic.get(o.topic);
      if (list === undefined) byTopic.set(o.topic, (list = []));
      list.push({ partition: o.partition, offset: BigInt(o.offset) });
    }
    try {
      await this.#admin.alterConsumerGroupOffsets({
        groupId: group,
        topics: [...byTopic].map(([name, partitionOffsets]) => ({ name, partitionOffsets })),
      });
    } catch (error) {
      throw mapError(error, `commit offsets of group ${group}`);
    }
  }

  async committedOffsets(group: string, topic: string): Promise<Map<number, number>> {
    this.#assertOpen();
    const meta = await this.topicMetadata(topic);
    let groups;
    try {
      groups = await this.#admin.listConsumerGroupOffsets({
        groups: [
          {
            groupId: group,
            topics: [{ name: topic, partitionIndexes: Array.from({ length: meta.partitions }, (_, p) => p) }],
          },
        ],
      });
    } catch (error) {
      throw mapError(error, `committed offsets of group ${group}`);
    }
    const out = new Map<number, number>();
    for (const g of groups)
      for (const t of g.topics)
        for (const p of t.partitions)
          if (p.committedOffset >= 0n) out.set(p.partitionIndex, Number(p.committedOffset));
    return out;
  }

  async resetOffsets(group: string, topic: string, to: StartPosition): Promise<void> {
    this.#assertOpen();
    const meta = await this.topicMetadata(topic, true);
    const partitions = Array.from({ length: meta.partitions }, (_, p) => p);
    const offsets =
      to === 'earliest'
        ? await this.#listOffsets(topic, partitions, earliestTimestamp)
        : to === 'latest'
          ? await this.#listOffsets(topic, partitions, latestTimestamp)
          : await Promise.all(partitions.map((p) => this.offsetForTimestamp(topic, p, to.timestamp)));
    // Kafka itself refuses to alter offsets of a group with active members.
    await this.commitOffsets(
      group,
      partitions.map((partition) => ({ topic, partition, offset: offsets[partition] ?? 0 })),
    );
  }

  async listGroups(): Promise<string[]> {
    this.#assertOpen();
    try {
      return [...(await this.#admin.listGroups()).keys()]
        .filter((g) => !g.startsWith('tributary-reader-'))
        .sort();
    } catch (error) {
      throw mapError(error, 'list groups');
    }
  }

  consumer(options: ConsumerOptions): Consumer {
    this.#assertOpen();
    const member = new KafkaGroupConsumer(this, options);
    this.#members.add(member);
    return member;
  }

  forget(member: KafkaGroupConsumer): void {
    this.#members.delete(member);
  }

  async listOffsetsFor(topic: string, partition: number, position: 'earliest' | 'latest'): Promise<number> {
    return (
      (
        await this.#listOffsets(
          topic,
          [partition],
          position === 'earliest' ? earliestTimestamp : latestTimestamp,
        )
      )[0] ?? 0
    );
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    for (const member of [...this.#members]) await member.close().catch(() => undefined);
    this.#closed = true;
    await Promise.allSettled([this.#producer.close(), this.#reader.close(), this.#admin.close()]);
  }
}

/**
 * A member of a Kafka consumer group. Kafka's group coordinator assigns partitions (rebalances on
 * join and leave, with heartbeats); this class reads its partitions by offset through the log's
 * Fetch path, so positions, seek and pause behave exactly as in the local backends.
 */
class KafkaGroupConsumer implements Consumer {
  readonly group: string;
  readonly #log: KafkaLog;
  readonly #client: KafkaClientConsumer;
  readonly #topics: string[];
  readonly #from: StartPosition;
  readonly #onAssignment: ConsumerOptions['onAssignment'];
  #assignment: TopicPartition[] = [];
  readonly #positions = new Map<string, number>();
  readonly #paused = new Set<string>();
  #joined: Promise<void> | undefined;
  #cursor = 0;
  closed = false;

  constructor(log: KafkaLog, options: ConsumerOptions) {
    this.group = options.group;
    this.#log = log;
    this.#topics = [...new Set(options.topics)];
    this.#from = options.from ?? 'earliest';
    this.#onAssignment = options.onAssignment;
    this.#client = new KafkaClientConsumer({
      ...log.baseOptions,
      clientId: `${log.clientId}-${options.group}`,
      groupId: options.group,
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
      rebalanceTimeout: 10_000,
    });
  }

  #join(): Promise<void> {
    this.#joined ??= (async () => {
      this.#client.topics.trackAll(...this.#topics);
      await this.#client.joinGroup({
        sessionTimeout: 10_000,
        heartbeatInterval: 1_000,
        rebalanceTimeout: 10_000,
      });
    })().catch((error: unknown) => {
      this.#joined = undefined;
      throw mapError(error, `join group ${this.group}`);
    });
    return this.#joined;
  }

  /** Applies the coordinator's current assignment, calling onAssignment with the difference. */
  async #syncAssignment(): Promise<void> {
    const next: TopicPartition[] = [];
    for (const a of this.#client.assignments ?? [])
      for (const partition of a.partitions) next.push({ topic: a.topic, partition });
    const key = (tp: TopicPartition) => `${tp.topic}\u0000${tp.partition}`;
    const before = new Set(this.#assignment.map(key));
    const after = new Set(next.map(key));
    const assigned = next.filter((tp) => !before.has(key(tp)));
    const revoked = this.#assignment.filter((tp) => !after.has(key(tp)));
    if (assigned.length === 0 && revoked.length === 0) return;
    for (const tp of revoked) {
      this.#positions.delete(key(tp));
      this.#paused.delete(key(tp));
    }
    this.#assignment = next;
    await this.#onAssignment?.(assigned, revoked);
  }

  assignment(): TopicPartition[] {
    return this.#assignment.map((tp) => ({ ...tp }));
  }

  position(tp: TopicPartition): number {
    const position = this.#positions.get(`${tp.topic}\u0000${tp.partition}`);
    if (position === undefined) {
      throw new TributaryError(
        'CONFLICT',
        `position of ${tp.topic}/${tp.partition} for group ${this.group} is not known before the first poll`,
      );
    }
    return position;
  }

  seek(tp: TopicPartition, offset: number): void {
    validateOffset(offset, `seek ${tp.topic}/${tp.partition}`);
    this.#positions.set(`${tp.topic}\u0000${tp.partition}`, offset);
  }

  pause(tps: TopicPartition[]): void {
    for (const tp of tps) this.#paused.add(`${tp.topic}\u0000${tp.partition}`);
  }

  resume(tps: TopicPartition[]): void {
    for (const tp of tps) this.#paused.delete(`${tp.topic}\u0000${tp.partition}`);
  }

  async commit(offsets?: TopicPartitionOffset[]): Promise<void> {
    if (this.closed) throw new TributaryError('CLOSED', `consumer of group ${this.group} is closed`);
    await this.#join();
    const list =
      offsets ??
      this.#assignment.flatMap((tp) => {
        const position = this.#positions.get(`${tp.topic}\u0000${tp.partition}`);
        return position === undefined ? [] : [{ ...tp, offset: position }];
      });
    if (list.length === 0) return;
    try {
      await this.#client.commit({
        offsets: list.map((o) => ({
          topic: o.topic,
          partition: o.partition,
          offset: BigInt(o.offset),
          leaderEpoch: -1,
        })),
      });
    } catch (error) {
      throw mapError(error, `commit offsets of group ${this.group}`);
    }
  }

  async #startPosition(tp: TopicPartition): Promise<number> {
    const committed = await this.#log.committedOffsets(this.group, tp.topic);
    const offset = committed.get(tp.partition);
    if (offset !== undefined) return offset;
    if (this.#from === 'earliest' || this.#from === 'latest')
      return this.#log.listOffsetsFor(tp.topic, tp.partition, this.#from);
    return this.#log.offsetForTimestamp(tp.topic, tp.partition, this.#from.timestamp);
  }

  async poll(options?: FetchOptions): Promise<LogRecord[]> {
    if (this.closed) throw new TributaryError('CLOSED', `consumer of group ${this.group} is closed`);
    const resolved = resolveFetchOptions(options);
    const deadline = Date.now() + resolved.waitMs;
    await this.#join();
    for (;;) {
      await this.#syncAssignment();
      const active = this.#assignment.filter((tp) => !this.#paused.has(`${tp.topic}\u0000${tp.partition}`));
      const out: LogRecord[] = [];
      const start = active.length === 0 ? 0 : this.#cursor++ % active.length;
      for (let i = 0; i < active.length && out.length < resolved.maxRecords; i++) {
        const tp = active[(start + i) % active.length];
        const key = `${tp.topic}\u0000${tp.partition}`;
        let position = this.#positions.get(key);
        if (position === undefined) {
          position = await this.#startPosition(tp);
          this.#positions.set(key, position);
        }
        const records = await this.#log.fetch(tp.topic, tp.partition, position, {
          maxRecords: resolved.maxRecords - out.length,
        });
        if (records.length > 0 && this.#positions.get(key) === position) {
          out.push(...records);
          this.#positions.set(key, records[records.length - 1].offset + 1);
        }
      }
      const remainingMs = deadline - Date.now();
      if (out.length > 0 || remainingMs <= 0 || resolved.signal?.aborted || this.closed) return out;
      await new Promise((resolve) => setTimeout(resolve, Math.min(remainingMs, 50)));
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.#log.forget(this);
    try {
      // Leaving lets the coordinator rebalance at once instead of after the session timeout.
      if (this.#joined !== undefined) {
        await new Promise<void>((resolve, reject) =>
          this.#client.leaveGroup(false, (error) => (error ? reject(error) : resolve())),
        );
      }
    } catch (error) {
      logger.warn({ err: toTributaryError(error) }, 'leaving Kafka consumer group failed');
    } finally {
      await this.#client
        .close()
        .catch((error: unknown) =>
          logger.warn({ err: toTributaryError(error) }, 'closing Kafka consumer failed'),
        );
    }
  }
}
