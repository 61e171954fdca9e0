import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTributaryError, TributaryError } from '../../core/index.js';
import type { LogRecord, ProducerRecord } from '../types.js';
import {
  decodeAppendResults,
  decodeError,
  decodePollResult,
  decodeProducerRecords,
  decodeRecordGroups,
  encodeAppendResults,
  encodeError,
  encodeFrame,
  encodeFrameHeader,
  encodePollResult,
  encodeProducerRecords,
  encodeRecordGroups,
  FrameReader,
  MessageType,
} from './protocol.js';

const bytes = (s: string) => new TextEncoder().encode(s);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function thrownBy(run: () => unknown): TributaryError {
  try {
    run();
  } catch (error) {
    if (isTributaryError(error)) return error;
    throw error;
  }
  throw new Error('expected a TributaryError');
}

describe('log server wire format', () => {
  it('encodes a frame byte for byte: length, request id, type, payload', () => {
    expect(hex(encodeFrame(7, MessageType.PING))).toBe('05000000' + '07000000' + '02');
    expect(hex(encodeFrame(0x01020304, MessageType.LIST_TOPICS, Buffer.from('{}')))).toBe(
      '07000000' + '04030201' + '13' + '7b7d',
    );
    expect(hex(encodeFrameHeader(1, MessageType.RECORDS, 3))).toBe('08000000' + '01000000' + '82');
  });

  it('encodes producer records byte for byte as documented', () => {
    const payload = encodeProducerRecords([
      { topic: 't', partition: 1, timestamp: 1000, key: 'k', value: 'v', headers: { h: 'x' } },
      { topic: 't', value: null },
      { topic: 'u', key: null, value: Uint8Array.from([0, 255]) },
    ]);
    const expected =
      '02000000' + // 2 topics
      '01000000' +
      '74' + // "t"
      '01000000' +
      '75' + // "u"
      '03000000' + // 3 records
      // record 0
      '00000000' + // topic #0
      '03' + // partition and timestamp follow
      '000000000000f03f' + // partition 1 (f64)
      '0000000000408f40' + // timestamp 1000 (f64)
      '01000000' +
      '6b' + // key "k"
      '01000000' +
      '76' + // value "v"
      '01000000' + // 1 header
      '01000000' +
      '68' + // "h"
      '01000000' +
      '78' + // "x"
      // record 1: no partition, no timestamp, null key, null value, no headers
      '00000000' +
      '00' +
      'ffffffff' +
      'ffffffff' +
      '00000000' +
      // record 2
      '01000000' + // topic #1
      '00' +
      'ffffffff' +
      '02000000' +
      '00ff' +
      '00000000';
    expect(hex(payload)).toBe(expected);
    const decoded = decodeProducerRecords(payload);
    expect(decoded[0]).toEqual({
      topic: 't',
      partition: 1,
      timestamp: 1000,
      key: bytes('k'),
      value: bytes('v'),
      headers: { h: bytes('x') },
    });
    expect(decoded[1]).toEqual({ topic: 't', key: null, value: null });
    expect(decoded[2].topic).toBe('u');
    expect([...decoded[2].value!]).toEqual([0, 255]);
  });

  it('keeps a bad partition or timestamp as given, for the log to refuse with its own message', () => {
    const [record] = decodeProducerRecords(
      encodeProducerRecords([{ topic: 't', value: 'v', partition: 1.5, timestamp: Number.NaN }]),
    );
    expect(record.partition).toBe(1.5);
    expect(record.timestamp).toBeNaN();
  });

  it('encodes record groups byte for byte: one group per run of a topic/partition', () => {
    const records: LogRecord[] = [
      { topic: 't', partition: 0, offset: 5, timestamp: 1000, key: null, value: bytes('a'), headers: {} },
      { topic: 't', partition: 0, offset: 6, timestamp: 1001, key: bytes('k'), value: null, headers: {} },
      {
        topic: 't',
        partition: 1,
        offset: 9,
        timestamp: 1000,
        key: null,
        value: bytes('b'),
        headers: { h: bytes('x') },
      },
    ];
    const payload = encodeRecordGroups(records);
    const expected =
      '02000000' + // 2 groups
      // group t/0 from offset 5, 2 records
      '01000000' +
      '74' +
      '00000000' +
      '0000000000001440' + // baseOffset 5 (f64)
      '02000000' +
      '00000000' + // offset delta 0
      '0000000000408f40' + // timestamp 1000
      'ffffffff' + // null key
      '01000000' +
      '61' + // value "a"
      '00000000' + // no headers
      '01000000' + // offset delta 1
      '0000000000488f40' + // timestamp 1001
      '01000000' +
      '6b' + // key "k"
      'ffffffff' + // null value
      '00000000' +
      // group t/1 from offset 9, 1 record
      '01000000' +
      '74' +
      '01000000' +
      '0000000000002240' + // baseOffset 9
      '01000000' +
      '00000000' +
      '0000000000408f40' +
      'ffffffff' +
      '01000000' +
      '62' +
      '01000000' + // 1 header "h" = "x"
      '01000000' +
      '68' +
      '01000000' +
      '78';
    expect(hex(payload)).toBe(expected);
    expect(decodeRecordGroups(payload)).toEqual(records);
  });

  it('encodes append results and the poll prefix byte for byte', () => {
    const results = [
      { topic: 't', partition: 2, offset: 7 },
      { topic: 'u', partition: 0, offset: 0 },
    ];
    const payload = encodeAppendResults(results);
    expect(hex(payload)).toBe('02000000' + '02000000' + '0000000000001c40' + '00000000' + '0000000000000000');
    expect(
      decodeAppendResults(payload, [
        { topic: 't', value: null },
        { topic: 'u', value: null },
      ]),
    ).toEqual(results);
    const poll = encodePollResult(3, []);
    expect(hex(poll)).toBe('03000000' + '00000000');
    expect(decodePollResult(poll)).toEqual({ seekSequence: 3, records: [] });
  });

  it('carries errors with their code, message and retry hint', () => {
    const payload = encodeError(
      new TributaryError('BACKPRESSURE', 'topic t: writer busy', { retryAfterMs: 50 }),
    );
    expect(payload.toString('utf8')).toBe(
      '{"code":"BACKPRESSURE","message":"topic t: writer busy","retryAfterMs":50}',
    );
    const error = decodeError(payload);
    expect(error.code).toBe('BACKPRESSURE');
    expect(error.message).toBe('topic t: writer busy');
    expect(error.retryAfterMs).toBe(50);
    expect(error.domain).toBe('external');
    expect(decodeError(Buffer.from('{"code":"NO_SUCH_CODE","message":"m"}')).code).toBe('INTERNAL');
  });

  it('refuses truncated and padded payloads as DECODE_FAILED', () => {
    const payload = encodeRecordGroups([
      { topic: 't', partition: 0, offset: 0, timestamp: 1, key: null, value: bytes('abc'), headers: {} },
    ]);
    for (let cut = 0; cut < payload.length; cut++) {
      expect(thrownBy(() => decodeRecordGroups(payload.subarray(0, cut))).code).toBe('DECODE_FAILED');
    }
    expect(thrownBy(() => decodeRecordGroups(Buffer.concat([payload, Buffer.from([0])]))).code).toBe(
      'DECODE_FAILED',
    );
    const append = encodeProducerRecords([{ topic: 't', value: 'v' }]);
    append.writeUInt32LE(5, 4 + 4 + 1 + 4); // topic index 5 of 1
    expect(thrownBy(() => decodeProducerRecords(append)).message).toMatch(/topic #5 of 1/);
  });

  it('splits a byte stream into frames at any chunk boundary', () => {
    const frames = [
      encodeFrame(1, MessageType.OK, Buffer.from('{"a":1}')),
      encodeFrame(2, MessageType.PONG),
      encodeFrame(3, MessageType.RECORDS, Buffer.alloc(300, 7)),
    ];
    const stream = Buffer.concat(frames);
    for (let chunkBytes = 1; chunkBytes <= stream.length; chunkBytes += 7) {
      const reader = new FrameReader(1024);
      const got = [];
      for (let at = 0; at < stream.length; at += chunkBytes)
        got.push(...reader.push(stream.subarray(at, at + chunkBytes)));
      expect(got.map((f) => [f.requestId, f.type, f.payload.length])).toEqual([
        [1, MessageType.OK, 7],
        [2, MessageType.PONG, 0],
        [3, MessageType.RECORDS, 300],
      ]);
      expect(got[2].payload.every((b) => b === 7)).toBe(true);
    }
  });

  it('refuses a frame larger than the reader allows before buffering it', () => {
    const reader = new FrameReader(64);
    const header = encodeFrameHeader(1, MessageType.APPEND, 1000);
    const error = thrownBy(() => reader.push(header));
    expect(error.code).toBe('DECODE_FAILED');
    expect(error.message).toMatch(/1005 bytes is outside 5\.\.64/);
  });

  const bytesArb = fc.uint8Array({ maxLength: 40 });
  const topicArb = fc.constantFrom('a', 'orders', 'ünïcode-topic');
  const headersArb = fc.dictionary(fc.string({ maxLength: 6 }), bytesArb, { maxKeys: 3 });

  it('round-trips any records through record groups (property, fixed seed)', () => {
    const recordsArb = fc.array(
      fc.record({
        topic: topicArb,
        partition: fc.integer({ min: 0, max: 3 }),
        offset: fc.integer({ min: 0, max: 2 ** 40 }),
        timestamp: fc.integer({ min: -(2 ** 45), max: 2 ** 45 }),
        key: fc.option(bytesArb, { nil: null }),
        value: fc.option(bytesArb, { nil: null }),
        headers: headersArb,
      }),
      { maxLength: 30 },
    );
    fc.assert(
      fc.property(recordsArb, (records) => {
        const decoded = decodeRecordGroups(encodeRecordGroups(records));
        expect(decoded).toEqual(records);
      }),
      { seed: 20240611, numRuns: 300 },
    );
  });

  it('round-trips any producer records (property, fixed seed)', () => {
    const producerArb = fc.array(
      fc.record(
        {
          topic: topicArb,
          partition: fc.integer({ min: 0, max: 100 }),
          timestamp: fc.integer({ min: 0, max: 2 ** 45 }),
          key: fc.option(fc.oneof(bytesArb, fc.string({ maxLength: 10 })), { nil: null }),
          value: fc.option(fc.oneof(bytesArb, fc.string({ maxLength: 10 })), { nil: null }),
          headers: fc.dictionary(
            fc.string({ maxLength: 6 }),
            fc.oneof(bytesArb, fc.string({ maxLength: 5 })),
            {
              minKeys: 1,
              maxKeys: 3,
            },
          ),
        },
        { requiredKeys: ['topic', 'value'] },
      ),
      { maxLength: 30 },
    );
    const asBytes = (v: Uint8Array | string | null | undefined) =>
      v === undefined || v === null ? null : typeof v === 'string' ? bytes(v) : v;
    fc.assert(
      fc.property(producerArb, (records: ProducerRecord[]) => {
        const decoded = decodeProducerRecords(encodeProducerRecords(records));
        expect(decoded).toHaveLength(records.length);
        decoded.forEach((d, i) => {
          const r = records[i];
          expect(d.topic).toBe(r.topic);
          expect(d.partition).toBe(r.partition);
          expect(d.timestamp).toBe(r.timestamp);
          expect(d.key).toEqual(asBytes(r.key));
          expect(d.value).toEqual(asBytes(r.value));
          expect(d.headers).toEqual(
            r.headers === undefined
              ? undefined
              : Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, asBytes(v)])),
          );
        });
      }),
      { seed: 20240612, numRuns: 300 },
    );
  });
});
