import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { batchHistoryFile, encodeRunRecord, jobStatusFile, type JobStatus } from '../../src/stream/index.js';
import {
  createStreamStatusProvider,
  formatStatus,
  readPipelineJobs,
  recordPipelineJobs,
} from '../../src/serve/index.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tributary-status-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function jobFile(
  job: string,
  counters: Partial<JobStatus['counters']>,
  extra: Partial<JobStatus> = {},
): JobStatus {
  return {
    job,
    state: 'running',
    bounded: false,
    counters: { in: 0, accepted: 0, filtered: 0, dlq: 0, late: 0, outputs: 0, failedOutputs: 0, ...counters },
    watermark: 1_795_000_000_000,
    lag: { 'sales/0': 5, 'sales/1': 7 },
    stateSize: 10,
    lastCheckpoint: { checkpointId: 12, durationMs: 30, sizeBytes: 100, atMs: 1_795_000_001_000 },
    error: null,
    updatedAtMs: 1_795_000_002_000,
    pid: process.pid,
    ...extra,
  };
}

/** A pid no process has: a child that has exited. */
async function deadPid(): Promise<number> {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

describe('stream status provider', () => {
  it('a job whose process is gone is stopped, last seen at its last status; pipelines as up built them', async () => {
    const file = jobStatusFile(dir, 'orphan');
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, JSON.stringify(jobFile('orphan', { in: 5 }, { pid: await deadPid() })));
    const legacy = jobStatusFile(dir, 'legacy');
    const { pid: _pid, ...withoutPid } = jobFile('legacy', { in: 1 });
    await writeFile(legacy, JSON.stringify(withoutPid));
    const alive = jobStatusFile(dir, 'alive');
    await writeFile(alive, JSON.stringify(jobFile('alive', { in: 1 })));
    await recordPipelineJobs(dir, { demo: ['orphan', 'legacy'] });
    const status = await createStreamStatusProvider({
      dataDir: dir,
      pipelines: [
        { name: 'demo', jobs: (await readPipelineJobs(dir)).demo },
        { name: 'never-ran', jobs: [] },
      ],
    }).getStatus();
    const state = Object.fromEntries(status.jobs.map((j) => [j.name, j.state]));
    expect(state).toEqual({ alive: 'running', legacy: 'stopped', orphan: 'stopped' });
    expect(status.pipelines.map((p) => [p.name, p.state])).toEqual([
      ['demo', 'stopped'],
      ['never-ran', 'idle'],
    ]);
    const text = formatStatus(status, [], 1_795_000_062_000);
    expect(text).toContain('stopped (last seen 60s ago)');
    expect(text).not.toContain('none registered');
  });

  it('reads job status files and batch history, groups jobs into pipelines, measures throughput', async () => {
    const file = jobStatusFile(dir, 'sales-per-minute');
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(
      file,
      JSON.stringify(jobFile('sales-per-minute', { in: 1000, dlq: 2, late: 3, outputs: 40 })),
    );
    await mkdir(path.dirname(batchHistoryFile(dir)), { recursive: true });
    await writeFile(
      batchHistoryFile(dir),
      encodeRunRecord({
        runId: 'r1',
        job: 'daily-revenue',
        partition: '2026-11-21',
        status: 'succeeded',
        attempts: 1,
        startedAtMs: 1_795_000_000_500,
        durationMs: 900,
        rowsIn: 10,
        rowsOut: 2,
        error: null,
        trigger: 'schedule',
      }),
    );
    let nowMs = 1_795_000_010_000;
    const provider = createStreamStatusProvider({
      dataDir: dir,
      nowMs: () => nowMs,
      pipelines: [
        { name: 'sales', title: 'Sales', jobs: ['sales-per-minute', 'daily-revenue'], tenant: 'acme' },
      ],
    });
    const first = await provider.getStatus();
    expect(first.jobs).toEqual([
      expect.objectContaining({
        name: 'sales-per-minute',
        pipeline: 'sales',
        state: 'running',
        recordsIn: 1000,
        consumerLag: 12,
        dlqCount: 2,
        lateCount: 3,
        tenant: 'acme',
        lastCheckpoint: { id: 12, atMs: 1_795_000_001_000, durationMs: 30 },
      }),
    ]);
    expect(first.pipelines).toEqual([
      expect.objectContaining({
        name: 'sales',
        state: 'running',
        lastRunMs: 1_795_000_000_500,
        lastRunStatus: 'ok',
        tenant: 'acme',
      }),
    ]);
    await writeFile(file, JSON.stringify(jobFile('sales-per-minute', { in: 3000 })));
    nowMs += 2000;
    const second = await provider.getStatus();
    expect(second.jobs[0].throughputPerSecond).toBe(1000);
    expect(formatStatus(second, [], nowMs)).toMatch(
      /sales-per-minute\s+sales\s+running\s+1000\.0\s+3000\s+12/,
    );
  });

  it('reports nothing (not an error) for a fresh data dir', async () => {
    const status = await createStreamStatusProvider({ dataDir: dir }).getStatus();
    expect(status.jobs).toEqual([]);
    expect(formatStatus(status)).toContain('Jobs: none');
  });
});
