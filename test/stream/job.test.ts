import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/index.js';
import { createMemoryLog, type Log, type LogRecord } from '../../src/log/index.js';
import {
  callbackSink,
  dlqHeaders,
  readJobStatusFiles,
  runJob,
  startJob,
  stream,
  topicSink,
  tumbling,
  type StreamJob,
  type TopicSink,
  type WindowResult,
} from '../../src/stream/index.js';

interface Sale {
  id: number;
  country: string;
  amount: number;
  ts: number;
}

const text = (b: Uint8Array | null | undefined) => (b ? Buffer.from(b).toString('utf8') : '');

async function readAll(log: Log, topic: string): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  const d = await log.describeTopic(topic);
  for (const p of d.partitions)
    out.push(...(await log.fetch(topic, p.partition, 0, { maxRecords: 100_000 })));
  return out;
}

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

function salesJob(
  log: Log,
  options: { checkpointIntervalMs?: number } = {},
  sink: TopicSink<unknown> = topicSink('sales.by_country'),
): StreamJob {
  return stream('sales-by-country', options)
    .from<Sale>(log, {
      topics: ['sales'],
      validate: (v) => {
        const s = v as Sale;
        if (typeof s.amount !== 'number' || typeof s.country !== 'string')
          throw new Error(`bad sale ${JSON.stringify(v)}`);
        return s;
      },
      timestamp: (s) => s.ts,
      outOfOrdernessMs: 1000,
    })
    .filter((s) => s.amount > 0)
    .keyBy((s) => s.country)
    .window(tumbling({ sizeMs: 10_000 }))
    .aggregate({
      init: () => ({ count: 0, total: 0 }),
      add: (a, s) => ({ count: a.count + 1, total: a.total + s.amount }),
    })
    .map((w) => ({ country: w.key, start: w.windowStart, count: w.value.count, total: w.value.total }))
    .to(sink);
}

let dataDir: string;
beforeEach(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'tributary-stream-'));
});
afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

function makeSales(n: number, seed = 1): Sale[] {
  let s = seed;
  const countries = ['FR', 'DE', 'US', 'BR'];
  return Array.from({ length: n }, (_, i) => {
    s = (s * 48271) % 2147483647;
    return { id: i, country: countries[s % 4], amount: (s % 100) - 5, ts: 1_000_000 + i * 250 - (s % 900) };
  });
}

describe('bounded runs', () => {
  it('routes poison records to <topic>.dlq with headers and reconciles counts', async () => {
    const log = createMemoryLog();
    await log.createTopic('sales', { partitions: 1 });
    const sales = makeSales(200);
    const values: (string | null)[] = sales.map((s) => JSON.stringify(s));
    values.splice(10, 0, '{not json');
    values.splice(50, 0, JSON.stringify({ id: 'x', country: 7 }));
    values.splice(90, 0, null);
    await log.append(values.map((value) => ({ topic: 'sales', value })));

    const status = await runJob(salesJob(log), { dataDir, once: true });
    expect(status.state).toBe('finished');
    const c = status.counters;
    expect(c.in).toBe(203);
    expect(c.dlq).toBe(3);
    expect(c.in).toBe(c.accepted + c.filtered + c.dlq + c.late);
    expect(c.filtered).toBe(sales.filter((s) => s.amount <= 0).length);

    const dlq = await readAll(log, 'sales.dlq');
    expect(dlq.map((r) => text(r.headers[dlqHeaders.offset]))).toEqual(['10', '50', '90']);
    expect(text(dlq[0].headers[dlqHeaders.code])).toBe('DECODE_FAILED');
    expect(text(dlq[0].headers[dlqHeaders.job])).toBe('sales-by-country');
    expect(text(dlq[0].headers[dlqHeaders.topic])).toBe('sales');
    expect(text(dlq[1].headers[dlqHeaders.message])).toContain('bad sale');
    expect(text(dlq[0].value)).toBe('{not json');

    // Output totals equal a direct computation over the valid, positive, non-late sales.
    const out = (await readAll(log, 'sales.by_country')).map(
      (r) => JSON.parse(text(r.value)) as { count: number; total: number },
    );
    const late = await readAll(log, 'sales-by-country.late').catch(() => []);
    expect(out.reduce((n, o) => n + o.count, 0) + late.length).toBe(sales.filter((s) => s.amount > 0).length);
    expect(late.length).toBe(c.late);
  });

  it('is deterministic over a single partition and a rerun with no new input changes nothing', async () => {
    const results: string[][] = [];
    for (let run = 0; run < 2; run++) {
      const log = createMemoryLog();
      await log.createTopic('sales', { partitions: 1 });
      await log.append(makeSales(500, 9).map((s) => ({ topic: 'sales', value: JSON.stringify(s) })));
      const dir = path.join(dataDir, String(run));
      await runJob(salesJob(log), { dataDir: dir, once: true });
      await runJob(salesJob(log), { dataDir: dir, once: true });
      results.push(
        (await readAll(log, 'sales.by_country')).map(
          (r) => `${text(r.headers['tributary-id'])} ${text(r.value)}`,
        ),
      );
    }
    expect(results[0]).toEqual(results[1]);
    expect(results[0].length).toBeGreaterThan(10);
  });
});

describe('repeated bounded runs', () => {
  it('a later run sends records for windows an earlier run finalised to the late output', async () => {
    const log = createMemoryLog();
    await log.createTopic('sales', { partitions: 1 });
    const sale = (id: number, ts: number) => ({
      topic: 'sales',
      value: JSON.stringify({ id, country: 'FR', amount: 10, ts }),
    });
    await log.append([sale(1, 1_000), sale(2, 2_000), sale(3, 12_000)]);
    await runJob(salesJob(log), { dataDir, once: true });
    // 5 s falls in [0, 10 s) and 15 s in [10 s, 20 s): both windows were final after run 1.
    await log.append([sale(4, 5_000), sale(5, 15_000), sale(6, 25_000)]);
    const second = await runJob(salesJob(log), { dataDir, once: true });
    expect(second.counters.late).toBe(2);
    const out = (await readAll(log, 'sales.by_country')).map(
      (r) => JSON.parse(text(r.value)) as { start: number; count: number },
    );
    expect(out.map((o) => [o.start, o.count])).toEqual([
      [0, 2],
      [10_000, 1],
      [20_000, 1],
    ]);
    const late = await readAll(log, 'sales-by-country.late');
    expect(late.map((r) => text(r.headers[dlqHeaders.lateReason]))).toEqual([
      expect.stringContaining('window [0, 10000) closed'),
      expect.stringContaining('window [10000, 20000) closed'),
    ]);
  });
});

describe('checkpoints', () => {
  it('a crash between checkpoints and a restart neither lose nor duplicate outputs', async () => {
    const expected = await (async () => {
      const log = createMemoryLog();
      await log.createTopic('sales', { partitions: 1 });
      await log.append(makeSales(2000, 3).map((s) => ({ topic: 'sales', value: JSON.stringify(s) })));
      await runJob(salesJob(log), { dataDir: path.join(dataDir, 'straight'), once: true });
      return (await readAll(log, 'sales.by_country')).map((r) => text(r.value)).sort();
    })();

    const log = createMemoryLog();
    await log.createTopic('sales', { partitions: 1 });
    await log.append(makeSales(2000, 3).map((s) => ({ topic: 'sales', value: JSON.stringify(s) })));
    const dir = path.join(dataDir, 'crashy');
    let batches = 0;
    const crashed = runJob(salesJob(log, { checkpointIntervalMs: 0 }), {
      dataDir: dir,
      once: true,
      pollMaxRecords: 97,
      onBatch: () => {
        // Dies after outputs of batch 9 were written but before its checkpoint.
        if (++batches === 9) throw new Error('simulated crash');
      },
    });
    await expect(crashed).rejects.toThrow('simulated crash');
    const partial = (await readAll(log, 'sales.by_country')).length;
    expect(partial).toBeGreaterThan(0);
    const sink = topicSink('sales.by_country');
    await runJob(salesJob(log, { checkpointIntervalMs: 0 }, sink), {
      dataDir: dir,
      once: true,
      pollMaxRecords: 97,
    });
    expect(sink.deduplicated).toBeGreaterThan(0);
    const got = (await readAll(log, 'sales.by_country')).map((r) => text(r.value)).sort();
    expect(got).toEqual(expected);
  });
});

describe('unbounded runs', () => {
  it('an idle partition does not stall windows; the timer fires them without new data', async () => {
    const log = createMemoryLog();
    await log.createTopic('sales', { partitions: 2 });
    const clock = new ManualClock(1_000_000);
    const results: WindowResult<number>[] = [];
    const job = stream('idle-test')
      .from<Sale>(log, { topics: ['sales'], timestamp: (s) => s.ts, idleTimeoutMs: 5_000 })
      .keyBy((s) => s.country)
      .window(tumbling({ sizeMs: 1000 }))
      .count()
      .to(callbackSink((w) => void results.push(w)));
    const handle = startJob(job, { clock, tickMs: 10 });
    await log.append(
      [0, 100, 1500, 2100].map((ts, i) => ({
        topic: 'sales',
        partition: 0,
        value: JSON.stringify({ id: i, country: 'FR', amount: 1, ts }),
      })),
    );
    await waitFor(() => handle.status().counters.in === 4);
    expect(results).toEqual([]);
    // Partition 1 never had data: after the idle timeout it stops holding the watermark back.
    clock.advance(6_000);
    await waitFor(() => results.length >= 2);
    expect(results.slice(0, 2).map((w) => [w.windowStart, w.value, w.kind])).toEqual([
      [0, 2, 'final'],
      [1000, 1, 'final'],
    ]);
    // With everything idle, event time follows wall time: the last window closes too.
    clock.advance(2_000);
    await waitFor(() => results.length >= 3);
    expect(results[2].windowStart).toBe(2000);
    await handle.stop();
  });

  it('stops on abort with a final checkpoint; a restart continues from it', async () => {
    const log = createMemoryLog();
    await log.createTopic('sales', { partitions: 1 });
    await log.append(makeSales(300, 5).map((s) => ({ topic: 'sales', value: JSON.stringify(s) })));
    const controller = new AbortController();
    const handle = startJob(salesJob(log), { dataDir, signal: controller.signal, tickMs: 10 });
    await waitFor(() => handle.status().counters.in === 300);
    controller.abort();
    const stopped = await handle.done;
    expect(stopped.state).toBe('stopped');
    expect(stopped.lastCheckpoint).not.toBeNull();
    const files = await readJobStatusFiles(dataDir);
    expect(files.map((f) => [f.job, f.counters.in])).toEqual([['sales-by-country', 300]]);
    await log.append(
      makeSales(100, 6).map((s) => ({ topic: 'sales', value: JSON.stringify({ ...s, ts: s.ts + 200_000 }) })),
    );
    const second = await runJob(salesJob(log), { dataDir, once: true });
    expect(second.counters.in).toBe(400);
    expect(second.counters.in).toBe(
      second.counters.accepted + second.counters.filtered + second.counters.dlq + second.counters.late,
    );
  });

  it('emits early updates before the window closes', async () => {
    const log = createMemoryLog();
    await log.createTopic('sales', { partitions: 1 });
    const clock = new ManualClock(0);
    const results: WindowResult<number>[] = [];
    const job = stream('early-test')
      .from<Sale>(log, { topics: ['sales'], timestamp: (s) => s.ts })
      .keyBy((s) => s.country)
      .window(tumbling({ sizeMs: 60_000 }), { earlyEveryMs: 100 })
      .count()
      .to(callbackSink((w) => void results.push(w)));
    const handle = startJob(job, { clock, tickMs: 10 });
    await log.append(
      [1, 2, 3].map((ts, i) => ({
        topic: 'sales',
        value: JSON.stringify({ id: i, country: 'FR', amount: 1, ts }),
      })),
    );
    await waitFor(() => handle.status().counters.in === 3);
    clock.advance(150);
    await waitFor(() => results.length >= 1);
    expect(results[0]).toMatchObject({ kind: 'early', value: 3, count: 3 });
    await handle.stop();
  });
});
