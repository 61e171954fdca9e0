/**
 * Issue 17 §4: a key bound to a tenant sees only its tenant's keys; only unbound admin keys see
 * every key. A pipeline's internal topics refuse the generic ingest routes (403), even for an
 * unbound ingest key, while other topics accept them.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIngestRoutes } from '../../src/connectors/index.js';
import { counter } from '../../src/core/index.js';
import { createMemoryLog, type MemoryLog } from '../../src/log/index.js';
import { LocalStorage } from '../../src/lake/index.js';
import { processDocument } from '../../src/pipelines/documents/stages.js';
import { outsideWritesAllowed, pipelineDefinitions } from '../../src/pipelines/index.js';
import { createApp, KeyStore, type TributaryApp } from '../../src/serve/index.js';
import { listen, readAll } from '../pipelines/documents/helpers.js';

let dir: string;
let log: MemoryLog;
let api: TributaryApp;
let server: { url: string; close(): Promise<void> };
const keys: Record<string, string> = {};

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'fault-tenants-'));
  const store = KeyStore.open(path.join(dir, 'keys.json'));
  keys.platform = (await store.create({ scopes: ['admin'], name: 'platform' })).key;
  keys.acmeAdmin = (await store.create({ scopes: ['admin'], tenant: 'acme', name: 'acme-admin' })).key;
  keys.acmeRead = (await store.create({ scopes: ['read'], tenant: 'acme', name: 'acme-read' })).key;
  keys.globexRead = (await store.create({ scopes: ['read'], tenant: 'globex', name: 'globex-read' })).key;
  keys.ingest = (await store.create({ scopes: ['ingest'], name: 'platform-ingest' })).key;
  keys.platformRead = (await store.create({ scopes: ['read'], name: 'platform-read' })).key;
  log = createMemoryLog();
  api = createApp({
    keys: store,
    ui: false,
    statusTickMs: 0,
    // As `tributary up` mounts the generic ingest routes.
    ingest: {
      app: createIngestRoutes({ log, topicsAllowed: outsideWritesAllowed(pipelineDefinitions) }),
      tenantAware: false,
    },
  });
  server = await listen(api.app);
});
afterAll(async () => {
  await api.close();
  await server.close();
  await log.close();
  await rm(dir, { recursive: true, force: true });
});

async function listedBy(key: string): Promise<{ name: string; tenant: string | null }[]> {
  const response = await fetch(`${server.url}/api/keys`, { headers: { authorization: `Bearer ${key}` } });
  expect(response.status).toBe(200);
  return ((await response.json()) as { keys: { name: string; tenant: string | null }[] }).keys;
}

describe('key listing per tenant', () => {
  it("shows a tenant-bound admin key only its tenant's keys", async () => {
    const seen = await listedBy(keys.acmeAdmin);
    expect(seen.map((k) => k.name).sort()).toEqual(['acme-admin', 'acme-read']);
    expect(seen.every((k) => k.tenant === 'acme')).toBe(true);
  });

  it('shows an unbound admin key every key', async () => {
    const seen = await listedBy(keys.platform);
    expect(seen.map((k) => k.name).sort()).toEqual([
      'acme-admin',
      'acme-read',
      'globex-read',
      'platform',
      'platform-ingest',
      'platform-read',
    ]);
  });
});

describe('internal topics', () => {
  const post = (topic: string, value: unknown) =>
    fetch(`${server.url}/api/ingest/topics/${topic}/records`, {
      method: 'POST',
      body: JSON.stringify([value]),
      headers: { authorization: `Bearer ${keys.ingest}`, 'content-type': 'application/json' },
    });

  it('refuse the generic ingest routes with 403 (a forged chunk or relabelled document)', async () => {
    const forged = { document_id: 'd1', company_id: 'globex', s3_path: 'x', text: 'planted' };
    for (const topic of ['documents.raw', 'chunks.processed', 'embeddings.ready', 'documents.raw.dlq']) {
      const response = await post(topic, forged);
      expect(response.status, topic).toBe(403);
      expect(((await response.json()) as { error: { message: string } }).error.message).toContain(topic);
      expect(await readAll(log, topic)).toEqual([]);
    }
  });

  it('leave other topics open to ingest keys', async () => {
    const response = await post('events', { ok: true });
    expect(response.status).toBe(200);
    expect(await readAll(log, 'events')).toHaveLength(1);
  });
});

describe('docproc', () => {
  it("refuses a raw record whose s3_path lies in another company's folder", async () => {
    const storage = new LocalStorage(path.join(dir, 'lake'));
    const key = 'originals/documents/acme/d1/secret.txt';
    await storage.put(key, Buffer.from('Acme only.'));
    const extractAndChunk = () => Promise.resolve([{ chunk_id: 'c', text: 'Acme only.', page: 1 }]);
    const relabelled = { document_id: 'd1', company_id: 'globex', s3_path: `${storage.root}/${key}` };
    await expect(processDocument(relabelled, { storage, extractAndChunk })).rejects.toThrow(
      /d1: s3_path .* is not in company globex's folder/,
    );
    const own = { ...relabelled, company_id: 'acme' };
    expect(await processDocument(own, { storage, extractAndChunk })).toHaveLength(1);
  });
});

/** Opens `/api/events` and collects event names until `last` arrives (after `ready`, runs `then`). */
async function eventsUntil(key: string, last: string, then: () => void): Promise<string[]> {
  const response = await fetch(`${server.url}/api/events`, { headers: { authorization: `Bearer ${key}` } });
  expect(response.status).toBe(200);
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  const names: string[] = [];
  let buffered = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) throw new Error(`stream ended before ${last}; saw ${names.join(', ')}`);
      buffered += value;
      let end = buffered.indexOf('\n\n');
      while (end !== -1) {
        const name = /^event: (.+)$/m.exec(buffered.slice(0, end))?.[1];
        buffered = buffered.slice(end + 2);
        end = buffered.indexOf('\n\n');
        if (name === undefined) continue;
        if (name === 'ready') then();
        else names.push(name);
        if (name === last) return names;
      }
    }
  } finally {
    await reader.cancel();
  }
}

describe('live events (SSE)', () => {
  const publishAll = () => {
    api.events.publish({ type: 'test.globex', data: { secret: 'globex' }, tenant: 'globex' });
    api.events.publish({ type: 'test.platform', data: {} });
    api.events.publish({ type: 'test.acme', data: { n: 1 }, tenant: 'acme' });
    api.events.publish({ type: 'test.done', data: {}, tenant: 'acme' });
  };

  it("deliver to a tenant-bound key only its tenant's events", async () => {
    expect(await eventsUntil(keys.acmeRead, 'test.done', publishAll)).toEqual(['test.acme', 'test.done']);
  });

  it('deliver every event to an unbound key', async () => {
    expect(await eventsUntil(keys.platformRead, 'test.done', publishAll)).toEqual([
      'test.globex',
      'test.platform',
      'test.acme',
      'test.done',
    ]);
  });
});

describe('/metrics', () => {
  const perCompany = counter('tributary_fault_tenant_probe_total', 'Probe for tenant labels', ['company_id']);
  perCompany.inc({ company_id: 'acme' });
  perCompany.inc({ company_id: 'globex' });
  const companiesSeenBy = async (key?: string) => {
    const response = await fetch(`${server.url}/metrics`, {
      headers: key ? { authorization: `Bearer ${key}` } : {},
    });
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).toContain('# HELP tributary_fault_tenant_probe_total');
    return [...text.matchAll(/tributary_fault_tenant_probe_total\{company_id="([^"]+)"\}/g)].map((m) => m[1]);
  };

  it('carries company ids only for keys that may see them', async () => {
    expect(await companiesSeenBy()).toEqual([]);
    expect(await companiesSeenBy(keys.acmeRead)).toEqual(['acme']);
    expect((await companiesSeenBy(keys.platformRead)).sort()).toEqual(['acme', 'globex']);
  });
});
