import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock, TributaryError } from '../../core/index.js';
import { BatchDag, dateRange, sqlJob, type BatchJob } from './dag.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tributary-dag-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function job(name: string, extra: Partial<BatchJob>, log: string[]): BatchJob {
  return {
    name,
    backoffMs: 0,
    run: (ctx) => {
      log.push(`${name}:${ctx.partition}:${ctx.attempt}`);
      return Promise.resolve({ rowsIn: 10, rowsOut: 2 });
    },
    ...extra,
  };
}

describe('BatchDag', () => {
  it('orders jobs by inputs/outputs and explicit dependencies', async () => {
    const log: string[] = [];
    const dag = new BatchDag([
      job('gold', { inputs: ['silver.sales'], outputs: ['gold.kpi'] }, log),
      job('report', { dependsOn: ['gold'] }, log),
      job('silver', { inputs: ['bronze.orders'], outputs: ['silver.sales'] }, log),
    ]);
    expect(dag.order()).toEqual(['silver', 'gold', 'report']);
    const records = await dag.runAll({ partition: '2026-11-21' });
    expect(records.map((r) => r.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    expect(log).toEqual(['silver:2026-11-21:1', 'gold:2026-11-21:1', 'report:2026-11-21:1']);
  });

  it('refuses cycles and unknown dependencies', () => {
    expect(
      () =>
        new BatchDag([
          job('a', { inputs: ['t2'], outputs: ['t1'] }, []),
          job('b', { inputs: ['t1'], outputs: ['t2'] }, []),
        ]),
    ).toThrow(/cycle/);
    expect(() => new BatchDag([job('a', { dependsOn: ['nope'] }, [])])).toThrow(TributaryError);
    expect(() => new BatchDag([job('a', { schedule: 'every day' }, [])])).toThrow(/cron/);
  });

  it('retries with backoff, records history, skips downstream of a failure', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 22));
    let calls = 0;
    const log: string[] = [];
    const flaky: BatchJob = {
      name: 'flaky',
      outputs: ['silver.x'],
      retries: 2,
      backoffMs: 0,
      run: () => {
        calls++;
        if (calls < 3) throw new Error(`transient ${calls}`);
        return Promise.resolve({ rowsIn: 5, rowsOut: 5 });
      },
    };
    const broken: BatchJob = {
      name: 'broken',
      outputs: ['silver.y'],
      retries: 3,
      run: () => Promise.reject(new TributaryError('VALIDATION_FAILED', 'column amount missing')),
    };
    const after = job('after', { inputs: ['silver.y'] }, log);
    const historyFile = path.join(dir, 'history.jsonl');
    const dag = new BatchDag([flaky, broken, after], { historyFile, clock });
    const records = await dag.runAll({ partition: 'p1' });
    expect(records.map((r) => [r.job, r.status, r.attempts])).toEqual([
      ['flaky', 'succeeded', 3],
      ['broken', 'failed', 1],
      ['after', 'skipped', 0],
    ]);
    expect(records[1].error).toContain('column amount missing');
    expect(log).toEqual([]);
    const history = await new BatchDag([], { historyFile }).listHistory();
    expect(history.map((r) => r.job)).toEqual(['flaky', 'broken', 'after']);
    expect(history[0]).toMatchObject({ rowsIn: 5, rowsOut: 5, partition: 'p1', trigger: 'manual' });
    expect((await readFile(historyFile, 'utf8')).trim().split('\n')).toHaveLength(3);
  });

  it('backfills a date range and gives each run a commit id stable across its retries', async () => {
    const ids: string[] = [];
    let failOnce = true;
    const dag = new BatchDag([
      {
        name: 'daily',
        backoffMs: 0,
        run: (ctx) => {
          ids.push(`${ctx.partition} ${ctx.commitId}`);
          if (failOnce) {
            failOnce = false;
            throw new Error('flap');
          }
          return Promise.resolve({});
        },
      },
    ]);
    const records = await dag.backfill('daily', dateRange('2026-11-20', '2026-11-22'));
    expect(records.map((r) => r.partition)).toEqual(['2026-11-20', '2026-11-21', '2026-11-22']);
    expect(ids[0].split(' ')[1]).toBe(ids[1].split(' ')[1]);
    expect(new Set(ids.map((i) => i.split(' ')[1])).size).toBe(3);
    expect(() => dateRange('2026-11-22', '2026-11-20')).toThrow(/before/);
  });

  it('substitutes the partition into SQL jobs and runs cron schedules on the injected clock', async () => {
    const statements: string[] = [];
    const clock = new ManualClock(Date.UTC(2026, 10, 22, 1, 30));
    const dag = new BatchDag(
      [
        sqlJob({
          name: 'gold.daily',
          schedule: '0 2 * * *',
          sql: "SELECT * FROM t WHERE day = {partition} AND note <> 'x'",
          engine: { execute: (sql) => (statements.push(sql), Promise.resolve({ rowsOut: 1 })) },
        }),
      ],
      { clock },
    );
    expect(dag.nextRuns(clock.now())).toEqual([{ job: 'gold.daily', atMs: Date.UTC(2026, 10, 22, 2, 0) }]);
    const controller = new AbortController();
    const scheduler = dag.runScheduler(controller.signal);
    clock.advance(30 * 60_000);
    for (let i = 0; i < 20 && statements.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    controller.abort();
    clock.advance(86_400_000);
    await scheduler;
    expect(statements[0]).toBe("SELECT * FROM t WHERE day = '2026-11-21' AND note <> 'x'");
    expect((await dag.listHistory())[0]).toMatchObject({
      trigger: 'schedule',
      partition: '2026-11-21',
      status: 'succeeded',
    });
  });
});

describe('BatchDag: runs on input commits', () => {
  it('runs a job once per burst of commits of its inputs, debounced, and ignores other tables', async () => {
    const log: string[] = [];
    let listener: ((event: { table: string }) => void) | undefined;
    const commits = {
      onCommit(l: (event: { table: string }) => void) {
        listener = l;
        return () => (listener = undefined);
      },
    };
    const ran: string[] = [];
    const dag = new BatchDag([
      job(
        'gold',
        { inputs: ['silver.reviews'], outputs: ['gold.summary'], onInputCommit: { debounceMs: 20 } },
        log,
      ),
      job('report', { inputs: ['silver.reviews'] }, log),
    ]);
    const controller = new AbortController();
    const watching = dag.runOnInputCommits(commits, controller.signal);
    const ranOnce = new Promise<void>((resolve) => {
      const original = dag.run.bind(dag);
      dag.run = async (name, options) => {
        const record = await original(name, options);
        ran.push(`${name}:${record.trigger}:${record.status}`);
        resolve();
        return record;
      };
    });
    listener!({ table: 'silver.reviews' });
    listener!({ table: 'bronze.other' });
    listener!({ table: 'silver.reviews' });
    listener!({ table: 'silver.reviews' });
    await ranOnce;
    controller.abort();
    await watching;
    expect(ran).toEqual(['gold:commit:succeeded']);
    expect(log).toEqual(['gold:null:1']);
    expect(listener).toBeUndefined();
  });
});
