import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { LocalStorage, openLake, type Lake } from '../../src/lake/index.js';
import { createMemoryLog } from '../../src/log/index.js';
import { importFile, inferColumns, typeOfValue } from '../../src/connectors/index.js';
import { readTable, tableTypes } from './lake-helpers.js';

let dir: string;
let lake: Lake;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'import-'));
  lake = await openLake({ storage: new LocalStorage(path.join(dir, 'lake')) });
});
afterEach(async () => {
  await lake.close();
  await rm(dir, { recursive: true, force: true });
});

describe('type inference', () => {
  it('infers int, float, bool, timestamp and string, widening int+float and falling back to string', () => {
    expect(
      [
        '42',
        '-1',
        '3.5',
        '1e3',
        'TRUE',
        '2024-01-02',
        '2024-01-02T03:04:05Z',
        '2024-01-02 03:04',
        'abc',
        '99999999999999999999',
      ].map(typeOfValue),
    ).toEqual([
      'int',
      'int',
      'float',
      'float',
      'bool',
      'timestamp',
      'timestamp',
      'timestamp',
      'string',
      'string',
    ]);
    expect(
      inferColumns([
        { a: '1', b: '1', c: 'x', d: '' },
        { a: '2', b: '2.5', c: '1', d: '' },
      ]),
    ).toEqual([
      { name: 'a', type: 'int' },
      { name: 'b', type: 'float' },
      { name: 'c', type: 'string' },
      { name: 'd', type: 'string' },
    ]);
  });
});

describe('file import', () => {
  it('imports a CSV into a bronze table with inferred types and quarantines bad rows with file, line and field', async () => {
    const file = path.join(dir, 'events.csv');
    await writeFile(
      file,
      [
        'user_id,title,watched_minutes,completed,at',
        '1,"Movie, The",90.5,true,2024-01-01T10:00:00Z',
        '2,"Say ""hi""",45,false,2024-01-02 11:00:00',
        '3,Broken,ninety,true,2024-01-03T00:00:00Z',
        ',NoUser,10,false,2024-01-04T00:00:00Z',
        '5,"multi',
        'line",12,true,2024-01-05T00:00:00Z',
      ].join('\n') + '\n',
    );
    const report = await importFile(
      { path: file, table: 'bronze.viewing_events', inferRows: 2, required: ['user_id'] },
      { lake },
    );
    expect(report.rows).toBe(3);
    expect(report.quarantined).toBe(2);
    expect(report.columns).toEqual([
      { name: 'user_id', type: 'int', lakeType: 'BIGINT' },
      { name: 'title', type: 'string', lakeType: 'VARCHAR' },
      { name: 'watched_minutes', type: 'float', lakeType: 'DOUBLE' },
      { name: 'completed', type: 'bool', lakeType: 'BOOLEAN' },
      { name: 'at', type: 'timestamp', lakeType: 'TIMESTAMP WITH TIME ZONE' },
    ]);
    expect(report.reasons).toEqual([
      {
        file: 'events.csv',
        line: 4,
        field: 'watched_minutes',
        reason: 'watched_minutes: "ninety" is not a number (expected float)',
      },
      { file: 'events.csv', line: 5, field: 'user_id', reason: 'user_id is required' },
    ]);
    const quarantine = (await readFile(report.quarantineFile!, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(quarantine[0]).toMatchObject({
      file: 'events.csv',
      line: 4,
      field: 'watched_minutes',
      record: { title: 'Broken' },
    });
    const types = await tableTypes(lake, 'bronze.viewing_events');
    expect(types).toMatchObject({
      user_id: 'BIGINT',
      title: 'VARCHAR',
      watched_minutes: 'DOUBLE',
      completed: 'BOOLEAN',
    });
    const rows = await readTable(lake, 'bronze.viewing_events', 'user_id');
    expect(rows.map((r) => [r.user_id, r.title, r.watched_minutes, r.completed])).toEqual([
      ['1', 'Movie, The', 90.5, true],
      ['2', 'Say "hi"', 45, false],
      ['5', 'multi\nline', 12, true],
    ]);
    expect(rows[0]._source).toBe('file:events.csv');
    // Importing the same file again is recognised (same commit id) and adds nothing.
    const again = await importFile(
      { path: file, table: 'bronze.viewing_events', inferRows: 2, required: ['user_id'] },
      { lake },
    );
    expect(again.target).toMatchObject({ applied: false });
    expect(await readTable(lake, 'bronze.viewing_events')).toHaveLength(3);
  });

  it('validates with explicit column types, strict mode and a zod row schema; imports NDJSON into a topic', async () => {
    const file = path.join(dir, 'views.ndjson');
    await writeFile(
      file,
      [
        '{"id":1,"rating":5,"tag":"a"}',
        '{"id":2,"rating":11}',
        '[1,2]',
        '{"id":"x","rating":1}',
        '{"id":4,"rating":2,"extra":true}',
      ].join('\n'),
    );
    const log = createMemoryLog();
    const report = await importFile(
      {
        path: file,
        topic: 'views',
        columns: { id: 'int', rating: 'int', tag: 'string' },
        strict: true,
        keyField: 'id',
      },
      { log, rowSchema: z.object({ rating: z.bigint().max(10n) }).loose() },
    );
    expect(report.rows).toBe(1);
    expect(report.reasons.map((r) => [r.line, r.field])).toEqual([
      [2, 'rating'],
      [3, null],
      [4, 'id'],
      [5, 'extra'],
    ]);
    const records = await log.fetch('views', 0, 0);
    expect(records.map((r) => [Buffer.from(r.key!).toString(), Buffer.from(r.value!).toString()])).toEqual([
      ['1', '{"id":1,"rating":5,"tag":"a"}'],
    ]);
  });

  it('imports Parquet with its own types, and JSON arrays', async () => {
    const parquet = path.join(dir, 'in.parquet');
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    await connection.run(
      `COPY (SELECT i AS id, i * 1.5 AS score, i % 2 = 0 AS even, TIMESTAMPTZ '2024-01-01 00:00:00+00' + INTERVAL (i) HOUR AS at, 'n' || i AS name FROM range(5) t(i)) TO '${parquet}' (FORMAT parquet)`,
    );
    connection.closeSync();
    instance.closeSync();
    const report = await importFile({ path: parquet, table: 'silver.scores' }, { lake });
    expect(report.rows).toBe(5);
    expect(report.columns.map((c) => c.type)).toEqual(['int', 'float', 'bool', 'timestamp', 'string']);
    const rows = await readTable(lake, 'silver.scores', 'id');
    expect(rows[3]).toMatchObject({ id: '3', score: 4.5, even: false, name: 'n3' });
    const json = path.join(dir, 'list.json');
    await writeFile(json, JSON.stringify([{ a: 1 }, { a: 2.5 }]));
    const jsonReport = await importFile({ path: json, table: 'bronze.list' }, { lake });
    expect(jsonReport).toMatchObject({ rows: 2, quarantined: 0, quarantineFile: null });
    expect(existsSync(`${json}.quarantine.ndjson`)).toBe(false);
  });

  it('refuses bad options and unknown formats with clear errors', async () => {
    await expect(importFile({ path: 'x.csv' }, { lake })).rejects.toThrow(/exactly one of table or topic/);
    await writeFile(path.join(dir, 'x.xml'), '<a/>');
    await expect(importFile({ path: path.join(dir, 'x.xml'), table: 'bronze.x' }, { lake })).rejects.toThrow(
      /cannot tell the format/,
    );
  });
});
