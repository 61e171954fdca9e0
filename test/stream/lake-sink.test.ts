import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { limits } from '../../src/core/index.js';
import { LocalStorage, openLake, type Lake } from '../../src/lake/index.js';
import { createMemoryLog, type Log } from '../../src/log/index.js';
import {
  formatTimePartition,
  lakeSink,
  lakeTableTarget,
  runJob,
  stream,
  type SinkContext,
  type StreamJob,
  type TwoPhaseTable,
} from '../../src/stream/index.js';

interface Event {
  id: number;
  user: string;
  ts: number;
}

let dir: string;
let lake: Lake;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tributary-lakesink-'));
  lake = await openLake({ storage: new LocalStorage(path.join(dir, 'lake')) });
});
afterEach(async () => {
  await lake.close();
  await rm(dir, { recursive: true, force: true });
});

const t0 = Date.UTC(2026, 10, 22, 0, 0, 0);

function job(log: Log): StreamJob {
  return stream('events-to-lake', { checkpointIntervalMs: 0 })
    .from<Event>(log, { topics: ['events'], timestamp: (e) => e.ts })
    .to(
      lakeSink(lakeTableTarget(lake.table('bronze', 'events'), { source: 'events' }), {
        flushSize: 150,
        rotateIntervalMs: 2 * 3_600_000,
      }),
    );
}

describe('lake sink', () => {
  it('compacts a partition after enough small files were committed to it, leaving full ones', async () => {
    const log = createMemoryLog();
    await log.createTopic('events', { partitions: 1 });
    await log.append(
      Array.from({ length: 60 }, (_, i) => ({
        topic: 'events',
        value: JSON.stringify({ id: i, user: 'u', ts: t0 + i * 1000 }),
      })),
    );
    const run = async (name: string, options: { flushSize: number; rotateIntervalMs?: number }) => {
      const table = lake.table('bronze', name);
      const job = stream(name, { checkpointIntervalMs: 0 })
        .from<Event>(log, { topics: ['events'], timestamp: (e) => e.ts })
        .to(lakeSink(lakeTableTarget(table), { ...options, compactAfterFiles: 3 }));
      await runJob(job, { dataDir: path.join(dir, name), once: true, pollMaxRecords: 10 });
      const files = (await table.snapshot())!.files;
      expect(files.reduce((n, f) => n + f.rows, 0)).toBe(60);
      return files;
    };
    // Rolled every 5 s of event time: twelve 5-row files, one commit per checkpoint; every third
    // small file triggers a merge of the partition's small files.
    const small = await run('small_files', { flushSize: 100, rotateIntervalMs: 5_000 });
    expect(small.length).toBeLessThan(12);
    // Rolled full (10 rows each): nothing to merge, the six files stay as written.
    const full = await run('full_files', { flushSize: 10 });
    expect(full.map((f) => f.rows)).toEqual([10, 10, 10, 10, 10, 10]);
  });

  it('formats Kafka Connect style time partitions', () => {
    expect(
      formatTimePartition("'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH", Date.UTC(2026, 0, 2, 3, 4)),
    ).toEqual({ year: '2026', month: '01', day: '02', hour: '03' });
  });

  it('partitions by event hour, rolls by count, and commits exactly once across a crash', async () => {
    const log = createMemoryLog();
    await log.createTopic('events', { partitions: 1 });
    // 900 events over 3 hours with ±5 min of disorder, so hours interleave at their boundaries.
    const events: Event[] = Array.from({ length: 900 }, (_, i) => ({
      id: i,
      user: `u${i % 7}`,
      ts: t0 + 300_000 + i * 12_000 + (((i * 7919) % 600) - 300) * 1000,
    }));
    await log.append(events.map((e) => ({ topic: 'events', value: JSON.stringify(e) })));

    let batches = 0;
    const dataDir = path.join(dir, 'data');
    await expect(
      runJob(job(log), {
        dataDir,
        once: true,
        pollMaxRecords: 100,
        onBatch: () => {
          if (++batches === 5) throw new Error('simulated crash');
        },
      }),
    ).rejects.toThrow('simulated crash');
    const status = await runJob(job(log), { dataDir, once: true, pollMaxRecords: 100 });
    expect(status.state).toBe('finished');

    const snapshot = await lake.table('bronze', 'events').snapshot();
    expect(snapshot).not.toBeNull();
    const files = snapshot!.files;
    expect(files.reduce((n, f) => n + f.rows, 0)).toBe(900);
    expect(new Set(files.map((f) => f.partition))).toEqual(
      new Set([
        'year=2026/month=11/day=22/hour=00',
        'year=2026/month=11/day=22/hour=01',
        'year=2026/month=11/day=22/hour=02',
        'year=2026/month=11/day=22/hour=03',
      ]),
    );
    // Buffers per partition: interleaved hours do not make tiny files.
    for (const f of files) expect(f.rows).toBeLessThanOrEqual(150);
    expect(files.length).toBeLessThanOrEqual(9);
  });
});

describe('lake sink rolls behind the input', () => {
  /** A table whose stageMany waits until the test releases it (or fails when told to). */
  function slowTable() {
    const calls: { groups: number; release: (error?: Error) => void }[] = [];
    const committed: string[][] = [];
    const table: TwoPhaseTable = {
      name: 'bronze.slow',
      stage: () => Promise.reject(new Error('stageMany is used')),
      stageMany: (groups, { fileName }) =>
        new Promise((resolve, reject) => {
          calls.push({
            groups: groups.length,
            release: (error) =>
              error
                ? reject(error)
                : resolve(
                    groups.map((g, i) => ({
                      path: `${fileName}-${i}`,
                      partition: g.partition,
                      rows: g.rows.length,
                    })),
                  ),
          });
        }),
      commit: ({ add }) => {
        committed.push(add.map((f) => f.path));
        return Promise.resolve();
      },
    };
    return { table, calls, committed };
  }

  const context: SinkContext = {
    jobName: 'slow',
    sinkIndex: 0,
    now: () => 0,
    bounded: true,
    restored: undefined,
    intent: undefined,
    epoch: null,
    log: null,
  };
  const settle = () => new Promise((resolve) => setImmediate(resolve));

  it('returns from flush while the roll writes, and the checkpoint waits for its files', async () => {
    const { table, calls, committed } = slowTable();
    const sink = lakeSink<Record<string, unknown>>(table, { flushSize: 2, pathFormat: null });
    await sink.open(context);
    sink.write({ n: 1 }, t0, null, '');
    sink.write({ n: 2 }, t0, null, '');
    await sink.flush(); // the full buffer starts rolling; flush does not wait for it
    expect(calls).toHaveLength(1);
    sink.write({ n: 3 }, t0, null, '');
    sink.write({ n: 4 }, t0, null, '');
    // The next flush waits for the roll before it (one roll at a time), then starts its own.
    const second = sink.flush();
    await settle();
    expect(calls).toHaveLength(1);
    calls[0].release();
    await second;
    expect(calls).toHaveLength(2);
    const state = sink.preCommit(1);
    await settle();
    calls[1].release();
    const staged = (await state) as { pending: { path: string }[] };
    expect(staged.pending.map((f) => f.path)).toEqual(['slow-s0-000001-0', 'slow-s0-000002-0']);
    await sink.commit(1, staged);
    expect(committed).toEqual([['slow-s0-000001-0', 'slow-s0-000002-0']]);
    await sink.close();
  });

  /** Three partitions of 20,000 rows each, open in a sink that rolls them only at the end of input. */
  async function threeLargePartitions(table: TwoPhaseTable) {
    const sink = lakeSink<Record<string, unknown>>(table, {
      flushSize: 1_000_000,
      pathFormat: null,
      partitionBy: ['p'],
    });
    await sink.open(context);
    for (const p of ['a', 'b', 'c']) for (let n = 0; n < 20_000; n++) sink.write({ p, n }, t0, null, '');
    await sink.flush();
    return sink;
  }

  it('stages a roll of many rows in chunks written together, committing them in order', async () => {
    // Chunks close at the first buffer that reaches the limit: [a, b] and [c].
    expect(limits.lakeSinkRollChunkRowsMin).toBeGreaterThan(20_000);
    expect(limits.lakeSinkRollChunkRowsMin).toBeLessThanOrEqual(40_000);
    const { table, calls, committed } = slowTable();
    const sink = await threeLargePartitions(table);
    const ended = sink.endOfInput!();
    await settle();
    // Both writes run at once: the second started before the first finished.
    expect(calls.map((c) => c.groups)).toEqual([2, 1]);
    calls[1].release();
    calls[0].release();
    await ended;
    const staged = (await sink.preCommit(1)) as { pending: { path: string; rows: number }[] };
    expect(staged.pending.map((f) => [f.path, f.rows])).toEqual([
      ['slow-s0-000001-0', 20_000],
      ['slow-s0-000001-1', 20_000],
      ['slow-s0-000002-0', 20_000],
    ]);
    await sink.commit(1, staged);
    expect(committed).toEqual([['slow-s0-000001-0', 'slow-s0-000001-1', 'slow-s0-000002-0']]);
    await sink.close();
  });

  it('fails a chunked roll when one chunk fails, after every chunk has settled', async () => {
    const { table, calls, committed } = slowTable();
    const sink = await threeLargePartitions(table);
    let ended = false;
    const end = sink.endOfInput!().finally(() => (ended = true));
    end.catch(() => {});
    await settle();
    calls[0].release(new Error('disk full'));
    await settle();
    // The other chunk is still writing: the roll has not failed yet.
    expect(ended).toBe(false);
    calls[1].release();
    await expect(end).rejects.toThrow('disk full');
    expect(committed).toEqual([]);
    await sink.close();
  });

  it('fails the checkpoint when a roll behind the input failed, committing nothing', async () => {
    const { table, calls, committed } = slowTable();
    const sink = lakeSink<Record<string, unknown>>(table, { flushSize: 1, pathFormat: null });
    await sink.open(context);
    sink.write({ n: 1 }, t0, null, '');
    await sink.flush();
    calls[0].release(new Error('disk full'));
    await expect(sink.preCommit(1)).rejects.toThrow('disk full');
    expect(committed).toEqual([]);
    await sink.close();
  });
});
