/**
 * Avro and schema registry benchmarks (issue 12, part 4):
 * - stream.avro_decode: a tumbling 1-minute count+sum over 1,000 keys reading Confluent-framed Avro
 *   values from the embedded log, against the same job reading the same events as JSON (same run).
 * - sr.lookup: schema-by-id lookups through the client cache, against uncached lookups over HTTP
 *   to `/schema-registry` of a real server in the same run (a plain Map get is reported too).
 */
import path from 'node:path';
import {
  AvroSerde,
  CachedSchemaRegistry,
  HttpSchemaRegistry,
  LocalSchemaRegistry,
  openEmbeddedLog,
  type Log,
} from '../src/log/index.js';
import { createApp, KeyStore, startServer } from '../src/serve/index.js';
import { callbackSink, runJob, stream, tumbling } from '../src/stream/index.js';
import type { Benchmark, BenchContext, BenchResult } from './types.js';

interface Sale {
  key: number;
  ts: number;
  amount: number;
}

const saleSchema = {
  type: 'record',
  name: 'Sale',
  namespace: 'bench',
  fields: [
    { name: 'key', type: 'int' },
    { name: 'ts', type: 'long' },
    { name: 'amount', type: 'int' },
  ],
};

/** Event `i`: 20,000 events per second of event time over 1,000 keys (as in bench/stream.ts). */
function eventAt(i: number): Sale {
  let h = Math.imul(i ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  h = (h ^ (h >>> 16)) & 0x7fffffff;
  return { key: h % 1000, ts: Date.UTC(2026, 10, 22) + Math.floor(i / 20) - (h & 7), amount: h & 1023 };
}

async function runWindowJob(
  log: Log,
  topic: string,
  decode: { decode: 'json' } | { decode: 'avro'; schemaRegistry: CachedSchemaRegistry },
  dataDir: string,
  round: number,
): Promise<{ seconds: number; in: number; outputs: number }> {
  let outputs = 0;
  // A name per round: the job's consumer group (its committed offsets live in the log) starts fresh.
  const job = stream(`bench-${topic.replace('.', '-')}-${round}`, { checkpointIntervalMs: 10_000 })
    .from<Sale>(log, { topics: [topic], ...decode, timestamp: (s) => s.ts, outOfOrdernessMs: 1000 })
    .keyBy((s) => s.key)
    .window(tumbling({ sizeMs: 60_000 }))
    .aggregate({
      init: () => ({ count: 0, sum: 0 }),
      add: (acc, s) => {
        acc.count++;
        acc.sum += s.amount;
        return acc;
      },
    })
    .to(callbackSink(() => void outputs++));
  const t0 = performance.now();
  const status = await runJob(job, { dataDir, once: true, pollMaxRecords: 10_000 });
  return { seconds: (performance.now() - t0) / 1000, in: status.counters.in, outputs };
}

const avroDecodeBench: Benchmark = {
  name: 'stream.avro_decode',
  description:
    'tumbling 1-min count+sum over 1,000 keys reading Confluent-framed Avro from the embedded log vs the same events as JSON (events/s)',
  async run(context: BenchContext): Promise<BenchResult> {
    const n = 1_000_000;
    const registry = new CachedSchemaRegistry(
      await LocalSchemaRegistry.open(path.join(context.dir, 'schemas')),
    );
    const writer = await new AvroSerde(registry).writer('sales.avro-value', saleSchema);
    const log = await openEmbeddedLog({ dir: path.join(context.dir, 'log'), fsync: 'never' });
    try {
      await log.createTopic('sales.avro', { partitions: 1 });
      await log.createTopic('sales.json', { partitions: 1 });
      let avroBytes = 0;
      let jsonBytes = 0;
      for (let i = 0; i < n; i += 50_000) {
        const avro = [];
        const json = [];
        for (let j = i; j < i + 50_000; j++) {
          const e = eventAt(j);
          const a = writer.encode(e);
          const t = `{"key":${e.key},"ts":${e.ts},"amount":${e.amount}}`;
          avroBytes += a.length;
          jsonBytes += t.length;
          avro.push({ topic: 'sales.avro', value: a });
          json.push({ topic: 'sales.json', value: t });
        }
        await log.append(avro);
        await log.append(json);
      }
      await log.flush();
      context.progress(
        `appended ${n} events as Avro (${(avroBytes / n).toFixed(1)} B) and JSON (${(jsonBytes / n).toFixed(1)} B)`,
      );
      // Alternating runs, best of each: both see the same warm-up and page cache.
      let avroBest = 0;
      let jsonBest = 0;
      for (let round = 0; round < 2; round++) {
        const a = await runWindowJob(
          log,
          'sales.avro',
          { decode: 'avro', schemaRegistry: registry },
          path.join(context.dir, `data-a${round}`),
          round,
        );
        const j = await runWindowJob(
          log,
          'sales.json',
          { decode: 'json' },
          path.join(context.dir, `data-j${round}`),
          round,
        );
        if (a.in !== n || j.in !== n || a.outputs !== j.outputs)
          throw new Error(`avro read ${a.in}/${a.outputs}, json ${j.in}/${j.outputs} of ${n}`);
        avroBest = Math.max(avroBest, n / a.seconds);
        jsonBest = Math.max(jsonBest, n / j.seconds);
      }
      return {
        value: avroBest,
        unit: 'events/s',
        baseline: jsonBest,
        baseline_name: 'same job, JSON decode, same events',
        ratio: avroBest / jsonBest,
        goal: 'ratio >= 0.8',
        avro_bytes_per_event: avroBytes / n,
        json_bytes_per_event: jsonBytes / n,
      };
    } finally {
      await log.close();
    }
  },
};

const lookupBench: Benchmark = {
  name: 'sr.lookup',
  description:
    'schema-by-id lookups through the client cache vs uncached GET /schema-registry/schemas/ids/{id} (lookups/s)',
  async run(context: BenchContext): Promise<BenchResult> {
    const store = await LocalSchemaRegistry.open(path.join(context.dir, 'schemas'));
    const ids: number[] = [];
    for (let i = 0; i < 16; i++) {
      const schema = { ...saleSchema, name: `Sale${i}` };
      ids.push((await store.register(`s${i}-value`, JSON.stringify(schema))).id);
    }
    const keys = KeyStore.open(path.join(context.dir, 'keys.json'));
    const { key } = await keys.create({ scopes: ['read'], name: 'bench' });
    const api = createApp({
      keys,
      ui: false,
      statusTickMs: 0,
      schemaRegistry: store,
      rateLimit: { ratePerSecond: 1e9, burst: 1e9 },
    });
    const server = await startServer(api.app, { host: '127.0.0.1', port: 0 });
    try {
      const url = `${server.url}/schema-registry`;
      const http = new HttpSchemaRegistry({ url, credentials: key });
      const cached = new CachedSchemaRegistry(http);
      for (const id of ids) await cached.schemaById(id);

      const uncachedN = 2_000;
      let t = performance.now();
      for (let i = 0; i < uncachedN; i++) await http.schemaById(ids[i & 15]);
      const uncached = uncachedN / ((performance.now() - t) / 1000);

      const cachedN = 2_000_000;
      let length = 0;
      let best = 0;
      for (let round = 0; round < 3; round++) {
        t = performance.now();
        for (let i = 0; i < cachedN; i++) length += (await cached.schemaById(ids[i & 15])).length;
        best = Math.max(best, cachedN / ((performance.now() - t) / 1000));
      }

      const map = new Map(ids.map((id) => [id, 'x']));
      t = performance.now();
      for (let i = 0; i < cachedN * 10; i++) length += map.get(ids[i & 15])!.length;
      const mapGet = (cachedN * 10) / ((performance.now() - t) / 1000);
      context.progress(`checksum ${length}`);
      return {
        value: best,
        unit: 'lookups/s',
        baseline: uncached,
        baseline_name: 'uncached HTTP lookup, same server',
        ratio: best / uncached,
        goal: '>= 1,000,000 lookups/s',
        map_get_per_s: mapGet,
      };
    } finally {
      await api.close();
      await server.close(1000);
    }
  },
};

export const schemaBenchmarks: Benchmark[] = [avroDecodeBench, lookupBench];
