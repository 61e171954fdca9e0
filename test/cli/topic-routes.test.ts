import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryLog, type MemoryLog } from '../../src/log/index.js';
import { createApp, KeyStore, topicsModule, type TributaryApp } from '../../src/serve/index.js';

/** The HTTP topics API of `tributary up` (`/api/topics…`), in-process over a memory log. */
let dir: string;
let log: MemoryLog;
let api: TributaryApp;
const keys = { admin: '', read: '', tenantAdmin: '' };

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tributary-topic-routes-'));
  const store = KeyStore.open(path.join(dir, 'keys.json'));
  keys.admin = (await store.create({ scopes: ['admin'], name: 'admin' })).key;
  keys.read = (await store.create({ scopes: ['read', 'ingest'], name: 'reader' })).key;
  keys.tenantAdmin = (await store.create({ scopes: ['admin'], name: 'acme admin', tenant: 'acme' })).key;
  log = createMemoryLog();
  api = createApp({ keys: store, ui: false, statusTickMs: 0, pipelines: [topicsModule(log)] });
});

afterAll(async () => {
  await api.close();
  await log.close();
  await rm(dir, { recursive: true, force: true });
});

async function call(key: string, method: 'GET' | 'POST', url: string, body?: unknown) {
  const response = await api.app.request(url, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('topics API', () => {
  it('appends with keys and timestamps, then lists, describes and reads back', async () => {
    const appended = await call(keys.admin, 'POST', '/api/topics/events/records', {
      records: [
        { key: 'a', value: '{"n":1}', timestamp: 1_700_000_000_000 },
        { value: 'plain text' },
        { key: null, value: null },
      ],
    });
    expect(appended).toEqual({
      status: 200,
      body: { topic: 'events', records: 3, offsets: [{ partition: 0, first: 0, last: 2 }] },
    });
    expect((await call(keys.admin, 'GET', '/api/topics')).body).toEqual({ topics: ['events'] });
    const described = await call(keys.admin, 'GET', '/api/topics/events');
    expect(described.body).toMatchObject({ name: 'events', partitions: [{ partition: 0, endOffset: 3 }] });

    const page = await call(keys.admin, 'GET', '/api/topics/events/partitions/0/records?offset=1&limit=5');
    expect(page.status).toBe(200);
    const records = page.body.records as { offset: number; key: string | null; value: string | null }[];
    expect(records.map((r) => [r.offset, r.key, r.value])).toEqual([
      [1, null, 'plain text'],
      [2, null, null],
    ]);
    const first = await call(keys.admin, 'GET', '/api/topics/events/partitions/0/records?limit=1');
    expect(first.body.records).toEqual([
      { topic: 'events', partition: 0, offset: 0, timestamp: 1_700_000_000_000, key: 'a', value: '{"n":1}' },
    ]);
  });

  it('creates topics and reports conflicts and unknown topics with their codes', async () => {
    expect((await call(keys.admin, 'POST', '/api/topics', { name: 'wide', partitions: 4 })).status).toBe(200);
    const described = await call(keys.admin, 'GET', '/api/topics/wide');
    expect((described.body.partitions as unknown[]).length).toBe(4);
    const again = await call(keys.admin, 'POST', '/api/topics', { name: 'wide', partitions: 1 });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ error: { code: 'ALREADY_EXISTS' } });
    const missing = await call(keys.admin, 'GET', '/api/topics/absent');
    expect(missing.status).toBe(404);
    const badLimit = await call(keys.admin, 'GET', '/api/topics/wide/partitions/0/records?limit=0');
    expect(badLimit.status).toBe(400);
  });

  it('refuses keys without admin scope and tenant-bound admin keys', async () => {
    const reader = await call(keys.read, 'GET', '/api/topics');
    expect(reader.status).toBe(403);
    const tenant = await call(keys.tenantAdmin, 'POST', '/api/topics/events/records', {
      records: [{ value: 'x' }],
    });
    expect(tenant.status).toBe(403);
    expect(JSON.stringify(tenant.body)).toContain('bound to tenant');
    expect((await log.describeTopic('events')).partitions[0].endOffset).toBe(3);
    const anonymous = await api.app.request('/api/topics');
    expect(anonymous.status).toBe(401);
  });
});
