/**
 * Issue 17 §4: a key bound to a tenant sees only its tenant's keys; only unbound admin keys see
 * every key.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, KeyStore, type TributaryApp } from '../../src/serve/index.js';
import { listen } from '../pipelines/documents/helpers.js';

let dir: string;
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
  api = createApp({ keys: store, ui: false, statusTickMs: 0 });
  server = await listen(api.app);
});
afterAll(async () => {
  await api.close();
  await server.close();
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
    expect(seen.map((k) => k.name).sort()).toEqual(['acme-admin', 'acme-read', 'globex-read', 'platform']);
  });
});
