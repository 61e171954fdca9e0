import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStorage, openLake, type Lake } from '../../src/lake/index.js';
import { createLakeTableProvider } from '../../src/serve/index.js';
import { openSqlEngine, toJsonValue, type SqlEngine } from '../../src/sql/index.js';

/**
 * The table route and `/api/query` turn DuckDB values into JSON with one converter (the SQL
 * layer's), so a DATE is `YYYY-MM-DD` and a NaN double is `"NaN"` on both.
 */
describe('table rows as JSON', () => {
  let dir: string;
  let lake: Lake;
  let sql: SqlEngine;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'table-values-'));
    lake = await openLake({ storage: new LocalStorage(path.join(dir, 'lake')) });
    await lake
      .table('silver', 'dated')
      .writeQuery(
        `SELECT DATE '2026-11-22' AS day, CAST('NaN' AS DOUBLE) AS ratio, CAST('inf' AS DOUBLE) AS big, 7::BIGINT AS n`,
      );
    sql = await openSqlEngine(lake, { refreshIntervalMs: 0 });
  });
  afterAll(async () => {
    sql?.close();
    await lake?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('the lake table provider answers DATE and NaN as the SQL layer does', async () => {
    const page = await createLakeTableProvider({ lake, sql }).readRows({
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
  });
});
