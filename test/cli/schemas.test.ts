import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalSchemaRegistry } from '../../src/log/index.js';
import { movieBreaking, movieV1, movieV2 } from '../../src/log/schemas/testing/movies.js';

/** `tributary schemas …` (the built CLI) on a data dir's own registry, no server running. */
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'tributary-schemas-cli-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

function cli(...args: string[]) {
  const result = spawnSync(
    process.execPath,
    ['bin/tributary.js', '--data-dir', dataDir, 'schemas', ...args],
    {
      encoding: 'utf8',
      env: { ...process.env, TRIBUTARY_LOG_LEVEL: 'error' },
    },
  );
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function file(name: string, text: string): string {
  const target = path.join(dataDir, name);
  writeFileSync(target, text);
  return target;
}

describe('tributary schemas', { timeout: 120_000 }, () => {
  it('registers, shows, checks and refuses an incompatible change with the reason', async () => {
    expect(cli('register', 'movies-value', file('v1.avsc', movieV1))).toMatchObject({
      code: 0,
      stdout: '{"subject":"movies-value","version":1,"id":1}\n',
    });
    expect(cli('register', 'movies-value', file('v2.avsc', movieV2)).stdout).toContain('"version":2');
    const refused = cli('register', 'movies-value', file('breaking.avsc', movieBreaking));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/SCHEMA_MISMATCH: Schema being registered is incompatible.*rating/);
    const check = cli('check', 'movies-value', path.join(dataDir, 'breaking.avsc'));
    expect(check.code).toBe(1);
    expect(check.stdout).toMatch(
      /^not compatible:\n {2}BACKWARD: the new schema cannot read data written with version 2/,
    );
    expect(cli('config', 'movies-value', '--set', 'forward').stdout).toBe('FORWARD\n');
    expect(cli('check', 'movies-value', path.join(dataDir, 'breaking.avsc'))).toMatchObject({
      code: 0,
      stdout: 'compatible\n',
    });
    expect(cli('list').stdout).toBe('movies-value\n');
    const shown = JSON.parse(cli('get', 'movies-value', '--version', '1').stdout) as Record<string, unknown>;
    expect(shown).toEqual({ subject: 'movies-value', version: 1, id: 1, schema: movieV1, versions: [1, 2] });
    // The same store, read in this process.
    const registry = await LocalSchemaRegistry.open(path.join(dataDir, 'schemas'));
    expect(await registry.subjectCompatibility('movies-value')).toBe('FORWARD');
  });
});
