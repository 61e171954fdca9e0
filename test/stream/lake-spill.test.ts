import { appendFile, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalStorage, openLake } from '../../src/lake/index.js';
import { createMemoryLog } from '../../src/log/index.js';
import { checkpointDir, readCheckpoint, runJob } from '../../src/stream/index.js';
import { LakeSpill, type SpillBuffer } from '../../src/stream/lake-spill.js';
import { viewEvents, viewsJob, viewsTopic } from '../../src/stream/testing/partitioned-lake.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tributary-spill-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const rowsOf = (id: number, n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => ({ buffer: id, i: from + i, text: `tab\there, line\nhere, é` }));

describe('lake sink spill file', () => {
  it('writes each row once, restores the open buffers, and cuts off what a dead run appended after the checkpoint', async () => {
    const spill = new LakeSpill(dir, 0);
    const a: SpillBuffer = { id: 1, rows: rowsOf(1, 3), spilled: 0 };
    const b: SpillBuffer = { id: 2, rows: rowsOf(2, 2), spilled: 0 };
    const first = (await spill.write([a, b]))!;
    a.rows.push(...rowsOf(1, 2, 3));
    const second = (await spill.write([a, b]))!;
    // Only the two new rows were appended.
    const text = await readFile(path.join(dir, second.file), 'utf8');
    expect(text.split('\n').filter(Boolean)).toHaveLength(7);
    expect(second.bytes).toBeGreaterThan(first.bytes);
    expect(second.file).toBe(first.file);

    // The run goes on after checkpoint `second`, appends for the next one, then dies.
    a.rows.push(...rowsOf(1, 1, 5));
    const c: SpillBuffer = { id: 3, rows: rowsOf(3, 4), spilled: 0 };
    await spill.write([a, b, c]);
    expect((await stat(path.join(dir, second.file))).size).toBeGreaterThan(second.bytes);

    const restarted = new LakeSpill(dir, 0);
    const restored = await restarted.restore(
      second,
      new Map([
        [1, 5],
        [2, 2],
      ]),
    );
    expect(restored.get(1)).toEqual(rowsOf(1, 5));
    expect(restored.get(2)).toEqual(rowsOf(2, 2));
    expect((await stat(path.join(dir, second.file))).size).toBe(second.bytes);

    // A row count the file cannot give is refused, not half-restored.
    await expect(new LakeSpill(dir, 0).restore(second, new Map([[1, 6]]))).rejects.toThrow(
      /buffer 1 has 5 rows/,
    );
  });

  it('rewrites the live rows into a new generation when dead lines dominate, and collects the old one after the checkpoint', async () => {
    const spill = new LakeSpill(dir, 4);
    const rolled: SpillBuffer = { id: 1, rows: rowsOf(1, 30_000), spilled: 0 };
    const kept: SpillBuffer = { id: 2, rows: rowsOf(2, 10), spilled: 0 };
    const before = (await spill.write([rolled, kept]))!;
    // Buffer 1 rolled into a file; 30,000 dead lines against 11 live rows.
    kept.rows.push(...rowsOf(2, 1, 10));
    const after = (await spill.write([kept]))!;
    expect(after.file).not.toBe(before.file);
    expect((await readFile(path.join(dir, after.file), 'utf8')).split('\n').filter(Boolean)).toHaveLength(11);
    // Until a checkpoint naming `after` is durable, both generations stay.
    expect((await readdir(dir)).sort()).toEqual([before.file, after.file].sort());
    await spill.collect(after);
    expect(await readdir(dir)).toEqual([after.file]);
    // A restart from the checkpoint naming `after` reads the rewritten generation.
    const restored = await new LakeSpill(dir, 4).restore(after, new Map([[2, 11]]));
    expect(restored.get(2)).toEqual(rowsOf(2, 11));
  });

  it('a restore without spill state deletes leftovers of a run that died before its first checkpoint; other sinks are untouched', async () => {
    const mine = new LakeSpill(dir, 0);
    const other = new LakeSpill(dir, 1);
    await mine.write([{ id: 0, rows: rowsOf(0, 2), spilled: 0 }]);
    const kept = (await other.write([{ id: 0, rows: rowsOf(0, 2), spilled: 0 }]))!;
    await appendFile(path.join(dir, 'chk-0000000001.json'), '{}');
    expect(await new LakeSpill(dir, 0).restore(null, new Map())).toEqual(new Map());
    expect((await readdir(dir)).sort()).toEqual(['chk-0000000001.json', kept.file].sort());
  });
});

describe('lake sink checkpoints with a spill file', () => {
  it('a checkpoint names the spill file instead of carrying the buffered rows, and a restart commits each row once', async () => {
    const lake = await openLake({ storage: new LocalStorage(path.join(dir, 'lake')) });
    try {
      const events = viewEvents(20_000, { users: 5_000, days: 2 });
      const log = createMemoryLog();
      await log.createTopic(viewsTopic, { partitions: 1 });
      await log.append(events.map((e) => ({ topic: viewsTopic, key: e.user_id, value: JSON.stringify(e) })));
      const table = lake.table('silver', 'views');
      const dataDir = path.join(dir, 'data');
      let batches = 0;
      await expect(
        runJob(viewsJob(log, table), {
          dataDir,
          once: true,
          pollMaxRecords: 4_000,
          onBatch: () => {
            if (++batches === 3) throw new Error('simulated crash');
          },
        }),
      ).rejects.toThrow('simulated crash');
      // Checkpoints after batches 1 and 2: 8,000 rows buffered, none rolled yet.
      const checkpoint = (await readCheckpoint(checkpointDir(dataDir, 'views-to-lake')))!;
      const state = checkpoint.state.sinks[0] as {
        buffers: unknown[];
        spill: { file: string; bytes: number; buffers: [string, unknown, number, unknown, number, number][] };
      };
      expect(state.buffers).toEqual([]);
      expect(state.spill.buffers.reduce((n, b) => n + b[5], 0)).toBe(8_000);
      // The rows are in the spill file, not in the state (8,000 rows inline would be ~700 kB).
      expect(checkpoint.manifest.stateBytes).toBeLessThan(state.spill.bytes / 4);
      expect(await table.snapshot()).toBeNull();

      await runJob(viewsJob(log, table), { dataDir, once: true, pollMaxRecords: 4_000 });
      const snapshot = (await table.snapshot())!;
      expect(snapshot.files.reduce((n, f) => n + f.rows, 0)).toBe(events.length);
      // One file per partition: the buffered rows came back from the spill file.
      expect(new Set(snapshot.files.map((f) => f.partition)).size).toBe(snapshot.files.length);
      // The final checkpoint has nothing buffered: its spill files are gone.
      const left = (await readdir(checkpointDir(dataDir, 'views-to-lake'))).filter((n) =>
        n.endsWith('.spill'),
      );
      expect(left).toEqual([]);
    } finally {
      await lake.close();
    }
  }, 120_000);
});
