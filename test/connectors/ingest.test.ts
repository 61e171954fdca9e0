import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { serve, type ServerType } from '@hono/node-server';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TributaryError } from '../../src/core/index.js';
import { createMemoryLog, type AppendResult, type Log, type ProducerRecord } from '../../src/log/index.js';
import { createIngestRoutes, type IngestRoutesConfig } from '../../src/connectors/index.js';

let dir: string;
const servers: ServerType[] = [];
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'ingest-'));
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  await rm(dir, { recursive: true, force: true });
});

async function start(config: Partial<IngestRoutesConfig> & { log?: Log } = {}) {
  const log = config.log ?? createMemoryLog();
  const app = createIngestRoutes({ topicsAllowed: ['events'], ...config, log });
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  servers.push(server);
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}/topics/events/records`;
  return { log, url, port };
}

async function values(log: Log, topic = 'events') {
  return (await log.fetch(topic, 0, 0, { maxRecords: 1000 })).map((r) =>
    Buffer.from(r.value!).toString('utf8'),
  );
}

function wrapLog(base: Log, append: (records: ProducerRecord[]) => Promise<AppendResult[]>): Log {
  return new Proxy(base, {
    get(target, property) {
      if (property === 'append') return append;
      const value = Reflect.get(target, property) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

const post = (url: string, body: BodyInit, contentType: string, headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', body, headers: { 'content-type': contentType, ...headers } });

describe('HTTP ingest endpoint', () => {
  it('keeps each JSON array element as posted: big integers and decimals are not rounded', async () => {
    const { url, log } = await start();
    const res = await post(
      url,
      '[ {"id": 12345678901234567890, "price": 1.50},\n  "é" ]',
      'application/json',
    );
    expect(res.status).toBe(200);
    expect(await values(log)).toEqual(['{"id": 12345678901234567890, "price": 1.50}', '"é"']);
    expect((await post(url, '[{"a": 1}, ]', 'application/json')).status).toBe(400);
    expect(await values(log)).toHaveLength(2);
  });

  it('accepts JSON arrays, {records}, NDJSON, text and multipart files (csv, gz)', async () => {
    const { url, log } = await start();
    let res = await post(url, JSON.stringify([{ a: 1 }, 'x']), 'application/json');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      topic: 'events',
      records: 2,
      offsets: [{ partition: 0, first: 0, last: 1 }],
    });
    res = await post(
      url,
      JSON.stringify({ records: [{ key: 'k1', value: 'plain', headers: { h: 'v' } }, { value: { b: 2 } }] }),
      'application/json',
    );
    expect(res.status).toBe(200);
    res = await post(url, '{"n":1}\n{"n":2}\n', 'application/x-ndjson');
    expect(res.status).toBe(200);
    res = await post(url, 'line one\nline two', 'text/plain; charset=utf-8');
    expect(res.status).toBe(200);
    const form = new FormData();
    form.append('file', new Blob(['id,name\n1,"a, b"\n']), 'people.csv');
    form.append('other', new Blob([gzipSync('{"z":1}\n')]), 'more.ndjson.gz');
    res = await fetch(url, { method: 'POST', body: form });
    expect(res.status).toBe(200);
    expect(await values(log)).toEqual([
      '{"a":1}',
      '"x"',
      'plain',
      '{"b":2}',
      '{"n":1}',
      '{"n":2}',
      'line one',
      'line two',
      '{"id":"1","name":"a, b"}',
      '{"z":1}',
    ]);
    const records = await log.fetch('events', 0, 2, { maxRecords: 1 });
    expect(Buffer.from(records[0].key!).toString()).toBe('k1');
    expect(Buffer.from(records[0].headers.h).toString()).toBe('v');
  });

  it('answers 415, 413 (declared, streamed, count, record size), 403 and 400 with reasons', async () => {
    const { url, port, log } = await start({
      limits: { bodyBytesMax: 1000, recordsMax: 3, recordBytesMax: 100 },
    });
    expect((await post(url, '<x/>', 'application/xml')).status).toBe(415);
    expect((await post(url, 'x'.repeat(2000), 'text/plain')).status).toBe(413);
    // Chunked body without Content-Length, larger than the limit.
    const stream = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 20; i++) controller.enqueue(new TextEncoder().encode('y'.repeat(99) + '\n'));
        controller.close();
      },
    });
    const chunked = await fetch(url, {
      method: 'POST',
      body: stream,
      headers: { 'content-type': 'text/plain' },
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);
    const tooMany = await post(url, '1\n2\n3\n4\n', 'application/x-ndjson');
    expect(tooMany.status).toBe(413);
    expect(JSON.stringify(await tooMany.json())).toMatch(/more than 3 records/);
    const tooLong = await post(url, JSON.stringify(['y', 'z'.repeat(200)]), 'application/json');
    expect(tooLong.status).toBe(413);
    expect(JSON.stringify(await tooLong.json())).toMatch(
      /record 1: record of 202 bytes is larger than 100 bytes/,
    );
    expect(
      (await post(`http://127.0.0.1:${port}/topics/secret/records`, '[]', 'application/json')).status,
    ).toBe(403);
    const bad = await post(url, '{"ok":1}\n{nope\n', 'application/x-ndjson');
    expect(bad.status).toBe(400);
    expect(JSON.stringify(await bad.json())).toMatch(/line 2/);
    expect(await values(log).catch(() => [])).toEqual([]);
  });

  it('acknowledges only after the durable append; 503 when the log pushes back; 429 beyond inFlightMax', async () => {
    const base = createMemoryLog();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let mode: 'slow' | 'backpressure' = 'slow';
    const log = wrapLog(base, async (records) => {
      if (mode === 'backpressure')
        throw new TributaryError('BACKPRESSURE', 'log is behind', { retryAfterMs: 2500 });
      await gate;
      return base.append(records);
    });
    const { url } = await start({ log, limits: { inFlightMax: 1 } });
    let answered = false;
    const first = post(url, '["a"]', 'application/json').then((r) => {
      answered = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(answered).toBe(false);
    const second = await post(url, '["b"]', 'application/json');
    expect(second.status).toBe(429);
    expect(second.headers.get('retry-after')).toBe('1');
    release();
    expect((await first).status).toBe(200);
    expect(await values(base)).toEqual(['"a"']);
    mode = 'backpressure';
    const pushed = await post(url, '["c"]', 'application/json');
    expect(pushed.status).toBe(503);
    expect(pushed.headers.get('retry-after')).toBe('3');
  });

  it('honours Idempotency-Key: one append, replayed answer, 422 on a different body, durable across restarts', async () => {
    const file = path.join(dir, 'idem.jsonl');
    const { url, log } = await start({ idempotency: { file } });
    const send = (body: string, key: string) =>
      post(url, body, 'application/json', { 'idempotency-key': key });
    const a = await send('["once"]', 'key-1');
    const b = await send('["once"]', 'key-1');
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    expect(b.headers.get('idempotent-replayed')).toBe('true');
    expect(await b.json()).toEqual(await a.json());
    expect((await send('["other"]', 'key-1')).status).toBe(422);
    expect(await values(log)).toEqual(['"once"']);
    // A new endpoint (restart) over the same log and file replays too.
    const restarted = await start({ log, idempotency: { file } });
    const c = await post(restarted.url, '["once"]', 'application/json', { 'idempotency-key': 'key-1' });
    expect(c.headers.get('idempotent-replayed')).toBe('true');
    expect(await values(log)).toEqual(['"once"']);
    // A failed request does not burn its key.
    expect((await send('{nope', 'key-2')).status).toBe(400);
    expect((await send('["fixed"]', 'key-2')).status).toBe(200);
  });

  it('refuses a key that is still in flight with 409', async () => {
    const base = createMemoryLog();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const log = wrapLog(base, async (records) => {
      await gate;
      return base.append(records);
    });
    const { url } = await start({ log });
    const first = post(url, '["a"]', 'application/json', { 'idempotency-key': 'k' });
    await new Promise((r) => setTimeout(r, 100));
    expect((await post(url, '["a"]', 'application/json', { 'idempotency-key': 'k' })).status).toBe(409);
    release();
    expect((await first).status).toBe(200);
  });
});
