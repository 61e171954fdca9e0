import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runningPlatform } from '../../src/cli/remote.js';
import { openLog, readLogServerInfo } from '../../src/log/index.js';

/**
 * The CLI against a running `tributary up` on the same data dir (the embedded log's lock belongs to
 * `up`): `topics` commands use the log `up` serves (found through `<dataDir>/log/server.json`);
 * `ingest documents` and `simulate sales` go through its API. Runs the compiled build
 * (`npm run build` first), as a user would.
 */
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'tributary-cli-remote-'));
const env: NodeJS.ProcessEnv = { ...process.env, TRIBUTARY_LOG_LEVEL: 'error' };
delete env.TRIBUTARY_ADMIN_KEY;
delete env.TRIBUTARY_DATA_DIR;
delete env.TRIBUTARY_PORT;

let platform: ChildProcess | undefined;
let platformOutput = '';
let url = '';

function cli(args: string[], input = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/tributary.js', '--data-dir', dataDir, ...args], { env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

const lines = (stdout: string) =>
  stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);

async function endOffsets(topic: string): Promise<number[]> {
  const described = await cli(['topics', 'describe', topic]);
  expect(described.code, described.stderr).toBe(0);
  return (JSON.parse(described.stdout) as { partitions: { endOffset: number }[] }).partitions.map(
    (p) => p.endOffset,
  );
}

beforeAll(async () => {
  platform = spawn(
    process.execPath,
    ['bin/tributary.js', '--data-dir', dataDir, 'up', '--port', '0', '--kafka-port', '0'],
    {
      env,
    },
  );
  platform.stdout?.on('data', (chunk: Buffer) => (platformOutput += chunk.toString()));
  platform.stderr?.on('data', (chunk: Buffer) => (platformOutput += chunk.toString()));
  const child = platform;
  // A fresh data dir is seeded with demo data first (several seconds), then up.json appears.
  const deadline = Date.now() + 100_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`tributary up exited early:\n${platformOutput}`);
    if (Date.now() > deadline) throw new Error(`tributary up did not come up:\n${platformOutput}`);
    const stateFile = path.join(dataDir, 'up.json');
    if (existsSync(stateFile)) {
      const state = JSON.parse(readFileSync(stateFile, 'utf8')) as { pid: number; url: string };
      const healthy = await fetch(`${state.url}/health`)
        .then((r) => r.ok)
        .catch(() => false);
      if (state.pid === child.pid && healthy) {
        url = state.url;
        return;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}, 120_000);

afterAll(async () => {
  const child = platform;
  if (child && child.exitCode === null) {
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    const code = await exited;
    expect(code, platformOutput).toBe(0);
    // A clean stop removes up.json, so later commands open the data dir themselves.
    expect(existsSync(path.join(dataDir, 'up.json'))).toBe(false);
  }
  rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

describe('CLI while tributary up runs', { timeout: 120_000 }, () => {
  it('finds the running platform and its local admin key', async () => {
    const found = await runningPlatform(dataDir);
    expect(found).toMatchObject({ pid: platform?.pid, url });
    expect(found?.key).toBe(readFileSync(path.join(dataDir, 'local-admin.key'), 'utf8').trim());
  });

  it('topics produce validates first, then appends through the log server with keys and timestamps', async () => {
    // The lock is up's, so a command that succeeds below went through the server up announces here.
    expect(readLogServerInfo(path.join(dataDir, 'log'))?.pid).toBe(platform?.pid);
    const bad = await cli(['topics', 'produce', 'orders'], '{"id":"o-1"}\nnot json\n');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('stdin line 2: invalid JSON');
    expect(bad.stderr).toContain('nothing was appended');
    const missing = await cli(['topics', 'describe', 'orders']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('NOT_FOUND');

    const input = [
      JSON.stringify({ id: 'o-1', at: '2026-11-22T10:00:00Z', total: 3 }),
      '',
      JSON.stringify({ id: 'o-2', at: 1_700_000_000_123, total: 4 }),
    ].join('\n');
    const good = await cli(
      ['topics', 'produce', 'orders', '--key-field', 'id', '--timestamp-field', 'at'],
      input,
    );
    expect(good, good.stderr).toMatchObject({ code: 0, stdout: 'appended 2 records to orders\n' });
    expect((await cli(['topics', 'list'])).stdout.split('\n')).toContain('orders');
    expect(await endOffsets('orders')).toEqual([2]);

    const tail = await cli(['topics', 'tail', 'orders']);
    expect(tail.code, tail.stderr).toBe(0);
    expect(lines(tail.stdout)).toEqual([
      {
        topic: 'orders',
        partition: 0,
        offset: 0,
        timestamp: Date.parse('2026-11-22T10:00:00Z'),
        key: 'o-1',
        value: { id: 'o-1', at: '2026-11-22T10:00:00Z', total: 3 },
      },
      {
        topic: 'orders',
        partition: 0,
        offset: 1,
        timestamp: 1_700_000_000_123,
        key: 'o-2',
        value: { id: 'o-2', at: 1_700_000_000_123, total: 4 },
      },
    ]);
    const limited = await cli(['topics', 'tail', 'orders', '--limit', '1']);
    expect(lines(limited.stdout).map((r) => r.offset)).toEqual([0]);
  });

  it('topics create makes partitioned topics; tail --group reads as a group member and commits', async () => {
    const created = await cli(['topics', 'create', 'clicks', '--partitions', '3']);
    expect(created, created.stderr).toMatchObject({
      code: 0,
      stdout: 'created topic clicks with 3 partitions\n',
    });
    expect(await endOffsets('clicks')).toEqual([0, 0, 0]);
    const again = await cli(['topics', 'create', 'clicks']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('ALREADY_EXISTS');

    const input = Array.from({ length: 12 }, (_, n) => JSON.stringify({ user: `u-${n}`, n })).join('\n');
    const produced = await cli(['topics', 'produce', 'clicks', '--key-field', 'user'], input);
    expect(produced, produced.stderr).toMatchObject({ code: 0, stdout: 'appended 12 records to clicks\n' });
    const ends = await endOffsets('clicks');
    expect(ends.reduce((a, b) => a + b, 0)).toBe(12);

    const first = await cli(['topics', 'tail', 'clicks', '--group', 'g1', '--limit', '5']);
    expect(first.code, first.stderr).toBe(0);
    const firstRecords = lines(first.stdout);
    expect(firstRecords).toHaveLength(5);

    // What the first tail printed is committed in up's log, as another client of the server sees it.
    const log = await openLog({
      dataDir,
      log: 'embedded',
      logFsync: 'group',
      logGroupCommitMs: 2,
      logRetentionMs: -1,
      logRetentionBytes: -1,
    });
    try {
      expect(log.kind).toBe('remote');
      const committed = await log.committedOffsets('g1', 'clicks');
      const expected = new Map<number, number>();
      for (const r of firstRecords) expected.set(r.partition as number, (r.offset as number) + 1);
      expect(committed).toEqual(expected);
    } finally {
      await log.close();
    }

    // The group resumes where it committed: together the two tails print every record once.
    const rest = await cli(['topics', 'tail', 'clicks', '--group', 'g1']);
    expect(rest.code, rest.stderr).toBe(0);
    const all = [...firstRecords, ...lines(rest.stdout)].map((r) => (r.value as { n: number }).n);
    expect(all.sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, n) => n));
    expect(lines((await cli(['topics', 'tail', 'clicks', '--group', 'g1'])).stdout)).toEqual([]);
  });

  it('ingest documents uploads through POST /upload and the document reaches documents.raw', async () => {
    const file = path.join(dataDir, 'memo.txt');
    writeFileSync(file, 'Quarterly memo: revenue grew in every region.\n');
    const result = await cli(['ingest', 'documents', file, '--company', 'acme']);
    expect(result.code, result.stderr).toBe(0);
    const [printed] = lines(result.stdout);
    expect(printed.file).toBe(file);
    expect(printed.document_id).toMatch(/^[0-9a-f-]{36}$/);

    const raw = await cli(['topics', 'tail', 'documents.raw']);
    expect(raw.code, raw.stderr).toBe(0);
    const record = lines(raw.stdout).find((r) => r.key === printed.document_id);
    expect(record?.value).toMatchObject({ document_id: printed.document_id, company_id: 'acme' });

    const unreadable = await cli([
      'ingest',
      'documents',
      path.join(dataDir, 'absent.txt'),
      '--company',
      'acme',
    ]);
    expect(unreadable.code).toBe(1);
    expect(unreadable.stderr).toContain('absent.txt: cannot read');
  });

  it('simulate sales forwards its events to the running platform', async () => {
    const [before] = await endOffsets('ventes-temps-reel');
    const result = await cli(['simulate', 'sales', '--count', '120', '--rate', '2000/s']);
    expect(result.code, result.stderr).toBe(0);
    expect(lines(result.stdout)[0]).toMatchObject({ topic: 'ventes-temps-reel', events: 120 });
    // The platform's own demo traffic appends about 5 events/s too: far fewer than 120 in this time,
    // so the difference shows the simulated events arrived.
    const after = (await endOffsets('ventes-temps-reel'))[0];
    expect(after - before).toBeGreaterThanOrEqual(120);
  });
});

describe('runningPlatform', () => {
  it('is null without up.json and when the recorded API does not answer', async () => {
    const empty = mkdtempSync(path.join(os.tmpdir(), 'tributary-cli-remote-none-'));
    try {
      expect(await runningPlatform(empty)).toBeNull();
      // A live pid (this process) whose API is gone: a stale file must not divert the CLI.
      writeFileSync(
        path.join(empty, 'up.json'),
        JSON.stringify({ pid: process.pid, url: 'http://127.0.0.1:9', startedAtMs: Date.now() }),
      );
      expect(await runningPlatform(empty)).toBeNull();
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
