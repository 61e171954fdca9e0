import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { isTributaryError, TributaryError } from '../../core/index.js';
import { openEmbeddedLog, type EmbeddedLog } from '../embedded/index.js';
import { openLog, parseLogServerUrl } from '../open.js';
import type { Consumer, Log, TopicPartition } from '../types.js';
import { connectRemoteLog, readLogServerInfo, serveLog, type LogServer, type RemoteLog } from './index.js';
import { writeServerInfo } from './info.js';
import {
  encodeFrame,
  encodeJson,
  FrameReader,
  MessageType,
  protocolVersion,
  type Frame,
} from './protocol.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-remote-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
let counter = 0;

/** Everything a test opened, closed after it in reverse order. */
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function served(options: { sessionTimeoutMs?: number } = {}): Promise<{
  dir: string;
  embedded: EmbeddedLog;
  server: LogServer;
  connect: () => Promise<RemoteLog>;
}> {
  const dir = path.join(root, `log-${++counter}`);
  const embedded = await openEmbeddedLog({ dir, retentionCheckMs: 0 });
  const server = await serveLog(embedded, { dir, ...options });
  cleanups.push(() => embedded.close());
  cleanups.push(() => server.close());
  const token = readLogServerInfo(dir)!.token;
  return {
    dir,
    embedded,
    server,
    connect: async () => {
      const client = await connectRemoteLog({ host: server.host, port: server.port, token, heartbeatMs: 50 });
      cleanups.push(() => client.close());
      return client;
    },
  };
}

async function rejection(promise: Promise<unknown>): Promise<TributaryError> {
  try {
    await promise;
  } catch (error) {
    if (isTributaryError(error)) return error;
    throw error;
  }
  throw new Error('expected a TributaryError, but the call succeeded');
}

/** Waits for `condition` (polling `step` meanwhile); fails after a generous deadline, never on speed. */
async function until(what: string, condition: () => boolean, step: () => Promise<unknown>): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await step();
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const keys = (tps: TopicPartition[]) => tps.map((tp) => `${tp.topic}/${tp.partition}`).sort();

/** A bare protocol peer, to act as clients that misbehave or vanish. */
async function rawPeer(port: number): Promise<{
  socket: net.Socket;
  send: (requestId: number, type: MessageType, body?: unknown) => void;
  next: () => Promise<Frame>;
  closed: Promise<void>;
}> {
  const socket = net.createConnection({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const reader = new FrameReader(1024 * 1024);
  const frames: Frame[] = [];
  let wake: (() => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    frames.push(...reader.push(chunk));
    wake?.();
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  cleanups.push(async () => {
    socket.destroy();
    await closed;
  });
  return {
    socket,
    send: (requestId, type, body) => socket.write(encodeFrame(requestId, type, encodeJson(body))),
    next: async () => {
      while (frames.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      return frames.shift()!;
    },
    closed,
  };
}

describe('log server', () => {
  it('announces itself in server.json (mode 0600) and removes it on close', async () => {
    const dir = path.join(root, `log-${++counter}`);
    const embedded = await openEmbeddedLog({ dir, retentionCheckMs: 0 });
    cleanups.push(() => embedded.close());
    const server = await serveLog(embedded, { dir });
    const file = path.join(dir, 'server.json');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const info = readLogServerInfo(dir)!;
    expect(info).toMatchObject({ pid: process.pid, host: '127.0.0.1', port: server.port });
    expect(info.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    await server.close();
    expect(fs.existsSync(file)).toBe(false);
    expect(readLogServerInfo(dir)).toBeNull();
  });

  it('writes server.json byte for byte as documented', async () => {
    const dir = path.join(root, `log-${++counter}`);
    fs.mkdirSync(dir, { recursive: true });
    const info = {
      pid: process.pid,
      host: '127.0.0.1',
      port: 40123,
      token: 'T0k3n',
      startedAtMs: 1795341600000,
    };
    await writeServerInfo(dir, info);
    expect(fs.readFileSync(path.join(dir, 'server.json'), 'utf8')).toBe(
      `{"formatVersion":1,"pid":${process.pid},"host":"127.0.0.1","port":40123,"token":"T0k3n","startedAtMs":1795341600000}\n`,
    );
    expect(readLogServerInfo(dir)).toEqual(info);
  });

  it("reads a crashed server's leftover server.json as no server", () => {
    const dir = path.join(root, `log-${++counter}`);
    fs.mkdirSync(dir, { recursive: true });
    const exited = spawnSync(process.execPath, ['-e', '']);
    const deadPid = exited.pid;
    const body = { pid: deadPid, host: '127.0.0.1', port: 1, token: 't', startedAtMs: 1 };
    fs.writeFileSync(path.join(dir, 'server.json'), JSON.stringify(body));
    expect(readLogServerInfo(dir)).toBeNull();
    fs.writeFileSync(path.join(dir, 'server.json'), JSON.stringify({ ...body, pid: process.pid }));
    expect(readLogServerInfo(dir)).toMatchObject({ pid: process.pid, port: 1 });
    fs.writeFileSync(path.join(dir, 'server.json'), '{"pid":');
    expect(readLogServerInfo(dir)).toBeNull();
  });

  it('refuses a wrong token with UNAUTHENTICATED, without echoing any token', async () => {
    const { dir, server, connect } = await served();
    const token = readLogServerInfo(dir)!.token;
    const wrong = 'not-the-token-0123456789';
    const error = await rejection(connectRemoteLog({ host: server.host, port: server.port, token: wrong }));
    expect(error.code).toBe('UNAUTHENTICATED');
    expect(error.message).toBe(
      `log server 127.0.0.1:${server.port} refused the connection: wrong token (the token is in ${path.join(dir, 'server.json')}, readable only by the data dir's owner)`,
    );
    expect(error.message).not.toContain(token);
    expect(error.message).not.toContain(wrong);
    // The server goes on serving clients that have the token.
    expect(await (await connect()).listTopics()).toEqual([]);
  });

  it('answers anything but HELLO first with UNAUTHENTICATED and closes the connection', async () => {
    const { server } = await served();
    const peer = await rawPeer(server.port);
    peer.send(1, MessageType.LIST_TOPICS);
    const answer = await peer.next();
    expect(answer.requestId).toBe(1);
    expect(answer.type).toBe(MessageType.ERROR);
    expect(JSON.parse(answer.payload.toString())).toMatchObject({ code: 'UNAUTHENTICATED' });
    await peer.closed;
  });

  it('closes a connection that sends an oversized frame before HELLO', async () => {
    const { server } = await served();
    const peer = await rawPeer(server.port);
    const header = Buffer.alloc(4);
    header.writeUInt32LE(10 * 1024 * 1024);
    peer.socket.write(header);
    const answer = await peer.next();
    expect(JSON.parse(answer.payload.toString())).toMatchObject({ code: 'DECODE_FAILED' });
    await peer.closed;
  });

  it('answers out of order: a long poll does not hold up other requests on the connection', async () => {
    const { connect } = await served();
    const log = await connect();
    await log.createTopic('slow', { partitions: 1 });
    let fetched = false;
    const waiting = log.fetch('slow', 0, 0, { waitMs: 30_000 }).then((records) => {
      fetched = true;
      return records;
    });
    expect(await log.listTopics()).toEqual(['slow']);
    expect((await log.describeTopic('slow')).partitions[0].endOffset).toBe(0);
    expect(fetched).toBe(false);
    await log.append([{ topic: 'slow', value: 'now' }]);
    expect((await waiting).map((r) => new TextDecoder().decode(r.value!))).toEqual(['now']);
  });

  it('cancels a long poll when its signal aborts', async () => {
    const { connect } = await served();
    const log = await connect();
    await log.createTopic('idle', { partitions: 1 });
    const controller = new AbortController();
    const waiting = log.fetch('idle', 0, 0, { waitMs: 60_000, signal: controller.signal });
    await log.listTopics();
    controller.abort();
    expect(await waiting).toEqual([]);
    const consumer = log.consumer({ group: 'g-cancel', topics: ['idle'] });
    const polling = consumer.poll({ waitMs: 60_000, signal: controller.signal });
    expect(await polling).toEqual([]);
  });

  it('keeps error codes and messages across the wire', async () => {
    const { embedded, connect } = await served();
    const log = await connect();
    const local = await rejection(embedded.describeTopic('missing'));
    const remote = await rejection(log.describeTopic('missing'));
    expect([remote.code, remote.message]).toEqual([local.code, local.message]);
    await log.createTopic('t', { partitions: 1 });
    const badTimestamp = await rejection(log.append([{ topic: 't', value: 'v', timestamp: 1.5 }]));
    expect(badTimestamp.code).toBe('BAD_RECORD');
    expect(badTimestamp.message).toBe('record 0 (topic t): timestamp must be an integer epoch ms, got 1.5');
    const badOffset = await rejection(log.fetch('t', 0, -1));
    expect(badOffset.message).toBe('fetch t/0: offset must be a non-negative integer, got -1');
  });

  it('runs onAssignment to completion (including its seeks) before returning records of the new partitions', async () => {
    const { connect } = await served();
    const log = await connect();
    await log.createTopic('assign', { partitions: 2 });
    await log.append(
      Array.from({ length: 20 }, (_, i) => ({ topic: 'assign', partition: i % 2, value: `v${i}` })),
    );
    const events: string[] = [];
    let consumer: Consumer | undefined = undefined;
    consumer = log.consumer({
      group: 'g-assign',
      topics: ['assign'],
      onAssignment: async (assigned) => {
        events.push('callback started');
        await sleep(50);
        for (const tp of assigned) consumer!.seek(tp, 7);
        events.push('callback done');
      },
    });
    const got = [];
    while (got.length < 6) {
      const records = await consumer.poll({ waitMs: 100 });
      if (records.length > 0) events.push('records');
      got.push(...records);
    }
    expect(events.slice(0, 3)).toEqual(['callback started', 'callback done', 'records']);
    expect(Math.min(...got.map((r) => r.offset))).toBe(7);
    expect(consumer.position({ topic: 'assign', partition: 0 })).toBe(10);
  });

  it('holds back records of partitions gained during a poll until their onAssignment has run', async () => {
    const { connect } = await served();
    const log = await connect();
    await log.createTopic('gain', { partitions: 2 });
    await log.append([
      { topic: 'gain', partition: 0, value: 'p0' },
      { topic: 'gain', partition: 1, value: 'p1' },
    ]);
    const events: string[] = [];
    const a = log.consumer({
      group: 'g-gain',
      topics: ['gain'],
      onAssignment: async (assigned) => {
        if (assigned.length === 0) return;
        await sleep(50);
        events.push(`a assigned ${keys(assigned).join(' ')}`);
      },
    });
    const b = log.consumer({ group: 'g-gain', topics: ['gain'] });
    await until(
      'each member owns one partition',
      () => a.assignment().length === 1 && b.assignment().length === 1,
      () => Promise.all([a.poll({ waitMs: 10 }), b.poll({ waitMs: 10 })]),
    );
    const aOwned = a.assignment()[0];
    a.seek(aOwned, 1);
    // Both frames reach the server in one read: the poll starts, then b leaves and a gains b's
    // partition before the poll fetches.
    const polling = a.poll({ waitMs: 1000 });
    void b.close();
    const gained = `gain/${1 - aOwned.partition}`;
    let records = await polling;
    for (;;) {
      for (const r of records) events.push(`a read ${r.topic}/${r.partition}`);
      if (records.some((r) => `${r.topic}/${r.partition}` === gained)) break;
      records = await a.poll({ waitMs: 100 });
    }
    expect(events.indexOf(`a assigned ${gained}`)).toBeGreaterThanOrEqual(0);
    expect(events.indexOf(`a assigned ${gained}`)).toBeLessThan(events.indexOf(`a read ${gained}`));
  });

  it('answers position() before the first poll from the committed offset, and fixes it there', async () => {
    const { connect } = await served();
    const log = await connect();
    await log.createTopic('pos', { partitions: 1 });
    await log.append(Array.from({ length: 5 }, (_, i) => ({ topic: 'pos', value: `v${i}` })));
    await log.commitOffsets('g-pos', [{ topic: 'pos', partition: 0, offset: 3 }]);
    const consumer = log.consumer({ group: 'g-pos', topics: ['pos'], from: 'latest' });
    expect(() => consumer.position({ topic: 'pos', partition: 0 })).toThrow(/not assigned/);
    // A round trip on the same connection: the assignment push comes before its answer.
    await log.listTopics();
    expect(consumer.assignment()).toEqual([{ topic: 'pos', partition: 0 }]);
    expect(consumer.position({ topic: 'pos', partition: 0 })).toBe(3);
    const records = await consumer.poll({ waitMs: 100 });
    expect(records.map((r) => r.offset)).toEqual([3, 4]);
    await consumer.commit();
    expect([...(await log.committedOffsets('g-pos', 'pos'))]).toEqual([[0, 5]]);
  });

  it("fails the next poll with the onAssignment callback's error, as in-process consumers do", async () => {
    const { connect } = await served();
    const log = await connect();
    await log.createTopic('fails', { partitions: 1 });
    const consumer = log.consumer({
      group: 'g-fails',
      topics: ['fails'],
      onAssignment: () => {
        throw new TributaryError('CONFLICT', 'checkpoint of fails/0 is locked');
      },
    });
    const error = await rejection(consumer.poll({ waitMs: 50 }));
    expect([error.code, error.message]).toEqual(['CONFLICT', 'checkpoint of fails/0 is locked']);
    expect(await consumer.poll({ waitMs: 0 })).toEqual([]);
  });

  it('a vanished connection leaves its groups at once (the lease)', async () => {
    const { dir, server, connect } = await served();
    const log = await connect();
    await log.createTopic('lease', { partitions: 4 });
    const peer = await rawPeer(server.port);
    peer.send(1, MessageType.HELLO, { protocolVersion, token: readLogServerInfo(dir)!.token });
    expect((await peer.next()).type).toBe(MessageType.OK);
    peer.send(2, MessageType.CONSUMER_OPEN, { consumerId: 1, group: 'g-lease', topics: ['lease'] });
    const stay = log.consumer({ group: 'g-lease', topics: ['lease'] });
    await until(
      'the two members share the partitions',
      () => stay.assignment().length === 2,
      () => stay.poll({ waitMs: 20 }),
    );
    peer.socket.destroy();
    await until(
      'the remaining member owns every partition',
      () => stay.assignment().length === 4,
      () => stay.poll({ waitMs: 20 }),
    );
    expect(keys(stay.assignment())).toEqual(['lease/0', 'lease/1', 'lease/2', 'lease/3']);
  });

  it('drops a connection silent for the session timeout, so a stopped process loses its lease', async () => {
    const { dir, server, connect } = await served({ sessionTimeoutMs: 1000 });
    const log = await connect();
    await log.createTopic('silent', { partitions: 2 });
    const peer = await rawPeer(server.port);
    peer.send(1, MessageType.HELLO, { protocolVersion, token: readLogServerInfo(dir)!.token });
    await peer.next();
    peer.send(2, MessageType.CONSUMER_OPEN, { consumerId: 1, group: 'g-silent', topics: ['silent'] });
    const stay = log.consumer({ group: 'g-silent', topics: ['silent'] });
    // The peer never sends heartbeats (as a SIGSTOPped process): the server closes it.
    await peer.closed;
    await until(
      'the remaining member owns both partitions',
      () => stay.assignment().length === 2,
      () => stay.poll({ waitMs: 20 }),
    );
    // The real client sent heartbeats all along and is still connected.
    expect(await log.listTopics()).toEqual(['silent']);
  });

  it('client close leaves the groups and refuses later calls; the served log stays open', async () => {
    const { embedded, connect } = await served();
    const first = await connect();
    await first.createTopic('close', { partitions: 2 });
    const member = first.consumer({ group: 'g-close', topics: ['close'] });
    await member.poll({ waitMs: 0 });
    expect(member.assignment()).toHaveLength(2);
    await first.close();
    expect((await rejection(first.listTopics())).code).toBe('CLOSED');
    expect((await rejection(member.poll())).code).toBe('CLOSED');
    expect(() => first.consumer({ group: 'g', topics: ['close'] })).toThrow(/closed/);
    // No members left: a reset (refused while a group has members) goes through.
    await embedded.resetOffsets('g-close', 'close', 'earliest');
    expect(await embedded.listTopics()).toEqual(['close']);
  });

  it('fails pending and later requests with UNAVAILABLE when the server goes away', async () => {
    const { server, connect } = await served();
    const log = await connect();
    await log.createTopic('gone', { partitions: 1 });
    const waiting = log.fetch('gone', 0, 0, { waitMs: 60_000 });
    await server.close();
    expect((await rejection(waiting)).code).toBe('UNAVAILABLE');
    expect((await rejection(log.listTopics())).code).toBe('UNAVAILABLE');
  });
});

describe('openLog and log servers', () => {
  const config = (dataDir: string, log = 'embedded') => ({
    dataDir,
    log,
    logFsync: 'group' as const,
    logGroupCommitMs: 2,
    logRetentionMs: -1,
    logRetentionBytes: -1,
  });

  it('parses tributary:// addresses and refuses malformed ones', () => {
    expect(parseLogServerUrl('tributary://127.0.0.1:4100')).toEqual({ host: '127.0.0.1', port: 4100 });
    for (const bad of [
      'tributary://',
      'tributary://host',
      'tributary://h:0',
      'tributary://h:70000',
      'kafka://h:1',
    ]) {
      let error: unknown;
      try {
        parseLogServerUrl(bad);
      } catch (e) {
        error = e;
      }
      expect(isTributaryError(error, 'CONFIG_INVALID'), bad).toBe(true);
    }
  });

  it('connects to tributary://host:port with the token from the environment or the data dir', async () => {
    const dataDir = path.join(root, `data-${++counter}`);
    const logDir = path.join(dataDir, 'log');
    const embedded = await openEmbeddedLog({ dir: logDir, retentionCheckMs: 0 });
    cleanups.push(() => embedded.close());
    const server = await serveLog(embedded, { dir: logDir });
    cleanups.push(() => server.close());
    await embedded.createTopic('explicit', { partitions: 1 });
    const url = `tributary://127.0.0.1:${server.port}`;
    const fromDataDir = await openLog(config(dataDir, url));
    expect(fromDataDir.kind).toBe('remote');
    expect(await fromDataDir.listTopics()).toEqual(['explicit']);
    await fromDataDir.close();
    const saved = process.env.TRIBUTARY_LOG_TOKEN;
    process.env.TRIBUTARY_LOG_TOKEN = readLogServerInfo(logDir)!.token;
    try {
      const fromEnv = await openLog(config(path.join(root, 'elsewhere'), url));
      expect(await fromEnv.listTopics()).toEqual(['explicit']);
      await fromEnv.close();
      process.env.TRIBUTARY_LOG_TOKEN = 'wrong';
      expect((await rejection(openLog(config(dataDir, url)))).code).toBe('UNAUTHENTICATED');
    } finally {
      if (saved === undefined) delete process.env.TRIBUTARY_LOG_TOKEN;
      else process.env.TRIBUTARY_LOG_TOKEN = saved;
    }
  });

  it('opens the directory when server.json names a live process that does not answer', async () => {
    const dataDir = path.join(root, `data-${++counter}`);
    const logDir = path.join(dataDir, 'log');
    fs.mkdirSync(logDir, { recursive: true });
    // A port nobody listens on, and a live pid that is not this process (our parent).
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    fs.writeFileSync(
      path.join(logDir, 'server.json'),
      JSON.stringify({ pid: process.ppid, host: '127.0.0.1', port, token: 'x', startedAtMs: 1 }),
    );
    const log: Log = await openLog(config(dataDir), { retentionCheckMs: 0 });
    try {
      expect(log.kind).toBe('embedded');
    } finally {
      await log.close();
    }
  });
});
