import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { z } from 'zod';
import { TributaryError, writeFileAtomic, limits } from '../core/index.js';
import { scramCredential, type ScramCredential } from '../log/index.js';

export const apiScopes = ['read', 'ingest', 'admin'] as const;
export type ApiScope = (typeof apiScopes)[number];

/** Who is calling, once a key (or an SSE token minted from one) has been verified. */
export interface AuthInfo {
  keyId: string;
  name: string;
  scopes: ApiScope[];
  /** Company the key is bound to; undefined for platform-wide keys. */
  tenant: string | undefined;
}

export function hasScope(auth: AuthInfo, scope: ApiScope): boolean {
  return auth.scopes.includes('admin') || auth.scopes.includes(scope);
}

/** A stored key: never the secret itself, only a salted hash of it. */
export interface ApiKeyRecord {
  id: string;
  name: string;
  scopes: ApiScope[];
  tenant: string | null;
  saltHex: string;
  hashHex: string;
  createdAtMs: number;
  revokedAtMs: number | null;
  /**
   * The key's SCRAM-SHA-256 verifier for the Kafka listener (salt, iterations, StoredKey and
   * ServerKey, base64); keys created before the listener existed have none and use SASL/PLAIN.
   */
  scramSha256?: { saltB64: string; iterations: number; storedKeyB64: string; serverKeyB64: string };
}

const tenantPattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const keyPattern = /^trb_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

const recordSchema = z.object({
  id: z.string().regex(/^[0-9a-f]{12}$/),
  name: z.string(),
  scopes: z.array(z.enum(apiScopes)).min(1),
  tenant: z.string().regex(tenantPattern).nullable(),
  saltHex: z.string().regex(/^[0-9a-f]{32}$/),
  hashHex: z.string().regex(/^[0-9a-f]{64}$/),
  createdAtMs: z.number().int(),
  revokedAtMs: z.number().int().nullable(),
  scramSha256: z
    .object({
      saltB64: z.string(),
      iterations: z.number().int().min(4096),
      storedKeyB64: z.string(),
      serverKeyB64: z.string(),
    })
    .optional(),
});

/**
 * keys.json (`dataDirPaths(dataDir).keys`), replaced atomically on every change:
 *
 *   { "format": "tributary-api-keys", "version": 1, "keys": [ApiKeyRecord...] }
 *
 * A key handed to a user is `trb_<id>_<secret>`: `id` is 12 hex chars (public, used in lists and
 * revocation), `secret` is 32 random bytes as base64url (43 chars). Only
 * `hashHex = sha256(salt ‖ secret)` is stored, with a random 16-byte `saltHex` per key. A fast hash
 * is enough because the secret has 256 bits of entropy (nothing to brute-force, unlike a password);
 * comparison is constant-time. `scramSha256` (optional) is the key's SCRAM-SHA-256 verifier
 * (RFC 5802: PBKDF2 salt and iterations, StoredKey, ServerKey) so the Kafka listener can run SCRAM
 * with the key as password; like the hash it cannot be turned back into the key.
 */
const fileSchema = z.object({
  format: z.literal('tributary-api-keys'),
  version: z.literal(1),
  keys: z.array(recordSchema),
});

function hashSecret(saltHex: string, secret: string): Buffer {
  return createHash('sha256').update(Buffer.from(saltHex, 'hex')).update(secret, 'utf8').digest();
}

export interface CreateKeyOptions {
  scopes: ApiScope[];
  tenant?: string | undefined;
  name?: string | undefined;
  nowMs?: number;
}

/**
 * The API key store. Other processes (`tributary keys create` while `up` runs) change the file, so
 * verification re-reads it when its modification time moved (checked at most every `reloadMs`).
 *
 * @example
 * const store = KeyStore.open(dataDirPaths(dataDir).keys);
 * const { key } = await store.create({ scopes: ['read'], tenant: 'acme', name: 'acme-dashboard' });
 * store.verify(key); // → { keyId, scopes: ['read'], tenant: 'acme', ... }
 */
export class KeyStore {
  readonly file: string;
  #records = new Map<string, ApiKeyRecord>();
  /** Keys verified since the file was last read (cleared on every reload, so revocation holds). */
  #verified = new Map<string, AuthInfo>();
  #mtimeMs = -1;
  #checkedAtMs = 0;
  readonly #reloadMs: number;

  private constructor(file: string, reloadMs: number) {
    this.file = file;
    this.#reloadMs = reloadMs;
  }

  static open(file: string, options: { reloadMs?: number } = {}): KeyStore {
    const store = new KeyStore(file, options.reloadMs ?? 1000);
    store.#reload(true);
    return store;
  }

  #reload(force: boolean): void {
    const nowMs = Date.now();
    if (!force && nowMs - this.#checkedAtMs < this.#reloadMs) return;
    this.#checkedAtMs = nowMs;
    let mtimeMs: number;
    try {
      mtimeMs = statSync(this.file).mtimeMs;
    } catch {
      this.#records.clear();
      this.#mtimeMs = -1;
      return;
    }
    if (!force && mtimeMs === this.#mtimeMs) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(this.file, 'utf8'));
    } catch (error) {
      throw new TributaryError(
        'CORRUPT_DATA',
        `key file ${this.file} is not readable JSON: ${(error as Error).message}`,
        { cause: error },
      );
    }
    const result = fileSchema.safeParse(parsed);
    if (!result.success) {
      const issue = result.error.issues[0];
      throw new TributaryError(
        'CORRUPT_DATA',
        `key file ${this.file}: field ${issue?.path.join('.') ?? '?'}: ${issue?.message ?? 'invalid'}`,
      );
    }
    this.#records = new Map(result.data.keys.map((record) => [record.id, record]));
    this.#verified.clear();
    this.#mtimeMs = mtimeMs;
  }

  async #save(): Promise<void> {
    const body = { format: 'tributary-api-keys', version: 1, keys: [...this.#records.values()] };
    this.#verified.clear();
    await writeFileAtomic(this.file, `${JSON.stringify(body, null, 2)}\n`);
    this.#mtimeMs = statSync(this.file).mtimeMs;
  }

  async create(options: CreateKeyOptions): Promise<{ key: string; record: ApiKeyRecord }> {
    this.#reload(true);
    if (options.scopes.length === 0)
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `a key needs at least one scope (${apiScopes.join(', ')})`,
      );
    for (const scope of options.scopes) {
      if (!apiScopes.includes(scope))
        throw new TributaryError(
          'INVALID_ARGUMENT',
          `unknown scope "${scope}"; scopes: ${apiScopes.join(', ')}`,
        );
    }
    if (options.tenant !== undefined && !tenantPattern.test(options.tenant)) {
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `tenant ${JSON.stringify(options.tenant)} must match ${tenantPattern.source}`,
      );
    }
    let id = randomBytes(6).toString('hex');
    while (this.#records.has(id)) id = randomBytes(6).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const saltHex = randomBytes(16).toString('hex');
    const record: ApiKeyRecord = {
      id,
      name: options.name ?? `key-${id}`,
      scopes: [...new Set(options.scopes)],
      tenant: options.tenant ?? null,
      saltHex,
      hashHex: hashSecret(saltHex, secret).toString('hex'),
      createdAtMs: options.nowMs ?? Date.now(),
      revokedAtMs: null,
      scramSha256: scramRecord(scramCredential(`trb_${id}_${secret}`)),
    };
    this.#records.set(id, record);
    await this.#save();
    return { key: `trb_${id}_${secret}`, record };
  }

  list(): ApiKeyRecord[] {
    this.#reload(true);
    return [...this.#records.values()].sort(
      (a, b) => a.createdAtMs - b.createdAtMs || a.id.localeCompare(b.id),
    );
  }

  async revoke(id: string, nowMs = Date.now()): Promise<ApiKeyRecord> {
    this.#reload(true);
    const record = this.#records.get(id);
    if (!record)
      throw new TributaryError(
        'NOT_FOUND',
        `no API key with id "${id}" in ${this.file}; \`tributary keys list\` shows the ids`,
      );
    if (record.revokedAtMs === null) {
      record.revokedAtMs = nowMs;
      await this.#save();
    }
    return record;
  }

  /** The caller for a key id (used by SSE tokens, which carry the id only); null when revoked. */
  lookup(id: string): AuthInfo | null {
    this.#reload(false);
    const record = this.#records.get(id);
    if (!record || record.revokedAtMs !== null) return null;
    return { keyId: record.id, name: record.name, scopes: record.scopes, tenant: record.tenant ?? undefined };
  }

  /** The SCRAM-SHA-256 verifier of a live key (by id), or null (unknown, revoked, or created without one). */
  scram(id: string): { credential: ScramCredential; auth: AuthInfo } | null {
    this.#reload(false);
    const record = this.#records.get(id);
    const stored = record?.scramSha256;
    if (!record || record.revokedAtMs !== null || stored === undefined) return null;
    return {
      credential: {
        salt: Buffer.from(stored.saltB64, 'base64'),
        iterations: stored.iterations,
        storedKey: Buffer.from(stored.storedKeyB64, 'base64'),
        serverKey: Buffer.from(stored.serverKeyB64, 'base64'),
      },
      auth: {
        keyId: record.id,
        name: record.name,
        scopes: record.scopes,
        tenant: record.tenant ?? undefined,
      },
    };
  }

  /** The caller behind a presented key, or null (unknown, malformed, revoked: all look the same). */
  verify(presented: string): AuthInfo | null {
    this.#reload(false);
    const known = this.#verified.get(presented);
    if (known) return known;
    const match = keyPattern.exec(presented);
    if (!match) return null;
    const record = this.#records.get(match[1]);
    if (!record || record.revokedAtMs !== null) return null;
    const expected = Buffer.from(record.hashHex, 'hex');
    if (!timingSafeEqual(hashSecret(record.saltHex, match[2]), expected)) return null;
    const auth: AuthInfo = {
      keyId: record.id,
      name: record.name,
      scopes: record.scopes,
      tenant: record.tenant ?? undefined,
    };
    if (this.#verified.size >= limits.apiVerifiedKeysMax) this.#verified.clear();
    this.#verified.set(presented, auth);
    return auth;
  }
}

function scramRecord(credential: ScramCredential): NonNullable<ApiKeyRecord['scramSha256']> {
  return {
    saltB64: credential.salt.toString('base64'),
    iterations: credential.iterations,
    storedKeyB64: credential.storedKey.toString('base64'),
    serverKeyB64: credential.serverKey.toString('base64'),
  };
}

export function parseScopes(text: string): ApiScope[] {
  const scopes = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const scope of scopes) {
    if (!(apiScopes as readonly string[]).includes(scope)) {
      throw new TributaryError(
        'USAGE',
        `unknown scope "${scope}"; scopes: ${apiScopes.join(', ')} (admin implies all)`,
      );
    }
  }
  return scopes as ApiScope[];
}
