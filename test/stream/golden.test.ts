import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataDirPaths } from '../../src/core/index.js';
import { connectRemoteLog, openEmbeddedLog, readLogServerInfo, type Log } from '../../src/log/index.js';
import { runJob } from '../../src/stream/index.js';
import { goldenJob, goldenOutputTopic, goldenSales } from '../../src/stream/testing/golden.js';
import { startNode, until, type StartedProcess } from '../fixtures/processes.js';

// The golden job run three ways must give identical outputs: straight through, killed with
// SIGKILL mid-run and restarted (compiled worker from dist/), and as worker processes of one group
// over a served log: 2 workers, then a third joining mid-run (partitions and keyed state move
// through checkpoints), and a worker killed with SIGKILL and replaced. Also 2 and 3 partitions
// read concurrently by one process.
const worker = path.resolve('dist/src/stream/testing/golden.js');
const n = process.env.TRIBUTARY_SLOW === '1' ? 60_000 : 12_000;
let root: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'tributary-golden-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const text = (b: Uint8Array | null | undefined) => (b ? Buffer.from(b).toString('utf8') : '');

async function seed(dataDir: string, partitions: number): Promise<void> {
  const log = await openEmbeddedLog({ dir: dataDirPaths(dataDir).log, fsync: 'never' });
  await log.createTopic('golden.sales', { partitions });
  const values = goldenSales(n);
  await log.append(values.map((value, i) => ({ topic: 'golden.sales', key: `k${i % 17}`, value })));
  await log.close();
}

async function outputs(log: Log): Promise<{ values: string[]; ids: string[] }> {
  const d = await log.describeTopic(goldenOutputTopic);
  const records = (
    await Promise.all(
      d.partitions.map((p) => log.fetch(goldenOutputTopic, p.partition, 0, { maxRecords: 1_000_000 })),
    )
  ).flat();
  return {
    values: records.map((r) => text(r.value)).sort(),
    ids: records.map((r) => text(r.headers['tributary-id'])),
  };
}

async function runInProcess(dataDir: string): Promise<{ values: string[]; ids: string[]; dlq: number }> {
  const log = await openEmbeddedLog({ dir: dataDirPaths(dataDir).log, fsync: 'never' });
  try {
    const status = await runJob(goldenJob(log), { dataDir, once: true, pollMaxRecords: 333 });
    expect(status.counters.in).toBe(
      status.counters.accepted + status.counters.filtered + status.counters.dlq + status.counters.late,
    );
    return { ...(await outputs(log)), dlq: status.counters.dlq };
  } finally {
    await log.close();
  }
}

async function runWorker(
  dataDir: string,
  killAfterBatches: number | null,
): Promise<{ code: number | null; signal: string | null; batches: number }> {
  const started = startNode([worker, dataDir], { env: process.env });
  if (killAfterBatches !== null)
    started.child.stdout?.on('data', () => {
      if (batchesOf(started) >= killAfterBatches) started.child.kill('SIGKILL');
    });
  const end = await started.exited;
  return { ...end, batches: batchesOf(started) };
}

describe('golden job', () => {
  let expected: { values: string[]; ids: string[]; dlq: number };

  beforeAll(async () => {
    const dir = path.join(root, 'straight');
    await seed(dir, 1);
    expected = await runInProcess(dir);
  });

  it('straight through produces one result per window and key, poison records in the DLQ', () => {
    expect(expected.values.length).toBeGreaterThan(100);
    expect(new Set(expected.ids).size).toBe(expected.ids.length);
    expect(expected.dlq).toBe(Math.ceil((n - 500) / 997));
  });

  it('kill -9 at a random point and a restart give the same outputs (no loss, no duplicates)', async () => {
    expect(existsSync(worker), 'run `npm run build` first').toBe(true);
    const killAt = fc.sample(fc.integer({ min: 3, max: 30 }), { seed: 42, numRuns: 1 })[0];
    const dir = path.join(root, 'killed');
    await seed(dir, 1);
    const first = await runWorker(dir, killAt);
    expect(first.signal).toBe('SIGKILL');
    // The killed run had already written part of the outputs (so the restart must deduplicate).
    const before = await openEmbeddedLog({ dir: dataDirPaths(dir).log, fsync: 'never' });
    const partial = (await outputs(before)).values.length;
    await before.close();
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(expected.values.length);
    const second = await runWorker(dir, null);
    expect(second.code).toBe(0);
    const log = await openEmbeddedLog({ dir: dataDirPaths(dir).log, fsync: 'never' });
    try {
      const got = await outputs(log);
      expect(new Set(got.ids).size).toBe(got.ids.length);
      expect(got.values).toEqual(expected.values);
      // Dead-letter records carry deterministic ids too and are not repeated by the replay.
      const dlq = await log.fetch('golden.sales.dlq', 0, 0, { maxRecords: 100_000 });
      const dlqIds = dlq.map((r) => text(r.headers['tributary-id']));
      expect(dlqIds.length).toBe(expected.dlq);
      expect(new Set(dlqIds).size).toBe(dlqIds.length);
    } finally {
      await log.close();
    }
  });

  for (const partitions of [2, 3]) {
    it(`${partitions} partitions read concurrently give the same outputs`, async () => {
      const dir = path.join(root, `p${partitions}`);
      await seed(dir, partitions);
      const got = await runInProcess(dir);
      expect(got.values).toEqual(expected.values);
      expect(got.dlq).toBe(expected.dlq);
    });
  }
});

type Proc = StartedProcess;

/** Starts a compiled process, collecting its stdout lines; `exited` rejects on a non-zero exit. */
const start = (args: string[], env: Record<string, string> = {}): Proc =>
  startNode(args, { env: { ...process.env, TRIBUTARY_LOG_LEVEL: 'error', ...env } });

const batchesOf = (p: Proc) => p.lines.filter((l) => l.startsWith('batch ')).length;

describe('golden job as worker processes of one group (served log)', () => {
  const cli = path.resolve('bin/tributary.js');
  let expected: { values: string[]; ids: string[]; dlq: number };
  const servers: Proc[] = [];

  beforeAll(async () => {
    const dir = path.join(root, 'workers-straight');
    await seed(dir, 1);
    expected = await runInProcess(dir);
  });
  afterAll(async () => {
    for (const s of servers) {
      s.child.kill('SIGTERM');
      await s.exited.catch(() => undefined);
    }
  });

  async function serve(dataDir: string): Promise<Log> {
    const server = start([cli, 'log', 'serve'], { TRIBUTARY_DATA_DIR: dataDir });
    servers.push(server);
    await until('the log server', () => server.lines.some((l) => l.startsWith('log server on')));
    const info = readLogServerInfo(dataDirPaths(dataDir).log)!;
    return connectRemoteLog({ host: info.host, port: info.port, token: info.token });
  }

  async function check(log: Log): Promise<void> {
    const got = await outputs(log);
    expect(new Set(got.ids).size).toBe(got.ids.length);
    expect(got.values).toEqual(expected.values);
    const dlq = await log.fetch('golden.sales.dlq', 0, 0, { maxRecords: 100_000 });
    expect(dlq.length).toBe(expected.dlq);
    expect(new Set(dlq.map((r) => text(r.headers['tributary-id']))).size).toBe(expected.dlq);
  }

  it('2 workers, then a third joins mid-run: partitions and state move, outputs match', async () => {
    expect(existsSync(worker), 'run `npm run build` first').toBe(true);
    const dir = path.join(root, 'workers-2-then-3');
    await seed(dir, 6);
    const log = await serve(dir);
    try {
      const first = [0, 1].map(() => start([worker, dir, '--worker', '--batch-delay-ms=25']));
      await until('the first two workers to be under way', () => first.every((w) => batchesOf(w) >= 5));
      const third = start([worker, dir, '--worker', '--batch-delay-ms=25']);
      const all = [...first, third];
      for (const w of all) expect((await w.exited).code).toBe(0);
      // The third worker took over tasks the first two had been running.
      const startedBy = (w: Proc) =>
        new Set(w.lines.filter((l) => l.startsWith('task start ')).map((l) => l.slice('task start '.length)));
      const moved = [...startedBy(third)].filter((t) => first.some((w) => startedBy(w).has(t)));
      expect(moved.length).toBeGreaterThan(0);
      await check(log);
    } finally {
      await log.close();
    }
  });

  it('a worker killed with SIGKILL mid-run and replaced: no loss, no duplicates', async () => {
    const dir = path.join(root, 'workers-killed');
    await seed(dir, 6);
    const log = await serve(dir);
    try {
      const survivor = start([worker, dir, '--worker', '--batch-delay-ms=25']);
      const victim = start([worker, dir, '--worker', '--batch-delay-ms=25']);
      await until('the victim to be under way', () => batchesOf(victim) >= 8);
      victim.child.kill('SIGKILL');
      expect((await victim.exited).signal).toBe('SIGKILL');
      const replacement = start([worker, dir, '--worker', '--batch-delay-ms=5']);
      expect((await survivor.exited).code).toBe(0);
      expect((await replacement.exited).code).toBe(0);
      await check(log);
    } finally {
      await log.close();
    }
  });
});
