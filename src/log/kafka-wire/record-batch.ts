import { createRequire } from 'node:module';
import { gunzipSync } from 'node:zlib';
import { decompress as zstdDecompress } from 'fzstd';
import { TributaryError, limits } from '../../core/index.js';
import type { LogRecord } from '../types.js';
import { KafkaReader } from './schema.js';

const require = createRequire(import.meta.url);
const lz4 = require('lz4js') as { decompress(src: Uint8Array, maxSize?: number): Uint8Array };
const snappy = require('snappyjs') as { uncompress(src: Uint8Array, maxLength?: number): Uint8Array };

// ---------------------------------------------------------------------------------------------
// CRC-32C (Castagnoli), the checksum of Kafka's record batch v2. Every produced and every fetched
// batch is summed, so it matters. Node 20 has no native CRC-32C; @node-rs/crc32 (the SSE 4.2 / ARM
// CRC instructions, ~6 GB/s here; an optional dependency, as in @platformatic/kafka) is used when it
// loads, else slicing-by-16 in JavaScript (~1 GB/s): sixteen 256-entry tables (one flat Int32Array,
// so loads stay small integers) consume sixteen bytes per step. Reads go through a plain
// Uint8Array view: V8 keeps that loop monomorphic, which measured faster than indexing the Buffer
// subclass.

const crcTable: Int32Array = (() => {
  const table = new Int32Array(16 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = table[n];
    for (let t = 1; t < 16; t++) {
      c = table[c & 0xff] ^ (c >>> 8);
      table[t * 256 + n] = c;
    }
  }
  return table;
})();

/** CRC-32C in JavaScript (slicing-by-16); the fallback when the native one is not installed. */
export function crc32cPortable(input: Uint8Array, start = 0, end = input.length): number {
  const data = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  const t = crcTable;
  let crc = -1;
  let i = start;
  for (; i + 16 <= end; i += 16) {
    const a = (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)) ^ crc;
    crc =
      t[3840 + (a & 0xff)] ^
      t[3584 + ((a >>> 8) & 0xff)] ^
      t[3328 + ((a >>> 16) & 0xff)] ^
      t[3072 + (a >>> 24)] ^
      t[2816 + data[i + 4]] ^
      t[2560 + data[i + 5]] ^
      t[2304 + data[i + 6]] ^
      t[2048 + data[i + 7]] ^
      t[1792 + data[i + 8]] ^
      t[1536 + data[i + 9]] ^
      t[1280 + data[i + 10]] ^
      t[1024 + data[i + 11]] ^
      t[768 + data[i + 12]] ^
      t[512 + data[i + 13]] ^
      t[256 + data[i + 14]] ^
      t[data[i + 15]];
  }
  for (; i < end; i++) crc = t[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

type NativeCrc32c = (input: Uint8Array) => number;

function loadNativeCrc32c(): NativeCrc32c | null {
  if (process.env.TRIBUTARY_PORTABLE_CRC32C === '1') return null;
  try {
    const native = (require('@node-rs/crc32') as { crc32c: NativeCrc32c }).crc32c;
    // Checked once against the standard test vector, so a broken binary falls back rather than
    // refusing every batch.
    return native(Buffer.from('123456789')) === 0xe3069283 ? native : null;
  } catch {
    return null;
  }
}

const nativeCrc32c = loadNativeCrc32c();

/** Which CRC-32C implementation this process uses (for logs and tests). */
export const crc32cImplementation: 'native' | 'portable' = nativeCrc32c === null ? 'portable' : 'native';

/** CRC-32C of `input[start, end)`. */
export function crc32c(input: Uint8Array, start = 0, end = input.length): number {
  if (nativeCrc32c === null) return crc32cPortable(input, start, end);
  return nativeCrc32c(
    start === 0 && end === input.length
      ? input
      : new Uint8Array(input.buffer, input.byteOffset + start, end - start),
  );
}

// ---------------------------------------------------------------------------------------------
// Record batch v2 (the only message format since Kafka 0.11; Produce v3+ and Fetch v4+ carry it):
//
//   baseOffset int64 · batchLength int32 (bytes after this field) · partitionLeaderEpoch int32 ·
//   magic int8 = 2 · crc uint32 (CRC-32C of everything after it) · attributes int16 ·
//   lastOffsetDelta int32 · baseTimestamp int64 · maxTimestamp int64 · producerId int64 ·
//   producerEpoch int16 · baseSequence int32 · recordCount int32 · records
//
//   attributes: bits 0–2 compression (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd), bit 3 timestamp
//   type (1 = log append time), bit 4 transactional, bit 5 control batch.
//
//   record: length varint · attributes int8 · timestampDelta varlong · offsetDelta varint ·
//   keyLength varint (-1 null) · key · valueLength varint (-1 null) · value · headerCount varint ·
//   headers (keyLength varint · key UTF-8 · valueLength varint (-1 null) · value)
//
// With compression, everything after recordCount is compressed as one block.

export const batchHeaderBytes = 61;
const compressionNames = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];

/**
 * A produced record decoded straight into the shape `Log.append` takes: one object per record, key,
 * value and header values as views into the request (or decompressed) bytes, no copies. A header
 * with a null value becomes empty bytes; a repeated header name keeps its last value.
 */
export interface ProducedRecord {
  topic: string;
  partition: number;
  timestamp: number;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: Record<string, Uint8Array> | undefined;
}

export interface DecodedBatch {
  baseOffset: number;
  attributes: number;
  lastOffsetDelta: number;
  baseTimestamp: number;
  maxTimestamp: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  records: ProducedRecord[];
  transactional: boolean;
  control: boolean;
}

/** Xerial's snappy-java stream (what the Java client and librdkafka write): magic, then blocks. */
const xerialMagic = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);

function unsnappy(data: Buffer): Buffer {
  if (data.length >= 16 && data.subarray(0, 8).equals(xerialMagic)) {
    const blocks: Buffer[] = [];
    let total = 0;
    for (let at = 16; at < data.length;) {
      const size = data.readInt32BE(at);
      const block = Buffer.from(
        snappy.uncompress(data.subarray(at + 4, at + 4 + size), limits.kafkaDecompressedBatchBytesMax),
      );
      total += block.length;
      if (total > limits.kafkaDecompressedBatchBytesMax) throw bomb();
      blocks.push(block);
      at += 4 + size;
    }
    return Buffer.concat(blocks);
  }
  return Buffer.from(snappy.uncompress(data, limits.kafkaDecompressedBatchBytesMax));
}

function bomb(): TributaryError {
  return new TributaryError(
    'PAYLOAD_TOO_LARGE',
    `a Kafka record batch decompresses to more than ${limits.kafkaDecompressedBatchBytesMax} bytes`,
  );
}

function decompress(codec: number, data: Buffer): Buffer {
  let out: Buffer;
  switch (codec) {
    case 1:
      out = gunzipSync(data, { maxOutputLength: limits.kafkaDecompressedBatchBytesMax });
      break;
    case 2:
      out = unsnappy(data);
      break;
    case 3:
      out = Buffer.from(lz4.decompress(data));
      break;
    case 4:
      out = Buffer.from(zstdDecompress(data));
      break;
    default:
      throw new TributaryError('CORRUPT_DATA', `Kafka record batch has unknown compression codec ${codec}`);
  }
  if (out.length > limits.kafkaDecompressedBatchBytesMax) throw bomb();
  return out;
}

/**
 * Decodes the record batches of a Produce request's `records` field for `topic`/`partition`,
 * checking each batch's CRC-32C before reading it. Throws CORRUPT_DATA (answered as
 * CORRUPT_MESSAGE) naming the batch when the checksum, the magic byte or a length is wrong.
 */
export function decodeBatches(data: Buffer, topic = '', partition = 0): DecodedBatch[] {
  const out: DecodedBatch[] = [];
  let at = 0;
  while (at < data.length) {
    if (data.length - at < batchHeaderBytes) {
      throw new TributaryError('CORRUPT_DATA', `Kafka record batch at byte ${at}: truncated header`);
    }
    const batchLength = data.readInt32BE(at + 8);
    const end = at + 12 + batchLength;
    if (batchLength < batchHeaderBytes - 12 || end > data.length) {
      throw new TributaryError('CORRUPT_DATA', `Kafka record batch at byte ${at}: bad length ${batchLength}`);
    }
    const magic = data.readInt8(at + 16);
    if (magic !== 2) {
      throw new TributaryError(
        'CORRUPT_DATA',
        `Kafka record batch at byte ${at}: message format v${magic} (only v2, Kafka 0.11+, is accepted)`,
      );
    }
    const crc = data.readUInt32BE(at + 17);
    const actual = crc32c(data, at + 21, end);
    if (crc !== actual) {
      throw new TributaryError(
        'CORRUPT_DATA',
        `Kafka record batch at byte ${at}: CRC-32C ${actual.toString(16)} does not match ${crc.toString(16)}`,
      );
    }
    const r = new KafkaReader(data, at);
    const baseOffset = r.int64();
    r.offset += 9; // batchLength, partitionLeaderEpoch, magic
    r.offset += 4; // crc
    const attributes = r.int16();
    const lastOffsetDelta = r.int32();
    const baseTimestamp = r.int64();
    const maxTimestamp = r.int64();
    const producerId = r.int64();
    const producerEpoch = r.int16();
    const baseSequence = r.int32();
    const count = r.int32();
    const codec = attributes & 0x07;
    let body = data.subarray(r.offset, end);
    if (codec !== 0) {
      try {
        body = decompress(codec, body);
      } catch (error) {
        if (error instanceof TributaryError) throw error;
        throw new TributaryError(
          'CORRUPT_DATA',
          `Kafka record batch at byte ${at}: ${compressionNames[codec] ?? codec} data does not decompress: ${(error as Error).message}`,
          { cause: error },
        );
      }
    }
    const records = decodeRecords(body, count, baseTimestamp, at, topic, partition);
    out.push({
      baseOffset,
      attributes,
      lastOffsetDelta,
      baseTimestamp,
      maxTimestamp,
      producerId,
      producerEpoch,
      baseSequence,
      records,
      transactional: (attributes & 0x10) !== 0,
      control: (attributes & 0x20) !== 0,
    });
    at = end;
  }
  return out;
}

/**
 * Where the last `readVarint` stopped. A module-level cursor instead of a returned pair keeps the
 * per-field read free of allocations (this runs several times for every produced record).
 */
let varintEnd = 0;

/** A zig-zag varint or varlong at `at` (up to 10 bytes, exact to 2^53); sets `varintEnd`. */
function readVarint(data: Uint8Array, at: number, end: number, batchAt: number): number {
  let raw = 0;
  let multiplier = 1;
  for (let i = 0; i < 10; i++) {
    if (at >= end) throw truncatedRecords(batchAt);
    const byte = data[at++];
    raw += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) {
      varintEnd = at;
      return raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2;
    }
    multiplier *= 128;
  }
  throw new TributaryError('CORRUPT_DATA', `Kafka record batch at byte ${batchAt}: varint too long`);
}

function truncatedRecords(batchAt: number): TributaryError {
  return new TributaryError(
    'CORRUPT_DATA',
    `Kafka record batch at byte ${batchAt}: records run past the batch`,
  );
}

function decodeRecords(
  body: Buffer,
  count: number,
  baseTimestamp: number,
  batchAt: number,
  topic: string,
  partition: number,
): ProducedRecord[] {
  if (count < 0 || count > body.length) {
    throw new TributaryError(
      'CORRUPT_DATA',
      `Kafka record batch at byte ${batchAt}: bad record count ${count}`,
    );
  }
  const data = new Uint8Array(body.buffer, body.byteOffset, body.length);
  const arrayBuffer = body.buffer;
  const base = body.byteOffset;
  const limit = body.length;
  const records = new Array<ProducedRecord>(count);
  let p = 0;
  for (let i = 0; i < count; i++) {
    const length = readVarint(data, p, limit, batchAt);
    p = varintEnd;
    const end = p + length;
    if (length < 0 || end > limit) throw truncatedRecords(batchAt);
    p += 1; // attributes (unused in v2)
    const timestamp = baseTimestamp + readVarint(data, p, end, batchAt);
    readVarint(data, varintEnd, end, batchAt); // offsetDelta: the log assigns offsets
    const keyLength = readVarint(data, varintEnd, end, batchAt);
    p = varintEnd;
    let key: Uint8Array | null = null;
    if (keyLength >= 0) {
      if (p + keyLength > end) throw truncatedRecords(batchAt);
      key = new Uint8Array(arrayBuffer, base + p, keyLength);
      p += keyLength;
    }
    const valueLength = readVarint(data, p, end, batchAt);
    p = varintEnd;
    let value: Uint8Array | null = null;
    if (valueLength >= 0) {
      if (p + valueLength > end) throw truncatedRecords(batchAt);
      value = new Uint8Array(arrayBuffer, base + p, valueLength);
      p += valueLength;
    }
    const headerCount = readVarint(data, p, end, batchAt);
    p = varintEnd;
    let headers: Record<string, Uint8Array> | undefined;
    for (let h = 0; h < headerCount; h++) {
      const nameLength = readVarint(data, p, end, batchAt);
      p = varintEnd;
      if (nameLength < 0 || p + nameLength > end) throw truncatedRecords(batchAt);
      const name = body.toString('utf8', p, p + nameLength);
      const headerLength = readVarint(data, p + nameLength, end, batchAt);
      p = varintEnd;
      if (p + Math.max(0, headerLength) > end) throw truncatedRecords(batchAt);
      (headers ??= {})[name] =
        headerLength < 0 ? new Uint8Array(0) : new Uint8Array(arrayBuffer, base + p, headerLength);
      p += Math.max(0, headerLength);
    }
    if (p !== end) {
      throw new TributaryError(
        'CORRUPT_DATA',
        `Kafka record batch at byte ${batchAt}: record ${i} is ${length} bytes long but its fields take ${p - end + length}`,
      );
    }
    records[i] = { topic, partition, timestamp, key, value, headers };
  }
  return records;
}

/** Bytes of a zig-zag varint (Kafka's signed varint/varlong) of `v`. */
function varintBytes(v: number): number {
  let z = v >= 0 ? v * 2 : -v * 2 - 1;
  let n = 1;
  while (z >= 0x80) {
    z = Math.floor(z / 128);
    n++;
  }
  return n;
}

function putVarint(buffer: Buffer, at: number, v: number): number {
  let z = v >= 0 ? v * 2 : -v * 2 - 1;
  while (z >= 0x80) {
    buffer[at++] = (z % 128) | 0x80;
    z = Math.floor(z / 128);
  }
  buffer[at++] = z;
  return at;
}

const noNames: string[] = [];

function hasOwnKeys(headers: Record<string, Uint8Array>): boolean {
  for (const name in headers) if (Object.hasOwn(headers, name)) return true;
  return false;
}

/**
 * Encodes stored records (one partition, ascending offsets, possibly with gaps) as one
 * uncompressed record batch v2 with CreateTime timestamps, no producer id and its CRC-32C — what
 * Fetch returns. Offsets are `baseOffset + offsetDelta`, so gaps left by retention survive. Sizes
 * are computed first and the batch is written into one buffer (this runs for every fetched record).
 */
export function encodeBatch(records: readonly LogRecord[]): Buffer {
  const first = records[0];
  const baseOffset = first.offset;
  let baseTimestamp = first.timestamp;
  let maxTimestamp = first.timestamp;
  for (const record of records) {
    if (record.timestamp < baseTimestamp) baseTimestamp = record.timestamp;
    if (record.timestamp > maxTimestamp) maxTimestamp = record.timestamp;
  }
  const sizes = new Array<number>(records.length);
  const headerKeys = new Array<Buffer[] | null>(records.length);
  let total = batchHeaderBytes;
  for (let i = 0; i < records.length; i++) {
    const record = records[i];
    let size = 1 + varintBytes(record.timestamp - baseTimestamp) + varintBytes(record.offset - baseOffset);
    size += record.key === null ? 1 : varintBytes(record.key.length) + record.key.length;
    size += record.value === null ? 1 : varintBytes(record.value.length) + record.value.length;
    // Most records have no headers: tell without allocating Object.keys' array for each of them.
    const names = hasOwnKeys(record.headers) ? Object.keys(record.headers) : noNames;
    size += varintBytes(names.length);
    if (names.length === 0) headerKeys[i] = null;
    else {
      const keys = names.map((name) => Buffer.from(name, 'utf8'));
      headerKeys[i] = keys;
      for (let h = 0; h < keys.length; h++) {
        const value = record.headers[names[h]];
        size += varintBytes(keys[h].length) + keys[h].length + varintBytes(value.length) + value.length;
      }
    }
    sizes[i] = size;
    total += varintBytes(size) + size;
  }
  const out = Buffer.allocUnsafe(total);
  out.writeBigInt64BE(BigInt(baseOffset), 0);
  out.writeInt32BE(total - 12, 8);
  out.writeInt32BE(-1, 12); // partition leader epoch: the embedded log has no epochs
  out.writeInt8(2, 16);
  out.writeInt16BE(0, 21); // attributes: no compression, CreateTime
  out.writeInt32BE(records[records.length - 1].offset - baseOffset, 23);
  out.writeBigInt64BE(BigInt(baseTimestamp), 27);
  out.writeBigInt64BE(BigInt(maxTimestamp), 35);
  out.writeBigInt64BE(-1n, 43); // producer id
  out.writeInt16BE(-1, 51); // producer epoch
  out.writeInt32BE(-1, 53); // base sequence
  out.writeInt32BE(records.length, 57);
  let at = batchHeaderBytes;
  for (let i = 0; i < records.length; i++) {
    const record = records[i];
    at = putVarint(out, at, sizes[i]);
    out[at++] = 0;
    at = putVarint(out, at, record.timestamp - baseTimestamp);
    at = putVarint(out, at, record.offset - baseOffset);
    if (record.key === null) at = putVarint(out, at, -1);
    else {
      at = putVarint(out, at, record.key.length);
      out.set(record.key, at);
      at += record.key.length;
    }
    if (record.value === null) at = putVarint(out, at, -1);
    else {
      at = putVarint(out, at, record.value.length);
      out.set(record.value, at);
      at += record.value.length;
    }
    const keys = headerKeys[i];
    if (keys === null) at = putVarint(out, at, 0);
    else {
      const names = Object.keys(record.headers);
      at = putVarint(out, at, keys.length);
      for (let h = 0; h < keys.length; h++) {
        const value = record.headers[names[h]];
        at = putVarint(out, at, keys[h].length);
        keys[h].copy(out, at);
        at += keys[h].length;
        at = putVarint(out, at, value.length);
        out.set(value, at);
        at += value.length;
      }
    }
  }
  out.writeUInt32BE(crc32c(out, 21, total), 17);
  return out;
}
