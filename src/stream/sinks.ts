/**
 * Sinks: where job outputs go, and how each one keeps "no lost, no double-counted outputs" across
 * a crash and restart from the last checkpoint.
 *
 * - `topicSink`: appends after every input batch (low latency) with a deterministic id per output in
 *   the `tributary-id` header (hash of job + window + key + kind + count, or job + source position).
 *   Each checkpoint records the output topic's end offsets; on restart the sink reads the ids written
 *   after those offsets and drops replayed outputs carrying one of them. Before a job's first
 *   checkpoint the same offsets come from the sink intent the runner stores before the first write
 *   (`intent()`, `INTENT` in checkpoint.ts), so a crash at any point is covered. This is Kafka's idempotent
 *   producer idea applied across restarts, rather than Flink's transactional producer (which delays
 *   visibility to the checkpoint: too slow for the early-update latency goal).
 * - `lakeSink`: two-phase. Rows are buffered per Hive partition (event time and/or row columns, at
 *   most `openPartitionsMax` buffers open: the least recently written one rolls first). Rolled files
 *   are staged (written, invisible) with deterministic names;
 *   the checkpoint stores the staged-file list and the not-yet-rolled rows; the files are committed
 *   under commit id `<job>-<sink>-chk-<n>` once the checkpoint manifest is durable, and re-committed
 *   on restart (the lake ignores a commit id it has already applied).
 * - `callbackSink`: calls a function per output (dashboards, tests). At-least-once across restarts.
 */
import { createHash } from 'node:crypto';
import { TributaryError, counter, limits } from '../core/index.js';
import { checkPartitionColumn, encodePartitionPath, type PartitionValues } from '../lake/index.js';
import {
  AvroSerde,
  topicValueSubject,
  type Log,
  type ProducerRecord,
  type SchemaRegistry,
} from '../log/index.js';
import { RowPartitioner, type LakePartitionColumn } from './lake-partitions.js';
import { LakeSpill, type SpillRef } from './lake-spill.js';
import type { Key, Sink, SinkContext } from './types.js';

/**
 * Adds to `into` the `tributary-id` of every record `topic` got after the end offsets `since`
 * (partition → offset): what a run that died wrote after its last checkpoint or intent. A partition
 * missing from `since` did not exist then, so all of it is newer.
 */
export async function readIdsSince(
  log: Log,
  topic: string,
  since: Record<string, number>,
  into: Set<string>,
): Promise<void> {
  const description = await log.describeTopic(topic);
  for (const { partition } of description.partitions) {
    let offset = since[String(partition)] ?? 0;
    for (;;) {
      const records = await log.fetch(topic, partition, offset, { maxRecords: 10_000 });
      if (records.length === 0) break;
      for (const record of records) {
        const id = record.headers['tributary-id'];
        if (id !== undefined && into.size < limits.sinkDedupIdsMax)
          into.add(Buffer.from(id).toString('utf8'));
      }
      offset = records[records.length - 1].offset + 1;
    }
  }
}

export interface TopicSinkOptions<T> {
  /** Record key; default the stream key (stringified), or null when unkeyed. */
  key?: (value: T, key: Key | null) => string | null;
  /** Record value; default JSON (or Avro with `encode: 'avro'`). */
  value?: (value: T) => string | Uint8Array;
  /**
   * `avro`: values in the Confluent wire format with the schema of `subject` (needs
   * `schemaRegistry`). An output that does not fit the schema fails like any step (DLQ, naming the
   * fields). Default `json`.
   */
  encode?: 'json' | 'avro';
  schemaRegistry?: SchemaRegistry;
  /** `encode: 'avro'`: the subject; default `<topic>-value` (Confluent's TopicNameStrategy). */
  subject?: string;
  /**
   * `encode: 'avro'`: the Avro schema, registered when the sink opens (the same schema again is a
   * lookup; a change the subject's compatibility level refuses fails the job with the registry's
   * reason). Default: the subject's latest version.
   */
  schema?: string | object;
  /** Partitions when the sink creates the topic. Default 1. */
  partitions?: number;
  /** Log to write to; default the job's source log. */
  log?: Log;
  /** Extra headers on every record (besides `tributary-id`). */
  headers?: Record<string, string>;
}

export interface TopicSink<T> extends Sink<T> {
  readonly topic: string;
  /** Outputs dropped because a previous run had already written them. */
  readonly deduplicated: number;
}

/**
 * @example .to(topicSink('analytics.flink', { key: (r) => r.company_id }))
 */
export function topicSink<T>(topic: string, options: TopicSinkOptions<T> = {}): TopicSink<T> {
  const avro = options.encode === 'avro';
  if (avro && (options.schemaRegistry === undefined || options.value !== undefined))
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `topic sink ${topic}: encode 'avro' needs schemaRegistry, and takes no value function`,
    );
  let encodeValue: (value: T) => string | Uint8Array = options.value ?? ((v: T) => JSON.stringify(v));
  const encodeKey = options.key ?? ((_v: T, key: Key | null) => (key === null ? null : String(key)));
  let log: Log | null = options.log ?? null;
  const extraHeaders = options.headers;
  let buffer: ProducerRecord[] = [];
  const seen = new Set<string>();
  let deduplicated = 0;

  async function endOffsets(): Promise<Record<string, number>> {
    const description = await log!.describeTopic(topic);
    return Object.fromEntries(description.partitions.map((p) => [String(p.partition), p.endOffset]));
  }

  return {
    name: `topic:${topic}`,
    topic,
    get deduplicated() {
      return deduplicated;
    },
    async open(context: SinkContext) {
      log ??= context.log;
      if (log === null)
        throw new TributaryError('INVALID_ARGUMENT', `topic sink ${topic}: no log to write to`);
      if (avro) {
        const writer = await new AvroSerde(options.schemaRegistry!).writer(
          options.subject ?? topicValueSubject(topic),
          options.schema,
        );
        encodeValue = (v: T) => writer.encode(v);
      }
      await log.ensureTopic(topic, { partitions: options.partitions ?? 1 });
      const restored = context.restored as { endOffsets?: Record<string, number> } | undefined | null;
      const intent = context.intent as { endOffsets?: Record<string, number> } | undefined | null;
      const since = restored?.endOffsets ?? intent?.endOffsets;
      if (since === undefined) return;
      // Outputs written after the last checkpoint (or, with none yet, after the intent) before the
      // crash will be produced again by the replay: remember their ids to drop the repeats.
      await readIdsSince(log, topic, since, seen);
    },
    write(value: T, timestampMs: number, key: Key | null, id: string) {
      if (seen.size > 0 && seen.has(id)) {
        deduplicated++;
        return;
      }
      buffer.push({
        topic,
        key: encodeKey(value, key),
        value: encodeValue(value),
        timestamp: timestampMs,
        headers:
          extraHeaders === undefined ? { 'tributary-id': id } : { ...extraHeaders, 'tributary-id': id },
      });
    },
    async flush() {
      if (buffer.length === 0) return;
      const out = buffer;
      buffer = [];
      await log!.append(out);
    },
    async preCommit() {
      await this.flush();
      return { endOffsets: await endOffsets() };
    },
    async intent() {
      return { endOffsets: await endOffsets() };
    },
    async commit() {},
    async close() {
      await this.flush();
    },
    forTask: () => topicSink(topic, options),
  };
}

export interface CallbackMeta {
  key: Key | null;
  timestampMs: number;
  /** Deterministic output id (see topicSink). */
  id: string;
}

/**
 * Calls `fn` for every output. Promises returned are awaited after each input batch.
 * @example .to(callbackSink((w) => dashboard.update(w)))
 */
export function callbackSink<T>(
  fn: (value: T, meta: CallbackMeta) => void | Promise<void>,
  name = 'callback',
): Sink<T> {
  let pending: Promise<void>[] = [];
  return {
    name,
    async open() {},
    write(value, timestampMs, key, id) {
      const result = fn(value, { key, timestampMs, id });
      if (result instanceof Promise) pending.push(result);
    },
    async flush() {
      if (pending.length === 0) return;
      const all = pending;
      pending = [];
      await Promise.all(all);
    },
    async preCommit() {
      await this.flush();
      return null;
    },
    async commit() {},
    async close() {
      await this.flush();
    },
    forTask: () => callbackSink(fn, name),
  };
}

/**
 * Routes part of a job's output to a sink (Flink's side outputs, Kafka Streams' `split`): the sink
 * sees only values `where` accepts, optionally mapped to its own shape with `as`; its checkpoint
 * protocol is untouched. One job can so write accepted rows, rejects and an audit trail to separate
 * tables from one pass over its input, all committed by the same checkpoint.
 * @example .to(sinkWhere((r) => r.ok, silverSink, (r) => r.row), sinkWhere((r) => !r.ok, quarantineSink))
 */
export function sinkWhere<T, U = T>(
  where: (value: T) => boolean,
  sink: Sink<U>,
  as: (value: T) => U = (value) => value as unknown as U,
): Sink<T> {
  // A routed topic sink still names its topic, so pipelines order stages by it.
  const topic = (sink as Partial<TopicSink<U>>).topic;
  return {
    name: sink.name,
    ...(typeof topic === 'string' ? { topic } : {}),
    open: (context) => sink.open(context),
    write(value, timestampMs, key, id) {
      if (where(value)) sink.write(as(value), timestampMs, key, id);
    },
    ...(sink.usesIds === false ? { usesIds: false } : {}),
    flush: () => sink.flush(),
    preCommit: (checkpointId) => sink.preCommit(checkpointId),
    commit: (checkpointId, state) => sink.commit(checkpointId, state),
    ...(sink.intent ? { intent: () => sink.intent!() } : {}),
    ...(sink.tick ? { tick: (nowMs: number) => sink.tick!(nowMs) } : {}),
    ...(sink.endOfInput ? { endOfInput: () => sink.endOfInput!() } : {}),
    close: () => sink.close(),
    ...(sink.forTask ? { forTask: () => sinkWhere(where, sink.forTask!(), as) } : {}),
  };
}

/** A file written to the lake but not yet visible (first phase of the two-phase commit). */
export interface StagedFile {
  /** Path of the staged file as the table reports it. */
  path: string;
  /** Its partition as the table wrote it (column → value, null for SQL NULL). */
  partition: PartitionValues;
  rows: number;
}

/** The rows of one partition for `TwoPhaseTable.stageMany`. */
export interface StageGroup {
  rows: Record<string, unknown>[];
  partition: PartitionValues;
  /** Partition columns the rows do not carry, with their value for every row of the group. */
  constants: Record<string, unknown>;
}

/**
 * What the lake sink needs from a lake table: stage files, then commit them atomically under an id
 * (a commit id already applied is a no-op). The lake layer's tables implement it; the pipelines
 * pass one in.
 */
export interface TwoPhaseTable {
  readonly name: string;
  /**
   * Stages the rows of one partition as one file. Every row carries the partition columns itself
   * (`partition`'s keys, outermost first): time partitions as their formatted strings, column
   * partitions with the row's own (typed) value.
   */
  stage(
    rows: Record<string, unknown>[],
    options: { partition: PartitionValues; fileName: string },
  ): Promise<StagedFile>;
  /**
   * Stages the rows of several partitions in one write, one file per partition (optional; without
   * it the sink stages buffer by buffer with `stage`). A group's rows lack the partition columns
   * `constants` gives (time partitions, computed and missing columns), which hold for all of them.
   * `fileName` is unique per call; every file of the call is named after it.
   */
  stageMany?(groups: StageGroup[], options: { fileName: string }): Promise<StagedFile[]>;
  commit(options: { commitId: string; add: StagedFile[] }): Promise<void>;
  /**
   * Merges the files of fewer than `fileRowsBelow` rows (default all) in the given partitions
   * (optional; the lake's atomic compaction).
   */
  compact?(partitions: PartitionValues[], options?: { fileRowsBelow?: number }): Promise<void>;
}

export interface LakeSinkOptions<T> {
  /** Row to store; default the value itself (must be an object). */
  row?: (value: T) => Record<string, unknown>;
  /**
   * Partition path from event time (UTC), Kafka Connect's TimeBasedPartitioner style:
   * tokens YYYY MM dd HH mm. Default 'year=YYYY/month=MM/day=dd/hour=HH'; `event_date=YYYY-MM-dd`
   * gives one date column; null partitions by columns only.
   */
  pathFormat?: string | null;
  /**
   * Partition columns taken from each row, inside the time partitions (outermost first): a column
   * name, or a computed column such as `bucketColumn('user_bucket', 'user_id', 16)`. A missing value
   * is NULL (`__HIVE_DEFAULT_PARTITION__`). Bucket raw high-cardinality ids instead of naming them
   * here (see lake-partitions.ts).
   */
  partitionBy?: readonly LakePartitionColumn[];
  /**
   * Partition buffers kept open at most; writing to one more rolls the least recently written
   * buffer into a file first. Default `limits.lakeSinkOpenPartitionsMax` (256).
   */
  openPartitionsMax?: number;
  /**
   * Rows held in open buffers at most, all partitions together: reaching it rolls every open
   * buffer at the next flush, in one roll (memory stays bounded however many partitions are
   * open, and the files are as large as that memory allows). Default
   * `limits.lakeSinkBufferedRowsMax`.
   */
  bufferedRowsMax?: number;
  /** Roll a partition's file after this many rows (`flush.size`). Default 10,000. */
  flushSize?: number;
  /** Roll when a buffer spans this much event time (`rotate.interval.ms`). Default 10 minutes. */
  rotateIntervalMs?: number;
  /** Roll a buffer that got no rows for this long of wall time (unbounded runs). Default 60 s. */
  idleMs?: number;
  /**
   * Compact a partition once this many small files (fewer rows than `flushSize`) were committed to
   * it by this sink (idle rolls and late events make them; Kafka Connect leaves them). Only the
   * small files are merged: files rolled full stay as written. Default 10; 0 turns it off.
   */
  compactAfterFiles?: number;
}

/** Formats event time `ts` into partition values with a TimeBasedPartitioner-style pattern. */
export function formatTimePartition(pathFormat: string, ts: number): Record<string, string> {
  const d = new Date(ts);
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  const tokens: Record<string, string> = {
    YYYY: pad(d.getUTCFullYear(), 4),
    MM: pad(d.getUTCMonth() + 1),
    dd: pad(d.getUTCDate()),
    HH: pad(d.getUTCHours()),
    mm: pad(d.getUTCMinutes()),
  };
  const out: Record<string, string> = {};
  for (const segment of pathFormat.split('/')) {
    const eq = segment.indexOf('=');
    if (eq <= 0)
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `lake sink pathFormat segment ${JSON.stringify(segment)} must look like name=PATTERN`,
      );
    const name = segment.slice(0, eq).replace(/'/g, '');
    out[name] = segment
      .slice(eq + 1)
      .replace(/'/g, '')
      .replace(/YYYY|MM|dd|HH|mm/g, (t) => tokens[t]);
  }
  return out;
}

interface LakeBuffer {
  /** Encoded Hive partition path: the buffer's identity. */
  path: string;
  /** Names the buffer's lines in the spill file (lake-spill.ts). */
  id: number;
  /** Rows of `rows` already in the spill file. */
  spilled: number;
  partition: PartitionValues;
  rows: Record<string, unknown>[];
  /** Computed and missing partition columns, the same for every row: added when the file rolls. */
  added: Record<string, unknown>;
  firstTs: number;
  lastWriteMs: number;
  roll: boolean;
}

/*
 * The lake sink's part of a checkpoint (JSON): `spill` describes the not-yet-rolled partitions of
 * a job with a checkpoint directory: the spill file holding their rows (lake-spill.ts: `file`,
 * `bytes`), `buffers` in least-recently-written-first order as `[path, partition, firstTs, added,
 * id, rows]` (`added`: the computed and missing partition columns the rows get when rolled; `id`:
 * the buffer's lines in the spill file; `rows`: how many) and `nextId`, the next buffer id. Without
 * a checkpoint directory, and in checkpoints written before the spill file, `buffers` holds them
 * with their rows inline instead, `[path, partition, rows, firstTs, added]` (`added` absent before
 * column partitions). `seq` is the number of rolls so far (file names continue from it;
 * checkpoints written before column partitions hold a per-path record instead, whose largest
 * value is taken); `pending` the staged files the checkpoint commits.
 */
interface LakeSinkState {
  buffers: [string, PartitionValues, Record<string, unknown>[], number, Record<string, unknown>?][];
  spill?: SpillRef & {
    buffers: [string, PartitionValues, number, Record<string, unknown>, number, number][];
    nextId: number;
  };
  seq: number | Record<string, number>;
  pending: StagedFile[];
}

export interface LakeSink<T> extends Sink<T> {
  /** Buffers rolled early because `openPartitionsMax` partitions were open (this run). */
  readonly evicted: number;
}

/** Rolls forced by the open-partition bound: a steady rise means a partition column needs bucketing. */
const partitionsEvicted = counter(
  'tributary_lake_sink_partitions_evicted_total',
  'Lake sink partition buffers rolled early because openPartitionsMax partitions were open',
  ['job', 'table'],
);

/** Partition part of a file name: readable, and short enough for the lake's file-name limit. */
function fileTag(path: string): string {
  const plain = path.replace(/[^A-Za-z0-9]+/g, '_');
  if (plain.length <= 48) return plain;
  return `${plain.slice(0, 32)}_${createHash('sha256').update(path).digest('hex').slice(0, 12)}`;
}

/** Consecutive runs of `buffers` holding at least `rowsMin` rows each (the last may hold fewer). */
function chunkBuffers(buffers: LakeBuffer[], rowsMin: number): LakeBuffer[][] {
  const chunks: LakeBuffer[][] = [];
  let chunk: LakeBuffer[] = [];
  let rows = 0;
  for (const buffer of buffers) {
    chunk.push(buffer);
    rows += buffer.rows.length;
    if (rows >= rowsMin) {
      chunks.push(chunk);
      chunk = [];
      rows = 0;
    }
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

/**
 * @example .to(lakeSink(bronzeEvents, { flushSize: 1000, rotateIntervalMs: 600_000 }))
 * @example
 * // Column partitions: event_date=2026-11-22/show_type=movie/user_bucket=7/part-….parquet
 * .to(lakeSink(lakeTableTarget(lake.table('silver', 'views'), { types: { event_date: 'DATE' } }), {
 *   pathFormat: 'event_date=YYYY-MM-dd',
 *   partitionBy: ['show_type', bucketColumn('user_bucket', 'user_id', 16)],
 *   rotateIntervalMs: 86_400_000,
 * }))
 */
export function lakeSink<T>(table: TwoPhaseTable, options: LakeSinkOptions<T> = {}): LakeSink<T> {
  const pathFormat =
    options.pathFormat === undefined ? 'year=YYYY/month=MM/day=dd/hour=HH' : options.pathFormat;
  const flushSize = options.flushSize ?? 10_000;
  const rotateMs = options.rotateIntervalMs ?? 600_000;
  const idleMs = options.idleMs ?? 60_000;
  const openMax = options.openPartitionsMax ?? limits.lakeSinkOpenPartitionsMax;
  if (!Number.isInteger(openMax) || openMax < 1) {
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `lake sink ${table.name}: openPartitionsMax must be a positive integer, got ${openMax}`,
    );
  }
  const bufferedRowsMax = options.bufferedRowsMax ?? limits.lakeSinkBufferedRowsMax;
  if (!Number.isInteger(bufferedRowsMax) || bufferedRowsMax < 1) {
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `lake sink ${table.name}: bufferedRowsMax must be a positive integer, got ${bufferedRowsMax}`,
    );
  }
  const toRow = options.row ?? ((v: T) => v as unknown as Record<string, unknown>);
  const compactAfterFiles = options.compactAfterFiles ?? 10;
  /**
   * Small files committed per partition path since its last compaction (not checkpointed: a
   * hint), least recently committed first and bounded like the open buffers.
   */
  const committedFiles = new Map<string, { partition: PartitionValues; files: number }>();
  const committedTrackedMax = openMax * 4;
  const timeColumns = pathFormat === null ? [] : Object.keys(formatTimePartition(pathFormat, 0));
  timeColumns.forEach(checkPartitionColumn);
  const columns =
    options.partitionBy === undefined || options.partitionBy.length === 0
      ? null
      : new RowPartitioner(table.name, options.partitionBy, timeColumns);
  /** Open buffers, least recently written first (a write moves its buffer to the end). */
  const buffers = new Map<string, LakeBuffer>();
  let lastBuffer: LakeBuffer | null = null;
  /** Rows in `buffers` (detached buffers waiting in `ready` are not counted). */
  let bufferedRows = 0;
  let nextBufferId = 0;
  /** Rows of open buffers kept across checkpoints; null without a checkpoint directory. */
  let spill: LakeSpill | null = null;
  let seq = 0;
  let evicted = 0;
  let pending: StagedFile[] = [];
  let context: SinkContext | null = null;
  /** Time partition of each recent event-time minute (out-of-order input revisits minutes). */
  const minutes = new Map<number, { values: Record<string, string>; path: string }>();
  let lastMinute = -1;
  let timeValues: Record<string, string> = {};
  let timePath = '';
  const columnValues: PartitionValues = {};

  /**
   * Start of file names and commit ids: `<job>-s<sink>`, or `<job>-<epoch>-s<sink>` for a run
   * without durable checkpoints (its checkpoint ids restart at 1 every run, and the lake would
   * take a second run's commit `…-chk-1` for a retry of the first's and drop it). A task of a
   * scaled-out job adds its id (`<job>-s1-p2-s0`): tasks have their own checkpoint ids.
   */
  function prefix(): string {
    const c = context!;
    const job = c.taskId ? `${c.jobName}-${c.taskId}` : c.jobName;
    return c.epoch === null ? `${job}-s${c.sinkIndex}` : `${job}-${c.epoch}-s${c.sinkIndex}`;
  }

  /** Full or evicted buffers detached by `write`, staged at the next flush. */
  let ready: LakeBuffer[] = [];

  /** Detaches the least recently written buffer; it is rolled at the next flush. */
  function evictLeastRecent(): void {
    const oldest = buffers.values().next().value;
    if (oldest === undefined) return;
    buffers.delete(oldest.path);
    bufferedRows -= oldest.rows.length;
    if (lastBuffer === oldest) lastBuffer = null;
    ready.push(oldest);
    evicted++;
    partitionsEvicted.inc({ job: context?.jobName ?? '', table: table.name });
  }

  /** Partition columns a buffer's rows get when it rolls: its time partitions, computed and missing columns. */
  function constantsOf(buffer: LakeBuffer): Record<string, unknown> {
    const constants: Record<string, unknown> = {};
    for (const column of timeColumns) constants[column] = buffer.partition[column];
    return Object.assign(constants, buffer.added);
  }

  /** Stages one buffer as one file (tables without `stageMany`). */
  async function roll(buffer: LakeBuffer): Promise<void> {
    if (buffer.rows.length === 0) return;
    seq++;
    // Deterministic: the same input replayed from the same checkpoint rolls the same files.
    const fileName = `${prefix()}-${fileTag(buffer.path)}-${String(seq).padStart(6, '0')}.parquet`;
    let rows = buffer.rows;
    const constants = constantsOf(buffer);
    if (Object.keys(constants).length > 0) rows = rows.map((row) => ({ ...row, ...constants }));
    pending.push(await table.stage(rows, { partition: buffer.partition, fileName }));
  }

  /**
   * Rolls the detached buffers and those marked to roll. With `stageMany`, they are cut, whole and
   * in order, into chunks that each reach `limits.lakeSinkRollChunkRowsMin` rows (the last may hold
   * fewer), all started at once: each chunk is one write (one DuckDB statement, one batch of fsyncs), and DuckDB encodes
   * one chunk's files on its own threads while the next chunk's rows go through the Appender on
   * the job's thread. A roll of hundreds of partitions at the end of a bounded run took an eighth
   * less time than as one write (viewing.ingest, 2 cores).
   */
  async function rollMarked(): Promise<void> {
    const due = ready;
    ready = [];
    for (const buffer of [...buffers.values()]) {
      if (!buffer.roll) continue;
      buffers.delete(buffer.path);
      bufferedRows -= buffer.rows.length;
      if (lastBuffer === buffer) lastBuffer = null;
      due.push(buffer);
    }
    const nonEmpty = due.filter((b) => b.rows.length > 0);
    if (nonEmpty.length === 0) return;
    if (table.stageMany === undefined) {
      for (const buffer of nonEmpty) await roll(buffer);
      return;
    }
    const stageMany = table.stageMany.bind(table);
    // Deterministic: the same input replayed from the same checkpoint makes the same chunks, and
    // every chunk takes its sequence number before the first await, so it rolls the same files.
    const writes = chunkBuffers(nonEmpty, limits.lakeSinkRollChunkRowsMin).map((chunk) => {
      seq++;
      const fileName = `${prefix()}-${String(seq).padStart(6, '0')}`;
      return stageMany(
        chunk.map((b) => ({ rows: b.rows, partition: b.partition, constants: constantsOf(b) })),
        { fileName },
      );
    });
    // Every chunk settles before the roll does: a failed one fails the roll, and none is left
    // writing behind it.
    const staged = await Promise.allSettled(writes);
    for (const result of staged) if (result.status === 'rejected') throw result.reason;
    for (const result of staged) if (result.status === 'fulfilled') pending.push(...result.value);
  }

  /**
   * The roll writing behind the input, at most one at a time: `flush` and `tick` start it and go
   * back to the job, so DuckDB encodes and compresses one set of files on its own threads while
   * the job processes the next batches. The next flush, tick, end of input or checkpoint waits
   * for it first (bounding what is held to one roll) and rethrows its failure; nothing it staged
   * is visible before the checkpoint commits it, so a failure loses nothing.
   */
  let rolling: Promise<void> | null = null;

  async function settleRolling(): Promise<void> {
    const current = rolling;
    if (current === null) return;
    rolling = null;
    await current;
  }

  /** Waits for the previous roll, then starts one of the buffers due now without waiting for it. */
  async function rollBehind(): Promise<void> {
    await settleRolling();
    // rollMarked takes its buffers before its first await and rolls never overlap, so the files
    // and their sequence numbers are the same whichever batch the job is on when a write ends.
    const started = rollMarked();
    rolling = started;
    // Observed by settleRolling; without a handler a failure would also be an unhandled rejection.
    started.catch(() => {});
  }

  return {
    name: `lake:${table.name}`,
    // Replays are recognised by deterministic file names and commit ids, not by output ids.
    usesIds: false,
    get evicted() {
      return evicted;
    },
    async open(ctx) {
      context = ctx;
      spill =
        ctx.stateDir === undefined || ctx.stateDir === null
          ? null
          : new LakeSpill(ctx.stateDir, ctx.sinkIndex);
      const restored = ctx.restored as LakeSinkState | undefined | null;
      if (restored === undefined || restored === null) {
        // A run that died before its first checkpoint may have left spill files: none counts.
        await spill?.collect(null);
        return;
      }
      seq =
        typeof restored.seq === 'number' ? restored.seq : Math.max(0, ...Object.values(restored.seq ?? {}));
      const open = (
        path: string,
        partition: PartitionValues,
        rows: Record<string, unknown>[],
        firstTs: number,
        added: Record<string, unknown> | undefined,
        id: number,
        spilled: number,
      ) => {
        bufferedRows += rows.length;
        buffers.set(path, {
          path,
          id,
          spilled,
          partition,
          rows,
          added: added ?? {},
          firstTs,
          lastWriteMs: ctx.now(),
          roll: false,
        });
      };
      if (restored.spill !== undefined) {
        const entries = restored.spill.buffers;
        const rows = await spill!.restore(restored.spill, new Map(entries.map((e) => [e[4], e[5]])));
        for (const [path, partition, firstTs, added, id] of entries) {
          const own = rows.get(id)!;
          open(path, partition, own, firstTs, added, id, own.length);
        }
        nextBufferId = restored.spill.nextId;
      } else {
        await spill?.collect(null);
        for (const [path, partition, rows, firstTs, added] of restored.buffers)
          open(path, partition, rows, firstTs, added, nextBufferId++, 0);
      }
      while (buffers.size > openMax) evictLeastRecent();
    },
    write(value, timestampMs) {
      const row = toRow(value);
      if (typeof row !== 'object' || row === null) {
        throw new TributaryError(
          'VALIDATION_FAILED',
          `lake sink ${table.name}: row must be an object, got ${typeof row}`,
        );
      }
      // Time partition values only change when the minute does: cache the formatting per minute.
      if (pathFormat !== null) {
        const minute = Math.floor(timestampMs / 60_000);
        if (minute !== lastMinute) {
          lastMinute = minute;
          let time = minutes.get(minute);
          if (time === undefined) {
            if (minutes.size >= limits.lakeSinkTimeMinutesCachedMax) minutes.clear();
            const values = formatTimePartition(pathFormat, timestampMs);
            time = { values, path: encodePartitionPath(values) };
            minutes.set(minute, time);
          }
          timeValues = time.values;
          timePath = time.path;
        }
      }
      let path = timePath;
      if (columns !== null) {
        // Before any buffer changes: a bad value is the record's error (DLQ), nothing half-done.
        const columnPath = columns.apply(row, timestampMs, columnValues);
        path = path === '' ? columnPath : `${path}/${columnPath}`;
      }
      let buffer = buffers.get(path);
      if (buffer === undefined) {
        if (buffers.size >= openMax) evictLeastRecent();
        buffer = {
          path,
          id: nextBufferId++,
          spilled: 0,
          partition: columns === null ? timeValues : { ...timeValues, ...columnValues },
          rows: [],
          added: columns === null ? {} : { ...columns.added },
          firstTs: timestampMs,
          lastWriteMs: 0,
          roll: false,
        };
        buffers.set(path, buffer);
      } else if (buffer !== lastBuffer) {
        // Most recently written last: the first entry is the one to roll when the bound is hit.
        buffers.delete(path);
        buffers.set(path, buffer);
      }
      lastBuffer = buffer;
      buffer.rows.push(row);
      bufferedRows++;
      buffer.lastWriteMs = context!.bounded ? 0 : context!.now();
      if (buffer.rows.length >= flushSize || Math.abs(timestampMs - buffer.firstTs) >= rotateMs) {
        // Detach now so the file has exactly these rows; the next row starts a new buffer.
        buffers.delete(path);
        bufferedRows -= buffer.rows.length;
        lastBuffer = null;
        ready.push(buffer);
      } else if (bufferedRows >= bufferedRowsMax) {
        // Memory bound: every open buffer rolls at the next flush, together.
        for (const open of buffers.values()) ready.push(open);
        buffers.clear();
        bufferedRows = 0;
        lastBuffer = null;
      }
    },
    async flush() {
      await rollBehind();
    },
    async tick(nowMs) {
      for (const buffer of buffers.values()) if (nowMs - buffer.lastWriteMs >= idleMs) buffer.roll = true;
      await rollBehind();
    },
    async endOfInput() {
      await settleRolling();
      for (const buffer of buffers.values()) buffer.roll = true;
      await rollMarked();
    },
    async preCommit(): Promise<LakeSinkState> {
      await settleRolling();
      await rollMarked();
      const open = [...buffers.values()];
      const staged = pending;
      pending = [];
      if (spill === null)
        return {
          buffers: open.map((b) => [b.path, b.partition, b.rows, b.firstTs, b.added]),
          seq,
          pending: staged,
        };
      // Only the rows that came since the last checkpoint are written (once each), not every
      // buffered row at every checkpoint.
      const ref = await spill.write(open);
      return {
        buffers: [],
        ...(ref === null
          ? {}
          : {
              spill: {
                ...ref,
                buffers: open.map((b) => [b.path, b.partition, b.firstTs, b.added, b.id, b.rows.length]),
                nextId: nextBufferId,
              },
            }),
        seq,
        pending: staged,
      };
    },
    async commit(checkpointId, state) {
      // The checkpoint is durable: spill generations it does not name are garbage.
      await spill?.collect((state as LakeSinkState | null)?.spill ?? null);
      const files = (state as LakeSinkState | null)?.pending ?? [];
      if (files.length === 0) return;
      await table.commit({
        commitId: `${prefix()}-chk-${checkpointId}`,
        add: files,
      });
      if (compactAfterFiles <= 0 || table.compact === undefined) return;
      const due: PartitionValues[] = [];
      for (const file of files) {
        if (file.rows >= flushSize) continue;
        const path = encodePartitionPath(file.partition);
        const entry = committedFiles.get(path) ?? { partition: file.partition, files: 0 };
        entry.files++;
        committedFiles.delete(path);
        if (entry.files >= compactAfterFiles) due.push(entry.partition);
        else committedFiles.set(path, entry);
      }
      while (committedFiles.size > committedTrackedMax) {
        const oldest = committedFiles.keys().next().value;
        if (oldest === undefined) break;
        committedFiles.delete(oldest);
      }
      if (due.length > 0) await table.compact(due, { fileRowsBelow: flushSize });
    },
    async close() {
      // A roll still writing would use the lake after its owner closed it; its failure already
      // failed the run (or the run is being abandoned), so only its end matters here.
      await rolling?.catch(() => {});
      rolling = null;
    },
    forTask: () => lakeSink(table, options),
  };
}
