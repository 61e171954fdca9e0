import { once } from 'node:events';
import { readdir, readFile, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { limits, ManualClock, metricsRegistry } from '../../src/core/index.js';
import { createMemoryLog } from '../../src/log/index.js';
import {
  BatchDag,
  datasetOf,
  decodeLineageLine,
  encodeLineageEvent,
  FileLineageTransport,
  LineageEmitter,
  LineageGraphBuilder,
  LineageGraphReader,
  lineageDir,
  lineageFor,
  runEvent,
  runJob,
  startJob,
  stream,
  topicSink,
  uuidOf,
  type LineageRunEvent,
  type LineageTransport,
} from '../../src/stream/index.js';

let dataDir: string;
beforeEach(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'tributary-lineage-'));
});
afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

async function readEvents(dir: string): Promise<LineageRunEvent[]> {
  const out: LineageRunEvent[] = [];
  for (const name of (await readdir(lineageDir(dir))).sort()) {
    for (const line of (await readFile(path.join(lineageDir(dir), name), 'utf8')).split('\n')) {
      const event = decodeLineageLine(line);
      if (event !== null) out.push(event);
    }
  }
  return out;
}

async function counterValue(name: string, labels: Record<string, string>): Promise<number> {
  const metric = await metricsRegistry.getSingleMetric(name)?.get();
  const hit = metric?.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val));
  return hit?.value ?? 0;
}

describe('lineage events', () => {
  it('names datasets as documented: topics, lake tables, external sources', () => {
    expect(datasetOf('gold.kpi_summary')).toEqual({
      namespace: 'tributary://lake',
      name: 'gold.kpi_summary',
    });
    expect(datasetOf('lake:bronze.documents_raw')).toEqual({
      namespace: 'tributary://lake',
      name: 'bronze.documents_raw',
    });
    expect(datasetOf('topic:chunks.processed')).toEqual({
      namespace: 'tributary://topic',
      name: 'chunks.processed',
    });
    expect(datasetOf('ventes-temps-reel')).toEqual({
      namespace: 'tributary://topic',
      name: 'ventes-temps-reel',
    });
    expect(datasetOf('postgres://db.example:5432/northwind.public.orders')).toEqual({
      namespace: 'postgres://db.example:5432',
      name: 'northwind.public.orders',
    });
    expect(datasetOf('tributary://topic/x')).toEqual({ namespace: 'tributary://topic', name: 'x' });
  });

  it('encodes a run event byte for byte (one JSON line)', () => {
    const event = runEvent({
      eventType: 'FAIL',
      eventTimeMs: Date.UTC(2026, 11, 3, 9, 0, 0),
      runId: uuidOf('gold.daily-1-1'),
      job: 'gold.daily',
      processingType: 'BATCH',
      inputs: [datasetOf('bronze.x')],
      outputs: [datasetOf('gold.daily')],
      details: { partition: '2026-12-02' },
      error: 'boom',
    });
    expect(uuidOf('gold.daily-1-1')).toMatch(uuidPattern);
    expect(uuidOf('gold.daily-1-1')).toBe(uuidOf('gold.daily-1-1'));
    expect(encodeLineageEvent(event)).toBe(
      '{"eventType":"FAIL","eventTime":"2026-12-03T09:00:00.000Z",' +
        `"run":{"runId":"${uuidOf('gold.daily-1-1')}","facets":{` +
        '"tributary":{"_producer":"urn:tributary:0.1.0","_schemaURL":"urn:tributary:facet:TributaryRunFacet:1","partition":"2026-12-02"},' +
        '"errorMessage":{"_producer":"urn:tributary:0.1.0","_schemaURL":"https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet","message":"boom","programmingLanguage":"TypeScript"}}},' +
        '"job":{"namespace":"tributary","name":"gold.daily","facets":{"jobType":{"_producer":"urn:tributary:0.1.0","_schemaURL":"https://openlineage.io/spec/facets/2-0-3/JobTypeJobFacet.json#/$defs/JobTypeJobFacet","processingType":"BATCH","integration":"TRIBUTARY","jobType":"JOB"}}},' +
        '"inputs":[{"namespace":"tributary://lake","name":"bronze.x"}],' +
        '"outputs":[{"namespace":"tributary://lake","name":"gold.daily"}],' +
        '"producer":"urn:tributary:0.1.0",' +
        '"schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"}\n',
    );
    expect(decodeLineageLine(encodeLineageEvent(event).slice(0, 40))).toBeNull();
  });
});

describe('batch runs', () => {
  it('report START and COMPLETE, or START and FAIL, with datasets and schema facets', async () => {
    const clock = new ManualClock(Date.UTC(2026, 11, 3));
    const lineage = new LineageEmitter({
      dataDir,
      clock,
      schemas: (d) =>
        Promise.resolve(d.name === 'bronze.orders' ? [{ name: 'order_id', type: 'BIGINT' }] : null),
    });
    const dag = new BatchDag(
      [
        {
          name: 'silver.orders',
          inputs: ['bronze.orders'],
          outputs: ['silver.orders'],
          run: () => Promise.resolve({ rowsIn: 10, rowsOut: 9 }),
        },
        {
          name: 'gold.broken',
          inputs: ['silver.orders'],
          outputs: ['gold.broken'],
          retries: 0,
          run: () => Promise.reject(new Error('disk on fire')),
        },
      ],
      { clock, lineage },
    );
    const records = await dag.runAll({ partition: '2026-12-02' });
    await lineage.flush();
    const events = await readEvents(dataDir);
    expect(events.map((e) => [e.job.name, e.eventType])).toEqual([
      ['silver.orders', 'START'],
      ['silver.orders', 'COMPLETE'],
      ['gold.broken', 'START'],
      ['gold.broken', 'FAIL'],
    ]);
    for (const e of events) {
      expect(e.run.runId).toMatch(uuidPattern);
      expect(e.schemaURL).toBe('https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent');
      expect(e.producer).toBe('urn:tributary:0.1.0');
      expect(e.eventTime).toBe('2026-12-03T00:00:00.000Z');
    }
    expect(events[0].run.runId).toBe(events[1].run.runId);
    expect(events[0].run.runId).toBe(uuidOf(records[0].runId));
    expect(events[1].inputs).toEqual([
      {
        namespace: 'tributary://lake',
        name: 'bronze.orders',
        facets: {
          schema: {
            _producer: 'urn:tributary:0.1.0',
            _schemaURL:
              'https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet',
            fields: [{ name: 'order_id', type: 'BIGINT' }],
          },
        },
      },
    ]);
    expect(events[1].run.facets?.tributary).toMatchObject({
      rowsIn: 10,
      rowsOut: 9,
      partition: '2026-12-02',
    });
    expect(events[3].run.facets?.errorMessage).toMatchObject({ message: 'disk on fire' });
  });
});

describe('stream jobs', () => {
  it('report START and COMPLETE with topic datasets and the fields of the topics’ records', async () => {
    const log = createMemoryLog();
    await log.createTopic('orders', { partitions: 2 });
    await log.append(
      Array.from({ length: 20 }, (_, i) => ({
        topic: 'orders',
        key: String(i),
        value: JSON.stringify({ id: i, amount: i + 0.5, country: 'FR' }),
      })),
    );
    const job = stream('big-orders')
      .from<{ id: number; amount: number }>(log, { topics: ['orders'] })
      .filter((o) => o.amount > 3)
      .map((o) => ({ id: o.id, big: true }))
      .to(topicSink('orders.big'));
    await runJob(job, { dataDir, once: true });
    await lineageFor(dataDir).flush();
    const events = await readEvents(dataDir);
    expect(events.map((e) => e.eventType)).toEqual(['START', 'COMPLETE']);
    const complete = events[1];
    expect(complete.job.facets?.jobType).toMatchObject({ processingType: 'STREAMING' });
    expect(complete.inputs.map((d) => [d.namespace, d.name, d.facets?.schema?.fields])).toEqual([
      [
        'tributary://topic',
        'orders',
        [
          { name: 'id', type: 'integer' },
          { name: 'amount', type: 'number' },
          { name: 'country', type: 'string' },
        ],
      ],
    ]);
    expect(complete.outputs.map((d) => [d.namespace, d.name])).toEqual([['tributary://topic', 'orders.big']]);
    expect(complete.run.facets?.tributary).toMatchObject({ bounded: true, recordsIn: 20, outputs: 17 });
  });

  it('coalesce checkpoints: one RUNNING event per interval, not one per checkpoint', async () => {
    const clock = new ManualClock(1_000_000);
    const log = createMemoryLog();
    await log.createTopic('ticks', { partitions: 1 });
    const sent: string[] = [];
    const memory: LineageTransport = {
      name: 'memory',
      send: (line) => {
        sent.push(line);
        return Promise.resolve();
      },
    };
    const lineage = new LineageEmitter({ transports: [memory], clock });
    const job = stream('ticker', { checkpointIntervalMs: 1000 })
      .from(log, { topics: ['ticks'] })
      .to(topicSink('ticks.out'));
    // No data dir: in-memory checkpoints, so 150 of them stay quick; each one is awaited.
    const handle = startJob(job, { clock, lineage, tickMs: 1 });
    for (let i = 0; i < 150; i++) {
      await log.append([{ topic: 'ticks', value: JSON.stringify({ i }) }]);
      clock.advance(1000);
      await handle.checkpoint();
    }
    const status = await handle.stop();
    await lineage.flush();
    // 150 checkpoints over 150 s of clock time: at most 3 RUNNING events (one per 60 s).
    expect(status.lastCheckpoint?.checkpointId).toBeGreaterThanOrEqual(150);
    const types = sent.map((line) => (JSON.parse(line) as LineageRunEvent).eventType);
    expect(types[0]).toBe('START');
    expect(types.at(-1)).toBe('COMPLETE');
    const running = types.filter((t) => t === 'RUNNING').length;
    expect(running).toBeGreaterThanOrEqual(2);
    expect(running).toBeLessThanOrEqual(Math.ceil((150 * 1000) / limits.lineageRunningIntervalMs));
  });
});

describe('file transport', () => {
  it.each(['one at a time', 'batched'])(
    'rotates by size, keeps at most filesMax files, and every line stays whole (%s)',
    async (mode) => {
      const dir = path.join(dataDir, 'lineage');
      const transport = new FileLineageTransport(dir, { fileBytesMax: 1000, filesMax: 3, nowMs: 5 });
      const line = `${JSON.stringify({ pad: 'x'.repeat(280) })}\n`;
      if (mode === 'batched') {
        await transport.sendMany(Array.from({ length: 13 }, () => line));
        await transport.sendMany(Array.from({ length: 7 }, () => line));
      } else for (let i = 0; i < 20; i++) await transport.send(line);
      const names = (await readdir(dir)).sort();
      expect(names).toHaveLength(3);
      expect(names.at(-1)).toBe(`events-0000000000005-${process.pid}-0006.ndjson`);
      for (const name of names) {
        const text = await readFile(path.join(dir, name), 'utf8');
        expect(text.length).toBeLessThanOrEqual(1000);
        for (const l of text.split('\n').filter(Boolean))
          expect(JSON.parse(l)).toEqual({ pad: 'x'.repeat(280) });
      }
    },
  );

  it('drops events beyond the queue bound and counts them, without blocking emit', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow: LineageTransport = { name: 'slow-test', send: () => gate };
    const lineage = new LineageEmitter({ transports: [slow] });
    const event = runEvent({
      eventType: 'START',
      eventTimeMs: 0,
      runId: uuidOf('x'),
      job: 'x',
      processingType: 'BATCH',
      inputs: [],
      outputs: [],
    });
    const before = await counterValue('tributary_lineage_events_total', {
      transport: 'slow-test',
      result: 'dropped',
    });
    for (let i = 0; i < limits.lineageQueueEventsMax + 5; i++) lineage.emit(event);
    const after = await counterValue('tributary_lineage_events_total', {
      transport: 'slow-test',
      result: 'dropped',
    });
    // The first event is already with the worker; the queue holds the next lineageQueueEventsMax.
    expect(after - before).toBe(4);
    release();
    await lineage.flush();
  });
});

describe('HTTP transport', () => {
  let server: Server;
  let received: { path: string; contentType: string; body: unknown }[];
  let failuresLeft: number;

  beforeEach(async () => {
    received = [];
    failuresLeft = 0;
    server = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (failuresLeft > 0) {
          failuresLeft -= 1;
          res.writeHead(503).end();
          return;
        }
        received.push({
          path: req.url ?? '',
          contentType: req.headers['content-type'] ?? '',
          body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
        });
        res.writeHead(201, { 'content-type': 'application/json' }).end('{}');
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
  });
  afterEach(async () => {
    server.close();
    await once(server, 'close');
  });

  const url = () => `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  it('POSTs each event to <url>/api/v1/lineage, retrying 503s, and keeps the file copy', async () => {
    failuresLeft = 2;
    const lineage = new LineageEmitter({ dataDir, url: url(), http: { backoffMs: 1 } });
    const dag = new BatchDag(
      [{ name: 'gold.t', inputs: ['silver.s'], outputs: ['gold.t'], run: () => Promise.resolve() }],
      { lineage },
    );
    await dag.run('gold.t');
    await lineage.flush();
    expect(received.map((r) => [r.path, r.contentType])).toEqual([
      ['/api/v1/lineage', 'application/json'],
      ['/api/v1/lineage', 'application/json'],
    ]);
    const files = await readEvents(dataDir);
    expect(received.map((r) => r.body)).toEqual(files);
    expect(files.map((e) => e.eventType)).toEqual(['START', 'COMPLETE']);
  });

  it('gives up after its attempts, counts the failure, and the run still succeeds', async () => {
    failuresLeft = 1000;
    const before = await counterValue('tributary_lineage_events_total', {
      transport: 'http',
      result: 'failed',
    });
    const lineage = new LineageEmitter({ url: url(), http: { backoffMs: 1, attemptsMax: 2 } });
    const dag = new BatchDag([{ name: 'gold.t', run: () => Promise.resolve() }], { lineage });
    expect((await dag.run('gold.t')).status).toBe('succeeded');
    await lineage.flush();
    const after = await counterValue('tributary_lineage_events_total', {
      transport: 'http',
      result: 'failed',
    });
    expect(after - before).toBe(2);
    expect(received).toEqual([]);
  });
});

describe('lineage graph', () => {
  it('links input → job → output for the latest run of each job, reading files incrementally', async () => {
    const lineage = new LineageEmitter({ dataDir });
    const emit = (
      runId: string,
      job: string,
      inputs: string[],
      outputs: string[],
      type: 'START' | 'COMPLETE',
    ) =>
      lineage.emit(
        runEvent({
          eventType: type,
          eventTimeMs: Date.UTC(2026, 0, 1) + Number(runId),
          runId: uuidOf(runId),
          job,
          processingType: 'BATCH',
          inputs: inputs.map(datasetOf),
          outputs: outputs.map(datasetOf),
        }),
      );
    emit('1', 'load', ['postgres://pg:5432/db.public.t'], ['bronze.t'], 'START');
    emit('2', 'load', ['postgres://pg:5432/db.public.t'], ['bronze.t'], 'COMPLETE');
    await lineage.flush();
    const reader = new LineageGraphReader(dataDir);
    const first = await reader.graph();
    expect(first.events).toBe(2);
    // A newer run of `load` writes elsewhere; its old output edge goes away.
    emit('3', 'load', ['postgres://pg:5432/db.public.t'], ['silver.t'], 'START');
    emit('4', 'load', ['postgres://pg:5432/db.public.t'], ['silver.t'], 'COMPLETE');
    await lineage.flush();
    const graph = await reader.graph();
    expect(graph.events).toBe(4);
    expect(graph.edges).toEqual([
      { from: 'job:tributary/load', to: 'tributary://lake/silver.t' },
      { from: 'postgres://pg:5432/db.public.t', to: 'job:tributary/load' },
    ]);
    expect(graph.nodes.map((n) => [n.id, n.kind])).toEqual([
      ['job:tributary/load', 'job'],
      ['postgres://pg:5432/db.public.t', 'source'],
      ['tributary://lake/silver.t', 'table'],
    ]);
    expect(graph.nodes[0].state).toBe('COMPLETE');
  });

  it('a connector reports its own run (LineageRun): source → connector → topic → job → table', async () => {
    const lineage = new LineageEmitter({ dataDir });
    const spool = lineage.run({
      job: 'spool.invoices',
      processingType: 'STREAMING',
      inputs: ['file://localhost/srv/spool/invoices'],
      outputs: ['topic:invoices.raw'],
    });
    spool.emit('START');
    const load = lineage.run({
      job: 'invoices.load',
      processingType: 'STREAMING',
      inputs: ['topic:invoices.raw'],
      outputs: ['bronze.invoices'],
    });
    load.emit('START');
    spool.emit('COMPLETE', { files: 3 });
    await lineage.flush();
    const graph = await new LineageGraphReader(dataDir).graph();
    expect(graph.edges.map((e) => `${e.from} -> ${e.to}`).sort()).toEqual([
      'file://localhost/srv/spool/invoices -> job:tributary/spool.invoices',
      'job:tributary/invoices.load -> tributary://lake/bronze.invoices',
      'job:tributary/spool.invoices -> tributary://topic/invoices.raw',
      'tributary://topic/invoices.raw -> job:tributary/invoices.load',
    ]);
    expect(graph.nodes.find((n) => n.id === 'file://localhost/srv/spool/invoices')?.kind).toBe('source');
    expect(graph.nodes.find((n) => n.id === 'job:tributary/spool.invoices')?.state).toBe('COMPLETE');
    expect(spool.runId).toMatch(uuidPattern);
  });

  it('skips a torn last line', () => {
    const builder = new LineageGraphBuilder();
    expect(decodeLineageLine('{"eventType":"START","run":{"runId":')).toBeNull();
    expect(builder.graph()).toEqual({ nodes: [], edges: [], events: 0 });
  });
});
