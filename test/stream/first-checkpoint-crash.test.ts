import { cp, mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataDirPaths } from '../../src/core/index.js';
import { createMemoryLog, openEmbeddedLog, type Log } from '../../src/log/index.js';
import { checkpointDir, resetJob, runJob } from '../../src/stream/index.js';
import { goldenJob, goldenOutputTopic, goldenSales } from '../../src/stream/testing/golden.js';
import { runKillableWorker } from './kill-worker.js';

// kill -9 of the compiled worker BEFORE the job's first checkpoint (checkpoint interval of an
// hour; the only checkpoint of a bounded run is then the final one), after outputs were written.
// Without a checkpoint, only the sink intent tells the restart where the dead run's outputs start.
const worker = path.resolve('dist/src/stream/testing/golden.js');
const n = 6_000;
const noCheckpoint = '--checkpoint-interval-ms=3600000';
let root: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'tributary-firstchk-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const text = (b: Uint8Array | null | undefined) => (b ? Buffer.from(b).toString('utf8') : '');

async function seed(dataDir: string): Promise<void> {
  const log = await openEmbeddedLog({ dir: dataDirPaths(dataDir).log, fsync: 'never' });
  await log.createTopic('golden.sales', { partitions: 1 });
  await log.append(goldenSales(n).map((value, i) => ({ topic: 'golden.sales', key: `k${i % 17}`, value })));
  await log.close();
}

const dlqTopic = 'golden.sales.dlq';

async function outputs(
  dataDir: string,
  topic = goldenOutputTopic,
): Promise<{ values: string[]; ids: string[] }> {
  const log = await openEmbeddedLog({ dir: dataDirPaths(dataDir).log, fsync: 'never' });
  try {
    const records = (await log.listTopics()).includes(topic)
      ? await log.fetch(topic, 0, 0, { maxRecords: 1_000_000 })
      : [];
    return {
      values: records.map((r) => text(r.value)).sort(),
      ids: records.map((r) => text(r.headers['tributary-id'])),
    };
  } finally {
    await log.close();
  }
}

/** Runs the worker; with `holdAfter` it is killed with SIGKILL once it holds after that batch. */
function runWorker(dataDir: string, holdAfter: number | null): Promise<string | null> {
  return runKillableWorker([
    worker,
    dataDir,
    noCheckpoint,
    ...(holdAfter === null ? [] : [`--hold-after=${holdAfter}`]),
  ]);
}

describe('kill -9 before the first checkpoint', () => {
  it('restarts without duplicate or lost outputs, also after a second early crash', async () => {
    expect(existsSync(worker), 'run `npm run build` first').toBe(true);
    const straight = path.join(root, 'straight');
    await seed(straight);
    const log = await openEmbeddedLog({ dir: dataDirPaths(straight).log, fsync: 'never' });
    try {
      await runJob(goldenJob(log), { dataDir: straight, once: true, pollMaxRecords: 333 });
    } finally {
      await log.close();
    }
    const expected = await outputs(straight);
    const expectedDlq = await outputs(straight, dlqTopic);
    expect(expected.values.length).toBeGreaterThan(50);
    expect(expectedDlq.ids.length).toBe(Math.ceil((n - 500) / 997));
    expect(new Set(expected.ids).size).toBe(expected.ids.length);

    const dir = path.join(root, 'killed');
    const chk = checkpointDir(dir, 'golden');
    await seed(dir);
    expect(await runWorker(dir, 6)).toBe('SIGKILL');
    // Died with outputs in the topic and no checkpoint at all: only the intent covers them.
    expect(existsSync(path.join(chk, 'CURRENT'))).toBe(false);
    expect(existsSync(path.join(chk, 'INTENT'))).toBe(true);
    const first = await outputs(dir);
    expect(first.values.length).toBeGreaterThan(0);
    expect(first.values.length).toBeLessThan(expected.values.length);
    expect((await outputs(dir, dlqTopic)).ids.length).toBeGreaterThan(0);

    // Control: the same crashed state without its intent does duplicate on restart (what the
    // intent prevents), so the assertions below can fail.
    const control = path.join(root, 'control');
    await cp(dir, control, { recursive: true });
    await rm(path.join(checkpointDir(control, 'golden'), 'INTENT'));
    expect(await runWorker(control, null)).toBeNull();
    const duplicated = await outputs(control);
    expect(new Set(duplicated.ids).size).toBeLessThan(duplicated.ids.length);
    const duplicatedDlq = await outputs(control, dlqTopic);
    expect(new Set(duplicatedDlq.ids).size).toBeLessThan(duplicatedDlq.ids.length);

    // Second crash, still before any checkpoint, further into the input than the first.
    expect(await runWorker(dir, 12)).toBe('SIGKILL');
    expect(existsSync(path.join(chk, 'CURRENT'))).toBe(false);
    const second = await outputs(dir);
    expect(new Set(second.ids).size).toBe(second.ids.length);
    const secondDlq = await outputs(dir, dlqTopic);
    expect(new Set(secondDlq.ids).size).toBe(secondDlq.ids.length);
    expect(second.values.length).toBeGreaterThan(first.values.length);

    expect(await runWorker(dir, null)).toBeNull();
    const got = await outputs(dir);
    expect(new Set(got.ids).size).toBe(got.ids.length);
    expect(got.values).toEqual(expected.values);
    // Dead-letter records (side outputs, also with deterministic ids) are not repeated either.
    const dlq = await outputs(dir, dlqTopic);
    expect(new Set(dlq.ids).size).toBe(dlq.ids.length);
    expect(dlq.values).toEqual(expectedDlq.values);
    // The final checkpoint superseded the intent.
    expect(existsSync(path.join(chk, 'CURRENT'))).toBe(true);
    expect(existsSync(path.join(chk, 'INTENT'))).toBe(false);
  });
});

describe('crash before the first checkpoint, in process', () => {
  async function salesLog(): Promise<Log> {
    const log = createMemoryLog();
    await log.createTopic('golden.sales', { partitions: 1 });
    await log.append(goldenSales(3_000).map((value) => ({ topic: 'golden.sales', value })));
    return log;
  }
  const read = async (log: Log) =>
    (await log.fetch(goldenOutputTopic, 0, 0, { maxRecords: 100_000 })).map((r) => text(r.value)).sort();

  it("drops the dead run's outputs from the replay; a reset forgets them with the checkpoints", async () => {
    const straightLog = await salesLog();
    await runJob(goldenJob(straightLog), { once: true });
    const expected = await read(straightLog);

    const log = await salesLog();
    const dataDir = path.join(root, 'in-process');
    let batches = 0;
    await expect(
      runJob(goldenJob(log, { checkpointIntervalMs: 3_600_000 }), {
        dataDir,
        once: true,
        pollMaxRecords: 200,
        onBatch: () => {
          if (++batches === 5) throw new Error('simulated crash');
        },
      }),
    ).rejects.toThrow('simulated crash');
    expect((await read(log)).length).toBeGreaterThan(0);
    const job = goldenJob(log, { checkpointIntervalMs: 3_600_000 });
    await runJob(job, { dataDir, once: true, pollMaxRecords: 200 });
    expect(await read(log)).toEqual(expected);

    // After a reset the job starts over on purpose: it must write its outputs again.
    await resetJob(job, dataDir);
    await runJob(goldenJob(log), { dataDir, once: true });
    expect(await read(log)).toEqual([...expected, ...expected].sort());
  });
});
