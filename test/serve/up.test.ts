import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/index.js';
import {
  fetchStatus,
  formatStatus,
  localAdminKeyFile,
  readUpState,
  runUp,
  upStateFile,
  type UpService,
} from '../../src/serve/index.js';
import { getJson } from './fixture.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tributary-up-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function recordingService(name: string, log: string[]): UpService {
  return {
    name,
    start: (context) => {
      log.push(`start ${name}`);
      context.progress(`${name} warming up`);
      context.events.publish({ type: 'service.started', data: { name } });
      return Promise.resolve();
    },
    stop: () => {
      log.push(`stop ${name}`);
      return Promise.resolve();
    },
    status: () =>
      Promise.resolve({ jobs: [{ name: `${name}-job`, state: 'running', consumerLag: 3, dlqCount: 1 }] }),
  };
}

describe('runUp', () => {
  it('starts services in order, serves the API with a local admin key, and stops in reverse', async () => {
    const config = loadConfig({ env: {}, cwd: dir, dotenv: false, overrides: { dataDir: dir, port: 0 } });
    const log: string[] = [];
    const lines: string[] = [];
    const out = { write: (text: string) => lines.push(text) };
    const handle = await runUp({
      config,
      services: [recordingService('log', log), recordingService('jobs', log)],
      out,
      handleSignals: false,
    });
    expect(log).toEqual(['start log', 'start jobs']);
    const printed = lines.join('');
    expect(printed).toContain(`Dashboard: ${handle.url}/`);
    expect(handle.createdAdminKey).toMatch(/^trb_/);
    expect(printed).toContain(handle.createdAdminKey);
    expect(printed).toContain('log warming up');
    expect((await stat(localAdminKeyFile(dir))).mode & 0o777).toBe(0o600);
    expect(await readUpState(dir)).toMatchObject({ pid: process.pid, url: handle.url });

    const { status, tables } = await fetchStatus(handle.url, handle.createdAdminKey!);
    expect(status.jobs.map((j) => j.name)).toEqual(['log-job', 'jobs-job']);
    expect(tables).toEqual([]);
    const text = formatStatus(status, tables);
    expect(text).toMatch(/log-job\s+-\s+running/);
    expect((await getJson(`${handle.url}/api/status`)).status).toBe(401);

    await handle.stop('test');
    await handle.stopped;
    expect(log).toEqual(['start log', 'start jobs', 'stop jobs', 'stop log']);
    expect(existsSync(upStateFile(dir))).toBe(false);

    // A second start reuses the stored admin key and does not print a new one.
    const lines2: string[] = [];
    const again = await runUp({
      config,
      services: [],
      out: { write: (t: string) => lines2.push(t) },
      handleSignals: false,
    });
    expect(again.createdAdminKey).toBeUndefined();
    expect(lines2.join('')).not.toContain('trb_');
    expect((await getJson(`${again.url}/api/keys`, handle.createdAdminKey)).status).toBe(200);
    await again.stop();
  });

  it('stops the services already started when a later one fails', async () => {
    const config = loadConfig({ env: {}, cwd: dir, dotenv: false, overrides: { dataDir: dir, port: 0 } });
    const log: string[] = [];
    const broken: UpService = {
      name: 'broken',
      start: () => Promise.reject(new Error('no disk')),
      stop: () => Promise.resolve(),
    };
    await expect(
      runUp({
        config,
        services: [recordingService('log', log), broken],
        out: { write: () => true },
        handleSignals: false,
      }),
    ).rejects.toThrow('no disk');
    expect(log).toEqual(['start log', 'stop log']);
  });

  it('bounds a hanging service stop by the shutdown budget', async () => {
    const config = loadConfig({ env: {}, cwd: dir, dotenv: false, overrides: { dataDir: dir, port: 0 } });
    const hanging: UpService = {
      name: 'hangs',
      start: () => Promise.resolve(),
      stop: () => new Promise(() => undefined),
    };
    const lines: string[] = [];
    const handle = await runUp({
      config,
      services: [hanging],
      out: { write: (t: string) => lines.push(t) },
      handleSignals: false,
      stopTimeoutMs: 500,
    });
    // The service's stop never settles: stop() resolving at all is the budget at work.
    await handle.stop();
    expect(lines.join('')).toContain('stopped hangs (timed out)');
  });
});

describe('tributary up (compiled CLI)', () => {
  it('prints the URL and key, answers, and exits cleanly on SIGTERM', async () => {
    const bin = path.resolve(import.meta.dirname, '../../bin/tributary.js');
    const child = spawn(
      process.execPath,
      [bin, '--data-dir', dir, 'up', '--port', '0', '--kafka-port', '0'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, TRIBUTARY_ADMIN_KEY: '' },
      },
    );
    let output = '';
    // Ready when it prints "Press Ctrl-C" (or gone when it exits first): an event, not a poll.
    const ready = new Promise<void>((resolve) => {
      const seen = (chunk: Buffer) => {
        output += chunk.toString();
        if (/Press Ctrl-C/.test(output)) resolve();
      };
      child.stdout.on('data', seen);
      child.stderr.on('data', seen);
      child.on('exit', () => resolve());
    });
    await ready;
    const url = /Dashboard: (http:\/\/\S+?)\/\n/.exec(output)?.[1];
    const key = /\n {2}(trb_\S+)\n/.exec(output)?.[1];
    expect(url, output).toBeDefined();
    expect((await getJson(`${url}/api/tables`, key)).status).toBe(200);
    const statusRun = spawn(process.execPath, [bin, '--data-dir', dir, 'status'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, TRIBUTARY_ADMIN_KEY: '' },
    });
    let statusText = '';
    statusRun.stdout.on('data', (chunk: Buffer) => (statusText += chunk.toString()));
    const statusCode = await new Promise<number | null>((resolve) => statusRun.on('exit', resolve));
    expect(statusCode).toBe(0);
    expect(statusText).toContain(`(from ${url})`);
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(0);
    expect(output).toContain('Stopped.');
    // Every step above waits for an event (a printed line, an exit). This is only the safety net:
    // a fresh data dir seeds five pipelines' demo data, which takes over a minute on a loaded
    // machine, past the default 60 s test timeout.
  }, 240_000);
});
