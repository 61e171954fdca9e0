import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import avro from 'avsc';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { TributaryError } from '../../core/index.js';
import { CachedSchemaRegistry } from './cached.js';
import { movieBreaking as movieNoDefault, movieV1, movieV2 } from './testing/movies.js';
import { AvroSerde, avroValueToJson, registerTopicSchemas } from './serde.js';
import { encodeSchemaRegistryFile, LocalSchemaRegistry } from './store.js';
import { registryErrorCodeOf, type SchemaRegistry } from './types.js';
import { confluentBody, confluentSchemaId, encodeConfluentWire, isConfluentWire } from './wire.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-schemas-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => path.join(root, `r${++dirs}`);

async function rejection(promise: Promise<unknown>): Promise<TributaryError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(TributaryError);
    return error as TributaryError;
  }
  throw new Error('expected a rejection');
}

describe('Confluent wire format', () => {
  it('frames a body as magic byte 0, a 4-byte big-endian id, then the body', () => {
    const framed = encodeConfluentWire(0x01020304, Buffer.from([0xaa, 0xbb]));
    expect(framed.toString('hex')).toBe('0001020304aabb');
    expect(confluentSchemaId(framed)).toBe(0x01020304);
    expect(confluentSchemaId(encodeConfluentWire(0xfffffffe, Buffer.alloc(0)))).toBe(0xfffffffe);
    expect(isConfluentWire(framed)).toBe(true);
    expect(isConfluentWire(Buffer.from('{"a":1}'))).toBe(false);
  });

  it('round-trips any id and body (property, fixed seed)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.uint8Array({ maxLength: 64 }), (id, body) => {
        const framed = encodeConfluentWire(id, body);
        expect(framed.length).toBe(5 + body.length);
        expect(confluentSchemaId(framed)).toBe(id);
        expect([...confluentBody(framed)]).toEqual([...body]);
      }),
      { seed: 12, numRuns: 300 },
    );
  });

  it('refuses unframed bytes with the reason', () => {
    expect(() => confluentSchemaId(Buffer.from([0, 0, 1]))).toThrow(/fewer than the 5-byte Confluent header/);
    expect(() => confluentSchemaId(Buffer.from('{"a":1}'))).toThrow(/0x7b, not the Confluent magic byte/);
  });

  it('matches what avsc + the Confluent client layout produce', () => {
    const type = avro.Type.forSchema(JSON.parse(movieV1));
    const framed = encodeConfluentWire(7, type.toBuffer({ id: 1, title: 'Alien' }));
    // id 1 → zigzag varint 02; "Alien" → length 5 zigzag 0a then the bytes.
    expect(framed.toString('hex')).toBe(`0000000007020a${Buffer.from('Alien').toString('hex')}`);
  });
});

describe('LocalSchemaRegistry', () => {
  it('registers, returns the same id for the same schema, and versions a compatible change', async () => {
    const registry = await LocalSchemaRegistry.open(freshDir());
    const first = await registry.register('movies-value', movieV1);
    expect(first).toMatchObject({ subject: 'movies-value', version: 1, id: 1 });
    // Same schema with other whitespace: same version and id.
    const again = await registry.register('movies-value', JSON.stringify(JSON.parse(movieV1), null, 2));
    expect(again).toMatchObject({ version: 1, id: 1 });
    const second = await registry.register('movies-value', movieV2);
    expect(second).toMatchObject({ version: 2, id: 2 });
    // The same schema under another subject keeps its global id.
    expect(await registry.register('archive-value', movieV1)).toMatchObject({ version: 1, id: 1 });
    expect(await registry.subjects()).toEqual(['archive-value', 'movies-value']);
    expect(await registry.versions('movies-value')).toEqual([1, 2]);
    expect((await registry.version('movies-value', 'latest')).id).toBe(2);
    expect(await registry.schemaById(1)).toBe(movieV1);
    expect((await registry.lookup('movies-value', movieV2)).version).toBe(2);
    // A default is part of the schema: adding one is a new version, not the same schema.
    const withDefault = JSON.parse(movieV1) as { fields: Record<string, unknown>[] };
    withDefault.fields[1] = { ...withDefault.fields[1], default: 'untitled' };
    expect(await registry.register('archive-value', JSON.stringify(withDefault))).toMatchObject({
      version: 2,
      id: 3,
    });
  });

  it('refuses a change the level forbids with the registry code and reason', async () => {
    const registry = await LocalSchemaRegistry.open(freshDir());
    await registry.register('movies-value', movieV1);
    const refused = await rejection(registry.register('movies-value', movieNoDefault));
    expect(registryErrorCodeOf(refused)).toBe(409);
    expect(refused.message).toMatch(/incompatible with an earlier schema for subject "movies-value"/);
    expect(refused.message).toMatch(/rating/);
    expect(await registry.testCompatibility('movies-value', movieNoDefault)).toMatchObject({
      compatible: false,
    });
    // FORWARD: v1 reads data written with the new schema (it ignores `rating`).
    await registry.setCompatibility('FORWARD', 'movies-value');
    expect(await registry.testCompatibility('movies-value', movieNoDefault)).toEqual({
      compatible: true,
      messages: [],
    });
    await registry.setCompatibility('NONE', 'movies-value');
    expect((await registry.register('movies-value', movieNoDefault)).version).toBe(2);
  });

  it('checks transitive levels against every live version', async () => {
    const registry = await LocalSchemaRegistry.open(freshDir());
    await registry.setCompatibility('NONE');
    const a = JSON.stringify({ type: 'record', name: 'R', fields: [{ name: 'a', type: 'int' }] });
    const b = JSON.stringify({ type: 'record', name: 'R', fields: [{ name: 'b', type: 'int', default: 1 }] });
    const c = JSON.stringify({
      type: 'record',
      name: 'R',
      fields: [
        { name: 'b', type: 'int', default: 1 },
        { name: 'a', type: 'int' },
      ],
    });
    await registry.register('s', a);
    await registry.register('s', b);
    await registry.setCompatibility('BACKWARD', 's');
    // c reads b (a absent? c's `a` has no default, b has no `a`) → not compatible with the latest.
    expect((await registry.testCompatibility('s', c)).compatible).toBe(false);
    const d = JSON.stringify({
      type: 'record',
      name: 'R',
      fields: [
        { name: 'b', type: 'int', default: 1 },
        { name: 'c', type: 'int', default: 2 },
      ],
    });
    expect((await registry.testCompatibility('s', d)).compatible).toBe(true);
    await registry.setCompatibility('BACKWARD_TRANSITIVE', 's');
    // d reads b, and a too (b, c take defaults; a is ignored).
    expect((await registry.testCompatibility('s', d)).compatible).toBe(true);
    const e = JSON.stringify({ type: 'record', name: 'R', fields: [{ name: 'b', type: 'int' }] });
    expect(await registry.testCompatibility('s', e, 'latest')).toMatchObject({ compatible: false });
    expect((await registry.testCompatibility('s', e, 2)).compatible).toBe(true);
  });

  it('answers the registry codes for missing subjects, versions, ids and bad input', async () => {
    const registry = await LocalSchemaRegistry.open(freshDir());
    await registry.register('s', movieV1);
    expect(registryErrorCodeOf(await rejection(registry.versions('nope')))).toBe(40401);
    expect(registryErrorCodeOf(await rejection(registry.version('s', 9)))).toBe(40402);
    expect(registryErrorCodeOf(await rejection(registry.version('s', 0)))).toBe(42202);
    expect(registryErrorCodeOf(await rejection(registry.schemaById(99)))).toBe(40403);
    expect(registryErrorCodeOf(await rejection(registry.lookup('s', movieV2)))).toBe(40403);
    expect(registryErrorCodeOf(await rejection(registry.register('s', '{"type":"nope"}')))).toBe(42201);
    expect(registryErrorCodeOf(await rejection(registry.register('s', 'not json')))).toBe(42201);
    expect(registryErrorCodeOf(await rejection(registry.setCompatibility('SIDEWAYS' as never, 's')))).toBe(
      42203,
    );
    expect(registryErrorCodeOf(await rejection(registry.deleteSubjectCompatibility('s')))).toBe(40408);
  });

  it('soft- and hard-deletes subjects and versions; ids stay readable', async () => {
    const registry = await LocalSchemaRegistry.open(freshDir());
    await registry.register('s', movieV1);
    await registry.register('s', movieV2);
    expect(registryErrorCodeOf(await rejection(registry.deleteVersion('s', 1, { permanent: true })))).toBe(
      40407,
    );
    expect(await registry.deleteVersion('s', 1)).toBe(1);
    expect(await registry.versions('s')).toEqual([2]);
    expect(registryErrorCodeOf(await rejection(registry.deleteSubject('s', { permanent: true })))).toBe(
      40405,
    );
    expect(await registry.deleteSubject('s')).toEqual([2]);
    expect(await registry.subjects()).toEqual([]);
    expect(await registry.subjects({ deleted: true })).toEqual(['s']);
    expect(registryErrorCodeOf(await rejection(registry.deleteSubject('s')))).toBe(40404);
    expect(await registry.deleteSubject('s', { permanent: true })).toEqual([1, 2]);
    expect(await registry.schemaById(1)).toBe(movieV1);
    // Re-registering starts the subject again; the schema keeps its id.
    expect(await registry.register('s', movieV2)).toMatchObject({ version: 1, id: 2 });
  });

  it('survives a restart with stable ids, and another instance sees changes without a restart', async () => {
    const dir = freshDir();
    const one = await LocalSchemaRegistry.open(dir);
    await one.register('a', movieV1);
    await one.setCompatibility('FULL', 'a');
    const two = await LocalSchemaRegistry.open(dir);
    expect(await two.version('a', 1)).toMatchObject({ id: 1, schema: movieV1 });
    expect(await two.subjectCompatibility('a')).toBe('FULL');
    await two.register('b', movieV2);
    // `one` re-reads the changed file on its next read.
    expect(await one.schemaById(2)).toBe(movieV2);
    expect((await one.register('c', movieNoDefault)).id).toBe(3);
    const three = await LocalSchemaRegistry.open(dir);
    expect(await three.subjects()).toEqual(['a', 'b', 'c']);
    expect(fs.existsSync(path.join(dir, 'LOCK'))).toBe(false);
  });

  it('serializes concurrent registrations from several instances (no lost update)', async () => {
    const dir = freshDir();
    const instances = await Promise.all([1, 2, 3].map(() => LocalSchemaRegistry.open(dir)));
    await Promise.all(
      instances.flatMap((registry, i) =>
        [0, 1, 2].map((j) =>
          registry.register(
            `s${i}-${j}`,
            JSON.stringify({ type: 'record', name: `R${i}x${j}`, fields: [{ name: 'a', type: 'int' }] }),
          ),
        ),
      ),
    );
    const fresh = await LocalSchemaRegistry.open(dir);
    expect((await fresh.subjects()).length).toBe(9);
    const ids = await Promise.all((await fresh.subjects()).map(async (s) => (await fresh.version(s, 1)).id));
    expect(new Set(ids).size).toBe(9);
  });

  it('takes over the lock of a dead process', async () => {
    const dir = freshDir();
    fs.mkdirSync(dir, { recursive: true });
    // A pid far above pid_max: no such process.
    fs.writeFileSync(path.join(dir, 'LOCK'), '99999999\n');
    const registry = await LocalSchemaRegistry.open(dir);
    expect((await registry.register('s', movieV1)).id).toBe(1);
  });

  it('writes the documented file, byte for byte', async () => {
    const dir = freshDir();
    const registry = await LocalSchemaRegistry.open(dir);
    await registry.register('m', movieV1);
    await registry.setCompatibility('FULL', 'm');
    await registry.register('m', movieV2);
    await registry.deleteVersion('m', 1);
    const text = fs.readFileSync(path.join(dir, 'registry.json'), 'utf8');
    expect(text).toBe(
      [
        '{',
        ' "format": "tributary-schema-registry 1",',
        ' "nextId": 3,',
        ' "compatibility": "BACKWARD",',
        ' "schemas": [',
        '  {',
        '   "id": 1,',
        `   "schema": ${JSON.stringify(movieV1)}`,
        '  },',
        '  {',
        '   "id": 2,',
        `   "schema": ${JSON.stringify(movieV2)}`,
        '  }',
        ' ],',
        ' "subjects": [',
        '  {',
        '   "name": "m",',
        '   "compatibility": "FULL",',
        '   "versions": [',
        '    {',
        '     "version": 1,',
        '     "id": 1,',
        '     "deleted": true',
        '    },',
        '    {',
        '     "version": 2,',
        '     "id": 2',
        '    }',
        '   ]',
        '  }',
        ' ]',
        '}',
        '',
      ].join('\n'),
    );
    expect(
      encodeSchemaRegistryFile({
        format: 'tributary-schema-registry 1',
        nextId: 1,
        compatibility: 'NONE',
        schemas: [],
        subjects: [],
      }),
    ).toBe(
      '{\n "format": "tributary-schema-registry 1",\n "nextId": 1,\n "compatibility": "NONE",\n "schemas": [],\n "subjects": []\n}\n',
    );
  });

  it('refuses a file of a newer format and a file naming a missing schema', async () => {
    const newer = freshDir();
    fs.mkdirSync(newer, { recursive: true });
    fs.writeFileSync(
      path.join(newer, 'registry.json'),
      JSON.stringify({ format: 'tributary-schema-registry 2' }),
    );
    await expect(LocalSchemaRegistry.open(newer)).rejects.toMatchObject({ code: 'FORMAT_VERSION' });
    const broken = freshDir();
    fs.mkdirSync(broken, { recursive: true });
    fs.writeFileSync(
      path.join(broken, 'registry.json'),
      JSON.stringify({
        format: 'tributary-schema-registry 1',
        nextId: 2,
        compatibility: 'BACKWARD',
        schemas: [],
        subjects: [{ name: 's', versions: [{ version: 1, id: 1 }] }],
      }),
    );
    await expect(LocalSchemaRegistry.open(broken)).rejects.toMatchObject({ code: 'CORRUPT_DATA' });
  });
});

/** Counts the requests that reach the wrapped registry. */
function counting(inner: SchemaRegistry): { registry: SchemaRegistry; calls: Record<string, number> } {
  const calls: Record<string, number> = {};
  const registry = new Proxy(inner, {
    get(target, name: string) {
      const member = Reflect.get(target, name) as unknown;
      if (typeof member !== 'function') return member;
      return (...args: unknown[]) => {
        calls[name] = (calls[name] ?? 0) + 1;
        return (member as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { registry, calls };
}

describe('CachedSchemaRegistry and AvroSerde', () => {
  it('asks the registry once per id, and shares concurrent misses', async () => {
    const { registry: inner, calls } = counting(await LocalSchemaRegistry.open(freshDir()));
    const cached = new CachedSchemaRegistry(inner);
    await inner.register('m', movieV1);
    const texts = await Promise.all([1, 1, 1].map((id) => cached.schemaById(id)));
    expect(texts).toEqual([movieV1, movieV1, movieV1]);
    await cached.schemaById(1);
    expect(calls.schemaById).toBe(1);
    await cached.register('m', movieV1);
    await cached.register('m', movieV1);
    expect(calls.register).toBe(2); // one by the test on `inner`, one through the cache
    await cached.version('m', 1);
    await cached.version('m', 1);
    expect(calls.version ?? 0).toBe(0);
  });

  it('encodes and decodes, resolves into a subject reader, and names what does not fit', async () => {
    const registry = new CachedSchemaRegistry(await LocalSchemaRegistry.open(freshDir()));
    const serde = new AvroSerde(registry);
    const v1 = await serde.writer('movies-value', movieV1);
    const bytes = v1.encode({ id: 7, title: 'Alien' });
    expect(confluentSchemaId(bytes)).toBe(v1.id);
    expect(JSON.parse(avroValueToJson(await serde.decodeAsync(bytes)))).toEqual({ id: 7, title: 'Alien' });
    expect(() => v1.encode({ id: 'seven', title: 'Alien' })).toThrow(/movies-value \(id 1\): id = "seven"/);

    await serde.writer('movies-value', JSON.parse(movieV2) as object);
    const reader = serde.reader({ subject: 'movies-value' });
    await reader.prepare([bytes]);
    expect(JSON.parse(avroValueToJson(reader.decode(bytes)))).toEqual({ id: 7, title: 'Alien', genres: [] });

    // A schema the reader cannot resolve: its `id` is a string.
    await registry.setCompatibility('NONE', 'other');
    const other = await serde.writer(
      'other',
      JSON.stringify({
        type: 'record',
        name: 'Movie',
        namespace: 'movies',
        fields: [{ name: 'id', type: 'string' }],
      }),
    );
    const foreign = other.encode({ id: 'x' });
    await reader.prepare([foreign]);
    expect(() => reader.decode(foreign)).toThrow(
      /written with schema id 3, which movies-value version 2 \(id 2\) cannot read/,
    );

    // Unknown ids and garbage bodies fail with the reason.
    const unknown = encodeConfluentWire(999, Buffer.from([2]));
    await serde.prepare([unknown]);
    expect(() => serde.decode(unknown)).toThrow(
      /schema id 999, which the schema registry cannot give: schema id 999 not found/,
    );
    const truncated = encodeConfluentWire(v1.id, Buffer.from([2]));
    expect(() => serde.decode(truncated)).toThrow(/does not decode with schema id 1: truncated buffer/);
  });

  it('registers <topic>-value subjects at start with a pinned level, refusing a breaking change', async () => {
    const registry = new CachedSchemaRegistry(await LocalSchemaRegistry.open(freshDir()));
    await registry.setCompatibility('NONE');
    const writers = await registerTopicSchemas(registry, { movies: movieV1 }, { compatibility: 'BACKWARD' });
    expect(writers.movies).toMatchObject({ subject: 'movies-value', id: 1, version: 1 });
    expect(await registry.subjectCompatibility('movies-value')).toBe('BACKWARD');
    // A restart with the same schema: the same writer.
    expect((await registerTopicSchemas(registry, { movies: movieV1 })).movies.id).toBe(1);
    const refused = await rejection(
      registerTopicSchemas(registry, { movies: movieNoDefault }, { compatibility: 'BACKWARD' }),
    );
    expect(registryErrorCodeOf(refused)).toBe(409);
    expect(refused.message).toMatch(
      /subject "movies-value": BACKWARD: the new schema cannot read data written with version 1/,
    );
  });
});
