/**
 * Issue 17 §6: the log server used to take request bodies with `as` casts, so a peer holding the
 * token could hand the log wrongly typed values (a string partition, an object offset, a missing
 * topic list). Every body is now checked; a malformed one is answered with INVALID_ARGUMENT naming
 * the message and field, the connection and the server go on, and nothing reaches the log.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  openEmbeddedLog,
  readLogServerInfo,
  serveLog,
  type EmbeddedLog,
  type LogServer,
} from '../../src/log/index.js';
import {
  decodeError,
  decodeJson,
  encodeFrame,
  encodeJson,
  FrameReader,
  MessageType,
  protocolVersion,
  type Frame,
} from '../../src/log/remote/protocol.js';

let dir: string;
let log: EmbeddedLog;
let server: LogServer;
let socket: net.Socket;
const frames: Frame[] = [];
let wake: (() => void) | undefined;
let requestId = 0;

async function request(type: MessageType, body: unknown): Promise<Frame> {
  const id = ++requestId;
  socket.write(encodeFrame(id, type, typeof body === 'string' ? Buffer.from(body) : encodeJson(body)));
  for (;;) {
    const at = frames.findIndex((f) => f.requestId === id);
    if (at >= 0) return frames.splice(at, 1)[0];
    await new Promise<void>((resolve) => (wake = resolve));
  }
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fault-log-server-'));
  log = await openEmbeddedLog({ dir, retentionCheckMs: 0 });
  await log.ensureTopic('orders', { partitions: 2 });
  await log.append([{ topic: 'orders', key: 'a', value: 'one' }]);
  server = await serveLog(log, { dir });
  socket = net.createConnection({ host: server.host, port: server.port });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const reader = new FrameReader(64 * 1024 * 1024);
  socket.on('data', (chunk: Buffer) => {
    frames.push(...reader.push(chunk));
    wake?.();
  });
  const hello = await request(MessageType.HELLO, { protocolVersion, token: readLogServerInfo(dir)!.token });
  expect(hello.type).toBe(MessageType.OK);
});
afterAll(async () => {
  socket?.destroy();
  await server?.close();
  await log?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('log server request bodies', () => {
  const malformed: [string, MessageType, unknown, RegExp][] = [
    [
      'FETCH partition as text',
      MessageType.FETCH,
      { topic: 'orders', partition: '0', offset: 0, maxRecords: 1, maxBytes: 1, waitMs: 0 },
      /^FETCH: partition: /,
    ],
    [
      'FETCH offset as object',
      MessageType.FETCH,
      { topic: 'orders', partition: 0, offset: { $gt: 1 }, maxRecords: 1, maxBytes: 1, waitMs: 0 },
      /^FETCH: offset: /,
    ],
    [
      'FETCH without topic',
      MessageType.FETCH,
      { partition: 0, offset: 0, maxRecords: 1, maxBytes: 1, waitMs: 0 },
      /^FETCH: topic: /,
    ],
    [
      'CREATE_TOPIC partitions as text',
      MessageType.CREATE_TOPIC,
      ['x', { partitions: '3' }, null],
      /^CREATE_TOPIC: 1\.partitions: /,
    ],
    ['CREATE_TOPIC not an array', MessageType.CREATE_TOPIC, { name: 'x' }, /^CREATE_TOPIC: body: /],
    [
      'COMMIT_OFFSETS offsets as text',
      MessageType.COMMIT_OFFSETS,
      ['g', 'everything'],
      /^COMMIT_OFFSETS: 1: /,
    ],
    [
      'RESET_OFFSETS unknown position',
      MessageType.RESET_OFFSETS,
      ['g', 'orders', 'yesterday'],
      /^RESET_OFFSETS: 2: /,
    ],
    [
      'CONSUMER_OPEN topics missing',
      MessageType.CONSUMER_OPEN,
      { consumerId: 1, group: 'g' },
      /^CONSUMER_OPEN: topics: /,
    ],
    [
      'CONSUMER_POLL consumerId as text',
      MessageType.CONSUMER_POLL,
      { consumerId: '1', maxRecords: 1, maxBytes: 1, waitMs: 0 },
      /^CONSUMER_POLL: consumerId: /,
    ],
    ['DESCRIBE_TOPIC empty body', MessageType.DESCRIBE_TOPIC, undefined, /^DESCRIBE_TOPIC: body: /],
    [
      'OFFSET_FOR_TIMESTAMP timestamp as text',
      MessageType.OFFSET_FOR_TIMESTAMP,
      ['orders', 0, 'noon'],
      /^OFFSET_FOR_TIMESTAMP: 2: /,
    ],
  ];

  it.each(malformed)(
    'refuses %s with INVALID_ARGUMENT naming the field',
    async (_what, type, body, message) => {
      const answer = await request(type, body);
      expect(answer.type).toBe(MessageType.ERROR);
      const error = decodeError(answer.payload);
      expect(error.code).toBe('INVALID_ARGUMENT');
      expect(error.message).toMatch(message);
    },
  );

  it('answers a body that is not JSON with DECODE_FAILED', async () => {
    const answer = await request(MessageType.FETCH, '{"topic": "orders", partition');
    expect(decodeError(answer.payload)).toMatchObject({ code: 'DECODE_FAILED' });
  });

  it('keeps serving the connection, and the log holds nothing the bodies asked for', async () => {
    const ok = await request(MessageType.FETCH, {
      topic: 'orders',
      partition: (await log.describeTopic('orders')).partitions.findIndex((p) => p.endOffset > 0),
      offset: 0,
      maxRecords: 10,
      maxBytes: 1 << 20,
      waitMs: 0,
    });
    expect(ok.type).toBe(MessageType.RECORDS);
    const topics = await request(MessageType.LIST_TOPICS, undefined);
    expect(decodeJson(topics.payload, 'OK')).toEqual(['orders']);
    expect(await log.listGroups()).toEqual([]);
  });
});
