import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  AvroSerde,
  CachedSchemaRegistry,
  createMemoryLog,
  encodeConfluentWire,
  LocalSchemaRegistry,
  type Log,
  type LogRecord,
} from '../../src/log/index.js';
import { dlqHeaders, runJob, stream, topicSink, tumbling } from '../../src/stream/index.js';

interface View {
  user: string;
  movie: string;
  ts: number;
  minutes?: number;
}

const viewV1 = {
  type: 'record',
  name: 'View',
  namespace: 'viewing',
  fields: [
    { name: 'user', type: 'string' },
    { name: 'movie', type: 'string' },
    { name: 'ts', type: 'long' },
  ],
};
const viewV2 = { ...viewV1, fields: [...viewV1.fields, { name: 'minutes', type: 'int', default: 0 }] };
const countSchema = {
  type: 'record',
  name: 'MovieCount',
  namespace: 'viewing',
  fields: [
    { name: 'movie', type: 'string' },
    { name: 'window_start', type: 'long' },
    { name: 'views', type: 'int' },
    { name: 'minutes', type: 'int' },
  ],
};

const text = (b: Uint8Array | null | undefined) => (b ? Buffer.from(b).toString('utf8') : '');

async function readAll(log: Log, topic: string): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  const d = await log.describeTopic(topic);
  for (const p of d.partitions)
    out.push(...(await log.fetch(topic, p.partition, 0, { maxRecords: 100_000 })));
  return out;
}

let dataDir: string;
beforeEach(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'tributary-avro-'));
});
afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

function viewsJob(log: Log, registry: CachedSchemaRegistry, schema: object = countSchema) {
  return stream('views-per-movie')
    .from<View>(log, {
      topics: ['views'],
      decode: 'avro',
      schemaRegistry: registry,
      subject: 'views-value',
      timestamp: (v) => v.ts,
    })
    .keyBy((v) => v.movie)
    .window(tumbling({ sizeMs: 60_000 }))
    .aggregate({
      init: () => ({ views: 0, minutes: 0 }),
      add: (a, v) => ({ views: a.views + 1, minutes: a.minutes + (v.minutes ?? 0) }),
    })
    .map((w) => ({ movie: String(w.key), window_start: w.windowStart, ...w.value }))
    .to(topicSink('views.per_movie', { encode: 'avro', schemaRegistry: registry, schema }));
}

describe("stream jobs with decode: 'avro' and encode: 'avro'", () => {
  it('decodes Avro (resolving older versions), windows it, writes Avro, and dead-letters what does not decode', async () => {
    const registry = new CachedSchemaRegistry(await LocalSchemaRegistry.open(path.join(dataDir, 'schemas')));
    const serde = new AvroSerde(registry);
    const v1 = await serde.writer('views-value', viewV1);
    const v2 = await serde.writer('views-value', viewV2);
    const log = createMemoryLog();
    await log.createTopic('views', { partitions: 1 });
    const t0 = Date.UTC(2026, 11, 1);
    const good = [
      v1.encode({ user: 'a', movie: 'alien', ts: t0 }),
      v2.encode({ user: 'b', movie: 'alien', ts: t0 + 1000, minutes: 90 }),
      v2.encode({ user: 'c', movie: 'heat', ts: t0 + 2000, minutes: 30 }),
      v1.encode({ user: 'd', movie: 'heat', ts: t0 + 61_000 }),
    ];
    const values: (Uint8Array | string | null)[] = [...good];
    values.splice(1, 0, '{"user":"json"}'); // not framed
    values.splice(3, 0, encodeConfluentWire(4242, Buffer.from([2, 0]))); // unknown schema id
    values.splice(5, 0, encodeConfluentWire(v1.id, Buffer.from([8, 0x61]))); // truncated body
    await log.append(values.map((value) => ({ topic: 'views', value })));

    const status = await runJob(viewsJob(log, registry), { dataDir, once: true });
    const c = status.counters;
    expect(c.in).toBe(7);
    expect(c.dlq).toBe(3);
    expect(c.accepted).toBe(4);

    const dlq = await readAll(log, 'views.dlq');
    expect(dlq.map((r) => text(r.headers[dlqHeaders.code]))).toEqual([
      'DECODE_FAILED',
      'DECODE_FAILED',
      'DECODE_FAILED',
    ]);
    const reasons = dlq.map((r) => text(r.headers[dlqHeaders.message]));
    expect(reasons[0]).toMatch(/not the Confluent magic byte/);
    expect(reasons[1]).toMatch(
      /schema id 4242, which the schema registry cannot give: schema id 4242 not found/,
    );
    expect(reasons[2]).toMatch(/does not decode with schema id 1: truncated buffer/);
    expect(text(dlq[0].value)).toBe('{"user":"json"}');

    // The output topic is Avro under views.per_movie-value, readable by any Confluent client.
    const out = await readAll(log, 'views.per_movie');
    const decoded = await Promise.all(
      out.map(async (r) => JSON.parse(JSON.stringify(await serde.decodeAsync(r.value!)))),
    );
    expect(decoded.sort((a, b) => a.movie.localeCompare(b.movie) || a.window_start - b.window_start)).toEqual(
      [
        { movie: 'alien', window_start: t0, views: 2, minutes: 90 },
        { movie: 'heat', window_start: t0, views: 1, minutes: 30 },
        { movie: 'heat', window_start: t0 + 60_000, views: 1, minutes: 0 },
      ],
    );
    expect((await registry.version('views.per_movie-value', 'latest')).schema).toBe(
      JSON.stringify(countSchema),
    );
  });

  it('refuses to start when the sink schema is not compatible with the registered one', async () => {
    const registry = new CachedSchemaRegistry(await LocalSchemaRegistry.open(path.join(dataDir, 'schemas')));
    await registry.register('views.per_movie-value', JSON.stringify(countSchema));
    await new AvroSerde(registry).writer('views-value', viewV1);
    const log = createMemoryLog();
    await log.ensureTopic('views', { partitions: 1 });
    const breaking = { ...countSchema, fields: [...countSchema.fields, { name: 'rank', type: 'int' }] };
    await expect(runJob(viewsJob(log, registry, breaking), { dataDir, once: true })).rejects.toThrow(
      /incompatible with an earlier schema for subject "views.per_movie-value".*rank/,
    );
  });

  it('sends an output that does not fit the sink schema to the DLQ, naming the field', async () => {
    const registry = new CachedSchemaRegistry(await LocalSchemaRegistry.open(path.join(dataDir, 'schemas')));
    const v1 = await new AvroSerde(registry).writer('views-value', viewV1);
    const log = createMemoryLog();
    await log.createTopic('views', { partitions: 1 });
    await log.append([{ topic: 'views', value: v1.encode({ user: 'a', movie: 'alien', ts: 5 }) }]);
    const job = stream('copy-views')
      .from<View>(log, { topics: ['views'], decode: 'avro', schemaRegistry: registry })
      .map((v) => ({ ...v, ts: 'yesterday' }))
      .to(topicSink('views.copy', { encode: 'avro', schemaRegistry: registry, schema: viewV1 }));
    const status = await runJob(job, { dataDir, once: true });
    expect(status.counters.dlq).toBe(1);
    const [dead] = await readAll(log, 'views.dlq');
    expect(text(dead.headers[dlqHeaders.message])).toMatch(/views.copy-value \(id 1\): ts = "yesterday"/);
  });

  it('needs a registry for Avro', () => {
    const log = createMemoryLog();
    expect(() => stream('x').from(log, { topics: ['t'], decode: 'avro' })).toThrow(/needs schemaRegistry/);
    expect(() => topicSink('t', { encode: 'avro' })).toThrow(/needs schemaRegistry/);
  });
});
