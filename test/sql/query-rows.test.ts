import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqlEngine, type SqlEngine } from '../../src/sql/index.js';
import { tempLake, type TempLake } from '../lake/helpers.js';

describe('SqlEngine.queryRows: a sandboxed statement over JS rows as the table batch', () => {
  let t: TempLake;
  let sql: SqlEngine;
  beforeAll(async () => {
    t = await tempLake();
    await t.lake.table('silver', 'users').append([{ id: 1, name: 'ann' }], { commitId: 'users-1' });
    sql = await openSqlEngine(t.lake, { refreshIntervalMs: 0 });
  });
  afterAll(async () => {
    sql.close();
    await t.close();
  });

  it('types columns from the values, keeps text with newlines intact, and joins lake tables', async () => {
    const rows = [
      {
        id: 1,
        score: 1,
        seen: new Date(Date.UTC(2026, 11, 3)),
        big: 2n ** 70n,
        tags: ['a'],
        note: 'two\nlines',
        flag: true,
      },
      { id: 2, score: 1.5, seen: null, big: 1n, tags: null, note: 'x "quoted"', flag: false },
    ];
    const result = await sql.queryRows(
      rows,
      `SELECT b.id, typeof(score) AS score_type, typeof(seen) AS seen_type, typeof(big) AS big_type, typeof(tags) AS tags_type,
         CAST(big AS VARCHAR) AS big, note, flag, u.name
       FROM batch b LEFT JOIN silver.users u ON u.id = b.id ORDER BY b.id`,
    );
    expect(result).toEqual([
      {
        id: 1,
        score_type: 'DOUBLE',
        seen_type: 'TIMESTAMP',
        big_type: 'HUGEINT',
        tags_type: 'JSON',
        big: String(2n ** 70n),
        note: 'two\nlines',
        flag: true,
        name: 'ann',
      },
      {
        id: 2,
        score_type: 'DOUBLE',
        seen_type: 'TIMESTAMP',
        big_type: 'HUGEINT',
        tags_type: 'JSON',
        big: '1',
        note: 'x "quoted"',
        flag: false,
        name: null,
      },
    ]);
  });

  it('adds named columns no row has, types all-NULL columns as told, and handles no rows', async () => {
    expect(
      await sql.queryRows([{ a: null }], 'SELECT typeof(a) AS a, typeof(missing) AS missing FROM batch', {
        columns: ['missing'],
        nullTypes: { a: 'BIGINT' },
      }),
    ).toEqual([{ a: 'BIGINT', missing: 'VARCHAR' }]);
    expect(await sql.queryRows([], 'SELECT count(*) AS n FROM batch', { columns: ['a'] })).toEqual([
      { n: 0 },
    ]);
  });

  it('runs only read-only statements, and the batch is gone after the query', async () => {
    await expect(sql.queryRows([{ a: 1 }], 'DELETE FROM batch')).rejects.toMatchObject({
      code: 'SQL_REFUSED',
    });
    await expect(sql.queryRows([{ a: 1 }], "SELECT * FROM read_csv('/etc/passwd')")).rejects.toMatchObject({
      code: 'SQL_REFUSED',
    });
    await expect(sql.query('SELECT * FROM batch')).rejects.toThrow(/batch/);
  });
});
