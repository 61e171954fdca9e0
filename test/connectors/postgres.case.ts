import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LocalStorage, openLake } from '../../src/lake/index.js';
import { readTable, tableTypes } from './lake-helpers.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  copyPostgresToLake,
  createMemoryStateStore,
  createPostgresSource,
  createPostgresUpsertSink,
  type PgClient,
} from '../../src/connectors/index.js';

/**
 * One PostgreSQL connector contract, run against every backend (embedded PGlite, a real server).
 * Every test works in its own schema (search_path), so runs never collide on a shared server.
 */
export function postgresConnectorCases(name: string, open: () => Promise<PgClient | null>): void {
  describe(`PostgreSQL connectors on ${name}`, () => {
    let client: PgClient;
    let schema: string;
    beforeAll(async () => {
      const opened = await open();
      if (opened === null) return;
      client = opened;
      schema = `tributary_test_${randomBytes(4).toString('hex')}`;
      await client.query(`CREATE SCHEMA ${schema}`);
      await client.query(`SET search_path TO ${schema}`);
      await client.query(`CREATE TABLE everything (
        id integer PRIMARY KEY, s smallint, b bigint, r real, d double precision,
        n numeric(12,2), nu numeric, ok boolean, t text, v varchar(10), c char(3),
        day date, ts timestamp, tz timestamptz, tm time, raw bytea, u uuid, j jsonb, arr int[]
      )`);
      await client.query(`INSERT INTO everything VALUES
        (1, -32768, 9007199254740993, 1.5, 0.1, 1234567890.12, 3.14159265358979323846, true, 'héllo "q"', 'short', 'ab',
         '2024-02-29', '2024-01-02 03:04:05.123456', '2024-06-01 12:00:00.5+02', '13:14:15.25', '\\x00ff10', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"k": [1, 2]}', '{1,2,3}'),
        (2, NULL, NULL, 'NaN', '-Infinity', NULL, NULL, false, '', NULL, NULL, NULL, NULL, NULL, NULL, '\\x', NULL, NULL, NULL)`);
      await client.query(
        `INSERT INTO everything (id, t) SELECT g, 'row ' || g FROM generate_series(3, 10) g`,
      );
    }, 60_000);
    afterAll(async () => {
      if (!client) return;
      await client.query(`DROP SCHEMA ${schema} CASCADE`);
      await client.close();
    });

    it('maps every supported type to a typed lake column schema', async () => {
      const source = createPostgresSource({ table: `${schema}.everything` }, { client });
      const columns = await source.columns();
      expect(columns.map((c) => [c.name, c.type])).toEqual([
        ['id', 'INTEGER'],
        ['s', 'SMALLINT'],
        ['b', 'BIGINT'],
        ['r', 'FLOAT'],
        ['d', 'DOUBLE'],
        ['n', 'DECIMAL(12,2)'],
        ['nu', 'DOUBLE'],
        ['ok', 'BOOLEAN'],
        ['t', 'VARCHAR'],
        ['v', 'VARCHAR'],
        ['c', 'VARCHAR'],
        ['day', 'DATE'],
        ['ts', 'TIMESTAMP'],
        ['tz', 'TIMESTAMP WITH TIME ZONE'],
        ['tm', 'TIME'],
        ['raw', 'BLOB'],
        ['u', 'VARCHAR'],
        ['j', 'VARCHAR'],
        ['arr', 'VARCHAR'],
      ]);
      expect(columns.find((c) => c.name === 'id')!.nullable).toBe(false);
      expect(columns.find((c) => c.name === 'n')!.pgType).toBe('numeric(12,2)');
    });

    it('snapshots the table through a server-side cursor with faithful values and nulls', async () => {
      const source = createPostgresSource({ table: `${schema}.everything`, fetchRows: 3 }, { client });
      const batches: Record<string, unknown>[][] = [];
      for await (const batch of source.batches()) batches.push(batch.rows);
      expect(batches.map((b) => b.length)).toEqual([3, 3, 3, 1]);
      const rows = batches.flat().sort((a, b) => (a.id as number) - (b.id as number));
      expect(rows[0]).toEqual({
        id: 1,
        s: -32768,
        b: 9007199254740993n,
        r: 1.5,
        d: 0.1,
        n: '1234567890.12',
        nu: 3.141592653589793, // unconstrained numeric → DOUBLE (documented)
        ok: true,
        t: 'héllo "q"',
        v: 'short',
        c: 'ab', // char(n) padding is dropped, as PostgreSQL's text cast does
        day: '2024-02-29',
        ts: '2024-01-02T03:04:05.123456',
        tz: '2024-06-01T10:00:00.5Z',
        tm: '13:14:15.25',
        raw: new Uint8Array([0x00, 0xff, 0x10]),
        u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
        j: '{"k": [1, 2]}',
        arr: '{1,2,3}',
      });
      expect(rows[1]).toMatchObject({
        id: 2,
        s: null,
        b: null,
        r: Number.NaN,
        d: -Infinity,
        n: null,
        ok: false,
        t: '',
        raw: new Uint8Array(),
      });
      expect(rows[9]).toMatchObject({ id: 10, t: 'row 10' });
    });

    it('loads incrementally by a cursor column and saves the cursor only when asked', async () => {
      const state = createMemoryStateStore();
      const options = {
        table: `${schema}.everything`,
        columns: ['id', 't'],
        mode: 'incremental' as const,
        cursorColumn: 'id',
        fetchRows: 4,
      };
      const first = createPostgresSource(options, { client, state });
      const seen: number[] = [];
      const report = await first.read((rows) => {
        seen.push(...rows.map((r) => r.id as number));
        return Promise.resolve();
      });
      expect(report).toEqual({ rows: 10, batches: 3, cursor: '10' });
      expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      await first.commitCursor(report.cursor);
      await client.query(`INSERT INTO everything (id, t) VALUES (11, 'new'), (12, 'newer')`);
      const second = createPostgresSource(options, { client, state });
      const rows: unknown[] = [];
      const again = await second.read((batch) => {
        rows.push(...batch);
        return Promise.resolve();
      });
      expect(rows).toEqual([
        { id: 11, t: 'new' },
        { id: 12, t: 'newer' },
      ]);
      expect(again.cursor).toBe('12');
    });

    it('copies a table into a lake table with faithful column types in one commit', async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'pg-lake-'));
      const lake = await openLake({ storage: new LocalStorage(dir) });
      try {
        const source = createPostgresSource({ table: `${schema}.everything`, fetchRows: 4 }, { client });
        const result = await copyPostgresToLake(source, lake.table('bronze.everything'), { stageRows: 5 });
        expect(result.rows).toBeGreaterThanOrEqual(10);
        expect(result.commit).toMatchObject({ applied: true, rowsAdded: result.rows });
        expect(await tableTypes(lake, 'bronze.everything')).toMatchObject({
          id: 'INTEGER',
          s: 'SMALLINT',
          b: 'BIGINT',
          r: 'FLOAT',
          d: 'DOUBLE',
          n: 'DECIMAL(12,2)',
          nu: 'DOUBLE',
          ok: 'BOOLEAN',
          t: 'VARCHAR',
          day: 'DATE',
          ts: 'TIMESTAMP',
          tz: 'TIMESTAMP WITH TIME ZONE',
          tm: 'TIME',
          raw: 'BLOB',
        });
        const rows = await readTable(lake, 'bronze.everything', 'id');
        expect(rows[0]).toMatchObject({
          id: 1,
          s: -32768,
          b: '9007199254740993',
          r: 1.5,
          d: 0.1,
          n: '1234567890.12',
          ok: true,
          t: 'héllo "q"',
          day: '2024-02-29',
          tm: '13:14:15.25',
        });
        expect(String(rows[0].tz)).toMatch(/^2024-06-01[ T]10:00:00\.5/);
        // Microseconds survive, exact decimals too (the CSV hand-off keeps PostgreSQL's text).
        expect(String(rows[0].ts)).toBe('2024-01-02 03:04:05.123456');
        expect(rows[0].raw).toBe('\\x00\\xFF\\x10');
        expect(rows[1]).toMatchObject({ id: 2, s: null, b: null, n: null });
      } finally {
        await lake.close();
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('copies incrementally through COPY with multi-line, quoted, empty and NULL text intact', async () => {
      await client.query(`CREATE TABLE notes (seq bigint PRIMARY KEY, body text, blob bytea)`);
      const tricky = ['a,b', 'line 1\nline 2\r\n"quoted", end', '', null, '"', '\\.', ' padded '];
      for (let i = 0; i < tricky.length; i++)
        await client.query(`INSERT INTO notes VALUES ($1, $2, ${i % 2 ? 'NULL' : `decode('0a22', 'hex')`})`, [
          i + 1,
          tricky[i],
        ]);
      const dir = await mkdtemp(path.join(tmpdir(), 'pg-copy-'));
      const lake = await openLake({ storage: new LocalStorage(dir) });
      const state = createMemoryStateStore();
      const options = { table: `${schema}.notes`, mode: 'incremental' as const, cursorColumn: 'seq' };
      try {
        const first = createPostgresSource(options, { client, state });
        expect(first.canCopy).toBe(true);
        // stageRows 2: row ends inside quoted newlines must not split a row between scratch files.
        const copied = await copyPostgresToLake(first, lake.table('bronze.notes'), { stageRows: 2 });
        expect(copied).toMatchObject({ rows: tricky.length, cursor: String(tricky.length) });
        expect(copied.commit?.applied).toBe(true);
        const rows = await readTable(lake, 'bronze.notes', 'seq');
        expect(rows.map((r) => r.body)).toEqual(tricky);
        expect(rows[0].blob).toBe('\\x0A\\x22');
        expect(rows[1].blob).toBeNull();
        await client.query(`INSERT INTO notes VALUES (100, 'later', NULL), (20, 'late', NULL)`);
        const second = createPostgresSource(options, { client, state });
        const more = await copyPostgresToLake(second, lake.table('bronze.notes'));
        expect(more).toMatchObject({ rows: 2, cursor: '100' });
        const nothing = await copyPostgresToLake(
          createPostgresSource(options, { client, state }),
          lake.table('bronze.notes'),
        );
        expect(nothing).toMatchObject({ rows: 0, commit: null, cursor: '100' });
        expect((await readTable(lake, 'bronze.notes', 'seq')).map((r) => Number(r.seq))).toEqual([
          1, 2, 3, 4, 5, 6, 7, 20, 100,
        ]);
      } finally {
        await lake.close();
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('closes the cursor and transaction when the consumer stops early', async () => {
      const source = createPostgresSource({ table: `${schema}.everything`, fetchRows: 2 }, { client });
      let seen = 0;
      for await (const batch of source.batches()) {
        seen += batch.rows.length;
        break;
      }
      expect(seen).toBe(2);
      // The session is usable again: no transaction or cursor left open.
      const again = await client.query('SELECT count(*)::int FROM everything');
      expect(Number(again.rows[0][0])).toBeGreaterThanOrEqual(10);
    });

    it('refuses unknown tables and columns with clear errors', async () => {
      await expect(createPostgresSource({ table: 'nope_missing' }, { client }).columns()).rejects.toThrow(
        /nope_missing/,
      );
      await expect(
        createPostgresSource({ table: `${schema}.everything`, columns: ['zzz'] }, { client }).columns(),
      ).rejects.toThrow(/no column zzz/);
      expect(() => createPostgresSource({ table: 'x; drop table y' }, { client })).toThrow(/CONFIG|table/);
    });

    it('upserts in batches committed with the checkpoint id; replays are skipped; failures roll back', async () => {
      await client.query(`CREATE TABLE totals (id integer PRIMARY KEY, name text, n bigint, at timestamptz)`);
      const sinkId = `job-${schema}`;
      const sink = createPostgresUpsertSink(
        {
          table: 'totals',
          keyColumns: ['id'],
          columns: ['id', 'name', 'n', 'at'],
          sinkId,
          rowsPerStatement: 2,
        },
        { client },
      );
      sink.add([
        { id: 1, name: 'a', n: 1n, at: new Date('2024-01-01T00:00:00Z') },
        { id: 2, name: 'b', n: 2 },
        { id: 1, name: 'a2', n: 10 },
      ]);
      expect(await sink.flush(1)).toEqual({ checkpointId: 1, rows: 2, skipped: false });
      sink.add([
        { id: 2, name: 'b2', n: 20 },
        { id: 3, name: 'c', n: 3 },
      ]);
      expect(await sink.flush(2)).toMatchObject({ rows: 2, skipped: false });
      // Replay of checkpoint 2 after a restart: already committed, nothing written.
      sink.add([{ id: 3, name: 'REPLAYED', n: 0 }]);
      expect(await sink.flush(2)).toMatchObject({ skipped: true, rows: 0 });
      const rows = await client.query('SELECT id, name, n::text FROM totals ORDER BY id');
      expect(rows.rows).toEqual(
        [
          [1, 'a2', '10'],
          [2, 'b2', '20'],
          [3, 'c', '3'],
        ].map((r) => (client.kind === 'pg' ? r.map((v) => String(v)) : r)),
      );
      expect(await sink.committedCheckpoint()).toBe(2);
      // A failing flush (type error mid-batch) rolls back rows and checkpoint and keeps the buffer.
      sink.add([
        { id: 4, name: 'd', n: 4 },
        { id: 5, name: 'e', n: 'not a number' },
      ]);
      await expect(sink.flush(3)).rejects.toThrow(/PostgreSQL/);
      expect(sink.bufferedRows).toBe(2);
      expect(await sink.committedCheckpoint()).toBe(2);
      const count = await client.query('SELECT count(*)::int FROM totals');
      expect(Number(count.rows[0][0])).toBe(3);
      expect(() => sink.add([{ name: 'no key' }])).toThrow(/key column id/);
    });
  });
}
