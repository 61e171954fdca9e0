import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SchemaRegistry as ConfluentClient, SchemaType } from '@kafkajs/confluent-schema-registry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, TributaryError } from '../../src/core/index.js';
import {
  AvroSerde,
  CachedSchemaRegistry,
  HttpSchemaRegistry,
  openSchemaRegistry,
  registryErrorCodeOf,
  schemaRegistryContentType,
} from '../../src/log/index.js';
import { movieBreaking, movieV1, movieV2 } from '../../src/log/schemas/testing/movies.js';
import { KeyStore, runUp, type UpHandle } from '../../src/serve/index.js';

let dir: string;
let handle: UpHandle;
let baseUrl: string;
let ingestKey: string;
let readKey: string;
let adminKey: string;
let printed = '';

async function startUp(): Promise<UpHandle> {
  const config = loadConfig({ env: {}, cwd: dir, dotenv: false, overrides: { dataDir: dir, port: 0 } });
  return runUp({ config, out: { write: (text: string) => (printed += text) }, handleSignals: false });
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tributary-sr-'));
  const keys = KeyStore.open(path.join(dir, 'keys.json'));
  ingestKey = (await keys.create({ scopes: ['ingest', 'read'], name: 'producer' })).key;
  readKey = (await keys.create({ scopes: ['read'], name: 'consumer' })).key;
  handle = await startUp();
  adminKey = handle.createdAdminKey!;
  baseUrl = `${handle.url}/schema-registry`;
  expect(printed).toContain(`Schema registry: ${baseUrl} `);
});
afterAll(async () => {
  await handle.stop('test');
  await rm(dir, { recursive: true, force: true });
});

async function rejection(promise: Promise<unknown>): Promise<TributaryError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(TributaryError);
    return error as TributaryError;
  }
  throw new Error('expected a rejection');
}

describe('schema registry under up, with @kafkajs/confluent-schema-registry', () => {
  it('registers, encodes, decodes, refuses an incompatible change, and interoperates with our serde', async () => {
    const client = new ConfluentClient({
      host: baseUrl,
      auth: { username: 'producer', password: ingestKey },
    });
    const { id } = await client.register(
      { type: SchemaType.AVRO, schema: movieV1 },
      { subject: 'movies-value' },
    );
    expect(id).toBe(1);
    // The same schema again: the same id.
    expect(
      (await client.register({ type: SchemaType.AVRO, schema: movieV1 }, { subject: 'movies-value' })).id,
    ).toBe(1);

    const encoded = await client.encode(id, { id: 1, title: 'Alien' });
    expect(encoded.subarray(0, 5).toString('hex')).toBe('0000000001');
    expect(await client.decode(encoded)).toEqual({ id: 1, title: 'Alien' });

    const refused = client.register(
      { type: SchemaType.AVRO, schema: movieBreaking },
      { subject: 'movies-value' },
    );
    await expect(refused).rejects.toThrow(
      /incompatible with an earlier schema for subject "movies-value".*rating/,
    );
    await expect(refused).rejects.toMatchObject({ status: 409 });

    const v2 = await client.register({ type: SchemaType.AVRO, schema: movieV2 }, { subject: 'movies-value' });
    expect(v2.id).toBe(2);
    expect(await client.getLatestSchemaId('movies-value')).toBe(2);
    expect(
      await client.getRegistryIdBySchema('movies-value', { type: SchemaType.AVRO, schema: movieV1 }),
    ).toBe(1);
    expect(await client.getRegistryId('movies-value', 1)).toBe(1);

    // Our serde over our HTTP client (Bearer this time) reads the client's bytes and writes bytes it reads.
    const http = new CachedSchemaRegistry(new HttpSchemaRegistry({ url: baseUrl, credentials: ingestKey }));
    const serde = new AvroSerde(http);
    expect(JSON.parse(JSON.stringify(await serde.decodeAsync(encoded)))).toEqual({ id: 1, title: 'Alien' });
    const writer = await serde.writer('movies-value', movieV2);
    expect(writer).toMatchObject({ id: 2, version: 2 });
    const ours = writer.encode({ id: 2, title: 'Heat', genres: ['crime'] });
    expect(await client.decode(ours)).toEqual({ id: 2, title: 'Heat', genres: ['crime'] });
    // A reader on v2 resolves v1 data (genres takes its default).
    const reader = serde.reader({ subject: 'movies-value' });
    await reader.prepare([encoded]);
    expect(JSON.parse(JSON.stringify(reader.decode(encoded)))).toEqual({ id: 1, title: 'Alien', genres: [] });
    await expect(serde.writer('movies-value', movieBreaking)).rejects.toMatchObject({
      code: 'SCHEMA_MISMATCH',
      details: { registryErrorCode: 409 },
    });
  });

  it('answers the REST API with the registry media type and error codes', async () => {
    const get = (p: string, key = readKey) =>
      fetch(`${baseUrl}${p}`, { headers: { authorization: `Bearer ${key}` } });
    const subjects = await get('/subjects');
    expect(subjects.status).toBe(200);
    expect(subjects.headers.get('content-type')).toBe(schemaRegistryContentType);
    expect(await subjects.json()).toContain('movies-value');
    expect(await (await get('/subjects/movies-value/versions')).json()).toEqual([1, 2]);
    expect(await (await get('/subjects/movies-value/versions/latest')).json()).toEqual({
      subject: 'movies-value',
      version: 2,
      id: 2,
      schema: movieV2,
    });
    expect(await (await get('/schemas/ids/1')).json()).toEqual({ schema: movieV1 });
    for (const [p, status, code] of [
      ['/subjects/nope/versions', 404, 40401],
      ['/subjects/movies-value/versions/7', 404, 40402],
      ['/subjects/movies-value/versions/x', 422, 42202],
      ['/schemas/ids/77', 404, 40403],
    ] as const) {
      const response = await get(p);
      expect(response.status, p).toBe(status);
      expect(((await response.json()) as { error_code: number }).error_code, p).toBe(code);
    }
    const post = (p: string, body: unknown, key = ingestKey, method = 'POST') =>
      fetch(`${baseUrl}${p}`, {
        method,
        headers: { authorization: `Bearer ${key}`, 'content-type': schemaRegistryContentType },
        body: JSON.stringify(body),
      });
    const invalid = await post('/subjects/x-value/versions', { schema: '{"type":"recrod"}' });
    expect(invalid.status).toBe(422);
    expect(((await invalid.json()) as { error_code: number }).error_code).toBe(42201);
    const badLevel = await post('/config/movies-value', { compatibility: 'SIDEWAYS' }, ingestKey, 'PUT');
    expect(((await badLevel.json()) as { error_code: number }).error_code).toBe(42203);
    const check = await post('/compatibility/subjects/movies-value/versions/latest?verbose=true', {
      schema: movieBreaking,
    });
    const verdict = (await check.json()) as { is_compatible: boolean; messages: string[] };
    expect(verdict.is_compatible).toBe(false);
    expect(verdict.messages.join(' ')).toMatch(/cannot read data written with version 2/);
    // Scopes: a read key cannot register; no key is 401; a wrong Basic password is 401.
    expect((await post('/subjects/x-value/versions', { schema: movieV1 }, readKey)).status).toBe(403);
    expect((await fetch(`${baseUrl}/subjects`)).status).toBe(401);
    const wrong = await fetch(`${baseUrl}/subjects`, {
      headers: { authorization: `Basic ${Buffer.from('u:trb_nope_nope').toString('base64')}` },
    });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { error_code: number }).error_code).toBe(401);
    // The API document lists the registry routes.
    const paths = handle.api.openapi().paths;
    expect(paths['/schema-registry/subjects/{subject}/versions']?.post).toMatchObject({
      'x-tributary-scope': 'ingest',
    });
  });

  it('gives the HTTP client the same errors as the embedded store, and config per subject', async () => {
    const http = new HttpSchemaRegistry({ url: baseUrl, credentials: `anyone:${adminKey}` });
    expect(registryErrorCodeOf(await rejection(http.versions('nope')))).toBe(40401);
    expect(registryErrorCodeOf(await rejection(http.version('movies-value', 9)))).toBe(40402);
    expect(registryErrorCodeOf(await rejection(http.schemaById(404)))).toBe(40403);
    expect(registryErrorCodeOf(await rejection(http.register('movies-value', movieBreaking)))).toBe(409);
    expect(await http.subjectCompatibility('movies-value')).toBe('BACKWARD');
    expect(await http.subjectCompatibility('unconfigured')).toBeNull();
    expect(await http.compatibility('unconfigured')).toBe('BACKWARD');
    await http.setCompatibility('FULL_TRANSITIVE', 'movies-value');
    expect(await http.compatibility('movies-value')).toBe('FULL_TRANSITIVE');
    expect(await http.deleteSubjectCompatibility('movies-value')).toBe('FULL_TRANSITIVE');
    await http.setCompatibility('NONE');
    expect(await http.compatibility()).toBe('NONE');
    await http.setCompatibility('BACKWARD');
    // Subject names travel URL-encoded (a slash, a space and non-ASCII survive).
    const odd = 'com.acme/Movie värde';
    expect((await http.register(odd, movieV1)).version).toBe(1);
    expect(await http.versions(odd)).toEqual([1]);
    expect(await http.subjects()).toContain(odd);
    await http.register('scratch-value', movieV1);
    expect(await http.deleteSubject('scratch-value')).toEqual([1]);
    expect(await http.deleteSubject('scratch-value', { permanent: true })).toEqual([1]);
    expect(await http.subjects({ deleted: true })).not.toContain('scratch-value');
  });

  it('is what openSchemaRegistry opens when SCHEMA_REGISTRY_URL points at it', async () => {
    const other = await mkdtemp(path.join(os.tmpdir(), 'tributary-sr-client-'));
    try {
      const config = loadConfig({
        env: { SCHEMA_REGISTRY_URL: baseUrl, TRIBUTARY_SCHEMA_REGISTRY_API_KEY: `user:${ingestKey}` },
        cwd: other,
        dotenv: false,
        overrides: { dataDir: other },
      });
      const registry = await openSchemaRegistry(config);
      expect(registry).toBeInstanceOf(CachedSchemaRegistry);
      expect((await registry.version('movies-value', 'latest')).id).toBe(2);
      const writer = await new AvroSerde(registry).writer('remote-value', movieV1);
      expect(writer.id).toBe(1);
      // Registered in the server's data dir, not in this one.
      const served = await fetch(`${baseUrl}/subjects`, { headers: { authorization: `Bearer ${readKey}` } });
      expect(await served.json()).toContain('remote-value');
      expect(existsSync(path.join(other, 'schemas'))).toBe(false);
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });

  it('keeps subjects and ids across a restart', async () => {
    await handle.stop('restart');
    handle = await startUp();
    baseUrl = `${handle.url}/schema-registry`;
    const client = new ConfluentClient({ host: baseUrl, auth: { username: 'x', password: readKey } });
    expect(await client.getLatestSchemaId('movies-value')).toBe(2);
    const http = new HttpSchemaRegistry({ url: baseUrl, credentials: ingestKey });
    expect((await http.register('other-value', movieV2)).id).toBe(2);
    expect((await http.register('new-value', movieBreaking)).id).toBe(3);
  });
});
