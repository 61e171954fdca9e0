import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isTributaryError } from '../../src/core/index.js';
import { LocalStorage, openLake, type Lake } from '../../src/lake/index.js';
import { queryLake, tempLake, type TempLake } from './helpers.js';

const orders = (n: number, date: string, offset = 0) =>
  Array.from({ length: n }, (_, i) => ({
    id: offset + i,
    amount: (offset + i) * 1.5,
    customer: `c${(offset + i) % 3}`,
    date,
  }));

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(path.relative(dir, path.join(entry.parentPath, entry.name)));
  }
  return out.sort();
}

describe('lake tables', () => {
  let t: TempLake;
  let lake: Lake;
  beforeEach(async () => {
    t = await tempLake();
    lake = t.lake;
  });
  afterEach(async () => t.close());

  it('appends partitioned Parquet with Hive paths, _SUCCESS markers and bronze columns', async () => {
    const table = lake.table('bronze', 'orders');
    const result = await table.append(orders(10, '2026-11-22'), {
      partitionBy: ['date'],
      source: 'northwind',
      commitId: 'load-1',
    });
    expect(result).toMatchObject({
      applied: true,
      version: 1,
      filesAdded: 1,
      rowsAdded: 10,
      partitions: ['date=2026-11-22'],
    });
    await table.append(orders(5, '2026-11-23', 100), { source: 'northwind' });
    const files = await walk(path.join(t.dir, 'bronze', 'orders'));
    expect(files.filter((f) => f.endsWith('.parquet')).map((f) => path.dirname(f))).toEqual([
      'date=2026-11-22',
      'date=2026-11-23',
    ]);
    expect(files).toContain('date=2026-11-22/_SUCCESS');
    expect(files).toContain('date=2026-11-23/_SUCCESS');
    expect(files).toContain('_manifests/00000000000000000002.json');
    expect(await readFile(path.join(t.dir, 'bronze', 'orders', 'date=2026-11-22', '_SUCCESS'), 'utf8')).toBe(
      '{"version":1,"commitId":"load-1"}\n',
    );
    expect(await readFile(path.join(t.dir, '_catalog', 'bronze.orders'), 'utf8')).toBe('bronze.orders\n');
    const rows = await queryLake(
      lake,
      'select date, count(*)::int n, min(_source) s, count(_ingestion_timestamp)::int ts from bronze.orders group by date order by date',
    );
    expect(rows).toEqual([
      { date: '2026-11-22', n: 10, s: 'northwind', ts: 10 },
      { date: '2026-11-23', n: 5, s: 'northwind', ts: 5 },
    ]);
    const [info] = await lake.listTables();
    expect(info).toMatchObject({
      table: 'bronze.orders',
      version: 2,
      rows: 15,
      files: 2,
      partitionColumns: ['date'],
    });
    expect(info.partitions.map((p) => [p.path, p.rows, p.values])).toEqual([
      ['date=2026-11-22', 10, { date: '2026-11-22' }],
      ['date=2026-11-23', 5, { date: '2026-11-23' }],
    ]);
    expect(info.schema.map((c) => `${c.name}:${c.type}`)).toEqual([
      'id:DOUBLE',
      'amount:DOUBLE',
      'customer:VARCHAR',
      'date:VARCHAR',
      '_ingestion_timestamp:TIMESTAMP',
      '_source:VARCHAR',
    ]);
  });

  it('supports several partition levels and awkward values', async () => {
    const table = lake.table('silver', 'events');
    const rows = [
      { year: 2026, month: 11, city: 'São Paulo', v: 1 },
      { year: 2026, month: 11, city: 'a/b=c', v: 2 },
      { year: 2026, month: 12, city: null, v: 3 },
    ];
    await table.append(rows, { partitionBy: ['year', 'month', 'city'] });
    const snapshot = await table.snapshot();
    expect(snapshot!.files.map((f) => f.partition).sort()).toEqual([
      'year=2026/month=11/city=S%C3%A3o%20Paulo',
      'year=2026/month=11/city=a%2Fb%3Dc',
      'year=2026/month=12/city=__HIVE_DEFAULT_PARTITION__',
    ]);
    const back = await queryLake(
      lake,
      'select year::int as "year", month::int as "month", city, v from silver.events order by v',
    );
    expect(back).toEqual([
      { year: 2026, month: 11, city: 'São Paulo', v: 1 },
      { year: 2026, month: 11, city: 'a/b=c', v: 2 },
      { year: 2026, month: 12, city: null, v: 3 },
    ]);
  });

  it('a partition column NULL in every row so far takes the type of its first value', async () => {
    const table = lake.table('silver', 'levels');
    await table.append([{ v: 1, level: null }], { partitionBy: ['level'] });
    expect((await table.snapshot())!.schema.find((c) => c.name === 'level')?.type).toBe('"NULL"');
    expect(await queryLake(lake, 'select v::int v, level from silver.levels')).toEqual([
      { v: 1, level: null },
    ]);
    await table.append([{ v: 2, level: 3 }], { partitionBy: ['level'] });
    expect((await table.snapshot())!.schema.find((c) => c.name === 'level')?.type).toBe('BIGINT');
    expect(
      await queryLake(lake, 'select v::int v, level, typeof(level) t from silver.levels order by v'),
    ).toEqual([
      { v: 1, level: null, t: 'BIGINT' },
      { v: 2, level: '3', t: 'BIGINT' },
    ]);
  });

  it('overwrites whole partitions; rerunning the overwrite is idempotent', async () => {
    const table = lake.table('silver', 'daily');
    await table.append(orders(4, '2026-11-22'), { partitionBy: ['date'] });
    await table.append(orders(4, '2026-11-23'), { partitionBy: ['date'] });
    const replacement = orders(2, '2026-11-22', 50);
    await table.overwrite(replacement);
    await table.overwrite(replacement);
    const rows = await queryLake(
      lake,
      'select date, count(*)::int n, min(id)::int lo from silver.daily group by date order by date',
    );
    expect(rows).toEqual([
      { date: '2026-11-22', n: 2, lo: 50 },
      { date: '2026-11-23', n: 4, lo: 0 },
    ]);
    expect((await table.snapshot())!.files).toHaveLength(2);
    // Explicit partition list with no new rows truncates that partition.
    await table.commit({ commitId: 'drop-23', overwritePartitions: [{ date: '2026-11-23' }] });
    expect(await queryLake(lake, 'select count(*)::int n from silver.daily')).toEqual([{ n: 2 }]);
    // Whole-table overwrite.
    await table.overwrite(orders(1, '2026-12-01'), { partitions: 'all' });
    expect(await queryLake(lake, 'select date from silver.daily')).toEqual([{ date: '2026-12-01' }]);
  });

  it('recognises a retried commit id and applies it once', async () => {
    const table = lake.table('gold', 'kpis');
    const pending = await table.stage([{ k: 'a', v: 1 }]);
    const first = await table.commit({ commitId: 'batch-7', add: pending });
    const again = await table.commit({ commitId: 'batch-7', add: pending });
    expect(first.applied).toBe(true);
    expect(again).toMatchObject({ applied: false, version: first.version });
    // A retry that restaged the data under new names is recognised too, and its files discarded.
    const retry = await table.append([{ k: 'a', v: 1 }], { commitId: 'batch-7' });
    expect(retry.applied).toBe(false);
    expect(await queryLake(lake, 'select count(*)::int n from gold.kpis')).toEqual([{ n: 1 }]);
    await table.gc({ graceMs: 0 });
    expect((await walk(path.join(t.dir, 'gold', 'kpis'))).filter((f) => f.endsWith('.parquet'))).toHaveLength(
      1,
    );
  });

  it('staged files are invisible until committed and garbage-collected when abandoned', async () => {
    const table = lake.table('bronze', 'staged');
    await table.append([{ a: 1 }], { source: 's' });
    const pending = await table.stage([{ a: 2 }, { a: 3 }], { source: 's', fileName: 'job-1-ckpt-1' });
    expect(pending.files[0].path).toBe('part-job-1-ckpt-1-0.parquet');
    expect(await queryLake(lake, 'select a from bronze.staged')).toEqual([{ a: 1 }]);
    const kept = await table.gc({ graceMs: 60_000 });
    expect(kept.deletedFiles).toEqual([]);
    await table.commit({ commitId: 'ckpt-1', add: pending });
    expect(await queryLake(lake, 'select a from bronze.staged order by a')).toEqual([
      { a: 1 },
      { a: 2 },
      { a: 3 },
    ]);
    const orphan = await table.stage([{ a: 4 }], { source: 's' });
    const gc = await table.gc({ graceMs: 0 });
    expect(gc.deletedFiles).toEqual([orphan.files[0].path]);
    await expect(table.commit({ commitId: 'late', add: orphan })).rejects.toSatisfy((e) =>
      isTributaryError(e, 'NOT_FOUND'),
    );
  });

  it('restaging a deterministic file name after its commit keeps the committed object unchanged', async () => {
    const table = lake.table('bronze', 'det');
    const first = await table.stage([{ a: 1 }], { source: 's', fileName: 'job-9-ckpt-3' });
    await table.commit({ commitId: 'job-9-ckpt-3', add: first });
    const file = path.join(t.dir, 'bronze', 'det', first.files[0].path);
    const before = await readFile(file);
    // After a crash the engine stages the same checkpoint again and retries the commit.
    const again = await table.stage([{ a: 1 }], { source: 's', fileName: 'job-9-ckpt-3' });
    expect(again.files).toEqual(first.files);
    expect((await table.commit({ commitId: 'job-9-ckpt-3', add: again })).applied).toBe(false);
    expect(await readFile(file)).toEqual(before);
    await table.abort(again);
    expect(await queryLake(lake, 'select count(*)::int n from bronze.det')).toEqual([{ n: 1 }]);
  });

  it('writeQuery into bronze adds _ingestion_timestamp and _source', async () => {
    await lake.table('bronze', 'from_sql').writeQuery('select 1 as id', { source: 'sql-import' });
    expect(
      await queryLake(
        lake,
        'select id, _source, _ingestion_timestamp is not null as ts from bronze.from_sql',
      ),
    ).toEqual([{ id: 1, _source: 'sql-import', ts: true }]);
  });

  it('stores declared types: DECIMAL from exact strings, DATE, TIMESTAMP from ISO strings, BLOB', async () => {
    const table = lake.table('bronze', 'typed');
    const types = { price: 'DECIMAL(18,2)', day: 'DATE', seen_at: 'TIMESTAMP', raw: 'BLOB', n: 'INTEGER' };
    await table.append(
      [
        {
          price: '12345678901234.56',
          day: '2026-11-22',
          seen_at: '2026-11-22T10:00:00Z',
          raw: new Uint8Array([1, 2]),
          n: 7,
        },
        {
          price: 0.5,
          day: new Date(Date.UTC(2026, 0, 1)),
          seen_at: Date.UTC(2026, 0, 1, 12),
          raw: null,
          n: null,
        },
      ],
      { source: 'pg', types },
    );
    expect(
      await queryLake(
        lake,
        'select price::varchar p, day::varchar d, seen_at::varchar t, octet_length(raw)::int r, n from bronze.typed order by n nulls last',
      ),
    ).toEqual([
      { p: '12345678901234.56', d: '2026-11-22', t: '2026-11-22 10:00:00', r: 2, n: 7 },
      { p: '0.50', d: '2026-01-01', t: '2026-01-01 12:00:00', r: null, n: null },
    ]);
    await expect(table.append([{ price: '1.234' }], { source: 'pg' })).rejects.toSatisfy(
      (e) => isTributaryError(e, 'SCHEMA_MISMATCH') && /column price .* record 0/.test((e as Error).message),
    );
    await expect(table.append([{ day: 'not a date' }], { source: 'pg' })).rejects.toSatisfy((e) =>
      isTributaryError(e, 'SCHEMA_MISMATCH'),
    );
  });

  it('two lakes committing to one table at once: every commit lands exactly once', async () => {
    const other = await openLake({ storage: new LocalStorage(t.dir) });
    try {
      const a = lake.table('bronze', 'race');
      const b = other.table('bronze', 'race');
      const stagedA = await Promise.all(
        [0, 1, 2, 3].map((i) => a.stage([{ writer: 'a', i }], { source: 'a' })),
      );
      const stagedB = await Promise.all(
        [0, 1, 2, 3].map((i) => b.stage([{ writer: 'b', i }], { source: 'b' })),
      );
      const results = await Promise.all([
        ...stagedA.map((p, i) => a.commit({ commitId: `a-${i}`, add: p })),
        ...stagedB.map((p, i) => b.commit({ commitId: `b-${i}`, add: p })),
        // The same commit id from both sides: exactly one applies.
        a.commit({ commitId: 'shared', add: stagedA[0] }),
        b.commit({ commitId: 'shared', add: stagedA[0] }),
      ]);
      expect(results.filter((r) => r.commitId === 'shared' && r.applied)).toHaveLength(1);
      const versions = results.filter((r) => r.applied).map((r) => r.version);
      expect(new Set(versions).size).toBe(versions.length);
      expect(Math.max(...versions)).toBe(9);
      expect(
        await queryLake(lake, 'select count(*)::int n, count(distinct writer || i)::int d from bronze.race'),
      ).toEqual([{ n: 8, d: 8 }]);
    } finally {
      await other.close();
    }
  });

  it('ifVersion makes a commit fail with CONFLICT when the table moved', async () => {
    const table = lake.table('silver', 'occ');
    await table.append([{ a: 1 }]);
    const pending = await table.stage([{ a: 2 }]);
    await expect(table.commit({ commitId: 'x', add: pending, ifVersion: 0 })).rejects.toSatisfy((e) =>
      isTributaryError(e, 'CONFLICT'),
    );
    expect((await table.commit({ commitId: 'x', add: pending, ifVersion: 1 })).version).toBe(2);
  });

  it('merges a new nullable column and refuses an incompatible type change', async () => {
    const table = lake.table('silver', 'evolve');
    await table.append([{ id: 1, name: 'a' }]);
    await table.append([{ id: 2, name: 'b', score: 0.5 }]);
    expect(await queryLake(lake, 'select id, name, score from silver.evolve order by id')).toEqual([
      { id: 1, name: 'a', score: null },
      { id: 2, name: 'b', score: 0.5 },
    ]);
    await expect(table.append([{ id: 3, name: 42 }])).rejects.toSatisfy(
      (e) =>
        isTributaryError(e, 'SCHEMA_MISMATCH') && /silver\.evolve.*column name/.test((e as Error).message),
    );
    await expect(table.writeQuery("select 'x' as id")).rejects.toSatisfy(
      (e) => isTributaryError(e, 'SCHEMA_MISMATCH') && /silver\.evolve.*column id/.test((e as Error).message),
    );
    await expect(table.append([{ id: 3 }], { partitionBy: ['id'] })).rejects.toSatisfy((e) =>
      isTributaryError(e, 'SCHEMA_MISMATCH'),
    );
    expect((await table.snapshot())!.version).toBe(2);
  });

  it('a whole-table overwrite may change schema and partitioning; appends may not', async () => {
    const table = lake.table('gold', 'rebuilt');
    await table.writeQuery("select 1 as k, 'a' as v, 'x' as p", { partitionBy: ['p'] });
    await expect(table.writeQuery("select 'one' as k, 'b' as v, 'y' as p")).rejects.toSatisfy((e) =>
      isTributaryError(e, 'SCHEMA_MISMATCH'),
    );
    await table.writeQuery("select 'one' as k, 2.5 as score", { mode: 'overwrite' });
    const snapshot = await table.snapshot();
    expect(snapshot!.partitionColumns).toEqual([]);
    expect(snapshot!.schema.map((c) => `${c.name}:${c.type}`)).toEqual(['k:VARCHAR', 'score:DECIMAL(2,1)']);
    expect(await queryLake(lake, 'select k, score::double s from gold.rebuilt')).toEqual([
      { k: 'one', s: 2.5 },
    ]);
    await table.overwrite([{ k: 'two', n: 1 }], { partitions: 'all', partitionBy: ['k'] });
    expect(await queryLake(lake, 'select k, n from gold.rebuilt')).toEqual([{ k: 'two', n: 1 }]);
  });

  it('writes silver and gold from SQL over committed tables', async () => {
    await lake
      .table('bronze', 'sales')
      .append(orders(30, '2026-11-22'), { partitionBy: ['date'], source: 'pg' });
    const silver = lake.table('silver', 'sales');
    await silver.writeQuery(
      'select id::bigint as id, amount, customer, date::date as date from bronze.sales where id % 2 = 0',
      {
        partitionBy: ['date'],
        mode: 'overwrite-partitions',
        commitId: 'silver-2026-11-22',
      },
    );
    await lake
      .table('gold', 'revenue_by_customer')
      .writeQuery(
        'select customer, sum(amount) as revenue, count(*)::bigint as orders from silver.sales group by customer',
        { mode: 'overwrite' },
      );
    const gold = await queryLake(
      lake,
      'select customer, revenue, orders from gold.revenue_by_customer order by customer',
    );
    expect(gold).toEqual([
      { customer: 'c0', revenue: 1.5 * (0 + 6 + 12 + 18 + 24), orders: '5' },
      { customer: 'c1', revenue: 1.5 * (4 + 10 + 16 + 22 + 28), orders: '5' },
      { customer: 'c2', revenue: 1.5 * (2 + 8 + 14 + 20 + 26), orders: '5' },
    ]);
    const silverInfo = (await lake.listTables()).find((i) => i.table === 'silver.sales')!;
    expect(silverInfo.schema.find((c) => c.name === 'date')?.type).toBe('DATE');
    expect(await queryLake(lake, 'select typeof(date) t from silver.sales limit 1')).toEqual([{ t: 'DATE' }]);
  });

  it('compacts small files into one per partition atomically', async () => {
    const table = lake.table('bronze', 'small');
    for (let i = 0; i < 4; i++)
      await table.append(orders(3, '2026-11-22', i * 3), { partitionBy: ['date'], source: 's' });
    await table.append(orders(2, '2026-11-23'), { partitionBy: ['date'], source: 's' });
    const before = await queryLake(
      lake,
      'select * exclude (_ingestion_timestamp) from bronze.small order by date, id',
    );
    const result = await table.compact();
    expect(result).toMatchObject({ operation: 'compact', filesRemoved: 4, filesAdded: 1 });
    const snapshot = await table.snapshot();
    expect(snapshot!.files.map((f) => f.partition).sort()).toEqual(['date=2026-11-22', 'date=2026-11-23']);
    expect(
      await queryLake(lake, 'select * exclude (_ingestion_timestamp) from bronze.small order by date, id'),
    ).toEqual(before);
    expect(await table.compact()).toBeNull();
    const gc = await table.gc({ graceMs: 0, keepVersions: 1 });
    expect(gc.deletedFiles).toHaveLength(4);
  });

  it('with fileRowsBelow merges only the small files and leaves full ones as written', async () => {
    const table = lake.table('bronze', 'binpack');
    await table.append(orders(8, '2026-11-22'), { partitionBy: ['date'], source: 's' });
    await table.append(orders(8, '2026-11-22', 8), { partitionBy: ['date'], source: 's' });
    for (let i = 0; i < 3; i++)
      await table.append(orders(2, '2026-11-22', 16 + i * 2), { partitionBy: ['date'], source: 's' });
    const full = (await table.snapshot())!.files.filter((f) => f.rows === 8).map((f) => f.path);
    expect(full).toHaveLength(2);
    const before = await queryLake(lake, 'select id from bronze.binpack order by id');
    const result = await table.compact({ fileRowsBelow: 8 });
    expect(result).toMatchObject({ operation: 'compact', filesRemoved: 3, filesAdded: 1 });
    const files = (await table.snapshot())!.files;
    expect(files.map((f) => f.rows).sort()).toEqual([6, 8, 8]);
    expect(files.filter((f) => full.includes(f.path))).toHaveLength(2);
    expect(await queryLake(lake, 'select id from bronze.binpack order by id')).toEqual(before);
    // One small file left: nothing to merge.
    expect(await table.compact({ fileRowsBelow: 8 })).toBeNull();
  });

  it('emits commit events and validates names', async () => {
    const events: string[] = [];
    const off = lake.onCommit((e) => events.push(`${e.table}@${e.version}`));
    await lake.table('gold', 'x').append([{ a: 1 }]);
    off();
    await lake.table('gold', 'x').append([{ a: 1 }]);
    expect(events).toEqual(['gold.x@1']);
    expect(() => lake.table('platinum', 'x')).toThrow(/bronze, silver, gold/);
    expect(() => lake.table('gold', 'Bad-Name')).toThrow(/must match/);
    expect(() => lake.table('orders')).toThrow(/<layer>\.<name>/);
  });
});
