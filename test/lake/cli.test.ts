import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLakeFromConfig } from '../../src/lake/index.js';

const bin = path.resolve('bin/tributary.js');
const built = path.resolve('dist/src/cli/main.js');

function cli(dataDir: string, ...args: string[]) {
  const env: NodeJS.ProcessEnv = { ...process.env, TRIBUTARY_LOG_LEVEL: 'silent' };
  for (const key of Object.keys(env))
    if (key.startsWith('TRIBUTARY_') && key !== 'TRIBUTARY_LOG_LEVEL') delete env[key];
  const result = spawnSync(process.execPath, [bin, '--data-dir', dataDir, ...args], {
    encoding: 'utf8',
    env,
    cwd: dataDir,
    timeout: 60_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Parses stdout as JSON, failing with the command's stderr when it is not. */
function stdoutJson(result: ReturnType<typeof cli>): unknown {
  try {
    return JSON.parse(result.stdout);
  } catch {
    throw new Error(`exit ${result.code}, stdout ${JSON.stringify(result.stdout)}, stderr: ${result.stderr}`);
  }
}

describe('CLI: tributary tables / query (compiled build)', () => {
  let dataDir: string;
  beforeAll(async () => {
    expect(existsSync(built), `${built} is missing: run \`npm run build\` first`).toBe(true);
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'tributary-cli-lake-'));
    const lake = await openLakeFromConfig({ storage: 'local', dataDir });
    await lake.table('bronze', 'orders').append(
      [
        { id: 1, amount: 2.5, date: '2026-11-22', note: 'a,b' },
        { id: 2, amount: 4, date: '2026-11-23', note: 'say "hi"' },
      ],
      { partitionBy: ['date'], source: 'cli-test' },
    );
    await lake.close();
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('query "select 42 as x" --format json prints one JSON array', () => {
    const result = cli(dataDir, 'query', 'select 42 as x', '--format', 'json');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('[{"x":42}]\n');
  });

  it('queries lake tables as json, csv and table', () => {
    const json = cli(
      dataDir,
      'query',
      'select id, amount, date, note from bronze.orders order by id',
      '--format',
      'json',
    );
    expect(stdoutJson(json)).toEqual([
      { id: 1, amount: 2.5, date: '2026-11-22', note: 'a,b' },
      { id: 2, amount: 4, date: '2026-11-23', note: 'say "hi"' },
    ]);
    const csv = cli(dataDir, 'query', 'select id, note from bronze.orders order by id', '--format', 'csv');
    expect(csv.stdout).toBe('id,note\r\n1,"a,b"\r\n2,"say ""hi"""\n');
    const table = cli(dataDir, 'query', 'select id, date from bronze.orders order by id');
    expect(table.stdout.split('\n').slice(0, 4)).toEqual([
      'id  date',
      '--  ----------',
      '1   2026-11-22',
      '2   2026-11-23',
    ]);
  });

  it('tables lists partitions, row counts and sizes', () => {
    const result = cli(dataDir, 'tables');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /^bronze\.orders {2}version 1 {2}rows 2 {2}files 2 {2}[\d.]+ (B|KiB) {2}partitioned by date; 2 partition\(s\)$/m,
    );
    expect(result.stdout).toMatch(/^ {2}date=2026-11-22 {2}rows 1 {2}files 1 {2}[\d.]+ (B|KiB)$/m);
    const json = stdoutJson(cli(dataDir, 'tables', '--json')) as { table: string; rows: number }[];
    expect(json.map((t) => [t.table, t.rows])).toEqual([['bronze.orders', 2]]);
  });

  it('lake compact and lake gc', async () => {
    const lake = await openLakeFromConfig({ storage: 'local', dataDir });
    await lake.table('silver', 'small').append([{ a: 1 }]);
    await lake.table('silver', 'small').append([{ a: 2 }]);
    await lake.close();
    const compact = cli(dataDir, 'lake', 'compact', 'silver.small');
    expect(compact.stdout).toBe('silver.small: version 3, 2 files rewritten into 1\n');
    const gc = cli(dataDir, 'lake', 'gc', '--grace-ms', '0', '--keep-versions', '1');
    expect(gc.stdout).toMatch(/^silver\.small: 2 files, 2 manifests deleted; 0 markers repaired$/m);
    expect(
      stdoutJson(cli(dataDir, 'query', 'select sum(a) as s from silver.small', '--format', 'json')),
    ).toEqual([{ s: 3 }]);
  });

  it('a missing table names the existing ones; writes are refused; bad format is a usage error', () => {
    const missing = cli(dataDir, 'query', 'select * from silver.nope');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/NOT_FOUND: table silver\.nope does not exist; tables: bronze\.orders/);
    const write = cli(dataDir, 'query', "copy (select 1) to '/tmp/x.csv'");
    expect(write.code).toBe(1);
    expect(write.stderr).toMatch(/SQL_REFUSED: COPY statements are refused/);
    const format = cli(dataDir, 'query', 'select 1', '--format', 'xml');
    expect(format.code).toBe(1);
    expect(format.stderr).toMatch(/--format "xml": expected one of table, json, csv/);
  });
});
