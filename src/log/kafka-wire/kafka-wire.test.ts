import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { TributaryError } from '../../core/index.js';
import { createMemoryLog } from '../memory.js';
import type { LogRecord } from '../types.js';
import { ScramServer, scramCredential, type KafkaAuthenticator } from './auth.js';
import { errorCodeOf, errorCodes } from './errors.js';
import { messageSchemas } from './messages.js';
import { ProducerStates } from './producers.js';
import { crc32c, crc32cPortable, decodeBatches, encodeBatch } from './record-batch.js';
import { compileMessage, KafkaReader, KafkaWriter } from './schema.js';
import { serveKafka, servedApiVersions } from './server.js';

const schema = (apiKey: number, type: string) =>
  messageSchemas.find((m) => m.apiKey === apiKey && m.type === type)!;

describe('CRC-32C', () => {
  it('matches the standard check value and is continuous across the 8-byte steps', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 31) & 0xff));
    let bytewise = 0xffffffff;
    for (const byte of data) {
      bytewise ^= byte;
      for (let k = 0; k < 8; k++) bytewise = bytewise & 1 ? 0x82f63b78 ^ (bytewise >>> 1) : bytewise >>> 1;
    }
    expect(crc32c(data)).toBe((bytewise ^ 0xffffffff) >>> 0);
    expect(crc32cPortable(data)).toBe((bytewise ^ 0xffffffff) >>> 0);
  });

  it('sums a range of a larger buffer the same way, native and portable', () => {
    const data = Buffer.from(Array.from({ length: 4099 }, (_, i) => (i * 131 + 7) & 0xff));
    for (const [start, end] of [
      [0, data.length],
      [21, 4000],
      [3, 3],
      [17, 18],
    ]) {
      const expected = crc32cPortable(Buffer.from(data.subarray(start, end)));
      expect(crc32c(data, start, end)).toBe(expected);
      expect(crc32cPortable(data, start, end)).toBe(expected);
    }
  });
});

describe('error codes', () => {
  it('answers a full disk or a failed fsync with the retriable KAFKA_STORAGE_ERROR, not an unknown error', () => {
    expect(errorCodeOf(new TributaryError('STORAGE_FULL', 'no space'))).toBe(56);
    expect(errorCodeOf(new TributaryError('UNAVAILABLE', 'fsync failed'))).toBe(56);
    expect(errorCodeOf(new TributaryError('CORRUPT_DATA', 'bad crc'))).toBe(errorCodes.CORRUPT_MESSAGE);
    expect(errorCodeOf(new Error('other'))).toBe(errorCodes.UNKNOWN_SERVER_ERROR);
  });
});

describe('schema interpreter', () => {
  it('writes ApiVersionsRequest v3 byte for byte (compact strings, empty tagged fields)', () => {
    const w = new KafkaWriter();
    compileMessage(schema(18, 'request'), 3).write(w, {
      clientSoftwareName: 'kcat',
      clientSoftwareVersion: '1.7',
    });
    expect([...w.toBuffer()]).toEqual([5, ...Buffer.from('kcat'), 4, ...Buffer.from('1.7'), 0]);
  });

  it('reads and writes MetadataResponse v1 byte for byte (classic strings and arrays)', () => {
    const bytes = Buffer.from([
      ...[0, 0, 0, 1], // brokers: 1
      ...[0, 0, 0, 0], // nodeId 0
      ...[0, 1, 0x68], // host "h"
      ...[0, 0, 0x23, 0x84], // port 9092
      ...[0xff, 0xff], // rack null
      ...[0, 0, 0, 0], // controllerId 0
      ...[0, 0, 0, 1], // topics: 1
      ...[0, 3], // errorCode 3
      ...[0, 1, 0x74], // name "t"
      0, // isInternal false
      ...[0, 0, 0, 0], // partitions: 0
    ]);
    const codec = compileMessage(schema(3, 'response'), 1);
    const message = codec.read(new KafkaReader(bytes));
    expect(message).toMatchObject({
      brokers: [{ nodeId: 0, host: 'h', port: 9092, rack: null }],
      controllerId: 0,
      topics: [{ errorCode: 3, name: 't', isInternal: false, partitions: [] }],
    });
    const w = new KafkaWriter();
    codec.write(w, message);
    expect(w.toBuffer().equals(bytes)).toBe(true);
  });

  it('round-trips a tagged field and skips unknown tags (FetchRequest v12 ClusterId, tag 0)', () => {
    const codec = compileMessage(schema(1, 'request'), 12);
    const w = new KafkaWriter();
    const request = {
      clusterId: 'c1',
      replicaId: -1,
      maxWaitMs: 500,
      minBytes: 1,
      maxBytes: 1024,
      isolationLevel: 0,
      sessionId: 0,
      sessionEpoch: -1,
      topics: [],
      forgottenTopicsData: [],
      rackId: '',
    };
    codec.write(w, request);
    const bytes = w.toBuffer();
    expect(codec.read(new KafkaReader(bytes))).toMatchObject(request);
    // The same message with one more (unknown) tag 7 after the known one still reads.
    const withUnknown = Buffer.concat([
      bytes.subarray(0, bytes.length - 6),
      Buffer.from([2, 0, 3, 3, 0x63, 0x31, 7, 1, 0x2a]),
    ]);
    expect(codec.read(new KafkaReader(withUnknown)).clusterId).toBe('c1');
  });
});

describe('record batch v2', () => {
  const records: LogRecord[] = [
    {
      topic: 't',
      partition: 0,
      offset: 10,
      timestamp: 1_700_000_000_000,
      key: Buffer.from('k'),
      value: Buffer.from('v1'),
      headers: { h: Buffer.from('x') },
    },
    {
      topic: 't',
      partition: 0,
      offset: 12,
      timestamp: 1_700_000_000_005,
      key: null,
      value: null,
      headers: {},
    },
  ];

  it('encodes stored records and decodes them back (offset gaps, nulls, headers, CRC-32C)', () => {
    const [batch] = decodeBatches(encodeBatch(records), 'into', 3);
    expect(batch.baseOffset).toBe(10);
    expect(batch.lastOffsetDelta).toBe(2);
    const text = (bytes: Uint8Array | null) => (bytes === null ? null : Buffer.from(bytes).toString());
    expect(batch.records.map((r) => [r.topic, r.partition, r.timestamp, text(r.key), text(r.value)])).toEqual(
      [
        ['into', 3, 1_700_000_000_000, 'k', 'v1'],
        ['into', 3, 1_700_000_000_005, null, null],
      ],
    );
    expect(text(batch.records[0].headers!.h)).toBe('x');
    expect(batch.records[1].headers).toBeUndefined();
  });

  it('refuses a flipped byte (CRC-32C) and decodes a gzip-compressed batch', () => {
    const plain = encodeBatch(records);
    const broken = Buffer.from(plain);
    broken[broken.length - 1] ^= 1;
    expect(() => decodeBatches(broken)).toThrow(/CRC-32C/);
    // Rebuild the same batch with its records gzip-compressed (attributes codec 1) and a fresh CRC.
    const header = Buffer.from(plain.subarray(0, 61));
    const compressed = gzipSync(plain.subarray(61));
    header.writeInt32BE(61 - 12 + compressed.length, 8);
    header.writeInt16BE(1, 21);
    const gz = Buffer.concat([header, compressed]);
    gz.writeUInt32BE(crc32c(gz, 21), 17);
    expect(
      decodeBatches(gz)[0].records.map((r) => (r.value === null ? null : Buffer.from(r.value).toString())),
    ).toEqual(['v1', null]);
  });
});

describe('SCRAM-SHA-256 server', () => {
  it('passes the RFC 7677 test vector', () => {
    const credential = scramCredential('pencil', Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'), 4096);
    const principal = { name: 'user', produce: true, consume: true, admin: false };
    const authenticator: KafkaAuthenticator = {
      plain: () => 'unused',
      scram: (username) => (username === 'user' ? { credential, principal } : 'unknown user'),
    };
    const server = new ScramServer(authenticator, () => '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0');
    const first = server.first(Buffer.from('n,,n=user,r=rOprNGfwEbeRWgbNEkqO'));
    expect(first.toString()).toBe(
      'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
    );
    const final = server.final(
      Buffer.from(
        'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
      ),
    );
    expect(final.toString()).toBe('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
    expect(server.principal).toBe(principal);
    const wrong = new ScramServer(authenticator, () => 'x');
    wrong.first(Buffer.from('n,,n=user,r=abc'));
    expect(wrong.final(Buffer.from('c=biws,r=abcx,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ='))).toMatch(
      /failed/,
    );
  });
});

describe('idempotent producer sequences', () => {
  it('accepts the next sequence, answers a retried batch with its offset, refuses gaps and old epochs', async () => {
    const states = new ProducerStates();
    const { producerId, epoch } = states.init(-1, -1);
    const first = states.check(producerId, epoch, 't/0', 0, 5);
    expect(first.kind).toBe('append');
    if (first.kind === 'append') first.record(Promise.resolve(100));
    const retry = states.check(producerId, epoch, 't/0', 0, 5);
    expect(retry.kind).toBe('duplicate');
    if (retry.kind === 'duplicate') expect(await retry.baseOffset).toBe(100);
    expect(states.check(producerId, epoch, 't/0', 7, 1)).toMatchObject({
      errorCode: errorCodes.OUT_OF_ORDER_SEQUENCE_NUMBER,
    });
    expect(states.check(producerId, epoch, 't/0', 5, 1).kind).toBe('append');
    const bumped = states.init(producerId, epoch);
    expect(bumped).toEqual({ producerId, epoch: epoch + 1 });
    expect(states.check(producerId, epoch, 't/0', 5, 1)).toMatchObject({
      errorCode: errorCodes.INVALID_PRODUCER_EPOCH,
    });
  });
});

/** One raw request on a fresh connection; resolves with the response body after the correlation id. */
function rawRequest(
  port: number,
  apiKey: number,
  version: number,
  body: Buffer,
  flexibleHeader: boolean,
): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const header = Buffer.alloc(10);
    header.writeInt16BE(apiKey, 0);
    header.writeInt16BE(version, 2);
    header.writeInt32BE(7, 4);
    header.writeInt16BE(-1, 8); // null client id
    const payload = Buffer.concat([header, flexibleHeader ? Buffer.from([0]) : Buffer.alloc(0), body]);
    const size = Buffer.alloc(4);
    size.writeInt32BE(payload.length);
    let received = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (received.length >= 4 && received.length >= 4 + received.readInt32BE(0)) {
        expect(received.readInt32BE(4)).toBe(7);
        socket.destroy();
        resolve(received.subarray(8, 4 + received.readInt32BE(0)));
      }
    });
    socket.on('close', () => resolve(null));
    socket.on('error', reject);
    socket.write(Buffer.concat([size, payload]));
  });
}

describe('listener answers instead of dropping the connection', () => {
  it('answers an unknown ApiVersions version in v0 with UNSUPPORTED_VERSION, and unauthenticated requests with errors', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tributary-kafka-wire-'));
    const log = createMemoryLog();
    await log.createTopic('secret', { partitions: 1 });
    const listener = await serveKafka(log, {
      port: 0,
      authenticator: { plain: () => 'no', scram: () => 'no' },
    });
    try {
      const versions = await rawRequest(listener.port, 18, 99, Buffer.alloc(0), true);
      const v0 = compileMessage(schema(18, 'response'), 0).read(new KafkaReader(versions!));
      expect(v0.errorCode).toBe(errorCodes.UNSUPPORTED_VERSION);
      expect(v0.apiKeys).toEqual(servedApiVersions());
      // Metadata v1 (all topics: null) without SASL: no brokers, no topics.
      const metadata = await rawRequest(listener.port, 3, 1, Buffer.from([0xff, 0xff, 0xff, 0xff]), false);
      const answer = compileMessage(schema(3, 'response'), 1).read(new KafkaReader(metadata!));
      expect(answer).toMatchObject({ brokers: [], topics: [] });
      // A request for an API this listener does not serve (DescribeAcls v1) is answered in its format.
      const acls = compileMessage(schema(29, 'request'), 1);
      const w = new KafkaWriter();
      acls.write(w, {
        resourceTypeFilter: 1,
        resourceNameFilter: null,
        patternTypeFilter: 1,
        principalFilter: null,
        hostFilter: null,
        operation: 1,
        permissionType: 1,
      });
      const aclAnswer = await rawRequest(listener.port, 29, 1, w.toBuffer(), false);
      expect(compileMessage(schema(29, 'response'), 1).read(new KafkaReader(aclAnswer!)).errorCode).toBe(
        errorCodes.SASL_AUTHENTICATION_FAILED,
      );
    } finally {
      await listener.close();
      await log.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
