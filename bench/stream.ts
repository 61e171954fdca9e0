/**
 * Stream engine benchmarks (issue 3):
 * - stream.window: tumbling 1-minute count+sum over 1,000 integer keys on pre-decoded records,
 *   against a hand-written Map loop over the same events in the same run.
 * - stream.window_from_log: the same job reading ~50-byte JSON values from the embedded log with a
 *   checkpoint every 10 s, against raw JSON.parse + Map over the same bytes.
 * - stream.latency_p99_ms: append → early window update visible, at 20,000 events/s.
 */
import path from 'node:path';
import { ManualClock } from '../src/core/index.js';
import { createMemoryLog, openEmbeddedLog, type Log } from '../src/log/index.js';
import {
  callbackSink,
  JobTask,
  runJob,
  startJob,
  stream,
  tumbling,
  type StreamJob,
  type WindowResult,
} from '../src/stream/index.js';
import { percentileOfSorted } from './stats.js';
import type { Benchmark, BenchContext, BenchResult } from './types.js';

interface Sale {
  key: number;
  ts: number;
  amount: number;
}
type CountSum = { count: number; sum: number };

const keys = 1000;
const windowMs = 60_000;

/** Event `i` of the benchmark stream: 20,000 events per second of event time, small jitter. */
function eventAt(i: number): Sale {
  let h = Math.imul(i ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  h = (h ^ (h >>> 16)) & 0x7fffffff;
  return { key: h % keys, ts: Date.UTC(2026, 10, 22) + Math.floor(i / 20) - (h & 7), amount: h & 1023 };
}

function makeEvents(n: number): Sale[] {
  const events = new Array<Sale>(n);
  for (let i = 0; i < n; i++) events[i] = eventAt(i);
  return events;
}

function countSumJob(
  log: Log,
  sink: (w: WindowResult<CountSum>) => void,
  decode: 'json' | 'bytes' = 'json',
): StreamJob {
  return stream('bench-window', { checkpointIntervalMs: 10_000 })
    .from<Sale>(log, { topics: ['sales'], decode, timestamp: (s) => s.ts, outOfOrdernessMs: 1000 })
    .keyBy((s) => s.key)
    .window(tumbling({ sizeMs: windowMs }))
    .aggregate<CountSum>({
      init: () => ({ count: 0, sum: 0 }),
      add: (acc, s) => {
        acc.count++;
        acc.sum += s.amount;
        return acc;
      },
    })
    .to(callbackSink(sink));
}

function baselineMapLoop(events: Sale[]): number {
  let current = -1;
  let map = new Map<number, CountSum>();
  let emitted = 0;
  for (let i = 0; i < events.length; i++) {
    const e = events[i];
    const start = e.ts - (e.ts % windowMs);
    if (start > current) {
      emitted += map.size;
      map = new Map();
      current = start;
    }
    let acc = map.get(e.key);
    if (acc === undefined) {
      acc = { count: 0, sum: 0 };
      map.set(e.key, acc);
    }
    acc.count++;
    acc.sum += e.amount;
  }
  return emitted + map.size;
}

function rate(n: number, fn: () => void, repeats = 3): number {
  let best = 0;
  for (let r = 0; r < repeats; r++) {
    const t = performance.now();
    fn();
    const s = (performance.now() - t) / 1000;
    best = Math.max(best, n / s);
  }
  return best;
}

const windowBench: Benchmark = {
  name: 'stream.window',
  description: 'tumbling 1-min count+sum over 1,000 keys, pre-decoded records (events/s)',
  run(context: BenchContext): Promise<BenchResult> {
    const n = 5_000_000;
    const events = makeEvents(n);
    let outputs = 0;
    const job = countSumJob(createMemoryLog(), () => outputs++);
    const ours = rate(n, () => {
      const task = new JobTask(job, { clock: new ManualClock(), bounded: true });
      const part = task.partitionClock('sales', 0);
      for (let i = 0; i < n; i++) {
        const e = events[i];
        task.pushValue(e, e.ts, part);
      }
      task.endOfInput();
    });
    let check = 0;
    const baseline = rate(n, () => {
      check = baselineMapLoop(events);
    });
    context.progress(`outputs ${outputs / 3} per run, baseline windows ${check}`);
    return Promise.resolve({
      value: ours,
      unit: 'events/s',
      baseline,
      baseline_name: 'hand-written Map loop',
      ratio: ours / baseline,
      goal: '>= 5,000,000 events/s and ratio >= 0.3',
    });
  },
};

const fromLogBench: Benchmark = {
  name: 'stream.window_from_log',
  description:
    'same job reading ~50-byte JSON values from the embedded log, checkpoint every 10 s (events/s)',
  async run(context: BenchContext): Promise<BenchResult> {
    const n = 2_000_000;
    const log = await openEmbeddedLog({ dir: path.join(context.dir, 'log'), fsync: 'never' });
    try {
      await log.createTopic('sales', { partitions: 1 });
      // Generated chunk by chunk: no millions of event objects stay alive to slow the collector.
      for (let i = 0; i < n; i += 50_000) {
        const chunk = [];
        for (let j = i; j < i + 50_000; j++) {
          const e = eventAt(j);
          chunk.push({ topic: 'sales', value: `{"key":${e.key},"ts":${e.ts},"amount":${e.amount}}` });
        }
        await log.append(chunk);
      }
      await log.flush();
      context.progress(`appended ${n} records`);
      let outputs = 0;
      const t0 = performance.now();
      const status = await runJob(
        countSumJob(log, () => outputs++),
        { dataDir: path.join(context.dir, 'data'), once: true, pollMaxRecords: 10_000 },
      );
      const ours = n / ((performance.now() - t0) / 1000);
      if (status.counters.in !== n) throw new Error(`job read ${status.counters.in} of ${n} records`);

      // Baseline: the same bytes, already in memory, through JSON.parse and a Map loop.
      const values: Uint8Array[] = [];
      for (let offset = 0; offset < n;) {
        const batch = await log.fetch('sales', 0, offset, { maxRecords: 10_000 });
        for (const r of batch) values.push(r.value!);
        offset = batch[batch.length - 1].offset + 1;
      }
      const decoder = new TextDecoder();
      let check = 0;
      const baseline = rate(n, () => {
        const parsed = new Array<Sale>(values.length);
        for (let i = 0; i < values.length; i++) parsed[i] = JSON.parse(decoder.decode(values[i])) as Sale;
        check = baselineMapLoop(parsed);
      });
      context.progress(
        `outputs ${outputs}, baseline windows ${check}, checkpoints ${status.lastCheckpoint?.checkpointId ?? 0}`,
      );
      return {
        value: ours,
        unit: 'events/s',
        baseline,
        baseline_name: 'JSON.parse + Map loop over the same bytes',
        ratio: ours / baseline,
        goal: '>= 1,000,000 events/s and ratio >= 0.4',
      };
    } finally {
      await log.close();
    }
  },
};

/** Appends `{key, sentAt}` records at 20,000 events/s for 4 s; returns how many were sent. */
async function appendAtRate(log: Log, topic: string): Promise<number> {
  const ratePerSecond = 20_000;
  const durationMs = 4_000;
  const start = Date.now();
  let sent = 0;
  while (Date.now() - start < durationMs) {
    const due = Math.floor(((Date.now() - start) / 1000) * ratePerSecond);
    if (due > sent) {
      const now = Date.now();
      const batch = [];
      for (; sent < due; sent++) batch.push({ topic, value: `{"key":${sent % 100},"sentAt":${now}}` });
      await log.append(batch);
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  return sent;
}

/** p50 and p99 of latencies (ms), skipping the first eighth (JIT warm-up). */
function percentiles(latencies: number[]): { p50: number; p99: number } {
  const measured = Float64Array.from(latencies.slice(Math.floor(latencies.length / 8))).sort();
  return { p99: percentileOfSorted(measured, 0.99), p50: percentileOfSorted(measured, 0.5) };
}

const latencyBench: Benchmark = {
  name: 'stream.latency_p99_ms',
  description: 'append → early window update visible at 20,000 events/s (p99 ms)',
  async run(context: BenchContext): Promise<BenchResult> {
    const log = await openEmbeddedLog({ dir: path.join(context.dir, 'log') });
    const latencies: number[] = [];
    try {
      await log.createTopic('live', { partitions: 1 });
      type Acc = { count: number; lastSentAt: number };
      const job = stream('bench-latency')
        .from<{ key: number; sentAt: number }>(log, {
          topics: ['live'],
          timestamp: (e) => e.sentAt,
          from: 'latest',
        })
        .keyBy((e) => e.key)
        .window(tumbling({ sizeMs: windowMs }), { earlyEveryMs: 10 })
        .aggregate<Acc>({
          init: () => ({ count: 0, lastSentAt: 0 }),
          add: (a, e) => {
            a.count++;
            a.lastSentAt = Math.max(a.lastSentAt, e.sentAt);
            return a;
          },
        })
        .to(
          callbackSink((w) => {
            if (w.kind === 'early') latencies.push(Date.now() - w.value.lastSentAt);
          }),
        );
      const handle = startJob(job, { dataDir: path.join(context.dir, 'data'), tickMs: 10 });
      const sent = await appendAtRate(log, 'live');
      await new Promise((r) => setTimeout(r, 100));
      await handle.stop();
      const { p99, p50 } = percentiles(latencies);
      context.progress(`sent ${sent} events, ${latencies.length} early updates, p50 ${p50} ms`);

      // Same-run baseline: the same appends read back by a bare poll loop (fetch every 10 ms, the
      // job's tick), with no job, state, window or sink: what the log alone costs.
      await log.createTopic('bare', { partitions: 1 });
      const bare: number[] = [];
      let polling = true;
      const poller = (async () => {
        let offset = 0;
        while (polling) {
          const batch = await log.fetch('bare', 0, offset, { maxRecords: 10_000 });
          const last = batch[batch.length - 1];
          if (last !== undefined) {
            const { sentAt } = JSON.parse(new TextDecoder().decode(last.value!)) as { sentAt: number };
            bare.push(Date.now() - sentAt);
            offset = last.offset + 1;
          }
          await new Promise((r) => setTimeout(r, 10));
        }
      })();
      await appendAtRate(log, 'bare');
      await new Promise((r) => setTimeout(r, 100));
      polling = false;
      await poller;
      const baseline = percentiles(bare);
      context.progress(`bare append → poll loop: ${bare.length} polls, p50 ${baseline.p50} ms`);
      return {
        value: p99,
        unit: 'ms',
        baseline: baseline.p99,
        baseline_name: 'bare append → poll loop (10 ms), same log and rate',
        ratio: p99 / Math.max(1, baseline.p99),
        goal: '<= 100 ms',
        p50_ms: p50,
        baseline_p50_ms: baseline.p50,
        events: sent,
      };
    } finally {
      await log.close();
    }
  },
};

export const streamBenchmarks: Benchmark[] = [windowBench, fromLogBench, latencyBench];
