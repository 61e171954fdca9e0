import type { Socket } from 'node:net';
import { errorCodes, TributaryError, type ErrorCode, limits } from '../../core/index.js';
import { toBytesOrNull, toHeaderBytes } from '../records.js';
import type { AppendResult, Bytes, LogRecord, ProducerRecord } from '../types.js';

/**
 * Wire protocol of the log server, version 1: TCP, one connection per client, all integers
 * little-endian, offsets and timestamps float64 holding integers (as in the segment format).
 *
 * Frame (`frameHeaderBytes` = 9 bytes before the payload):
 *
 *   offset  size  field
 *   0       4     frameBytes  u32, bytes after this field (5 + payload length)
 *   4       4     requestId   u32; an answer carries the id of its request. 0 = no answer expected
 *                             (one-way messages, server pushes). CANCEL carries the id to cancel.
 *   8       1     type        `MessageType` below
 *   9       ...   payload
 *
 * The first frame of a connection is HELLO `{"protocolVersion":1,"token":"..."}`; anything else,
 * or a wrong token, is answered with ERROR UNAUTHENTICATED and the connection is closed. Until
 * then a frame may be at most `limits.logServerHelloFrameBytesMax` bytes, so nobody can make the server buffer a
 * large frame without the token.
 *
 * Requests are answered as they complete, out of order: a long-polling FETCH or POLL never holds
 * up other requests on the same connection. Answers are OK (JSON or empty), ERROR
 * `{"code","message","retryAfterMs"?}`, or a binary answer (RECORDS, APPEND_RESULT, POLL_RESULT).
 * Most payloads are UTF-8 JSON (administration is not on the hot path); records are binary both
 * ways, in the layouts documented above `encodeProducerRecords` and `encodeRecordGroups`.
 *
 * Consumer-group members live in the server, owned by the connection (a lease: when the
 * connection closes, or is silent for the session timeout, its members leave the group at once).
 * The server pushes ASSIGNMENT (requestId 0) when a member's partitions change; the client runs
 * the member's `onAssignment` and answers ASSIGNMENT_ACK. Until that ack the server's member
 * returns no records of the newly assigned partitions, so a callback (which may `seek`) always
 * completes before records of its partitions are returned, as with in-process consumers.
 */
export const protocolVersion = 1;
export const frameHeaderBytes = 9;

export const MessageType = {
  // client → server; answered unless marked one-way
  HELLO: 0x01,
  /** Heartbeat; answered with PONG. */
  PING: 0x02,
  /** One-way: cancels the FETCH or POLL whose id the frame carries (it answers at once). */
  CANCEL: 0x03,
  CREATE_TOPIC: 0x10,
  ENSURE_TOPIC: 0x11,
  DELETE_TOPIC: 0x12,
  LIST_TOPICS: 0x13,
  DESCRIBE_TOPIC: 0x14,
  /** Binary payload: producer records. Answered with APPEND_RESULT. */
  APPEND: 0x15,
  /** Answered with RECORDS. */
  FETCH: 0x16,
  OFFSET_FOR_TIMESTAMP: 0x17,
  COMMIT_OFFSETS: 0x18,
  COMMITTED_OFFSETS: 0x19,
  RESET_OFFSETS: 0x1a,
  LIST_GROUPS: 0x1b,
  CONSUMER_OPEN: 0x20,
  /** Answered with POLL_RESULT. */
  CONSUMER_POLL: 0x21,
  /** One-way, applied in arrival order (as the synchronous `seek`, `pause`, `resume`). */
  CONSUMER_SEEK: 0x22,
  CONSUMER_PAUSE: 0x23,
  CONSUMER_RESUME: 0x24,
  CONSUMER_COMMIT: 0x25,
  CONSUMER_CLOSE: 0x26,
  /** One-way: the member's `onAssignment` for one ASSIGNMENT push has completed (or failed). */
  ASSIGNMENT_ACK: 0x27,
  // server → client
  OK: 0x80,
  ERROR: 0x81,
  RECORDS: 0x82,
  APPEND_RESULT: 0x83,
  POLL_RESULT: 0x84,
  PONG: 0x85,
  /** Push (requestId 0): a member's assignment changed. */
  ASSIGNMENT: 0x90,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

export interface Frame {
  requestId: number;
  type: number;
  payload: Buffer;
}

/** The 9-byte frame header for a payload of `payloadBytes`. */
export function encodeFrameHeader(requestId: number, type: MessageType, payloadBytes: number): Buffer {
  const header = Buffer.allocUnsafe(frameHeaderBytes);
  header.writeUInt32LE(5 + payloadBytes, 0);
  header.writeUInt32LE(requestId, 4);
  header.writeUInt8(type, 8);
  return header;
}

/** Writes one frame to `socket` (see limits.logServerFrameCopyBytesMax); both ends of the log protocol send this way. */
export function writeFrame(socket: Socket, requestId: number, type: MessageType, payload: Uint8Array): void {
  if (payload.length <= limits.logServerFrameCopyBytesMax) {
    socket.write(encodeFrame(requestId, type, payload));
    return;
  }
  socket.cork();
  socket.write(encodeFrameHeader(requestId, type, payload.length));
  socket.write(payload);
  socket.uncork();
}

/** One whole frame (header and payload in one buffer). */
export function encodeFrame(
  requestId: number,
  type: MessageType,
  payload: Uint8Array = emptyPayload,
): Buffer {
  const frame = Buffer.allocUnsafe(frameHeaderBytes + payload.length);
  frame.writeUInt32LE(5 + payload.length, 0);
  frame.writeUInt32LE(requestId, 4);
  frame.writeUInt8(type, 8);
  frame.set(payload, frameHeaderBytes);
  return frame;
}

export const emptyPayload = Buffer.alloc(0);

/**
 * Splits a byte stream into frames. Chunks are kept as they arrive and joined only when a frame
 * is complete, so a large answer costs one copy, not one per chunk.
 */
export class FrameReader {
  #chunks: Buffer[] = [];
  #buffered = 0;
  /** Largest `frameBytes` accepted; changed once the connection is authenticated. */
  maxFrameBytes: number;

  constructor(maxFrameBytes: number) {
    this.maxFrameBytes = maxFrameBytes;
  }

  /** Adds `chunk` and returns the frames it completed; throws DECODE_FAILED on an oversized frame. */
  push(chunk: Buffer): Frame[] {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      if (this.#buffered < 4) break;
      if (this.#chunks[0].length < 4) this.#join();
      const first = this.#chunks[0];
      const frameBytes = first.readUInt32LE(0);
      if (frameBytes < 5 || frameBytes > this.maxFrameBytes) {
        throw new TributaryError(
          'DECODE_FAILED',
          `frame of ${frameBytes} bytes is outside 5..${this.maxFrameBytes} (not a log server peer, or a corrupt stream)`,
        );
      }
      const total = 4 + frameBytes;
      if (this.#buffered < total) break;
      if (this.#chunks[0].length < total) this.#join();
      const head = this.#chunks[0];
      frames.push({
        requestId: head.readUInt32LE(4),
        type: head.readUInt8(8),
        payload: head.subarray(frameHeaderBytes, total),
      });
      if (head.length === total) this.#chunks.shift();
      else this.#chunks[0] = head.subarray(total);
      this.#buffered -= total;
    }
    return frames;
  }

  #join(): void {
    this.#chunks = [Buffer.concat(this.#chunks, this.#buffered)];
  }
}

// ---- JSON payloads -------------------------------------------------------------------------------

export function encodeJson(value: unknown): Buffer {
  return value === undefined ? emptyPayload : Buffer.from(JSON.stringify(value), 'utf8');
}

export function decodeJson(payload: Buffer, what: string): unknown {
  if (payload.length === 0) return undefined;
  try {
    return JSON.parse(payload.toString('utf8')) as unknown;
  } catch (error) {
    throw new TributaryError('DECODE_FAILED', `${what}: payload is not JSON`, { cause: error });
  }
}

/** ERROR payload: `{"code":"NOT_FOUND","message":"topic x does not exist...","retryAfterMs":100}`. */
export function encodeError(error: TributaryError): Buffer {
  return encodeJson({
    code: error.code,
    message: error.message,
    ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs }),
  });
}

/** The error a peer described as `{code, message, retryAfterMs?}`, as the same TributaryError. */
export function errorFromWire(body: unknown): TributaryError {
  const { code, message, retryAfterMs } = (body ?? {}) as Record<string, unknown>;
  const known: ErrorCode =
    typeof code === 'string' && (errorCodes as readonly string[]).includes(code)
      ? (code as ErrorCode)
      : 'INTERNAL';
  return new TributaryError(
    known,
    typeof message === 'string' ? message : 'the log server sent a malformed error',
    {
      ...(typeof retryAfterMs === 'number' ? { retryAfterMs } : {}),
    },
  );
}

/** The server's error as the same TributaryError (code, message, retry hint). */
export function decodeError(payload: Buffer): TributaryError {
  return errorFromWire(decodeJson(payload, 'ERROR'));
}

// ---- binary payloads -----------------------------------------------------------------------------

const nullLength = -1;

/** Bounds-checked reads over a payload; running past its end is DECODE_FAILED naming `what`. */
class PayloadReader {
  readonly #buf: Buffer;
  readonly #what: string;
  pos = 0;

  constructor(buf: Buffer, what: string) {
    this.#buf = buf;
    this.#what = what;
  }

  #need(bytes: number): number {
    const at = this.pos;
    if (bytes < 0 || at + bytes > this.#buf.length) {
      throw new TributaryError(
        'DECODE_FAILED',
        `${this.#what}: payload ends at byte ${this.#buf.length}, needed ${bytes} more bytes at ${at}`,
      );
    }
    this.pos = at + bytes;
    return at;
  }

  u8(): number {
    return this.#buf.readUInt8(this.#need(1));
  }

  u32(): number {
    return this.#buf.readUInt32LE(this.#need(4));
  }

  i32(): number {
    return this.#buf.readInt32LE(this.#need(4));
  }

  f64(): number {
    return this.#buf.readDoubleLE(this.#need(8));
  }

  string(): string {
    const length = this.u32();
    const at = this.#need(length);
    return this.#buf.toString('utf8', at, at + length);
  }

  /** A view (no copy) of `length` bytes. */
  bytes(length: number): Uint8Array {
    const at = this.#need(length);
    return new Uint8Array(this.#buf.buffer, this.#buf.byteOffset + at, length);
  }

  nullableBytes(): Uint8Array | null {
    const length = this.i32();
    return length === nullLength ? null : this.bytes(length);
  }

  headers(): Record<string, Bytes> {
    const count = this.u32();
    const headers: Record<string, Bytes> = {};
    for (let i = 0; i < count; i++) {
      const name = this.string();
      headers[name] = this.bytes(this.u32());
    }
    return headers;
  }

  end(): void {
    if (this.pos !== this.#buf.length) {
      throw new TributaryError(
        'DECODE_FAILED',
        `${this.#what}: ${this.#buf.length - this.pos} unexpected bytes after the payload`,
      );
    }
  }
}

type EncodedHeaders = [Buffer, Bytes][] | null;

function encodeHeaderNames(headers: Record<string, Bytes>): EncodedHeaders {
  let out: EncodedHeaders = null;
  for (const name in headers) (out ??= []).push([Buffer.from(name, 'utf8'), headers[name]]);
  return out;
}

function headersBytes(headers: EncodedHeaders): number {
  let size = 4;
  if (headers !== null) for (const [name, value] of headers) size += 4 + name.length + 4 + value.length;
  return size;
}

/** Writes sequentially into a buffer sized beforehand. */
class PayloadWriter {
  readonly buf: Buffer;
  pos = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  u8(value: number): void {
    this.pos = this.buf.writeUInt8(value, this.pos);
  }

  u32(value: number): void {
    this.pos = this.buf.writeUInt32LE(value, this.pos);
  }

  i32(value: number): void {
    this.pos = this.buf.writeInt32LE(value, this.pos);
  }

  f64(value: number): void {
    this.pos = this.buf.writeDoubleLE(value, this.pos);
  }

  bytes(value: Uint8Array): void {
    this.buf.set(value, this.pos);
    this.pos += value.length;
  }

  nullableBytes(value: Uint8Array | null): void {
    if (value === null) {
      this.i32(nullLength);
      return;
    }
    this.i32(value.length);
    this.bytes(value);
  }

  headers(headers: EncodedHeaders): void {
    this.u32(headers?.length ?? 0);
    if (headers === null) return;
    for (const [name, value] of headers) {
      this.u32(name.length);
      this.bytes(name);
      this.u32(value.length);
      this.bytes(value);
    }
  }

  done(): Buffer {
    if (this.pos !== this.buf.length) {
      throw new TributaryError('INTERNAL', `encoder wrote ${this.pos} of ${this.buf.length} sized bytes`);
    }
    return this.buf;
  }
}

const flagPartition = 0x01;
const flagTimestamp = 0x02;

/**
 * APPEND payload: the records of one `append` call, in order (the server appends them in one call,
 * so a bad record still appends none of them). Strings are sent as their UTF-8 bytes; a missing
 * key is null, as every backend stores it.
 *
 *   u32 topicCount, then topicCount × (u32 nameLength, name UTF-8)
 *   u32 recordCount, then per record:
 *     u32 topicIndex   into the topic table above
 *     u8  flags        bit 0: partition follows, bit 1: timestamp follows
 *     f64 partition    only with bit 0 (float64 so that a bad value is refused by the log, not here)
 *     f64 timestamp    only with bit 1
 *     i32 keyLength    -1 = null, then the key
 *     i32 valueLength  -1 = null, then the value
 *     u32 headerCount, then headerCount × (u32 nameLength, name UTF-8, u32 valueLength, value)
 */
export function encodeProducerRecords(records: readonly ProducerRecord[]): Buffer {
  const topicIndex = new Map<string, number>();
  const topicNames: Buffer[] = [];
  const keys: (Bytes | null)[] = new Array<Bytes | null>(records.length);
  const values: (Bytes | null)[] = new Array<Bytes | null>(records.length);
  const headers: EncodedHeaders[] = new Array<EncodedHeaders>(records.length);
  let size = 4 + 4;
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    if (!topicIndex.has(r.topic)) {
      const name = Buffer.from(String(r.topic), 'utf8');
      topicIndex.set(r.topic, topicNames.length);
      topicNames.push(name);
      size += 4 + name.length;
    }
    keys[i] = toBytesOrNull(r.key);
    values[i] = toBytesOrNull(r.value);
    headers[i] = encodeHeaderNames(toHeaderBytes(r.headers));
    size += 4 + 1 + 4 + (keys[i]?.length ?? 0) + 4 + (values[i]?.length ?? 0) + headersBytes(headers[i]);
    if (r.partition !== undefined) size += 8;
    if (r.timestamp !== undefined) size += 8;
  }
  const w = new PayloadWriter(size);
  w.u32(topicNames.length);
  for (const name of topicNames) {
    w.u32(name.length);
    w.bytes(name);
  }
  w.u32(records.length);
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    w.u32(topicIndex.get(r.topic)!);
    w.u8((r.partition !== undefined ? flagPartition : 0) | (r.timestamp !== undefined ? flagTimestamp : 0));
    if (r.partition !== undefined) w.f64(r.partition);
    if (r.timestamp !== undefined) w.f64(r.timestamp);
    w.nullableBytes(keys[i]);
    w.nullableBytes(values[i]);
    w.headers(headers[i]);
  }
  return w.done();
}

export function decodeProducerRecords(payload: Buffer): ProducerRecord[] {
  const r = new PayloadReader(payload, 'APPEND');
  const topicCount = r.u32();
  const topics: string[] = [];
  for (let i = 0; i < topicCount; i++) topics.push(r.string());
  const count = r.u32();
  const records: ProducerRecord[] = [];
  for (let i = 0; i < count; i++) {
    const index = r.u32();
    const topic = topics[index];
    if (topic === undefined) {
      throw new TributaryError('DECODE_FAILED', `APPEND: record ${i} names topic #${index} of ${topicCount}`);
    }
    const flags = r.u8();
    const record: ProducerRecord = { topic, value: null };
    if (flags & flagPartition) record.partition = r.f64();
    if (flags & flagTimestamp) record.timestamp = r.f64();
    record.key = r.nullableBytes();
    record.value = r.nullableBytes();
    const headers = r.headers();
    // No headers decodes as undefined, so the log shares its empty header object as for local appends.
    for (const _ in headers) {
      record.headers = headers;
      break;
    }
    records.push(record);
  }
  r.end();
  return records;
}

/**
 * APPEND_RESULT payload: where each record of the APPEND went, in request order (the topic of
 * each is the request's):
 *
 *   u32 count, then count × (u32 partition, f64 offset)
 */
export function encodeAppendResults(results: readonly AppendResult[]): Buffer {
  const w = new PayloadWriter(4 + results.length * 12);
  w.u32(results.length);
  for (const result of results) {
    w.u32(result.partition);
    w.f64(result.offset);
  }
  return w.done();
}

export function decodeAppendResults(payload: Buffer, records: readonly ProducerRecord[]): AppendResult[] {
  const r = new PayloadReader(payload, 'APPEND_RESULT');
  const count = r.u32();
  if (count !== records.length) {
    throw new TributaryError(
      'DECODE_FAILED',
      `APPEND_RESULT: ${count} results for ${records.length} records`,
    );
  }
  const results: AppendResult[] = new Array<AppendResult>(count);
  for (let i = 0; i < count; i++) {
    const partition = r.u32();
    results[i] = { topic: records[i].topic, partition, offset: r.f64() };
  }
  r.end();
  return results;
}

/**
 * Record groups (the RECORDS answer, and POLL_RESULT after its prefix): consecutive records of
 * one topic and partition form a group, so topic and partition are sent once per group, offsets
 * as a delta from the group's first; order is kept across groups.
 *
 *   u32 groupCount, then per group:
 *     u32 topicLength, topic UTF-8
 *     u32 partition
 *     f64 baseOffset
 *     u32 recordCount, then per record:
 *       u32 offsetDelta  offset - baseOffset
 *       f64 timestamp    epoch ms
 *       i32 keyLength    -1 = null, then the key
 *       i32 valueLength  -1 = null, then the value
 *       u32 headerCount, then headerCount × (u32 nameLength, name UTF-8, u32 valueLength, value)
 *
 * `prefixBytes` leaves room at the start for the caller (POLL_RESULT's u32 seekSequence).
 */
export function encodeRecordGroups(records: readonly LogRecord[], prefixBytes = 0): Buffer {
  // Sizing pass: group boundaries and header names, so the answer is one allocation.
  const groupStarts: number[] = [];
  const topicNames: Buffer[] = [];
  let headers: EncodedHeaders[] | undefined;
  let size = prefixBytes + 4;
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    const previous = i > 0 ? records[i - 1] : undefined;
    if (
      previous === undefined ||
      previous.topic !== r.topic ||
      previous.partition !== r.partition ||
      r.offset - records[groupStarts[groupStarts.length - 1]].offset > 0xffffffff ||
      r.offset < records[groupStarts[groupStarts.length - 1]].offset
    ) {
      groupStarts.push(i);
      const name =
        previous !== undefined && previous.topic === r.topic
          ? topicNames[topicNames.length - 1]
          : Buffer.from(r.topic, 'utf8');
      topicNames.push(name);
      size += 4 + name.length + 4 + 8 + 4;
    }
    let recordHeaders: EncodedHeaders = null;
    for (const _ in r.headers) {
      recordHeaders = encodeHeaderNames(r.headers);
      break;
    }
    if (recordHeaders !== null)
      (headers ??= new Array<EncodedHeaders>(records.length).fill(null))[i] = recordHeaders;
    size += 4 + 8 + 4 + (r.key?.length ?? 0) + 4 + (r.value?.length ?? 0) + headersBytes(recordHeaders);
  }
  const w = new PayloadWriter(size);
  w.pos = prefixBytes;
  w.u32(groupStarts.length);
  for (let g = 0; g < groupStarts.length; g++) {
    const start = groupStarts[g];
    const end = g + 1 < groupStarts.length ? groupStarts[g + 1] : records.length;
    const first = records[start];
    const name = topicNames[g];
    w.u32(name.length);
    w.bytes(name);
    w.u32(first.partition);
    w.f64(first.offset);
    w.u32(end - start);
    for (let i = start; i < end; i++) {
      const r = records[i];
      w.u32(r.offset - first.offset);
      w.f64(r.timestamp);
      w.nullableBytes(r.key);
      w.nullableBytes(r.value);
      w.headers(headers?.[i] ?? null);
    }
  }
  return w.done();
}

export function decodeRecordGroups(payload: Buffer, what = 'RECORDS', prefixBytes = 0): LogRecord[] {
  const r = new PayloadReader(payload, what);
  r.pos = prefixBytes;
  const groups = r.u32();
  const out: LogRecord[] = [];
  for (let g = 0; g < groups; g++) {
    const topic = r.string();
    const partition = r.u32();
    const baseOffset = r.f64();
    const count = r.u32();
    for (let i = 0; i < count; i++) {
      const offset = baseOffset + r.u32();
      const timestamp = r.f64();
      const key = r.nullableBytes();
      const value = r.nullableBytes();
      out.push({ topic, partition, offset, timestamp, key, value, headers: r.headers() });
    }
  }
  r.end();
  return out;
}

/**
 * POLL_RESULT payload: `u32 seekSequence` (the number of the last CONSUMER_SEEK of this member the
 * server had applied when it answered), then record groups. The client drops records of a
 * partition it has seeked since, because they were read from the position before that seek.
 */
export function encodePollResult(seekSequence: number, records: readonly LogRecord[]): Buffer {
  const payload = encodeRecordGroups(records, 4);
  payload.writeUInt32LE(seekSequence, 0);
  return payload;
}

export function decodePollResult(payload: Buffer): { seekSequence: number; records: LogRecord[] } {
  if (payload.length < 4)
    throw new TributaryError('DECODE_FAILED', 'POLL_RESULT: payload shorter than 4 bytes');
  return { seekSequence: payload.readUInt32LE(0), records: decodeRecordGroups(payload, 'POLL_RESULT', 4) };
}

// ---- JSON message bodies -------------------------------------------------------------------------

export interface HelloBody {
  protocolVersion: number;
  token: string;
}

export interface FetchBody {
  topic: string;
  partition: number;
  offset: number;
  maxRecords: number;
  maxBytes: number;
  waitMs: number;
}

export interface ConsumerOpenBody {
  consumerId: number;
  group: string;
  topics: string[];
  from?: 'earliest' | 'latest' | { timestamp: number };
}

export interface ConsumerPollBody {
  consumerId: number;
  maxRecords: number;
  maxBytes: number;
  waitMs: number;
}

/** CONSUMER_SEEK: `sequence` numbers the seeks of one member (1, 2, ...), see POLL_RESULT. */
export interface ConsumerSeekBody {
  consumerId: number;
  topic: string;
  partition: number;
  offset: number;
  sequence: number;
}

export interface ConsumerPartitionsBody {
  consumerId: number;
  partitions: { topic: string; partition: number }[];
}

export interface ConsumerCommitBody {
  consumerId: number;
  offsets?: { topic: string; partition: number; offset: number }[];
}

/**
 * ASSIGNMENT push: the partitions this member gained and lost (applied in push order), and for
 * gained partitions the offset reading would start at when known at push time (the committed
 * offset, else the start or end for `from` earliest / latest, else the offset of `from`'s
 * timestamp). `position()` answers from these without a round trip.
 */
export interface AssignmentPush {
  consumerId: number;
  pushId: number;
  assigned: { topic: string; partition: number }[];
  revoked: { topic: string; partition: number }[];
  startOffsets: { topic: string; partition: number; offset: number }[];
}

export interface AssignmentAck {
  consumerId: number;
  pushId: number;
  /** The callback's failure; the member's next poll fails with it. */
  error?: { code: string; message: string };
}
