import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { childLogger, fsyncDirectory, TributaryError, limits } from '../../core/index.js';
import type { LogRecord } from '../types.js';
import {
  batchHeaderBytes,
  checkBatch,
  decodeBatchInto,
  parseSegmentFileName,
  segmentFileName,
  type BatchHeader,
  type DecodeCursor,
} from './format.js';

/** Looked up on each call like fdatasync below, so a test can see whether a fetch read the file. */
const read = (fd: number, buf: Buffer, offset: number, length: number, position: number) =>
  new Promise<{ bytesRead: number }>((resolve, reject) =>
    fs.read(fd, buf, offset, length, position, (error, bytesRead) =>
      error ? reject(error) : resolve({ bytesRead }),
    ),
  );
const writev = promisify(fs.writev);
/** Looked up on each call (not bound at load), so a test can watch the syncs through `fs.fdatasync`. */
const fdatasync = (fd: number) =>
  new Promise<void>((resolve, reject) => fs.fdatasync(fd, (error) => (error ? reject(error) : resolve())));
const close = promisify(fs.close);
const logger = childLogger('log.embedded');

/** A sparse index entry is kept at most every this many bytes of segment (Kafka's index.interval.bytes). */
const indexIntervalBytes = 4096;
/** Bytes read per step when scanning a segment at open and per read when fetching. */
const scanChunkBytes = 4 * 1024 * 1024;
const sealedScanChunkBytes = 64 * 1024;
const fetchChunkBytesMin = 256 * 1024;

/** One segment file; the in-memory sparse index is rebuilt from the file when the log opens. */
export class Segment {
  readonly baseOffset: number;
  readonly file: string;
  fd: number | undefined;
  /** Bytes written to the file (some may not be synced yet). */
  size = 0;
  /** Bytes that readers may see: written and synced under the durability policy. */
  visibleSize = 0;
  /** Offset after the last record written. */
  nextOffset: number;
  maxTimestamp = -Infinity;
  /** Sparse index: offset of a batch's first record, its file position, and the largest timestamp before it. */
  readonly indexOffsets: number[] = [];
  readonly indexPositions: number[] = [];
  readonly indexMaxTimestampBefore: number[] = [];
  #lastIndexedPosition = -Infinity;
  /** Reads in flight; a deleted segment closes its fd when the last one ends. */
  readers = 0;
  deleted = false;
  dirty = false;

  constructor(baseOffset: number, file: string) {
    this.baseOffset = baseOffset;
    this.file = file;
    this.nextOffset = baseOffset;
  }

  /** Adds a batch that lies at `position` to the in-memory state. */
  track(position: number, header: BatchHeader): void {
    if (position - this.#lastIndexedPosition >= indexIntervalBytes) {
      this.indexOffsets.push(header.baseOffset);
      this.indexPositions.push(position);
      this.indexMaxTimestampBefore.push(this.maxTimestamp);
      this.#lastIndexedPosition = position;
    }
    this.size = position + header.batchBytes;
    this.nextOffset = header.baseOffset + header.recordCount;
    if (header.maxTimestamp > this.maxTimestamp) this.maxTimestamp = header.maxTimestamp;
  }

  /** File position of the indexed batch at or before `offset`. */
  positionFor(offset: number): number {
    const i = lastAtOrBelow(this.indexOffsets, offset);
    return i < 0 ? 0 : this.indexPositions[i];
  }

  /** File position from which every record with timestamp >= `timestamp` lies. */
  positionForTimestamp(timestamp: number): number {
    // indexMaxTimestampBefore only grows: the last entry whose prefix is all older is where to start.
    const i = lastBelow(this.indexMaxTimestampBefore, timestamp);
    return i < 0 ? 0 : this.indexPositions[i];
  }
}

/**
 * A piece of a segment file held in memory for fetches. Never modified after it is read (records are
 * views into it, and callers may keep them), so what was checked in it once stays checked.
 */
interface Chunk {
  /** File position of `buf[0]`. */
  readonly start: number;
  readonly buf: Buffer;
  /** File positions [verifiedStart, verifiedEnd) hold whole batches whose checksums matched in `buf`. */
  verifiedStart: number;
  verifiedEnd: number;
  /** Where earlier fetches stopped inside a batch, so the next fetch from there need not walk to it. */
  readonly resumePoints: ResumePoint[];
  /** For a chunk of batches the writer just wrote (see ReadCache.wrote): the offsets it holds. */
  readonly baseOffset?: number;
  readonly endOffset?: number;
}

interface ResumePoint {
  /** The first record not yet returned, and its file position. */
  offset: number;
  position: number;
  /** File position of its batch. */
  batchPosition: number;
}

function newChunk(start: number, buf: Buffer): Chunk {
  return { start, buf, verifiedStart: start, verifiedEnd: start, resumePoints: [] };
}

/** True when `chunk` holds the whole batch at file position `position` (or cannot hold it). */
function holdsBatchAt(chunk: Chunk, position: number, limit: number): boolean {
  const at = position - chunk.start;
  if (at < 0 || at + batchHeaderBytes > chunk.buf.length) return false;
  const batchBytes = chunk.buf.readUInt32LE(at + 4);
  // A length that cannot fit the visible data is left for checkBatch to report.
  return (
    at + batchBytes <= chunk.buf.length ||
    position + batchBytes > limit ||
    batchBytes > limits.logBatchBytesMax
  );
}

/**
 * What fetches of one segment keep in memory: the chunk read last, and a read of the bytes after it
 * started before a fetch needs them, so a sequential reader's next file read runs on libuv's thread
 * pool (the other core) while the caller is still processing the records it has.
 */
interface CacheEntry {
  chunk: Chunk | undefined;
  ahead: Promise<Chunk | undefined> | undefined;
  aheadStart: number;
  /** The last few write groups, newest last (see ReadCache.wrote). */
  written: Chunk[];
}

/**
 * Recently read chunks, one entry per segment (a consumer's next fetch usually starts where its
 * previous one stopped, inside the chunk already read). Bounded by entry count.
 */
class ReadCache {
  readonly #entries = new Map<Segment, CacheEntry>();

  entry(segment: Segment): CacheEntry {
    let entry = this.#entries.get(segment);
    if (entry === undefined) entry = { chunk: undefined, ahead: undefined, aheadStart: -1, written: [] };
    else this.#entries.delete(segment);
    this.#entries.set(segment, entry);
    if (this.#entries.size > limits.logReadCacheSegmentsMax)
      this.#entries.delete(this.#entries.keys().next().value!);
    return entry;
  }

  /** A cached chunk holding the whole batch at `position`, waiting for a read ahead that covers it. */
  async lookup(segment: Segment, position: number, limit: number): Promise<Chunk | undefined> {
    const entry = this.#entries.get(segment);
    if (entry === undefined) return undefined;
    if (entry.chunk !== undefined && holdsBatchAt(entry.chunk, position, limit)) return entry.chunk;
    for (const chunk of entry.written) if (chunk.start === position) return chunk;
    const ahead = entry.ahead;
    if (ahead === undefined || position < entry.aheadStart) return undefined;
    const chunk = await ahead;
    if (entry.ahead === ahead) {
      entry.ahead = undefined;
      if (chunk !== undefined) entry.chunk = chunk;
    }
    return chunk !== undefined && holdsBatchAt(chunk, position, limit) ? chunk : undefined;
  }

  /** The chunk of `segment` that a fetch partly decoded (partial batches are read again whole). */
  partial(segment: Segment, position: number): Chunk | undefined {
    const chunk = this.#entries.get(segment)?.chunk;
    if (chunk === undefined || position < chunk.start || position >= chunk.start + chunk.buf.length)
      return undefined;
    return chunk;
  }

  forget(segment: Segment): void {
    this.#entries.delete(segment);
  }

  /**
   * The writer appended `group` at file position `position` of `segment`. When a reader follows that
   * segment (it has an entry), these bytes are kept for it, so a tailing fetch finds them in memory
   * once they are published instead of reading them back through the thread pool. They are the
   * batches just encoded, so they count as checked. Readers still see only published offsets.
   */
  wrote(segment: Segment, position: number, group: Buffer[], groupBytes: number): void {
    const entry = this.#entries.get(segment);
    if (entry === undefined) return;
    const last = group[group.length - 1];
    entry.written.push({
      start: position,
      buf: group.length === 1 ? group[0] : Buffer.concat(group, groupBytes),
      verifiedStart: position,
      verifiedEnd: position + groupBytes,
      resumePoints: [],
      baseOffset: group[0].readDoubleLE(16),
      endOffset: last.readDoubleLE(16) + last.readUInt32LE(40),
    });
    if (entry.written.length > limits.logFollowedWriteGroupsMax) entry.written.shift();
  }

  /** The written chunk of `segment` that holds `offset`, when a fetch from there can start in one. */
  tail(segment: Segment, offset: number): Chunk | undefined {
    const written = this.#entries.get(segment)?.written;
    if (written === undefined) return undefined;
    for (const chunk of written) if (chunk.baseOffset! <= offset && offset < chunk.endOffset!) return chunk;
    return undefined;
  }
}

const readCache = new ReadCache();

/** How far a fetch has got: the next offset to return and the key and value bytes returned. */
interface ReadProgress {
  next: number;
  payloadBytes: number;
}

/** A cursor at the point an earlier fetch stopped inside the batch at `batchPosition`, if any. */
function resumeCursor(chunk: Chunk, batchPosition: number, offset: number): DecodeCursor {
  for (const point of chunk.resumePoints) {
    if (point.offset === offset && point.batchPosition === batchPosition)
      return { offset, position: point.position - chunk.start, payloadBytes: 0 };
  }
  return { offset, position: -1, payloadBytes: 0 };
}

function rememberResumePoint(chunk: Chunk, point: ResumePoint): void {
  const points = chunk.resumePoints;
  if (points.some((p) => p.offset === point.offset && p.batchPosition === point.batchPosition)) return;
  points.push(point);
  if (points.length > limits.logReadResumePointsMax) points.shift();
}

/** Reads `chunkBytes` at `position` (no further than `limit`), or more when the first batch is larger. */
async function readChunk(
  segment: Segment,
  position: number,
  limit: number,
  chunkBytes: number,
): Promise<Chunk> {
  let buf = await readExactly(segment.fd!, Math.min(limit - position, chunkBytes), position);
  if (buf.length >= batchHeaderBytes) {
    const batchBytes = buf.readUInt32LE(4);
    if (batchBytes > buf.length && position + batchBytes <= limit && batchBytes <= limits.logBatchBytesMax)
      buf = await readExactly(segment.fd!, batchBytes, position);
  }
  return newChunk(position, buf);
}

/** Index of the last element <= value in an ascending array, or -1. */
function lastAtOrBelow(values: number[], value: number): number {
  let lo = 0;
  let hi = values.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (values[mid] <= value) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

/** Index of the last element < value in a non-decreasing array, or -1. */
function lastBelow(values: number[], value: number): number {
  let lo = 0;
  let hi = values.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (values[mid] < value) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

function corrupt(file: string, position: number, reason: string): TributaryError {
  return new TributaryError(
    'CORRUPT_DATA',
    `log segment ${file} is corrupt at byte ${position}: ${reason}. Records after this point cannot be read; restore the file from a backup, or inspect and truncate it with \`tributary topics repair\`.`,
    { details: { file, position, reason } },
  );
}

/**
 * The error a fenced partition answers with: CORRUPT_DATA whose message an API client may be shown
 * (topic, partition, segment file name and position; the absolute path stays in `cause`).
 */
function fenceError(topic: string, partition: number, damage: TributaryError): TributaryError {
  const file = typeof damage.details.file === 'string' ? path.basename(damage.details.file) : undefined;
  const where =
    file === undefined
      ? ''
      : ` (segment ${file}${typeof damage.details.position === 'number' ? ` at byte ${damage.details.position}` : ''}${typeof damage.details.reason === 'string' ? `: ${damage.details.reason}` : ''})`;
  return new TributaryError(
    'CORRUPT_DATA',
    `topic ${topic} partition ${partition} is fenced: its log data is damaged${where}. Its reads and writes are refused until an operator runs \`tributary topics inspect ${topic} --partition ${partition}\` and repairs it; the other partitions work.`,
    {
      cause: damage,
      details: { topic, partition, clientMessage: true, ...(file === undefined ? {} : { segment: file }) },
    },
  );
}

async function readExactly(fd: number, length: number, position: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await read(fd, buf, done, length - done, position + done);
    if (bytesRead === 0) return buf.subarray(0, done);
    done += bytesRead;
  }
  return buf;
}

/** What a write stage wrote, to be published to readers once it is durable. */
export interface WriteMark {
  endOffset: number;
  sizes: [Segment, number][];
}

/**
 * One partition of a topic: a directory of segments. Writes come only from the log's single
 * flusher (so they never interleave); reads may run at any time and see only published data.
 */
export class PartitionStore {
  readonly topic: string;
  readonly partition: number;
  readonly dir: string;
  readonly #segmentBytes: number;
  #segments: Segment[] = [];
  /** Offset the next appended record gets (assigned at append time, before the write). */
  nextOffset = 0;
  /** Offset after the last durable record; readers see [startOffset, endOffset). */
  endOffset = 0;
  #dirDirty = false;
  /**
   * Set when this partition's files were found damaged at open: its reads and writes are refused
   * with this error while every other partition works, until an operator repairs it (`tributary
   * topics repair`). Its message names topic, partition and segment, no paths. (Damage inside a
   * sealed segment's batches is found by the read that verifies them: that read fails with
   * CORRUPT_DATA, and the records before and after the damaged batch stay readable.)
   */
  fence: TributaryError | undefined;
  /** Reads ahead in flight (see #readAhead). */
  readonly #readsAhead = new Set<Promise<void>>();

  private constructor(topic: string, partition: number, dir: string, segmentBytes: number) {
    this.topic = topic;
    this.partition = partition;
    this.dir = dir;
    this.#segmentBytes = segmentBytes;
  }

  /** Creates the directory of a new, empty partition (the caller fsyncs the parent). */
  static create(dir: string): void {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, segmentFileName(0)), '');
  }

  /**
   * A partition that could not be opened because its files are damaged (`damage`, CORRUPT_DATA):
   * it holds no segments, shows no offsets, and refuses reads and writes with the fence error.
   */
  static fenced(topic: string, partition: number, dir: string, damage: TributaryError): PartitionStore {
    const store = new PartitionStore(topic, partition, dir, 0);
    store.fence = fenceError(topic, partition, damage);
    return store;
  }

  /**
   * Opens a partition and recovers it: sealed segments must be intact; the active (last) segment
   * is verified batch by batch, and a torn tail (an incomplete or garbled last write with nothing
   * valid after it) is cut off. Anything else that fails a check is CORRUPT_DATA.
   */
  static async open(
    topic: string,
    partition: number,
    dir: string,
    segmentBytes: number,
  ): Promise<PartitionStore> {
    const store = new PartitionStore(topic, partition, dir, segmentBytes);
    const names = fs
      .readdirSync(dir)
      .map((name) => ({ name, base: parseSegmentFileName(name) }))
      .filter((e): e is { name: string; base: number } => e.base !== undefined)
      .sort((a, b) => a.base - b.base);
    if (names.length === 0) {
      fs.writeFileSync(path.join(dir, segmentFileName(0)), '');
      names.push({ name: segmentFileName(0), base: 0 });
    }
    for (let i = 0; i < names.length; i++) {
      const segment = new Segment(names[i].base, path.join(dir, names[i].name));
      const previous = store.#segments[store.#segments.length - 1];
      if (previous !== undefined && previous.nextOffset !== segment.baseOffset) {
        throw corrupt(
          segment.file,
          0,
          `segment starts at offset ${segment.baseOffset} but the previous one ends at ${previous.nextOffset}`,
        );
      }
      store.#segments.push(segment);
      try {
        await store.#scan(segment, i === names.length - 1);
      } catch (error) {
        await store.close();
        throw error;
      }
    }
    const last = store.#segments[store.#segments.length - 1];
    store.nextOffset = last.nextOffset;
    store.endOffset = last.nextOffset;
    return store;
  }

  async #scan(segment: Segment, active: boolean): Promise<void> {
    const fd = fs.openSync(segment.file, active ? 'r+' : 'r');
    segment.fd = fd;
    const fileSize = fs.fstatSync(fd).size;
    let position = 0;
    let chunk: Buffer = Buffer.alloc(0);
    let chunkStart = 0;
    // The active segment is read whole (every batch is checksummed); sealed segments were checked
    // while they were active, so only their batch headers are walked here, in small reads, and
    // their checksums are verified on every read instead. Opening a large log stays cheap.
    const chunkBytes = active ? scanChunkBytes : sealedScanChunkBytes;
    while (position < fileSize) {
      let at = position - chunkStart;
      const needsRefill =
        at + batchHeaderBytes > chunk.length || (active && at + chunk.readUInt32LE(at + 4) > chunk.length);
      if (needsRefill) {
        chunk = await readExactly(fd, Math.min(fileSize - position, chunkBytes), position);
        chunkStart = position;
        at = 0;
        if (active && chunk.length >= batchHeaderBytes) {
          const batchBytes = chunk.readUInt32LE(4);
          if (
            batchBytes > chunk.length &&
            position + batchBytes <= fileSize &&
            batchBytes <= limits.logBatchBytesMax
          ) {
            chunk = await readExactly(fd, batchBytes, position);
          }
        }
      }
      if (
        !active &&
        chunk.length - at >= batchHeaderBytes &&
        position + chunk.readUInt32LE(at + 4) > fileSize
      ) {
        throw corrupt(
          segment.file,
          position,
          `batch of ${chunk.readUInt32LE(at + 4)} bytes runs past the end of the sealed segment`,
        );
      }
      // Sealed segments were verified while they were active; their checksums are checked on read.
      const check = checkBatch(chunk, at, active, !active);
      if (!check.ok) {
        if (!active) throw corrupt(segment.file, position, check.reason);
        await this.#recoverTail(segment, fd, position, fileSize, check.reason);
        break;
      }
      if (check.header.baseOffset !== segment.nextOffset) {
        const reason = `batch has base offset ${check.header.baseOffset}, expected ${segment.nextOffset}`;
        if (!active) throw corrupt(segment.file, position, reason);
        await this.#recoverTail(segment, fd, position, fileSize, reason);
        break;
      }
      segment.track(position, check.header);
      position += check.header.batchBytes;
    }
    segment.visibleSize = segment.size;
  }

  /**
   * The active segment failed a check at `position`. If any valid batch follows, the damage is not
   * a torn write but corruption in the middle of the data: refuse. Otherwise cut the tail.
   */
  async #recoverTail(
    segment: Segment,
    fd: number,
    position: number,
    fileSize: number,
    reason: string,
  ): Promise<void> {
    const rest = await readExactly(fd, fileSize - position, position);
    for (let at = 1; at + batchHeaderBytes <= rest.length; at++) {
      if (rest[at] !== 0x54 || rest.readUInt32LE(at) !== 0x31425254) continue;
      const later = checkBatch(rest, at, true);
      if (later.ok && later.header.baseOffset >= segment.nextOffset) {
        throw corrupt(
          segment.file,
          position,
          `${reason}, and a valid batch follows at byte ${position + at}`,
        );
      }
    }
    logger.warn(
      { file: segment.file, position, droppedBytes: fileSize - position, reason },
      'truncating torn tail of log segment (an unacknowledged write cut short by a crash)',
    );
    fs.ftruncateSync(fd, position);
    fs.fdatasyncSync(fd);
  }

  /**
   * After a failed write stage (disk full, I/O error on fsync): removes every byte readers were never
   * shown, so the files hold exactly the published records again, and returns the partition opened
   * afresh from them. Unpublished batches were never acknowledged, so dropping them loses nothing
   * acknowledged. `install` puts the new store in this one's place (synchronously, before this
   * store is retired: its files close once the reads in flight on them end). Shrinking a file
   * frees space, so this works on a full disk too.
   */
  async rollBackUnpublished(install: (reopened: PartitionStore) => void): Promise<void> {
    while (this.#readsAhead.size > 0) await Promise.all([...this.#readsAhead]);
    let removed = false;
    // Segments rolled during the failed stage hold nothing published: remove them (not the first).
    while (this.#segments.length > 1 && this.#active().visibleSize === 0) {
      const segment = this.#segments.pop()!;
      segment.deleted = true;
      fs.rmSync(segment.file, { force: true });
      if (segment.readers === 0) this.#closeSegment(segment);
      removed = true;
    }
    for (const segment of this.#segments) {
      // A write cut short (ENOSPC mid-writev) leaves bytes past `size` too: compare with the file.
      if (fs.fstatSync(segment.fd!).size === segment.visibleSize) continue;
      fs.ftruncateSync(segment.fd!, segment.visibleSize);
      fs.fdatasyncSync(segment.fd!);
    }
    if (removed) await fsyncDirectory(this.dir);
    install(await PartitionStore.open(this.topic, this.partition, this.dir, this.#segmentBytes));
    // Reads that started on this store see only published bytes, which are still there.
    for (const segment of this.#segments) {
      segment.deleted = true;
      if (segment.readers === 0) this.#closeSegment(segment);
    }
  }

  get startOffset(): number {
    return this.#segments[0]?.baseOffset ?? 0;
  }

  get sizeBytes(): number {
    let total = 0;
    for (const s of this.#segments) total += s.visibleSize;
    return total;
  }

  get segmentCount(): number {
    return this.#segments.length;
  }

  /**
   * Writes encoded batches (in offset order) to the active segment, rolling to a new segment when
   * it would exceed the segment size. Only the flusher calls this, one call at a time.
   */
  async write(batches: Buffer[]): Promise<void> {
    if (this.fence) throw this.fence;
    let group: Buffer[] = [];
    let groupBytes = 0;
    let active = this.#active();
    for (const batch of batches) {
      if (active.size + groupBytes > 0 && active.size + groupBytes + batch.length > this.#segmentBytes) {
        await this.#writeGroup(active, group, groupBytes);
        group = [];
        groupBytes = 0;
        active = this.#roll(batch.readDoubleLE(16));
      }
      group.push(batch);
      groupBytes += batch.length;
    }
    await this.#writeGroup(active, group, groupBytes);
  }

  async #writeGroup(segment: Segment, group: Buffer[], groupBytes: number): Promise<void> {
    if (group.length === 0) return;
    let position = segment.size;
    let written = 0;
    let pending = group;
    while (written < groupBytes) {
      const n = (await writev(segment.fd!, pending, position)).bytesWritten;
      written += n;
      position += n;
      if (written < groupBytes) pending = remainder(group, written);
    }
    readCache.wrote(segment, segment.size, group, groupBytes);
    let at = segment.size;
    for (const batch of group) {
      segment.track(at, {
        batchBytes: batch.length,
        baseOffset: batch.readDoubleLE(16),
        maxTimestamp: batch.readDoubleLE(24),
        minTimestamp: batch.readDoubleLE(32),
        recordCount: batch.readUInt32LE(40),
      });
      at += batch.length;
    }
    segment.dirty = true;
  }

  #roll(baseOffset: number): Segment {
    const active = this.#active();
    if (baseOffset !== active.nextOffset) {
      throw new TributaryError(
        'INTERNAL',
        `segment roll at ${baseOffset} but the active segment ends at ${active.nextOffset}`,
      );
    }
    const segment = new Segment(baseOffset, path.join(this.dir, segmentFileName(baseOffset)));
    segment.fd = fs.openSync(segment.file, 'wx+');
    this.#segments.push(segment);
    this.#dirDirty = true;
    return segment;
  }

  /** Makes written data durable: fdatasync of every written segment, and the directory after a roll. */
  async sync(): Promise<void> {
    const dirty = this.#segments.filter((s) => s.dirty);
    for (const s of dirty) s.dirty = false;
    await Promise.all(dirty.map((s) => fdatasync(s.fd!)));
    if (this.#dirDirty) {
      this.#dirDirty = false;
      const dirFd = fs.openSync(this.dir, 'r');
      try {
        await fdatasync(dirFd);
      } finally {
        fs.closeSync(dirFd);
      }
    }
  }

  /** Marks what has been written so far; `publish(mark)` later shows exactly that to readers. */
  mark(): WriteMark {
    return {
      endOffset: this.#active().nextOffset,
      sizes: this.#segments.filter((s) => s.visibleSize !== s.size).map((s) => [s, s.size]),
    };
  }

  /** Shows the records of a durable write stage to readers (stages publish in order). */
  publish(mark: WriteMark): void {
    for (const [segment, size] of mark.sizes) if (size > segment.visibleSize) segment.visibleSize = size;
    if (mark.endOffset > this.endOffset) this.endOffset = mark.endOffset;
  }

  /**
   * Reads up to `maxRecords` records from `offset` (moved up to the start offset when retention has
   * removed it), stopping after about `maxBytes` of keys and values.
   */
  async read(offset: number, maxRecords: number, maxBytes: number): Promise<LogRecord[]> {
    if (this.fence) throw this.fence;
    return this.#read(offset, maxRecords, maxBytes);
  }

  async #read(offset: number, maxRecords: number, maxBytes: number): Promise<LogRecord[]> {
    const out: LogRecord[] = [];
    let from = Math.max(offset, this.startOffset);
    const to = this.endOffset;
    const progress: ReadProgress = { next: from, payloadBytes: 0 };
    while (from < to && out.length < maxRecords && progress.payloadBytes < maxBytes) {
      const segment = this.#segmentFor(from);
      if (segment === undefined) break;
      segment.readers++;
      try {
        progress.next = from;
        await this.#readSegment(segment, to, maxRecords, maxBytes, out, progress);
        if (progress.next <= from) break;
        from = progress.next;
      } finally {
        this.#release(segment);
      }
    }
    return out;
  }

  /**
   * Decodes records of one segment from `progress.next` into `out`, moving `progress` on. Batches are
   * checked (magic, length, checksum) once per chunk read: a fetch that continues inside a chunk an
   * earlier fetch checked starts where that one stopped, without checking or walking the batch again.
   */
  async #readSegment(
    segment: Segment,
    to: number,
    maxRecords: number,
    maxBytes: number,
    out: LogRecord[],
    progress: ReadProgress,
  ): Promise<void> {
    let position = segment.positionFor(progress.next);
    // A caught-up reader starts in the batches just written (the sparse index may point before them).
    const tail = readCache.tail(segment, progress.next);
    if (tail !== undefined && tail.start > position) position = tail.start;
    const limit = segment.visibleSize;
    const chunkBytes = Math.max(
      fetchChunkBytesMin,
      Math.min(maxBytes - progress.payloadBytes, scanChunkBytes),
    );
    let chunk: Chunk | undefined;
    /** When the fetch ends inside a batch: the file position of the batch after it. */
    let stoppedBefore = -1;
    while (
      position < limit &&
      progress.next < to &&
      out.length < maxRecords &&
      progress.payloadBytes < maxBytes
    ) {
      chunk = await this.#chunkFor(segment, position, limit, chunkBytes);
      const buf = chunk.buf;
      let at = position - chunk.start;
      while (
        at < buf.length &&
        progress.next < to &&
        out.length < maxRecords &&
        progress.payloadBytes < maxBytes
      ) {
        const batchPosition = chunk.start + at;
        const verified = batchPosition >= chunk.verifiedStart && batchPosition < chunk.verifiedEnd;
        const check = checkBatch(buf, at, !verified);
        if (!check.ok) {
          if (check.incomplete && batchPosition > position) break;
          throw corrupt(segment.file, batchPosition, check.reason);
        }
        const header = check.header;
        if (!verified) {
          if (batchPosition === chunk.verifiedEnd) chunk.verifiedEnd = batchPosition + header.batchBytes;
          else if (batchPosition + header.batchBytes === chunk.verifiedStart)
            chunk.verifiedStart = batchPosition;
          else {
            chunk.verifiedStart = batchPosition;
            chunk.verifiedEnd = batchPosition + header.batchBytes;
          }
        }
        const batchEnd = header.baseOffset + header.recordCount;
        if (batchEnd > progress.next) {
          const cursor = resumeCursor(chunk, batchPosition, progress.next);
          const pushed = decodeBatchInto(
            buf,
            at,
            header,
            this.topic,
            this.partition,
            progress.next,
            to,
            maxRecords - out.length,
            out,
            cursor,
          );
          progress.payloadBytes += cursor.payloadBytes;
          if (pushed > 0) progress.next = out[out.length - 1].offset + 1;
          if (progress.next < batchEnd) {
            if (out.length < maxRecords && progress.payloadBytes < maxBytes && progress.next < to) {
              throw new TributaryError(
                'INTERNAL',
                `decoder stopped early in ${segment.file} at offset ${progress.next}`,
              );
            }
            if (cursor.offset === progress.next) {
              rememberResumePoint(chunk, {
                offset: cursor.offset,
                position: chunk.start + cursor.position,
                batchPosition,
              });
            }
            stoppedBefore = batchPosition + header.batchBytes;
            break;
          }
        }
        at += header.batchBytes;
      }
      if (stoppedBefore >= 0) break;
      position = chunk.start + at;
    }
    if (stoppedBefore < 0 && position >= limit && progress.next < to) {
      progress.next = Math.max(progress.next, segment.nextOffset);
      return;
    }
    if (chunk !== undefined)
      this.#readAhead(segment, chunk, stoppedBefore >= 0 ? stoppedBefore : position, limit, chunkBytes);
  }

  /** The cached chunk holding the whole batch at `position`, or a new read of it (then cached). */
  async #chunkFor(segment: Segment, position: number, limit: number, chunkBytes: number): Promise<Chunk> {
    const cached = await readCache.lookup(segment, position, limit);
    if (cached !== undefined) return cached;
    // A batch only partly in the cached chunk: its header says how much to read.
    const partial = readCache.partial(segment, position);
    let atLeast = 0;
    if (partial !== undefined && position - partial.start + batchHeaderBytes <= partial.buf.length)
      atLeast = partial.buf.readUInt32LE(position - partial.start + 4);
    const chunk = await readChunk(segment, position, limit, Math.max(chunkBytes, atLeast));
    const entry = readCache.entry(segment);
    entry.chunk = chunk;
    return chunk;
  }

  /**
   * A reader that goes on where a fetch stopped needs the batch at `start` soon. When `chunk` does not
   * hold it, starts reading it now, so the file read runs on libuv's thread pool (the other core)
   * while the caller still processes the records it has. Only visible (durable) bytes are read. The
   * read holds the segment like a fetch does, and `close` waits for it.
   */
  #readAhead(segment: Segment, chunk: Chunk, start: number, limit: number, chunkBytes: number): void {
    if (start >= limit || holdsBatchAt(chunk, start, limit)) return;
    const entry = readCache.entry(segment);
    if (entry.chunk !== chunk || (entry.ahead !== undefined && entry.aheadStart === start)) return;
    segment.readers++;
    const ahead = readChunk(segment, start, limit, chunkBytes).then(
      (read) => read,
      // The fetch that needs these bytes reads them again and reports the error.
      () => undefined,
    );
    const settled = ahead.then(() => {
      this.#readsAhead.delete(settled);
      this.#release(segment);
    });
    this.#readsAhead.add(settled);
    entry.ahead = ahead;
    entry.aheadStart = start;
  }

  /** First offset whose timestamp is >= `timestamp`, or the end offset. */
  async offsetForTimestamp(timestamp: number): Promise<number> {
    if (this.fence) throw this.fence;
    for (const segment of [...this.#segments]) {
      if (segment.deleted || segment.maxTimestamp < timestamp || segment.visibleSize === 0) continue;
      segment.readers++;
      try {
        let position = segment.positionForTimestamp(timestamp);
        while (position < segment.visibleSize) {
          const length = Math.min(segment.visibleSize - position, scanChunkBytes);
          let chunk = await readExactly(segment.fd!, length, position);
          const first = chunk.length >= batchHeaderBytes ? chunk.readUInt32LE(4) : 0;
          if (first > chunk.length) chunk = await readExactly(segment.fd!, first, position);
          let at = 0;
          while (at < chunk.length) {
            const check = checkBatch(chunk, at, true);
            if (!check.ok) {
              if (check.incomplete && at > 0) break;
              throw corrupt(segment.file, position + at, check.reason);
            }
            if (check.header.maxTimestamp >= timestamp) {
              const records: LogRecord[] = [];
              decodeBatchInto(
                chunk,
                at,
                check.header,
                this.topic,
                this.partition,
                0,
                this.endOffset,
                Infinity,
                records,
              );
              const hit = records.find((r) => r.timestamp >= timestamp);
              if (hit !== undefined) return hit.offset;
            }
            at += check.header.batchBytes;
          }
          position += at;
        }
      } finally {
        this.#release(segment);
      }
    }
    return this.endOffset;
  }

  /**
   * Deletes whole sealed segments that are past the time limit (newest record older than
   * `nowMs - retentionMs`) or not needed to keep `retentionBytes`. The active segment stays.
   * Returns the number of segments deleted.
   */
  enforceRetention(nowMs: number, retentionMs: number, retentionBytes: number): number {
    let deleted = 0;
    let total = this.sizeBytes;
    while (this.#segments.length > 1) {
      const oldest = this.#segments[0];
      const expired = retentionMs >= 0 && oldest.maxTimestamp < nowMs - retentionMs;
      const oversize = retentionBytes >= 0 && total - oldest.size >= retentionBytes;
      if (!expired && !oversize) break;
      this.#segments.shift();
      total -= oldest.size;
      oldest.deleted = true;
      // Unlink first: the open fd keeps the data readable for reads already in flight.
      fs.rmSync(oldest.file, { force: true });
      if (oldest.readers === 0) this.#closeSegment(oldest);
      deleted++;
    }
    return deleted;
  }

  async close(): Promise<void> {
    // A read ahead still running uses a segment's fd: let it finish before the fd is closed.
    while (this.#readsAhead.size > 0) await Promise.all([...this.#readsAhead]);
    for (const s of this.#segments) {
      readCache.forget(s);
      if (s.fd !== undefined) {
        const fd = s.fd;
        s.fd = undefined;
        await close(fd);
      }
    }
  }

  #release(segment: Segment): void {
    segment.readers--;
    if (segment.deleted && segment.readers === 0) this.#closeSegment(segment);
  }

  #closeSegment(segment: Segment): void {
    readCache.forget(segment);
    if (segment.fd !== undefined) {
      fs.closeSync(segment.fd);
      segment.fd = undefined;
    }
  }

  #active(): Segment {
    return this.#segments[this.#segments.length - 1];
  }

  #segmentFor(offset: number): Segment | undefined {
    const segments = this.#segments;
    let lo = 0;
    let hi = segments.length - 1;
    let found: Segment | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (segments[mid].baseOffset <= offset) {
        found = segments[mid];
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }
}

/** The buffers of `group` after the first `skip` bytes (a short writev is rare but legal). */
function remainder(group: Buffer[], skip: number): Buffer[] {
  const out: Buffer[] = [];
  let left = skip;
  for (const b of group) {
    if (left >= b.length) {
      left -= b.length;
      continue;
    }
    out.push(left > 0 ? b.subarray(left) : b);
    left = 0;
  }
  return out;
}
