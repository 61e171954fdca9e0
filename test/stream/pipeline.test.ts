import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { registerJobsCommands } from '../../src/cli/commands/jobs.js';
import { loadConfig } from '../../src/core/index.js';
import { createMemoryLog } from '../../src/log/index.js';
import {
  callbackSink,
  JobRegistry,
  orderStreamJobs,
  runPipelineOnce,
  runRegisteredPipeline,
  stream,
  topicSink,
  tumbling,
  type WindowResult,
} from '../../src/stream/index.js';

let dataDir: string;
beforeEach(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'tributary-pipeline-'));
});
afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

describe('runPipelineOnce', () => {
  it('runs chained stream stages upstream first, so everything flows through, then the batch DAG', async () => {
    const log = createMemoryLog();
    await log.createTopic('raw', { partitions: 2 });
    await log.append(
      Array.from({ length: 100 }, (_, i) => ({
        topic: 'raw',
        key: String(i),
        value: JSON.stringify({ n: i, ts: i * 100 }),
      })),
    );
    const windows: WindowResult<number>[] = [];
    const counted = stream('count-even')
      .from<{ n: number; ts: number }>(log, {
        topics: ['even'],
        timestamp: (v) => v.ts,
        outOfOrdernessMs: 10_000,
      })
      .keyBy(() => 'all')
      .window(tumbling({ sizeMs: 5_000 }))
      .count()
      .to(callbackSink((w) => void windows.push(w)));
    const even = stream('keep-even')
      .from<{ n: number; ts: number }>(log, { topics: ['raw'] })
      .filter((v) => v.n % 2 === 0)
      .to(topicSink('even'));
    expect(orderStreamJobs([counted, even]).map((j) => j.name)).toEqual(['keep-even', 'count-even']);
    const seen: number[] = [];
    const result = await runPipelineOnce(
      {
        streams: [counted, even],
        batch: [
          {
            name: 'report',
            run: () => (seen.push(windows.length), Promise.resolve({ rowsIn: windows.length })),
          },
        ],
      },
      { dataDir, partition: '2026-11-21' },
    );
    expect(result.ok).toBe(true);
    expect(result.streams.map((s) => s.job)).toEqual(['keep-even', 'count-even']);
    expect(windows.map((w) => [w.windowStart, w.value])).toEqual([
      [0, 25],
      [5_000, 25],
    ]);
    expect(seen).toEqual([2]);
    expect(result.batch[0]).toMatchObject({
      job: 'report',
      status: 'succeeded',
      rowsIn: 2,
      partition: '2026-11-21',
    });
  });
});

describe('runRegisteredPipeline', () => {
  it('builds a registered pipeline, runs it once and closes what it opened', async () => {
    const log = createMemoryLog();
    await log.createTopic('in', { partitions: 1 });
    await log.append([1, 2, 3].map((n) => ({ topic: 'in', value: JSON.stringify({ n }) })));
    const registry = new JobRegistry();
    const got: number[] = [];
    let closed = false;
    registry.register('demo', 'demo pipeline', () => ({
      stream: [
        stream('demo-copy')
          .from<{ n: number }>(log, { topics: ['in'] })
          .map((v) => v.n * 10)
          .to(callbackSink((v) => void got.push(v))),
      ],
      batch: [{ name: 'demo-batch', run: () => Promise.resolve({ rowsIn: got.length }) }],
      close: () => {
        closed = true;
        return Promise.resolve();
      },
    }));
    const config = loadConfig({ overrides: { dataDir }, dotenv: false, env: {} });
    const result = await runRegisteredPipeline(registry, 'demo', { config }, { once: true, partition: 'p' });
    expect(result.ok).toBe(true);
    expect(got).toEqual([10, 20, 30]);
    expect(result.batch[0]).toMatchObject({ job: 'demo-batch', rowsIn: 3 });
    expect(closed).toBe(true);
    await expect(runRegisteredPipeline(registry, 'nope', { config }, { once: true })).rejects.toThrow(
      /no pipeline nope/,
    );
  });
});

describe('tributary jobs', () => {
  it('lists, runs, backfills and shows history of registered batch jobs', async () => {
    const registry = new JobRegistry();
    const ran: string[] = [];
    registry.registerBatchJobs('sales', 'test pipeline', () => [
      {
        name: 'silver.sales',
        outputs: ['silver.sales'],
        run: (ctx) => (ran.push(`silver:${ctx.partition}`), Promise.resolve({ rowsOut: 3 })),
      },
      {
        name: 'gold.kpi',
        inputs: ['silver.sales'],
        schedule: '0 2 * * *',
        run: (ctx) => (ran.push(`gold:${ctx.partition}`), Promise.resolve({ rowsIn: 3, rowsOut: 1 })),
      },
    ]);
    const out: string[] = [];
    const write = vi
      .spyOn(process.stdout, 'write')
      .mockImplementation((chunk) => (out.push(String(chunk)), true));
    const cli = async (...args: string[]) => {
      const program = new Command('tributary').exitOverride();
      registerJobsCommands(
        program,
        { config: () => loadConfig({ overrides: { dataDir }, dotenv: false, env: {} }) },
        registry,
      );
      await program.parseAsync(['node', 'tributary', ...args]);
    };
    try {
      await cli('jobs', 'list', '--json');
      const listed = JSON.parse(out.join('')) as {
        job: string;
        dependsOn: string[];
        schedule: string | null;
      }[];
      expect(listed.map((j) => [j.job, j.dependsOn, j.schedule])).toEqual([
        ['silver.sales', [], null],
        ['gold.kpi', ['silver.sales'], '0 2 * * *'],
      ]);
      await cli('jobs', 'run', 'gold.kpi', '--partition', '2026-11-20', '--with-upstream');
      await cli('jobs', 'run', 'silver.sales', '--from', '2026-11-01', '--to', '2026-11-02');
      out.length = 0;
      await cli('jobs', 'history', '--json');
      const history = JSON.parse(out.join('')) as { job: string; partition: string; status: string }[];
      expect(history.map((h) => `${h.job}[${h.partition}] ${h.status}`)).toEqual([
        'silver.sales[2026-11-20] succeeded',
        'gold.kpi[2026-11-20] succeeded',
        'silver.sales[2026-11-01] succeeded',
        'silver.sales[2026-11-02] succeeded',
      ]);
    } finally {
      write.mockRestore();
    }
    expect(ran).toEqual(['silver:2026-11-20', 'gold:2026-11-20', 'silver:2026-11-01', 'silver:2026-11-02']);
  });
});
