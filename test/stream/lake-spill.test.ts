import { appendFile, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LakeSpill, type SpillBuffer } from '../../src/stream/lake-spill.js';

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
