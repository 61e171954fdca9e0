import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ParquetTableProvider } from '../../src/serve/index.js';
import { toJsonValue } from '../../src/sql/index.js';

/**
 * The table route and `/api/query` turn DuckDB values into JSON with one converter (the SQL
 * layer's), so a DATE is `YYYY-MM-DD` and a NaN double is `"NaN"` on both.
 */
describe('table rows as JSON', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'table-values-'));
    const tableDir = path.join(dir, 'silver', 'dated');
    await mkdir(tableDir, { recursive: true });
    const instance = await DuckDBInstance.create(':memory:');
    const duck = await instance.connect();
    await duck.run(
      `COPY (SELECT DATE '2026-11-22' AS day, CAST('NaN' AS DOUBLE) AS ratio, CAST('inf' AS DOUBLE) AS big, 7::BIGINT AS n)
       TO '${path.join(tableDir, 'part-0.parquet')}' (FORMAT parquet)`,
    );
    duck.closeSync();
    instance.closeSync();
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('ParquetTableProvider answers DATE and NaN as the SQL layer does', async () => {
    const provider = new ParquetTableProvider({ root: dir });
    try {
      const page = await provider.readRows({
        layer: 'silver',
        name: 'dated',
        columns: [],
        filters: [],
        sort: [],
        limit: 10,
        offset: 0,
      });
      expect(page.rows).toEqual([{ day: '2026-11-22', ratio: 'NaN', big: 'Infinity', n: 7 }]);
      expect(page.rows[0]?.ratio).toBe(toJsonValue(Number.NaN));
    } finally {
      provider.close();
    }
  });
});
