/**
 * Issue 17 §3: start-up creates the lake's schemas and views from many jobs at once (every batch
 * query prepares the views it reads on its own DuckDB connection). DuckDB's catalog is
 * transactional, so two connections creating `bronze` at the same moment used to fail one of them
 * with "Catalog write-write conflict on create with "bronze"" (about one restart in 60).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalStorage, openLake } from '../../src/lake/index.js';

describe('lake views created concurrently', () => {
  it('never conflict in the catalog, however many queries prepare them at once', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'fault-catalog-'));
    const seed = await openLake({ storage: new LocalStorage(dir) });
    for (const name of ['a', 'b', 'c', 'd']) await seed.table('bronze', name).append([{ id: 1, name }]);
    await seed.close();
    try {
      // Fresh lakes (a restart each): 16 queries start together, as the jobs of `up` do.
      for (let round = 0; round < 5; round++) {
        const lake = await openLake({ storage: new LocalStorage(dir) });
        try {
          const results = await Promise.allSettled(
            Array.from({ length: 16 }, (_, i) =>
              lake
                .table('silver', `copy_${round}_${i}`)
                .writeQuery(
                  `SELECT id, name FROM bronze.${'abcd'[i % 4]} UNION ALL SELECT id, name FROM bronze.a`,
                ),
            ),
          );
          const failures = results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []));
          expect(failures).toEqual([]);
        } finally {
          await lake.close();
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
