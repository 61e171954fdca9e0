import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTributaryError } from '../../src/core/index.js';
import { openLake, openStorage, type Lake } from '../../src/lake/index.js';
import { openSqlEngine, type SqlEngine } from '../../src/sql/index.js';
import { tempLake, type TempLake } from '../lake/helpers.js';
import { s3Credentials, startS3rver } from '../lake/s3rver.js';

describe('SQL engine over the lake', () => {
  let t: TempLake;
  let lake: Lake;
  let sql: SqlEngine;
  beforeAll(async () => {
    t = await tempLake();
    lake = t.lake;
    await lake.table('bronze', 'orders').append(
      Array.from({ length: 20 }, (_, i) => ({
        id: i,
        amount: i * 2.5,
        date: i < 10 ? '2026-11-22' : '2026-11-23',
        created: new Date(Date.UTC(2026, 10, 22, 10, 0, i)),
      })),
      { partitionBy: ['date'], source: 'test' },
    );
    sql = await openSqlEngine(lake, { refreshIntervalMs: 60_000 });
  });
  afterAll(async () => {
    sql.close();
    await t.close();
  });

  it('answers select 42 as x', async () => {
    expect(await sql.query('select 42 as x')).toEqual([{ x: 42 }]);
  });

  it('converts types: BIGINT, DECIMAL, timestamps, dates, lists, structs', async () => {
    const [row] = await sql.query(
      "select 9007199254740993::bigint as big, 12::bigint as small, 1.25::decimal(10,2) as d, timestamp '2026-11-22 10:00:00.123' as ts, date '2026-11-22' as dt, [1, 2]::bigint[] as l, {'a': 1} as s, null as n, time '10:11:12' as t",
    );
    expect(row).toEqual({
      big: '9007199254740993',
      small: 12,
      d: 1.25,
      ts: '2026-11-22T10:00:00.123Z',
      dt: '2026-11-22',
      l: [1, 2],
      s: { a: 1 },
      n: null,
      t: '10:11:12',
    });
  });

  it('exposes committed tables as views with partition columns and bronze metadata', async () => {
    expect(sql.tables()).toEqual(['bronze.orders']);
    const rows = await sql.query(
      'select date, count(*) as n, sum(amount) as total, min(created) as first_at, min(_source) as src from bronze.orders group by date order by date',
    );
    expect(rows).toEqual([
      { date: '2026-11-22', n: 10, total: 112.5, first_at: '2026-11-22T10:00:00.000Z', src: 'test' },
      { date: '2026-11-23', n: 10, total: 362.5, first_at: '2026-11-22T10:00:10.000Z', src: 'test' },
    ]);
  });

  it('prunes partitions: a filter on the partition column reads only its files', async () => {
    const rows = await sql.query(
      "explain analyze select count(*) from bronze.orders where date = '2026-11-23'",
    );
    const plan = rows.map((r) => String(r.explain_value)).join('\n');
    expect(plan).toMatch(/Scanning Files: 1\/2/);
  });

  it('runs concurrent queries', async () => {
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        sql.query('select count(*) as n from bronze.orders where id >= $1', [i]),
      ),
    );
    expect(results.map((r) => r[0]?.n)).toEqual([20, 19, 18, 17, 16, 15, 14, 13]);
  });

  it('refuses results larger than rowsMax without materializing them', async () => {
    expect(await sql.query('select * from range(5)', undefined, { rowsMax: 5 })).toHaveLength(5);
    await expect(sql.query('select * from range(100000000)', undefined, { rowsMax: 5000 })).rejects.toSatisfy(
      (e) => isTributaryError(e, 'PAYLOAD_TOO_LARGE') && /more than 5000 rows/.test((e as Error).message),
    );
  });

  it('binds parameters', async () => {
    expect(await sql.query('select count(*) as n from bronze.orders where id >= $1', [15])).toEqual([
      { n: 5 },
    ]);
  });

  it('sees new commits through the same lake at once', async () => {
    await lake.table('silver', 'orders').writeQuery('select id, amount from bronze.orders where id < 3');
    expect(await sql.query('select count(*) as n from silver.orders')).toEqual([{ n: 3 }]);
    await lake
      .table('bronze', 'orders')
      .append([{ id: 100, amount: 1, date: '2026-11-24' }], { source: 'late' });
    expect(await sql.query('select count(*) as n from bronze.orders')).toEqual([{ n: 21 }]);
  });

  it('a missing table lists the existing ones', async () => {
    await expect(sql.query('select * from silver.nope')).rejects.toSatisfy(
      (e) =>
        isTributaryError(e, 'NOT_FOUND') &&
        /silver\.nope does not exist; tables: bronze\.orders, silver\.orders/.test((e as Error).message),
    );
    await expect(sql.query('select * from nope')).rejects.toSatisfy(
      (e) => isTributaryError(e, 'NOT_FOUND') && /tables: bronze\.orders/.test((e as Error).message),
    );
  });

  it('reports SQL errors as INVALID_ARGUMENT', async () => {
    await expect(sql.query('select frobnicate(1)')).rejects.toSatisfy((e) =>
      isTributaryError(e, 'INVALID_ARGUMENT'),
    );
    await expect(sql.query('selec 1')).rejects.toSatisfy((e) => isTributaryError(e, 'INVALID_ARGUMENT'));
  });

  it('engine settings stay locked even for statements that reach DuckDB', async () => {
    // File access outside the lake is off at the engine level too (a second fence behind the parser).
    const rows = await sql.query(
      "select current_setting('enable_external_access') as ext, current_setting('lock_configuration') as locked",
    );
    expect(rows).toEqual([{ ext: false, locked: true }]);
  });
});

describe('SQL engine over an S3 lake (s3rver)', () => {
  it('fetches committed files into the cache and queries them', async () => {
    const server = await startS3rver('lake');
    const t = await tempLake();
    const storage = openStorage({
      storage: 's3://lake/warehouse',
      dataDir: t.dir,
      s3Endpoint: server.endpoint,
      s3ForcePathStyle: true,
      ...s3Credentials,
    });
    const lake = await openLake({ storage, workDir: path.join(t.dir, 's3-work') });
    try {
      await lake.table('bronze', 'events').append(
        [
          { id: 1, day: '2026-11-22' },
          { id: 2, day: '2026-11-23' },
        ],
        { partitionBy: ['day'], source: 's3' },
      );
      await lake.table('bronze', 'events').append([{ id: 3, day: '2026-11-23' }], { source: 's3' });
      const listed = await storage.list('bronze/events/');
      expect(listed.filter((o) => o.path.endsWith('.parquet'))).toHaveLength(3);
      const engine = await openSqlEngine(lake);
      try {
        expect(
          await engine.query('select day, count(*) as n from bronze.events group by day order by day'),
        ).toEqual([
          { day: '2026-11-22', n: 1 },
          { day: '2026-11-23', n: 2 },
        ]);
      } finally {
        engine.close();
      }
      const [info] = await lake.listTables();
      expect(info).toMatchObject({ table: 'bronze.events', rows: 3, files: 3 });
      // Overwrite a partition, then gc: the replaced file leaves the bucket and the local cache.
      await lake.table('bronze', 'events').overwrite([{ id: 4, day: '2026-11-23' }], { source: 's3' });
      const cacheFiles = async () =>
        (await readdir(lake.cacheDir, { recursive: true })).map(String).filter((f) => f.endsWith('.parquet'));
      expect(await cacheFiles()).toHaveLength(3);
      await lake.gc({ graceMs: 0, keepVersions: 1 });
      expect((await storage.list('bronze/events/')).filter((o) => o.path.endsWith('.parquet'))).toHaveLength(
        2,
      );
      expect(await cacheFiles()).toHaveLength(1);
    } finally {
      await lake.close();
      await t.close();
      await server.close();
    }
  });
});
