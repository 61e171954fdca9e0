import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPlatform, type PlatformProcess } from '../ui/platform-process.js';

const run = promisify(execFile);
const repoRoot = path.resolve(import.meta.dirname, '../..');

/**
 * The package a user gets from `npm pack`: installed into an empty directory from the tarball
 * alone, its `tributary` command answers `--help` and `up` serves the API and the dashboard. The
 * suite's `pretest` has built `dist/`, so the pack skips its own `prepack` build (rebuilding `dist/`
 * under the other test files would pull it from under them).
 */
describe('npm pack', () => {
  let workDir: string;
  let appDir: string;
  let platform: PlatformProcess | undefined;

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(os.tmpdir(), 'tributary-pack-'));
    await run('npm', ['pack', '--ignore-scripts', '--pack-destination', workDir], {
      cwd: repoRoot,
      maxBuffer: 64 * 1024 * 1024,
    });
    const tarball = (await readdir(workDir)).find((name) => name.endsWith('.tgz'));
    if (!tarball) throw new Error(`npm pack wrote no tarball into ${workDir}`);
    appDir = path.join(workDir, 'app');
    await run('mkdir', ['-p', appDir]);
    await writeFile(path.join(appDir, 'package.json'), JSON.stringify({ name: 'app', private: true }));
    await run(
      'npm',
      ['install', '--no-audit', '--no-fund', '--prefer-offline', path.join(workDir, tarball)],
      { cwd: appDir, maxBuffer: 64 * 1024 * 1024 },
    );
  }, 600_000);

  afterAll(async () => {
    await platform?.dispose();
    await rm(workDir, { recursive: true, force: true });
  });

  it('ships the build, the dashboard files and the ML data, and no test suites', async () => {
    const installed = path.join(appDir, 'node_modules', 'tributary');
    const { stdout } = await run('find', [installed, '-type', 'f']);
    const files = stdout.split('\n').map((f) => path.relative(installed, f));
    expect(files).toContain('dist/src/cli/main.js');
    expect(files).toContain('src/ui/static/index.html');
    expect(files.some((f) => f.startsWith('src/ml/data/samples/'))).toBe(true);
    expect(files.filter((f) => /\.(case|test)\.(js|ts)$/.test(f) || f.includes('/testing/'))).toEqual([]);
  });

  it('npx tributary --help answers from the installed package', async () => {
    const { stdout } = await run('npx', ['--no-install', 'tributary', '--help'], { cwd: appDir });
    expect(stdout).toContain('Usage: tributary');
    expect(stdout).toContain('up');
  });

  it('tributary up from the installed package answers health and serves the dashboard', async () => {
    platform = await startPlatform({
      startTimeoutMs: 180_000,
      cliPath: path.join(appDir, 'node_modules', 'tributary', 'bin', 'tributary.js'),
    });
    const health = await fetch(`${platform.url}/health`);
    expect(health.status).toBe(200);
    const page = await fetch(`${platform.url}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<html');
    const client = await fetch(`${platform.url}/ui/app.js`);
    expect(client.status).toBe(200);
    const code = await platform.terminate('SIGTERM', 60_000);
    expect(code.code).toBe(0);
  }, 240_000);
});
