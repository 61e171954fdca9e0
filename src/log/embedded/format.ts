import { crc32 } from 'node:zlib';
import { TributaryError, limits } from '../../core/index.js';
import { noHeaders } from '../records.js';
import type { Bytes, LogRecord } from '../types.js';

/**
 * Segment file format, version 1.
 *
 * A partition is a directory of segment files named `<base offset, 20 digits>.log`. A segment is a
 * plain sequence of batches (no file header); one `append` call writes one batch per partition it
 * touches. All integers are little-endian; offsets and timestamps are float64 holding integers
 * (exact up to 2^53, the same bound JavaScript numbers have everywhere else in the API).
 *
 * Batch (header is `batchHeaderBytes` = 44 bytes):
 *
 *   offset  size  field
 *   0       4     magic        0x31425254 (ASCII "TRB1" read as a little-endian u32)
 *   4       4     batchBytes   length of the whole batch, header included
 *   8       4     crc          CRC-32 (zlib/ISO-HDLC polynomial) of bytes [12, batchBytes)
 *   12      1     version      1
 *   13      1     flags        0 (reserved for compression)
 *   14      2     reserved     0
 *   16      8     baseOffset   offset of the first record (f64)
 *   24      8     maxTimestamp largest record timestamp in the batch, epoch ms (f64)
 *   32      8     minTimestamp smallest record timestamp in the batch, epoch ms (f64)
 *   40      4     recordCount  records in the batch (offsets baseOffset .. baseOffset+count-1)
 *   44      ...   records
 *
 * Record (covered by the batch CRC; no per-record checksum):
 *
 *   0       4     recordBytes  length of the record, this field included
 *   4       8     timestamp    epoch ms (f64)
 *   12      4     keyLength    i32; -1 = null key
 *   16      k     key
 *   ...     4     valueLength  i32; -1 = null value
 *   ...     v     value
 *   ...     2     headerCount  u16
 *   then headerCount times: u16 nameLength, name (UTF-8), u32 valueLength, value
 *
 * Why CRC-32 and not CRC-32C: Node 20 has a native CRC-32 (`zlib.crc32`, ~2 GB/s) but no native
 * CRC-32C; a JavaScript CRC-32C would cost more CPU than the rest of the read path. Both detect
 * the torn writes and bit flips this format guards against.
 */
export const batchMagic = 0x31425254;
export const batchFormatVersion = 1;
export const batchHeaderBytes = 44;

/** A record ready for encoding (bytes resolved, partition chosen). */
export interface EncodableRecord {
  timestamp: number;
  key: Bytes | null;
  value: Bytes | null;
  headers: Record<string, Bytes>;
}

/** Encodes `records` (at least one) as one batch starting at `baseOffset`. */
export function encodeBatch(records: readonly EncodableRecord[], baseOffset: number): Buffer {
  if (records.length === 0) throw new TributaryError('INTERNAL', 'encodeBatch needs at least one record');
  // Sizing pass first, so the batch is one allocation and one write. Header names are measured
  // here and written as UTF-8 straight into the batch below: records of a source repeat the same
  // few names, and an encoded copy plus an entry pair per header per record was garbage for nothing.
  let size = batchHeaderBytes;
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    let recordBytes = 4 + 8 + 4 + (r.key?.length ?? 0) + 4 + (r.value?.length ?? 0) + 2;
    const headers = r.headers;
    if (headers !== noHeaders) {
      let count = 0;
      for (const name in headers) {
        const nameBytes = Buffer.byteLength(name, 'utf8');
        if (nameBytes > 0xffff)
          throw new TributaryError('BAD_RECORD', `record ${i}: header name longer than 65535 bytes`);
        recordBytes += 2 + nameBytes + 4 + headers[name].length;
        count++;
      }
      if (count > 0xffff) {
        throw new TributaryError('BAD_RECORD', `record ${i}: ${count} headers exceeds 65535`);
      }
    }
    size += recordBytes;
  }
  if (size > limits.logBatchBytesMax)
    throw new TributaryError(
      'PAYLOAD_TOO_LARGE',
      `batch of ${size} bytes exceeds ${limits.logBatchBytesMax}`,
    );
  const buf = Buffer.allocUnsafe(size);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  let minTimestamp = Infinity;
  let maxTimestamp = -Infinity;
  let pos = batchHeaderBytes;
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    const start = pos;
    const timestamp = r.timestamp;
    view.setFloat64(pos + 4, timestamp, true);
    pos += 12;
    if (timestamp < minTimestamp) minTimestamp = timestamp;
    if (timestamp > maxTimestamp) maxTimestamp = timestamp;
    pos = writeBytes(buf, view, pos, r.key);
    pos = writeBytes(buf, view, pos, r.value);
    const countAt = pos;
    pos += 2;
    let count = 0;
    const headers = r.headers;
    if (headers !== noHeaders) {
      for (const name in headers) {
        const value = headers[name];
        const nameBytes = buf.write(name, pos + 2, 'utf8');
        view.setUint16(pos, nameBytes, true);
        pos += 2 + nameBytes;
        view.setUint32(pos, value.length, true);
        buf.set(value, pos + 4);
        pos += 4 + value.length;
        count++;
      }
    }
    view.setUint16(countAt, count, true);
    view.setUint32(start, pos - start, true);
  }
  view.setUint32(0, batchMagic, true);
  view.setUint32(4, size, true);
  view.setUint8(12, batchFormatVersion);
  view.setUint8(13, 0);
  view.setUint16(14, 0, true);
  view.setFloat64(16, baseOffset, true);
  view.setFloat64(24, maxTimestamp, true);
  view.setFloat64(32, minTimestamp, true);
  view.setUint32(40, records.length, true);
  view.setUint32(8, crc32(buf.subarray(12)), true);
  return buf;
}

function writeBytes(buf: Buffer, view: DataView, pos: number, bytes: Bytes | null): number {
  if (bytes === null) {
    view.setInt32(pos, -1, true);
    return pos + 4;
  }
  view.setInt32(pos, bytes.length, true);
  if (bytes.length > 0) buf.set(bytes, pos + 4);
  return pos + 4 + bytes.length;
}
/** Header fields of a batch, read without decoding its records. */
export interface BatchHeader {
  batchBytes: number;
  baseOffset: number;
  maxTimestamp: number;
  minTimestamp: number;
  recordCount: number;
}

export type BatchCheck =
  | { ok: true; header: BatchHeader }
  /** `incomplete`: the buffer ends inside the batch (a torn tail when at the end of a file). */
  | { ok: false; reason: string; incomplete: boolean };

/**
 * Validates the batch at `pos` of `buf`: magic, version, length, and (when `verifyCrc`) checksum.
 * With `headerOnly`, `buf` may end after the header (the length and checksum are then not checked).
 * Never throws; callers decide whether a bad batch is a torn tail or corruption.
 */
export function checkBatch(buf: Buffer, pos: number, verifyCrc: boolean, headerOnly = false): BatchCheck {
  if (buf.length - pos < batchHeaderBytes)
    return { ok: false, reason: 'truncated batch header', incomplete: true };
  const magic = buf.readUInt32LE(pos);
  if (magic !== batchMagic)
    return { ok: false, reason: `bad magic 0x${magic.toString(16)}`, incomplete: false };
  const batchBytes = buf.readUInt32LE(pos + 4);
  if (batchBytes < batchHeaderBytes || batchBytes > limits.logBatchBytesMax) {
    return { ok: false, reason: `impossible batch length ${batchBytes}`, incomplete: false };
  }
  const version = buf.readUInt8(pos + 12);
  if (version !== batchFormatVersion) {
    return { ok: false, reason: `unknown batch format version ${version}`, incomplete: false };
  }
  if (!headerOnly && buf.length - pos < batchBytes) {
    return {
      ok: false,
      reason: `batch of ${batchBytes} bytes cut off after ${buf.length - pos}`,
      incomplete: true,
    };
  }
  if (verifyCrc && !headerOnly) {
    const stored = buf.readUInt32LE(pos + 8);
    const actual = crc32(buf.subarray(pos + 12, pos + batchBytes));
    if (stored !== actual) {
      return {
        ok: false,
        reason: `checksum mismatch (stored ${stored}, computed ${actual})`,
        incomplete: false,
      };
    }
  }
  return {
    ok: true,
    header: {
      batchBytes,
      baseOffset: buf.readDoubleLE(pos + 16),
      maxTimestamp: buf.readDoubleLE(pos + 24),
      minTimestamp: buf.readDoubleLE(pos + 32),
      recordCount: buf.readUInt32LE(pos + 40),
    },
  };
}

/**
 * The headers object of a record without headers: a plain empty object (its prototype is
 * Object.prototype, as for `{}`, and callers may add to it), allocated through a constructor because
 * V8 then sizes it to the properties it really has: 24 bytes instead of the 56 of a `{}` literal,
 * which keeps four slots free. A fetch returns thousands of records that stay alive while the caller
 * works through them: with its record object (96 bytes) and value view (96), each record is then
 * 216 bytes instead of 248 for the young-generation collector to copy.
 */
const EmptyHeaders = function EmptyHeaders() {} as unknown as new () => Record<string, Bytes>;
EmptyHeaders.prototype = Object.prototype;

/**
 * Where a decode of a batch starts and, afterwards, where it stopped: the record with offset
 * `offset` begins at byte `position` of the buffer. Reusing a cursor saved by an earlier decode of
 * the same (immutable) buffer skips walking the records before it again.
 */
export interface DecodeCursor {
  offset: number;
  position: number;
  /** Key and value bytes of the records pushed by the last decode. */
  payloadBytes: number;
}

/**
 * Decodes the records of a checked batch at `pos` into `out`, keeping only offsets in
 * [fromOffset, toOffset) and at most `limit` records. Keys, values and header values are views into
 * `buf` (no copies). Returns the number of records pushed. With `cursor`, decoding starts at the
 * cursor's record (which must lie in this batch) and the cursor is moved to the first record not
 * pushed. Throws CORRUPT_DATA when a record's framing disagrees with the batch (a checksum collision
 * or a writer bug, never a torn write).
 */
export function decodeBatchInto(
  buf: Buffer,
  pos: number,
  header: BatchHeader,
  topic: string,
  partition: number,
  fromOffset: number,
  toOffset: number,
  limit: number,
  out: LogRecord[],
  cursor?: DecodeCursor,
): number {
  const end = pos + header.batchBytes;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  const base = buf.buffer;
  const baseByteOffset = buf.byteOffset;
  const recordCount = header.recordCount;
  let i = 0;
  let p = pos + batchHeaderBytes;
  if (cursor !== undefined && cursor.position > p) {
    i = cursor.offset - header.baseOffset;
    p = cursor.position;
    if (i < 0 || i > recordCount || p > end) throw framingError(cursor.offset);
  }
  let pushed = 0;
  let payloadBytes = 0;
  for (; i < recordCount && pushed < limit; i++) {
    const offset = header.baseOffset + i;
    if (p + 4 > end) throw framingError(offset);
    const recordBytes = view.getUint32(p, true);
    const next = p + recordBytes;
    if (next > end || recordBytes < 22) throw framingError(offset);
    if (offset >= toOffset) break;
    if (offset < fromOffset) {
      p = next;
      continue;
    }
    const timestamp = view.getFloat64(p + 4, true);
    let q = p + 12;
    const keyLength = view.getInt32(q, true);
    q += 4;
    let key: Uint8Array | null = null;
    if (keyLength >= 0) {
      if (q + keyLength > next) throw framingError(offset);
      key = new Uint8Array(base, baseByteOffset + q, keyLength);
      q += keyLength;
      payloadBytes += keyLength;
    }
    const valueLength = view.getInt32(q, true);
    q += 4;
    let value: Uint8Array | null = null;
    if (valueLength >= 0) {
      if (q + valueLength > next) throw framingError(offset);
      value = new Uint8Array(base, baseByteOffset + q, valueLength);
      q += valueLength;
      payloadBytes += valueLength;
    }
    const headerCount = view.getUint16(q, true);
    q += 2;
    const headers = headerCount === 0 ? new EmptyHeaders() : ({} as Record<string, Bytes>);
    for (let h = 0; h < headerCount; h++) {
      const nameLength = view.getUint16(q, true);
      const name = buf.toString('utf8', q + 2, q + 2 + nameLength);
      q += 2 + nameLength;
      const headerLength = view.getUint32(q, true);
      if (q + 4 + headerLength > next) throw framingError(offset);
      headers[name] = new Uint8Array(base, baseByteOffset + q + 4, headerLength);
      q += 4 + headerLength;
    }
    if (q !== next) throw framingError(offset);
    out.push({ topic, partition, offset, timestamp, key, value, headers });
    pushed++;
    p = next;
  }
  if (cursor !== undefined) {
    cursor.offset = header.baseOffset + i;
    cursor.position = p;
    cursor.payloadBytes = payloadBytes;
  }
  return pushed;
}

function framingError(offset: number): TributaryError {
  return new TributaryError('CORRUPT_DATA', `record at offset ${offset} does not fit its batch framing`, {
    details: { offset },
  });
}

/** Segment file name for a base offset: 20 digits, so names sort like offsets (as in Kafka). */
export function segmentFileName(baseOffset: number): string {
  return `${String(baseOffset).padStart(20, '0')}.log`;
}

export function parseSegmentFileName(name: string): number | undefined {
  const match = /^(\d{20})\.log$/.exec(name);
  return match ? Number(match[1]) : undefined;
}
