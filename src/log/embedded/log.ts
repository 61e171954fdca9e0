import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  childLogger,
  type Clock,
  counter,
  fsyncDirectory,
  isNoSpaceError,
  isTributaryError,
  noSpaceError,
  gauge,
  histogram,
  limits,
  processAlive,
  systemClock,
  toTributaryError,
  TributaryError,
  writeFileAtomic,
} from '../../core/index.js';
import { findPartition, findTopic, LocalGroupLog, promised } from '../local-offsets.js';
import { Partitioner } from '../partitioner.js';
import {
  normalizeRecord,
  recordPayloadBytes,
  resolveFetchOptions,
  validateOffset,
  validateTopicConfig,
  validateTopicName,
  type NormalizedRecord,
} from '../records.js';
import { partitionKey, Signals } from '../signals.js';
import type {
  AppendResult,
  FetchOptions,
  Log,
  LogRecord,
  ProducerRecord,
  TopicConfig,
  TopicDescription,
  TopicPartitionOffset,
} from '../types.js';
import { encodeBatch } from './format.js';
import { PartitionStore, type WriteMark } from './partition.js';

export type FsyncPolicy = 'always' | 'group' | 'never';

export interface EmbeddedLogOptions {
  /** Directory of the log (normally `dataDirPaths(dataDir).log`). Created when missing. */
  dir: string;
  /**
   * When `append` resolves: `always` after an fsync started for it (concurrent appends share one),
   * `group` after the group-commit window's fsync (default), `never` after the write to the OS
   * (survives a process crash, not a power loss).
   */
  fsync?: FsyncPolicy;
  /**
   * Longest wait in ms for `fsync: group` before appended records are committed. The commit is
   * adaptive: with no fsync running the records are committed at once (in the same event-loop turn's
   * batch); while an fsync runs, records wait for it to end (sharing the next one), or this long at most.
   */
  groupCommitMs?: number;
  /** Size at which a segment is closed and a new one started. */
  segmentBytes?: number;
  /** Retention for topics created without their own. */
  retentionMs?: number;
  retentionBytes?: number;
  /** How often retention runs in the background; 0 turns the timer off. */
  retentionCheckMs?: number;
  /** Encoded bytes waiting for the writer before `append` waits (back-pressure). */
  pendingBytesMax?: number;
  /** After a failed write, how often the disk is probed before appends are accepted again. */
  writeProbeMs?: number;
  clock?: Clock;
}

/** Extra operations of the embedded backend (beyond `Log`). */
export interface EmbeddedLog extends Log {
  readonly kind: 'embedded';
  readonly dir: string;
  /** Deletes segments past their topic's retention now (also runs on a timer). */
  enforceRetention(): Promise<void>;
  /** Writes and syncs everything appended so far. */
  flush(): Promise<void>;
  /**
   * Throws the reason appends are refused right now (STORAGE_FULL when the disk is full,
   * UNAVAILABLE after an I/O error), or nothing when the log accepts writes. Readiness checks this.
   */
  assertWritable(): void;
}

/**
 * Directory layout under `dir` (the embedded log's on-disk format, version `logFormatVersion`):
 *
 *   LOG_FORMAT                          "tributary-log 1\n"; a newer number is refused
 *   LOCK                                pid of the owning process (stale when that pid is dead)
 *   topics/<topic>/topic.json           topic metadata (see TopicMeta), written once at create
 *   topics/<topic>/<partition>/<20-digit base offset>.log   segments (format in ./format.ts)
 *   topics/.creating-* , .deleting-*   a create or delete cut short by a crash; removed on open
 *   groups/<url-encoded group>.json     committed offsets (see #persistGroup)
 *
 * A topic appears with one rename of its fully written directory, so a crash never leaves half a
 * topic. The sparse offset and time indexes live in memory and are rebuilt on open from batch
 * headers (sealed segments) and a checksummed scan (the active segment).
 */
export const logLayout = {
  formatFile: 'LOG_FORMAT',
  lockFile: 'LOCK',
  topics: 'topics',
  groups: 'groups',
  topicFile: 'topic.json',
};
const logFormatVersion = 1;
const openDirs = new Set<string>();
const logger = childLogger('log.embedded');

const appendedRecords = counter(
  'tributary_log_appended_records_total',
  'Records appended to the embedded log',
  ['topic'],
);
const appendedBytes = counter(
  'tributary_log_appended_bytes_total',
  'Encoded bytes appended to the embedded log',
  ['topic'],
);
const fsyncSeconds = histogram(
  'tributary_log_fsync_seconds',
  'Duration of one group commit (write + fsync) of the embedded log',
);
const pendingBytesGauge = gauge(
  'tributary_log_pending_bytes',
  'Encoded bytes waiting for the embedded log writer',
);

/**
 * `topic.json`: `{"formatVersion":1,"name":"orders","partitions":4,"retentionMs":604800000,
 * "retentionBytes":-1,"createdAtMs":1795341600000}` (pretty-printed, written atomically).
 */
interface TopicMeta {
  formatVersion: number;
  name: string;
  partitions: number;
  retentionMs: number;
  retentionBytes: number;
  createdAtMs: number;
}

interface TopicState {
  meta: TopicMeta;
  dir: string;
  partitions: PartitionStore[];
}

interface PendingWrite {
  store: PartitionStore;
  batches: Buffer[];
}

interface Waiter {
  resolve: () => void;
  reject: (error: Error) => void;
}

/**
 * Opens (creating when missing) the durable embedded log in `options.dir`. One process owns a log
 * directory at a time (a LOCK file with its pid; a stale lock of a dead process is taken over).
 *
 * @example
 * const log = await openEmbeddedLog({ dir: dataDirPaths(config.dataDir).log, fsync: 'group' });
 * await log.ensureTopic('orders', { partitions: 4 });
 * await log.append([{ topic: 'orders', key: 'order-1', value: JSON.stringify({ total: 3 }) }]);
 * await log.close();
 */
export async function openEmbeddedLog(options: EmbeddedLogOptions): Promise<EmbeddedLog> {
  const dir = path.resolve(options.dir);
  fs.mkdirSync(dir, { recursive: true });
  checkFormat(dir);
  takeLock(dir);
  try {
    const log = new EmbeddedLogImpl(dir, options);
    try {
      await log.load();
    } catch (error) {
      await log.closeFiles();
      throw error;
    }
    return log;
  } catch (error) {
    releaseLock(dir);
    throw error;
  }
}

function checkFormat(dir: string): void {
  const file = path.join(dir, logLayout.formatFile);
  if (!fs.existsSync(file)) {
    fs.writeFileSync(file, `tributary-log ${logFormatVersion}\n`);
    return;
  }
  const match = /^tributary-log (\d+)$/m.exec(fs.readFileSync(file, 'utf8'));
  if (!match) throw new TributaryError('FORMAT_VERSION', `${file} is not a Tributary log format file`);
  if (Number(match[1]) > logFormatVersion) {
    throw new TributaryError(
      'FORMAT_VERSION',
      `log ${dir} was written by a newer Tributary (log format ${match[1]}; this build reads up to ${logFormatVersion})`,
    );
  }
}

/** Takes the log directory's LOCK for this process (also used by `repairPartition`). */
export function takeLock(dir: string): void {
  if (openDirs.has(dir)) throw new TributaryError('CONFLICT', `log ${dir} is already open in this process`);
  const lockFile = path.join(dir, logLayout.lockFile);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lockFile, `${process.pid}\n`, { flag: 'wx' });
      openDirs.add(dir);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw toTributaryError(error, 'IO');
      const pid = Number(fs.readFileSync(lockFile, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
        throw new TributaryError(
          'CONFLICT',
          `log ${dir} is in use by process ${pid} (lock file ${lockFile}); one process owns an embedded log at a time`,
        );
      }
      // The owner died (kill -9, power loss): its lock is stale.
      fs.rmSync(lockFile, { force: true });
    }
  }
  throw new TributaryError('CONFLICT', `could not take the lock ${lockFile}`);
}

export function releaseLock(dir: string): void {
  openDirs.delete(dir);
  fs.rmSync(path.join(dir, logLayout.lockFile), { force: true });
}

/** Group names become file names: keep them readable but safe. */
function groupFileName(group: string): string {
  return `${encodeURIComponent(group).replace(/\./g, '%2E')}.json`;
}

/**
 * Committed offsets live in `this.groups` (shared with the memory log through LocalGroupLog); this
 * backend adds their persistence: `commitOffsets` and `deleteTopic` write the group files, `load`
 * reads them back.
 */
class EmbeddedLogImpl extends LocalGroupLog implements EmbeddedLog {
  readonly kind = 'embedded' as const;
  readonly dir: string;
  readonly signals = new Signals();
  readonly #fsync: FsyncPolicy;
  readonly #groupCommitMs: number;
  readonly #segmentBytes: number;
  readonly #defaultRetentionMs: number;
  readonly #defaultRetentionBytes: number;
  readonly #pendingBytesMax: number;
  readonly #clock: Clock;
  readonly #topics = new Map<string, TopicState>();
  readonly #groupWrites = new Map<string, Promise<void>>();
  readonly #partitioner = new Partitioner();
  #pending = new Map<PartitionStore, PendingWrite>();
  #pendingBytes = 0;
  #waiters: Waiter[] = [];
  #drainWaiters: (() => void)[] = [];
  #flushTimer: NodeJS.Timeout | undefined;
  /** A commit asked for the next event-loop turn (appends of the current turn join it). */
  #flushImmediate: NodeJS.Immediate | undefined;
  /** Sync stages queued or running (their fsync not yet done): the log is under load. */
  #syncsInFlight = 0;
  /** The write stage in progress, if any. */
  #writing: Promise<void> | undefined;
  /** Completes when the last queued sync stage has been published and acknowledged. */
  #syncTail: Promise<void> = Promise.resolve();
  #retentionTimer: NodeJS.Timeout | undefined;
  /**
   * Set when a write stage failed (disk full, I/O error): appends are refused with it while the
   * unpublished writes are rolled back and the disk is probed; cleared once a probe write succeeds.
   */
  #writeFault: TributaryError | undefined;
  #recovery: Promise<void> | undefined;
  readonly #writeProbeMs: number;
  #closed = false;

  constructor(dir: string, options: EmbeddedLogOptions) {
    super();
    this.dir = dir;
    this.#fsync = options.fsync ?? 'group';
    this.#groupCommitMs = options.groupCommitMs ?? limits.logGroupCommitMs;
    this.#segmentBytes = options.segmentBytes ?? limits.logSegmentBytes;
    this.#defaultRetentionMs = options.retentionMs ?? -1;
    this.#defaultRetentionBytes = options.retentionBytes ?? -1;
    this.#pendingBytesMax = options.pendingBytesMax ?? limits.logPendingBytesMax;
    this.#clock = options.clock ?? systemClock;
    this.#writeProbeMs = options.writeProbeMs ?? limits.logWriteProbeMs;
    const retentionCheckMs = options.retentionCheckMs ?? 60_000;
    if (retentionCheckMs > 0) {
      this.#retentionTimer = setInterval(() => {
        this.enforceRetention().catch((error: unknown) =>
          logger.error({ err: error }, 'log retention failed'),
        );
      }, retentionCheckMs);
      this.#retentionTimer.unref();
    }
  }

  async load(): Promise<void> {
    const topicsDir = path.join(this.dir, logLayout.topics);
    const groupsDir = path.join(this.dir, logLayout.groups);
    fs.mkdirSync(topicsDir, { recursive: true });
    fs.mkdirSync(groupsDir, { recursive: true });
    for (const name of fs.readdirSync(topicsDir).sort()) {
      const topicDir = path.join(topicsDir, name);
      // Leftovers of a create or delete cut short by a crash: never published, safe to remove.
      if (name.startsWith('.')) {
        fs.rmSync(topicDir, { recursive: true, force: true });
        continue;
      }
      const metaFile = path.join(topicDir, logLayout.topicFile);
      let meta: TopicMeta;
      try {
        meta = JSON.parse(fs.readFileSync(metaFile, 'utf8')) as TopicMeta;
      } catch (error) {
        throw new TributaryError(
          'CORRUPT_DATA',
          `topic metadata ${metaFile} is unreadable: ${(error as Error).message}`,
          {
            cause: error,
            details: { file: metaFile },
          },
        );
      }
      if (meta.formatVersion > logFormatVersion) {
        throw new TributaryError(
          'FORMAT_VERSION',
          `topic ${name} (${metaFile}) has format ${meta.formatVersion}, newer than this build`,
        );
      }
      const partitions: PartitionStore[] = [];
      // Registered before its partitions open, so a failed open closes the ones that did open.
      this.#topics.set(name, { meta, dir: topicDir, partitions });
      for (let p = 0; p < meta.partitions; p++) {
        const dir = path.join(topicDir, String(p));
        try {
          partitions.push(await PartitionStore.open(name, p, dir, this.#segmentBytes));
        } catch (error) {
          if (!isTributaryError(error, 'CORRUPT_DATA')) throw error;
          // One damaged partition must not stop the platform: fence it, open everything else.
          const fenced = PartitionStore.fenced(name, p, dir, error);
          partitions.push(fenced);
          logger.error(
            { err: error, topic: name, partition: p },
            'log partition fenced: its data is damaged; its reads and writes are refused until it is repaired',
          );
        }
      }
    }
    for (const file of fs.readdirSync(groupsDir)) {
      if (!file.endsWith('.json') || file.startsWith('.')) continue;
      const full = path.join(groupsDir, file);
      const group = decodeURIComponent(file.slice(0, -'.json'.length));
      let parsed: { offsets?: Record<string, Record<string, number>> };
      try {
        parsed = JSON.parse(fs.readFileSync(full, 'utf8')) as {
          offsets?: Record<string, Record<string, number>>;
        };
      } catch (error) {
        throw new TributaryError(
          'CORRUPT_DATA',
          `committed offsets ${full} are unreadable: ${(error as Error).message}`,
          {
            cause: error,
            details: { file: full },
          },
        );
      }
      const byTopic = new Map<string, Map<number, number>>();
      for (const [topic, offsets] of Object.entries(parsed.offsets ?? {})) {
        byTopic.set(
          topic,
          new Map<number, number>(Object.entries(offsets).map(([p, o]): [number, number] => [Number(p), o])),
        );
      }
      this.groups.restore(group, byTopic);
    }
  }

  /** Closes segment files and timers after a failed open (no flush: nothing was written). */
  async closeFiles(): Promise<void> {
    this.#closed = true;
    if (this.#retentionTimer !== undefined) clearInterval(this.#retentionTimer);
    for (const topic of this.#topics.values()) for (const p of topic.partitions) await p.close();
  }

  assertOpen(): void {
    if (this.#closed) throw new TributaryError('CLOSED', `the embedded log ${this.dir} is closed`);
  }

  assertWritable(): void {
    this.assertOpen();
    if (this.#writeFault) throw this.#writeFault;
  }

  // ---- topics ------------------------------------------------------------------------------------

  /** Creations under way, by topic name: concurrent creates of one name (several clients of a log server) wait for the first. */
  readonly #creating = new Map<string, Promise<void>>();

  async createTopic(name: string, config: TopicConfig, options?: { ifNotExists?: boolean }): Promise<void> {
    this.assertOpen();
    validateTopicName(name);
    validateTopicConfig(name, config);
    for (let inFlight = this.#creating.get(name); inFlight !== undefined; inFlight = this.#creating.get(name))
      await inFlight.catch(() => undefined);
    if (this.#topics.has(name)) {
      if (options?.ifNotExists) return;
      throw new TributaryError('ALREADY_EXISTS', `topic ${name} already exists`);
    }
    const creation = this.#createTopic(name, config, options);
    this.#creating.set(name, creation);
    try {
      await creation;
    } finally {
      if (this.#creating.get(name) === creation) this.#creating.delete(name);
    }
  }

  async #createTopic(name: string, config: TopicConfig, options?: { ifNotExists?: boolean }): Promise<void> {
    if (this.#topics.has(name)) {
      if (options?.ifNotExists) return;
      throw new TributaryError('ALREADY_EXISTS', `topic ${name} already exists`);
    }
    const meta: TopicMeta = {
      formatVersion: logFormatVersion,
      name,
      partitions: config.partitions,
      retentionMs: config.retentionMs ?? this.#defaultRetentionMs,
      retentionBytes: config.retentionBytes ?? this.#defaultRetentionBytes,
      createdAtMs: this.#clock.now(),
    };
    const topicsDir = path.join(this.dir, logLayout.topics);
    const finalDir = path.join(topicsDir, name);
    // Build the topic under a hidden name, then publish it with one rename.
    const temp = path.join(topicsDir, `.creating-${name}-${randomBytes(4).toString('hex')}`);
    try {
      fs.mkdirSync(temp);
      for (let p = 0; p < config.partitions; p++) PartitionStore.create(path.join(temp, String(p)));
      await writeFileAtomic(path.join(temp, logLayout.topicFile), `${JSON.stringify(meta, null, 2)}\n`);
      for (let p = 0; p < config.partitions; p++) await fsyncDirectory(path.join(temp, String(p)));
    } catch (error) {
      // Never published: remove it now rather than at the next open (a full disk needs the room).
      fs.rmSync(temp, { recursive: true, force: true });
      throw noSpaceError(error, `creating topic ${name}`);
    }
    if (this.#topics.has(name)) {
      fs.rmSync(temp, { recursive: true, force: true });
      if (options?.ifNotExists) return;
      throw new TributaryError('ALREADY_EXISTS', `topic ${name} already exists`);
    }
    fs.renameSync(temp, finalDir);
    await fsyncDirectory(topicsDir);
    const partitions: PartitionStore[] = [];
    for (let p = 0; p < config.partitions; p++) {
      partitions.push(await PartitionStore.open(name, p, path.join(finalDir, String(p)), this.#segmentBytes));
    }
    this.#topics.set(name, { meta, dir: finalDir, partitions });
  }

  ensureTopic(name: string, config: TopicConfig): Promise<void> {
    return this.createTopic(name, config, { ifNotExists: true });
  }

  async deleteTopic(name: string): Promise<void> {
    this.assertOpen();
    const topic = this.#topic(name);
    await this.flush();
    this.#topics.delete(name);
    for (const p of topic.partitions) await p.close();
    const trash = path.join(
      this.dir,
      logLayout.topics,
      `.deleting-${name}-${randomBytes(4).toString('hex')}`,
    );
    fs.renameSync(topic.dir, trash);
    await fsyncDirectory(path.join(this.dir, logLayout.topics));
    fs.rmSync(trash, { recursive: true, force: true });
    for (const group of this.groups.dropTopic(name)) await this.#persistGroup(group);
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
        retentionMs: topic.meta.retentionMs,
        retentionBytes: topic.meta.retentionBytes,
        partitions: topic.partitions.map((p) => ({
          partition: p.partition,
          startOffset: p.startOffset,
          endOffset: p.endOffset,
          sizeBytes: p.sizeBytes,
          ...(p.fence === undefined ? {} : { fenced: p.fence.message }),
        })),
      };
    });
  }

  // ---- append ------------------------------------------------------------------------------------

  async append(records: ProducerRecord[]): Promise<AppendResult[]> {
    this.assertWritable();
    if (records.length === 0) return [];
    const nowMs = this.#clock.now();
    this.#partitioner.beginBatch();
    // Validate every record first: a bad one rejects the whole call before anything is written.
    let estimate = 0;
    const normalized: NormalizedRecord[] = new Array<NormalizedRecord>(records.length);
    for (let i = 0; i < records.length; i++) {
      const record = records[i];
      const topic = this.#topic(record.topic);
      const count = topic.partitions.length;
      const n = normalizeRecord(record, i, count, nowMs, this.#partitioner);
      normalized[i] = n;
      const fence = topic.partitions[n.partition].fence;
      if (fence) throw fence;
      estimate += recordPayloadBytes(n) + 32;
    }
    // Back-pressure: wait while the writer is behind (one oversized call may still go alone).
    while (this.#pendingBytes > 0 && this.#pendingBytes + estimate > this.#pendingBytesMax) {
      await new Promise<void>((resolve) => this.#drainWaiters.push(resolve));
      this.assertWritable();
    }
    // Offsets are assigned now, synchronously, so they follow the order of append calls.
    const byPartition = new Map<PartitionStore, { records: NormalizedRecord[]; indexes: number[] }>();
    for (let i = 0; i < normalized.length; i++) {
      const n = normalized[i];
      const store = this.#topics.get(n.topic)!.partitions[n.partition];
      let entry = byPartition.get(store);
      if (entry === undefined) byPartition.set(store, (entry = { records: [], indexes: [] }));
      entry.records.push(n);
      entry.indexes.push(i);
    }
    const results: AppendResult[] = new Array<AppendResult>(records.length);
    let encodedBytes = 0;
    for (const [store, entry] of byPartition) {
      const baseOffset = store.nextOffset;
      const batch = encodeBatch(entry.records, baseOffset);
      store.nextOffset += entry.records.length;
      encodedBytes += batch.length;
      let pending = this.#pending.get(store);
      if (pending === undefined) this.#pending.set(store, (pending = { store, batches: [] }));
      pending.batches.push(batch);
      for (let j = 0; j < entry.indexes.length; j++) {
        results[entry.indexes[j]] = {
          topic: store.topic,
          partition: store.partition,
          offset: baseOffset + j,
        };
      }
      appendedRecords.inc({ topic: store.topic }, entry.records.length);
      appendedBytes.inc({ topic: store.topic }, batch.length);
    }
    this.#pendingBytes += encodedBytes;
    pendingBytesGauge.set(this.#pendingBytes);
    const durable = new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    this.#scheduleFlush();
    await durable;
    return results;
  }

  /**
   * Adaptive group commit (like PostgreSQL's commit_delay/commit_siblings or Kafka's linger.ms=0):
   * when no fsync is running, the pending records are written and synced in the next event-loop
   * turn, so an idle log never waits for the window. While an fsync runs, appends gather and are
   * written when it ends (#afterSync), or after `groupCommitMs` at the latest, sharing one fsync.
   */
  #scheduleFlush(): void {
    if (this.#writing !== undefined || this.#flushTimer !== undefined || this.#flushImmediate !== undefined)
      return;
    if (this.#fsync === 'group' && this.#groupCommitMs > 0 && this.#syncsInFlight > 0) {
      this.#flushTimer = setTimeout(() => {
        this.#flushTimer = undefined;
        void this.#flushNow();
      }, this.#groupCommitMs);
      return;
    }
    this.#flushImmediate = setImmediate(() => {
      this.#flushImmediate = undefined;
      void this.#flushNow();
    });
  }

  #cancelScheduledFlush(): void {
    if (this.#flushTimer !== undefined) clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    if (this.#flushImmediate !== undefined) clearImmediate(this.#flushImmediate);
    this.#flushImmediate = undefined;
  }

  /** An fsync ended: records that gathered while it ran are committed now rather than after the window. */
  #afterSync(): void {
    this.#syncsInFlight--;
    if (this.#writing === undefined && this.#pending.size > 0) {
      this.#cancelScheduledFlush();
      void this.#flushNow();
    }
  }

  /**
   * One write stage: write every pending batch (one writev per partition), then sync it. The next
   * write stage starts as soon as this one's writes are done, while the sync still runs, so the
   * disk sees a continuous stream of writes and fsyncs (pipelined group commit). Syncs of
   * successive stages may overlap; a stage is published and acknowledged after its own sync and
   * after every earlier stage (in order).
   */
  #flushNow(): Promise<void> {
    if (this.#writing !== undefined) return this.#writing;
    if (this.#writeFault) {
      this.#dropPending(this.#writeFault);
      return this.#syncTail;
    }
    if (this.#pending.size === 0 && this.#waiters.length === 0) return this.#syncTail;
    const pending = this.#pending;
    const waiters = this.#waiters;
    this.#pending = new Map();
    this.#waiters = [];
    let bytes = 0;
    for (const p of pending.values()) for (const b of p.batches) bytes += b.length;
    const started = process.hrtime.bigint();
    const write = (async () => {
      // Partitions are separate files: write them in parallel on libuv's thread pool.
      return Promise.all(
        [...pending.values()].map(async (p): Promise<[PartitionStore, WriteMark]> => {
          await p.store.write(p.batches);
          return [p.store, p.store.mark()];
        }),
      );
    })();
    const stage = write.then(
      () => undefined,
      () => undefined,
    );
    this.#writing = stage;
    this.#syncsInFlight++;
    // The stage's fsync starts as soon as its writes are done, even while an earlier stage's fsync
    // still runs (fdatasync covers everything written before it was called, so concurrent syncs
    // are safe); publishing and acknowledging stay in stage order below. Records that arrived
    // during an fsync then wait for their own, not for the running one to end first.
    const durable = write.then(async (marks) => {
      if (this.#fsync !== 'never' && this.#writeFault === undefined)
        await Promise.all(marks.map(([store]) => store.sync()));
      return marks;
    });
    // Awaited below, in stage order; until then a failure must not count as unhandled.
    durable.catch(() => undefined);
    const synced = this.#syncTail.then(async () => {
      try {
        const marks = await durable;
        if (this.#writeFault) throw this.#writeFault;
        for (const [store, mark] of marks) {
          store.publish(mark);
          this.signals.notify(partitionKey(store.topic, store.partition));
        }
        fsyncSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
        for (const w of waiters) w.resolve();
      } catch (error) {
        this.#faulted(error);
        for (const w of waiters) w.reject(this.#writeFault ?? toTributaryError(error, 'IO'));
      } finally {
        this.#pendingBytes -= bytes;
        pendingBytesGauge.set(this.#pendingBytes);
        const drained = this.#drainWaiters;
        this.#drainWaiters = [];
        for (const d of drained) d();
        this.#afterSync();
      }
    });
    this.#syncTail = synced;
    void stage.then(() => {
      this.#writing = undefined;
      // Appends that arrived during this stage have already waited: write them at once.
      if (this.#pending.size > 0) {
        this.#cancelScheduledFlush();
        void this.#flushNow();
      }
    });
    return stage;
  }

  /** Rejects the appends that were queued but not yet written (their offsets are never published). */
  #dropPending(error: TributaryError): void {
    const pending = this.#pending;
    const waiters = this.#waiters;
    this.#pending = new Map();
    this.#waiters = [];
    for (const p of pending.values()) for (const b of p.batches) this.#pendingBytes -= b.length;
    pendingBytesGauge.set(this.#pendingBytes);
    for (const w of waiters) w.reject(error);
    const drained = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const d of drained) d();
  }

  /**
   * A write stage failed. Nothing of it was acknowledged. The log stays open for reads and refuses
   * appends (STORAGE_FULL on a full disk, UNAVAILABLE on another I/O error) until #recover has
   * rolled the partitions back to what was published and a probe write succeeds.
   */
  #faulted(error: unknown): void {
    if (this.#writeFault !== undefined || this.#closed) return;
    this.#writeFault = isNoSpaceError(error)
      ? new TributaryError(
          'STORAGE_FULL',
          "the log refused the write: no space left on the data directory's disk. Nothing was acknowledged; writes resume by themselves once space is freed.",
          { cause: error, retryAfterMs: this.#writeProbeMs },
        )
      : new TributaryError(
          'UNAVAILABLE',
          'the log refused the write: the disk reported an I/O error. Nothing was acknowledged; writes resume once a probe write to the disk succeeds.',
          { cause: error, retryAfterMs: this.#writeProbeMs },
        );
    logger.error(
      { err: error, code: this.#writeFault.code },
      'embedded log write failed; appends are refused until the disk accepts writes again',
    );
    this.#recovery = this.#recover();
  }

  async #recover(): Promise<void> {
    // Every stage queued before the fault settles first (each rejects its appends).
    while (this.#writing !== undefined) await this.#writing;
    await this.#syncTail;
    this.#dropPending(this.#writeFault!);
    let rolledBack = false;
    for (let attempt = 0; !this.#closed; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, this.#writeProbeMs).unref());
      if (this.#closed) return;
      try {
        if (!rolledBack) {
          for (const topic of this.#topics.values()) {
            for (let p = 0; p < topic.partitions.length; p++) {
              const store = topic.partitions[p];
              // Offsets are assigned at append: any not published belong to failed writes.
              if (store.nextOffset !== store.endOffset)
                await store.rollBackUnpublished((reopened) => (topic.partitions[p] = reopened));
            }
          }
          rolledBack = true;
        }
        await this.#probeWrite();
      } catch (error) {
        logger.debug({ err: error }, 'log disk probe failed; appends stay refused');
        continue;
      }
      logger.info({ after: this.#writeFault?.code }, 'the log disk accepts writes again; appends resume');
      this.#writeFault = undefined;
      this.#recovery = undefined;
      return;
    }
  }

  /** Writes, syncs and removes `limits.logWriteProbeBytes` next to the topics: can the disk take a write? */
  async #probeWrite(): Promise<void> {
    const file = path.join(this.dir, '.write-probe');
    try {
      const handle = await fs.promises.open(file, 'w');
      try {
        await handle.writeFile(Buffer.alloc(limits.logWriteProbeBytes));
        await handle.sync();
      } finally {
        await handle.close();
      }
    } finally {
      await fs.promises.rm(file, { force: true });
    }
  }

  async flush(): Promise<void> {
    this.#cancelScheduledFlush();
    while (this.#writing !== undefined || this.#pending.size > 0 || this.#waiters.length > 0) {
      await (this.#writing ?? this.#flushNow());
    }
    await this.#syncTail;
  }

  // ---- read --------------------------------------------------------------------------------------

  async fetch(
    topic: string,
    partition: number,
    offset: number,
    options?: FetchOptions,
  ): Promise<LogRecord[]> {
    this.assertOpen();
    validateOffset(offset, `fetch ${topic}/${partition}`);
    const resolved = resolveFetchOptions(options);
    const deadline = resolved.waitMs > 0 ? Date.now() + resolved.waitMs : 0;
    for (;;) {
      const store = this.#partition(topic, partition);
      if (store.fence) throw store.fence;
      if (offset < store.endOffset) {
        const records = await store.read(offset, resolved.maxRecords, resolved.maxBytes);
        if (records.length > 0) return records;
      }
      const remainingMs = deadline - Date.now();
      if (remainingMs <= 0 || resolved.signal?.aborted || this.#closed) return [];
      await this.signals.wait([partitionKey(topic, partition)], remainingMs, resolved.signal);
      this.assertOpen();
    }
  }

  async offsetForTimestamp(topic: string, partition: number, timestamp: number): Promise<number> {
    this.assertOpen();
    return this.#partition(topic, partition).offsetForTimestamp(timestamp);
  }

  partitionCount(topic: string): number | undefined {
    return this.#topics.get(topic)?.partitions.length;
  }

  bounds(topic: string, partition: number): { startOffset: number; endOffset: number } {
    const store = this.#partition(topic, partition);
    return { startOffset: store.startOffset, endOffset: store.endOffset };
  }

  // ---- groups ------------------------------------------------------------------------------------

  async commitOffsets(group: string, offsets: TopicPartitionOffset[]): Promise<void> {
    this.assertOpen();
    if (!group) throw new TributaryError('INVALID_ARGUMENT', 'group name must not be empty');
    this.groups.commit(group, offsets);
    // Unlike the memory log, a commit here (even of no offsets) writes the group's file, so the
    // group is listed from then on, also after a reopen.
    this.groups.ensureGroup(group);
    await this.#persistGroup(group);
  }

  /**
   * Committed offsets file, one per group: `groups/<url-encoded group>.json` =
   * `{"formatVersion":1,"group":"g","offsets":{"<topic>":{"<partition>":<next offset>}}}`,
   * replaced atomically (temp file, fsync, rename). Writes of one group are serialized so an older
   * snapshot never overwrites a newer one.
   */
  #persistGroup(group: string): Promise<void> {
    const previous = this.#groupWrites.get(group) ?? Promise.resolve();
    const next = previous
      .catch(() => undefined)
      .then(async () => {
        const offsets = this.groups.snapshot(group);
        const body = JSON.stringify({ formatVersion: logFormatVersion, group, offsets });
        await writeFileAtomic(path.join(this.dir, logLayout.groups, groupFileName(group)), `${body}\n`);
      });
    this.#groupWrites.set(group, next);
    return next;
  }

  // ---- maintenance -------------------------------------------------------------------------------

  enforceRetention(): Promise<void> {
    return promised(() => {
      this.assertOpen();
      const nowMs = this.#clock.now();
      for (const topic of this.#topics.values()) {
        for (const store of topic.partitions) {
          const deleted = store.enforceRetention(nowMs, topic.meta.retentionMs, topic.meta.retentionBytes);
          if (deleted > 0) {
            logger.info(
              { topic: store.topic, partition: store.partition, deleted, startOffset: store.startOffset },
              'retention deleted segments',
            );
          }
        }
      }
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.groups.membership.closeAll();
    await this.flush();
    this.#closed = true;
    await this.#recovery;
    if (this.#retentionTimer !== undefined) clearInterval(this.#retentionTimer);
    this.#cancelScheduledFlush();
    await Promise.all([...this.#groupWrites.values()].map((p) => p.catch(() => undefined)));
    for (const topic of this.#topics.values()) for (const p of topic.partitions) await p.close();
    this.signals.notifyAll();
    for (const d of this.#drainWaiters) d();
    releaseLock(this.dir);
  }

  protected partitionsOf(topic: string): number {
    return this.#topic(topic).partitions.length;
  }

  #topic(name: string): TopicState {
    return findTopic(this.#topics, name);
  }

  #partition(topic: string, partition: number): PartitionStore {
    return findPartition(this.#topics, topic, partition);
  }
}
