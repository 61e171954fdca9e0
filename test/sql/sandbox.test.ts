import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTributaryError } from '../../src/core/index.js';
import { openSqlEngine, type SqlEngine } from '../../src/sql/index.js';
import { tempLake, type TempLake } from '../lake/helpers.js';

describe('SQL sandbox: the query path is read-only', () => {
  let t: TempLake;
  let sql: SqlEngine;
  let lakeFile: string;
  beforeAll(async () => {
    t = await tempLake();
    await t.lake
      .table('bronze', 'orders')
      .append([{ id: 1, date: '2026-11-22' }], { partitionBy: ['date'], source: 'test' });
    const snapshot = await t.lake.table('bronze', 'orders').snapshot();
    lakeFile = `${t.dir}/bronze/orders/${snapshot!.files[0].path}`;
    sql = await openSqlEngine(t.lake);
  });
  afterAll(async () => {
    sql.close();
    await t.close();
  });

  const refused: [string, string | (() => string), RegExp][] = [
    ['INSERT', 'insert into bronze.orders values (2)', /INSERT statements are refused/],
    ['CREATE TABLE', 'create table t as select 1', /CREATE statements are refused/],
    ['CREATE VIEW', 'create or replace view bronze.orders as select 1', /CREATE statements are refused/],
    ['DROP', 'drop view bronze.orders', /DROP statements are refused/],
    ['UPDATE', "update bronze.orders set date = 'x'", /UPDATE statements are refused/],
    ['DELETE', 'delete from bronze.orders', /DELETE statements are refused/],
    ['COPY TO', "copy (select 1) to '/tmp/tributary-escape.csv'", /COPY statements are refused/],
    ['COPY FROM', "copy bronze.orders from '/etc/passwd'", /COPY statements are refused/],
    ['EXPORT', "export database '/tmp/tributary-export'", /EXPORT statements are refused/],
    ['ATTACH', "attach '/tmp/other.duckdb' as other", /ATTACH statements are refused/],
    ['DETACH', 'detach memory', /DETACH statements are refused/],
    ['INSTALL', 'install httpfs', /INSTALL statements are refused/],
    ['LOAD', 'load httpfs', /LOAD statements are refused/],
    ['SET', 'set enable_external_access = true', /SET statements are refused/],
    ['RESET', 'reset threads', /RESET statements are refused/],
    ['PRAGMA', 'pragma threads = 1', /PRAGMA statements are refused/],
    ['CALL', 'call pragma_version()', /CALL statements are refused/],
    ['CHECKPOINT', 'checkpoint', /CHECKPOINT statements are refused/],
    ['CREATE SECRET', "create secret (type s3, key_id 'a', secret 'b')", /CREATE statements are refused/],
    ['two statements', 'select 1; select 2', /exactly one statement, got 2/],
    [
      'EXPLAIN ANALYZE of a write',
      "explain analyze copy (select 1) to '/tmp/x.csv'",
      /COPY statements are refused/,
    ],
    ['read_csv outside the lake', "select * from read_csv('/etc/passwd')", /read_csv\(\) is refused/],
    ['read_csv_auto', "select * from read_csv_auto('/etc/hosts')", /read_csv_auto\(\) is refused/],
    ['read_text', "select * from read_text('/etc/hostname')", /read_text\(\) is refused/],
    ['read_blob', "select * from read_blob('/etc/hostname')", /read_blob\(\) is refused/],
    ['read_json', "select * from read_json('/etc/os-release')", /read_json\(\) is refused/],
    ['glob', "select * from glob('/etc/*')", /glob\(\) is refused/],
    [
      'parquet_metadata',
      () => `select * from parquet_metadata('${lakeFile}')`,
      /parquet_metadata\(\) is refused/,
    ],
    [
      'read_parquet of a lake file',
      () => `select * from read_parquet('${lakeFile}')`,
      /read_parquet\(\) is refused/,
    ],
    [
      'replacement scan of a file path',
      "select * from '/etc/passwd'",
      /reading "\/etc\/passwd" directly is refused/,
    ],
    [
      'replacement scan of a relative file',
      "select * from 'data.csv'",
      /reading "data.csv" directly is refused/,
    ],
    ['query() running SQL from a string', "select * from query('select 1')", /query\(\) is refused/],
    [
      'file read hidden in a CTE',
      "with x as (select * from read_csv('/etc/passwd')) select * from x",
      /read_csv\(\) is refused/,
    ],
    [
      'file read hidden in a scalar subquery',
      "select (select count(*) from read_text('/etc/hostname')) as n",
      /read_text\(\) is refused/,
    ],
    [
      'file read hidden in a join',
      "select * from bronze.orders, read_csv('/etc/passwd')",
      /read_csv\(\) is refused/,
    ],
  ];

  for (const [kind, statement, message] of refused) {
    it(`refuses ${kind}`, async () => {
      const text = typeof statement === 'function' ? statement() : statement;
      const error = await sql.query(text).then(
        () => null,
        (e: unknown) => e,
      );
      expect(isTributaryError(error, 'SQL_REFUSED'), String(error)).toBe(true);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).toMatch(/read-only/);
    });
  }

  it('still works after all of the above: settings unchanged, view intact, nothing written', async () => {
    expect(await sql.query('select count(*) as n from bronze.orders')).toEqual([{ n: 1 }]);
    expect(await sql.query("select current_setting('enable_external_access') as ext")).toEqual([
      { ext: false },
    ]);
  });

  it('allows read-only forms: WITH, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN, range()', async () => {
    expect(await sql.query('with x as (select id from bronze.orders) select count(*) as n from x')).toEqual([
      { n: 1 },
    ]);
    const described = await sql.query('describe bronze.orders');
    expect(described.map((r) => r.column_name)).toEqual(['id', '_ingestion_timestamp', '_source', 'date']);
    expect((await sql.query('show tables')).length).toBeGreaterThanOrEqual(0);
    expect((await sql.query('summarize bronze.orders')).length).toBe(4);
    expect((await sql.query('explain select * from bronze.orders')).length).toBeGreaterThan(0);
    expect(await sql.query('select sum(range) as s from range(5)')).toEqual([{ s: 10 }]);
    expect(await sql.query("pivot bronze.orders on date in ('2026-11-22') using count(*)")).toEqual([
      { id: 1, _source: 'test', _ingestion_timestamp: expect.any(String), '2026-11-22': 1 },
    ]);
    await expect(sql.query('pivot bronze.orders on date using count(*)')).rejects.toThrow(
      /PIVOT needs an explicit list/,
    );
  });
});
