import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KeyStore, hasScope, parseScopes } from './keys.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tributary-keys-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('KeyStore', () => {
  it('creates keys, stores only salted hashes, verifies and revokes', async () => {
    const file = path.join(dir, 'keys.json');
    const store = KeyStore.open(file);
    const { key, record } = await store.create({ scopes: ['read'], tenant: 'acme', name: 'dash' });
    expect(key).toMatch(/^trb_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    const text = await readFile(file, 'utf8');
    // The secret is base64url, so it may hold '_' itself: everything after the id is the secret.
    const secret = key.slice('trb_'.length + 12 + 1);
    expect(secret).toHaveLength(43);
    expect(text).not.toContain(secret);
    expect(JSON.parse(text)).toMatchObject({ format: 'tributary-api-keys', version: 1 });
    expect(store.verify(key)).toEqual({ keyId: record.id, name: 'dash', scopes: ['read'], tenant: 'acme' });
    expect(store.verify(`${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}`)).toBeNull();
    expect(store.verify('trb_nothex')).toBeNull();
    const reopened = KeyStore.open(file);
    expect(reopened.verify(key)?.keyId).toBe(record.id);
    await reopened.revoke(record.id);
    expect(reopened.verify(key)).toBeNull();
    expect(KeyStore.open(file).list()[0].revokedAtMs).not.toBeNull();
    await expect(store.revoke('000000000000')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('validates scopes and tenants', async () => {
    const store = KeyStore.open(path.join(dir, 'keys.json'));
    await expect(store.create({ scopes: [] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(store.create({ scopes: ['read'], tenant: '../x' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    expect(() => parseScopes('read,root')).toThrow(/unknown scope "root"/);
    expect(parseScopes('read, ingest')).toEqual(['read', 'ingest']);
    expect(hasScope({ keyId: 'x', name: 'x', scopes: ['admin'], tenant: undefined }, 'ingest')).toBe(true);
    expect(hasScope({ keyId: 'x', name: 'x', scopes: ['read'], tenant: undefined }, 'ingest')).toBe(false);
  });

  it('refuses a corrupt key file naming the field', async () => {
    const file = path.join(dir, 'keys.json');
    await writeFile(file, JSON.stringify({ format: 'tributary-api-keys', version: 1, keys: [{ id: 'zz' }] }));
    expect(() => KeyStore.open(file)).toThrow(/keys\.0\.id/);
  });
});
