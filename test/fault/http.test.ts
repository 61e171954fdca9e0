/**
 * Issue 17 §5: error answers. Deep JSON is refused with a 400 before anything recurses over it; a
 * body the route does not read is read to its end, so the client gets the answer, not a reset;
 * a 400 never carries the SQL engine's message or the generated SQL.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIngestRoutes } from '../../src/connectors/index.js';
import { LocalStorage, openLake, type Lake } from '../../src/lake/index.js';
import { createMemoryLog, type MemoryLog } from '../../src/log/index.js';
import { createApp, createLakeTableProvider, KeyStore, type TributaryApp } from '../../src/serve/index.js';
import { openSqlEngine, type SqlEngine } from '../../src/sql/index.js';
import { listen } from '../pipelines/documents/helpers.js';
import { deepJson } from './hostile.js';

let dir: string;
let lake: Lake;
let sql: SqlEngine;
let log: MemoryLog;
let api: TributaryApp;
let server: { url: string; close(): Promise<void> };
let readKey: string;
let ingestKey: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'fault-http-'));
  lake = await openLake({ storage: new LocalStorage(path.join(dir, 'lake')) });
  await lake
    .table('gold', 'revenue')
    .append([{ company: 'acme', at: new Date('2026-11-20T10:00:00Z'), revenue: 10.5 }]);
  sql = await openSqlEngine(lake, { refreshIntervalMs: 0 });
  log = createMemoryLog();
  const keys = KeyStore.open(path.join(dir, 'keys.json'));
  readKey = (await keys.create({ scopes: ['read'] })).key;
  ingestKey = (await keys.create({ scopes: ['ingest'] })).key;
  api = createApp({
    keys,
    tables: createLakeTableProvider({ lake, sql }),
    ingest: { app: createIngestRoutes({ log, topicsAllowed: ['*'] }), tenantAware: false },
    statusTickMs: 0,
    ui: false,
  });
  server = await listen(api.app);
});

afterAll(async () => {
  await api.close();
  await server.close();
  sql.close();
  await lake.close();
  await log.close();
  await rm(dir, { recursive: true, force: true });
});

/** Engine wording that must never reach a client. */
const engineText = /Conversion Error|Binder Error|Parser Error|Catalog Error|LINE \d|SELECT|CAST\(|\$\d/;

describe('error answers', () => {
  it('refuses JSON nested 100k deep with a 400 naming the limit (ingest and router routes)', async () => {
    const deep = deepJson(100_000);
    const ingest = await fetch(`${server.url}/api/ingest/topics/events/records`, {
      method: 'POST',
      body: deep,
      headers: { authorization: `Bearer ${ingestKey}`, 'content-type': 'application/json' },
    });
    expect(ingest.status).toBe(400);
    expect(((await ingest.json()) as { error: { message: string } }).error.message).toMatch(
      /request body nests arrays\/objects more than 64 levels deep \(jsonDepthMax\)/,
    );
    const token = await fetch(`${server.url}/api/events/token`, {
      method: 'POST',
      body: deep,
      headers: { authorization: `Bearer ${readKey}`, 'content-type': 'application/json' },
    });
    expect(token.status).toBe(200);
  });

  it('reads a slowly sent body the route ignores to its end and answers, without a reset', async () => {
    // 24 pieces of 64 KiB, 100 ms apart: longer than the HTTP server's own 500 ms drain window.
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent === 24) return controller.close();
        await new Promise((resolve) => setTimeout(resolve, 100));
        sent++;
        controller.enqueue(new Uint8Array(64 * 1024).fill(0x5b));
      },
    });
    const response = await fetch(`${server.url}/api/events/token`, {
      method: 'POST',
      body,
      duplex: 'half',
      headers: { authorization: `Bearer ${readKey}`, 'content-type': 'application/json' },
    } as RequestInit);
    expect(response.status).toBe(200);
    expect(sent).toBe(24);
    expect(await response.json()).toHaveProperty('token');
  });

  it('answers bodies over the limit with 413 after reading them away, every time', async () => {
    const body = Buffer.alloc(12 * 1024 * 1024, 0x5b);
    const statuses: (number | string)[] = [];
    for (let i = 0; i < 10; i++) {
      const response = await fetch(`${server.url}/api/events/token`, {
        method: 'POST',
        body,
        headers: { authorization: `Bearer ${readKey}`, 'content-type': 'application/json' },
      }).catch((error: unknown) => (error as Error).message);
      if (typeof response === 'string') statuses.push(response);
      else {
        statuses.push(response.status);
        await response.text();
      }
    }
    expect(statuses).toEqual(Array(10).fill(413));
  });

  it('answers a filter the engine cannot apply with a 400 naming the parameter, no engine text', async () => {
    const response = await fetch(`${server.url}/api/tables/gold/revenue?at=2026-02-30`, {
      headers: { authorization: `Bearer ${readKey}` },
    });
    expect(response.status).toBe(400);
    const message = ((await response.json()) as { error: { message: string } }).error.message;
    expect(message).toMatch(/gold\.revenue.*filters on at \(eq\)/);
    expect(message).not.toMatch(engineText);
  });
});
