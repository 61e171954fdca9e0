import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const bin = path.resolve('bin/tributary.js');
const built = path.resolve('dist/src/cli/main.js');

describe('tributary status without a running up (compiled build)', () => {
  let dataDir: string;
  beforeAll(async () => {
    expect(existsSync(built), `${built} is missing: run \`npm run build\` first`).toBe(true);
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'tributary-cli-status-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('lists every pipeline and says up is not running', () => {
    const env: NodeJS.ProcessEnv = { ...process.env, TRIBUTARY_LOG_LEVEL: 'silent' };
    for (const key of Object.keys(env))
      if (key.startsWith('TRIBUTARY_') && key !== 'TRIBUTARY_LOG_LEVEL') delete env[key];
    const result = spawnSync(process.execPath, [bin, '--data-dir', dataDir, 'status'], {
      encoding: 'utf8',
      env,
      cwd: dataDir,
      timeout: 60_000,
    });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain('tributary up is not running');
    expect(result.stdout).not.toContain('none registered');
    for (const name of ['northwind', 'documents'])
      expect(result.stdout).toMatch(new RegExp(`^${name}\\s+idle`, 'm'));
  });
});
