import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openLog, partitionForKey, readLogServerInfo } from '../../src/log/index.js';

/**
 * Drives the built CLI (`npm test` builds first) against scratch data dirs: one the CLI opens
 * itself (no server), one served by `tributary log serve`.
 */
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'tributary-topics-cli-'));
const servedDataDir = mkdtempSync(path.join(os.tmpdir(), 'tributary-topics-cli-served-'));
const env: NodeJS.ProcessEnv = { ...process.env, TRIBUTARY_LOG_LEVEL: 'error' };
let server: ChildProcessWithoutNullStreams | undefined;
afterAll(() => {
  if (server && server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(servedDataDir, { recursive: true, force: true });
});

function cli(args: string[], input?: string, dir = dataDir) {
  const result = spawnSync(process.execPath, ['bin/tributary.js', '--data-dir', dir, ...args], {
    input,
    encoding: 'utf8',
    env,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

const tailLines = (stdout: string) =>
  stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map(
      (line) =>
        JSON.parse(line) as {
          topic: string;
          partition: number;
          offset: number;
          timestamp: number;
          key: string | null;
          value: unknown;
        },
    );

// Every step spawns the CLI (about 0.3 s on an idle machine, several seconds on a loaded one).
describe('tributary topics', { timeout: 180_000 }, () => {
  it('create, produce, describe and tail --from earliest round-trip records', () => {
    expect(cli(['topics', 'create', 'orders', '--partitions', '4'])).toMatchObject({ code: 0 });
    // No log server on this data dir: every command here opens the log directory itself.
    expect(existsSync(path.join(dataDir, 'log', 'server.json'))).toBe(false);
    expect(cli(['topics', 'list']).stdout.split('\n')).toContain('orders');
    const input = [
      JSON.stringify({ id: 'o-1', at: '2026-11-22T10:00:00Z', total: 3 }),
      JSON.stringify({ id: 'o-2', at: 1_700_000_000_123, total: 4 }),
      '',
      'not json? no: skipped only when blank',
    ].join('\n');
    // The last line is malformed: nothing at all may be appended.
    const bad = cli(['topics', 'produce', 'orders', '--key-field', 'id', '--timestamp-field', 'at'], input);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('line 4');
    expect(bad.stderr).toContain('invalid JSON');
    const described = JSON.parse(cli(['topics', 'describe', 'orders']).stdout) as {
      partitions: { endOffset: number }[];
    };
    expect(described.partitions.map((p) => p.endOffset)).toEqual([0, 0, 0, 0]);

    const good = cli(
      ['topics', 'produce', 'orders', '--key-field', 'id', '--timestamp-field', 'at'],
      input.split('\n').slice(0, 3).join('\n'),
    );
    expect(good).toMatchObject({ code: 0 });
    const records = tailLines(cli(['topics', 'tail', 'orders', '--from', 'earliest']).stdout);
    expect(records).toHaveLength(2);
    const first = records.find((r) => r.key === 'o-1')!;
    expect(first).toMatchObject({
      topic: 'orders',
      offset: 0,
      timestamp: Date.parse('2026-11-22T10:00:00Z'),
      value: { id: 'o-1', total: 3 },
    });
    expect(first.partition).toBe(partitionForKey(new TextEncoder().encode('o-1'), 4));
    expect(records.find((r) => r.key === 'o-2')).toMatchObject({ timestamp: 1_700_000_000_123 });
  });

  it('names the line and field of a bad timestamp and appends nothing', () => {
    const input = `${JSON.stringify({ id: 1, at: 1 })}\n${JSON.stringify({ id: 2, at: 'yesterday' })}\n`;
    const result = cli(['topics', 'produce', 'events', '--timestamp-field', 'at'], input);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/line 2: timestamp field "at"/);
    expect(cli(['topics', 'list']).stdout.split('\n')).not.toContain('events');
  });

  it('produce auto-creates a missing topic with one partition; tail --group resumes after --limit', () => {
    const input = ['a', 'b', 'c'].map((v) => JSON.stringify({ v })).join('\n');
    expect(cli(['topics', 'produce', 'letters'], input)).toMatchObject({ code: 0 });
    const described = JSON.parse(cli(['topics', 'describe', 'letters']).stdout) as { partitions: unknown[] };
    expect(described.partitions).toHaveLength(1);
    const firstTwo = tailLines(cli(['topics', 'tail', 'letters', '--group', 'g', '--limit', '2']).stdout);
    expect(firstTwo.map((r) => r.value)).toEqual([{ v: 'a' }, { v: 'b' }]);
    const rest = tailLines(cli(['topics', 'tail', 'letters', '--group', 'g']).stdout);
    expect(rest.map((r) => r.value)).toEqual([{ v: 'c' }]);
    expect(tailLines(cli(['topics', 'tail', 'letters', '--from', 'latest']).stdout)).toEqual([]);
  });
});

/** The log config `openLog` needs for a data dir (the embedded log, as the CLI's defaults). */
const logConfig = (dir: string) => ({
  dataDir: dir,
  log: 'embedded',
  logFsync: 'group' as const,
  logGroupCommitMs: 2,
  logRetentionMs: -1,
  logRetentionBytes: -1,
});

/** A group's committed offsets as a new client sees them: through the server when one runs. */
async function committed(
  dir: string,
  group: string,
  topic: string,
  kind: 'remote' | 'embedded',
): Promise<Map<number, number>> {
  const log = await openLog(logConfig(dir), { retentionCheckMs: 0 });
  try {
    expect(log.kind).toBe(kind);
    return await log.committedOffsets(group, topic);
  } finally {
    await log.close();
  }
}

describe('tributary topics while tributary log serve holds the data dir', { timeout: 180_000 }, () => {
  it('tail --group reads through the server and its commits stay after the server stops', async () => {
    const child = spawn(process.execPath, ['bin/tributary.js', '--data-dir', servedDataDir, 'log', 'serve'], {
      env,
    });
    server = child;
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const deadline = Date.now() + 60_000;
    while (!stdout.includes('\n')) {
      if (child.exitCode !== null) throw new Error(`log serve exited early:\n${stderr}`);
      if (Date.now() > deadline) throw new Error(`log serve did not start:\n${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(stdout).toMatch(/^log server on 127\.0\.0\.1:\d+ \(pid \d+\)\n$/);
    // The server holds the log's lock, so the commands below can only succeed through it.
    const logDir = path.join(servedDataDir, 'log');
    expect(readLogServerInfo(logDir)?.pid).toBe(child.pid);
    expect(readFileSync(path.join(logDir, 'LOCK'), 'utf8')).toContain(String(child.pid));

    const input = ['a', 'b', 'c', 'd', 'e'].map((v) => JSON.stringify({ v })).join('\n');
    expect(cli(['topics', 'produce', 'letters'], input, servedDataDir)).toMatchObject({
      code: 0,
      stdout: 'appended 5 records to letters\n',
    });
    expect(cli(['topics', 'list'], undefined, servedDataDir).stdout).toBe('letters\n');
    const first = cli(
      ['topics', 'tail', 'letters', '--group', 'g', '--limit', '2'],
      undefined,
      servedDataDir,
    );
    expect(first.code, first.stderr).toBe(0);
    expect(tailLines(first.stdout).map((r) => r.value)).toEqual([{ v: 'a' }, { v: 'b' }]);
    const second = cli(
      ['topics', 'tail', 'letters', '--group', 'g', '--limit', '1'],
      undefined,
      servedDataDir,
    );
    expect(second.code, second.stderr).toBe(0);
    expect(tailLines(second.stdout).map((r) => r.value)).toEqual([{ v: 'c' }]);
    // Another client of the server sees what the group committed.
    expect(await committed(servedDataDir, 'g', 'letters', 'remote')).toEqual(new Map([[0, 3]]));

    child.kill('SIGTERM');
    expect(await exited, stderr).toBe(0);
    expect(existsSync(path.join(logDir, 'server.json'))).toBe(false);

    // No server now: the CLI opens the directory itself and the group resumes from its commit.
    expect(await committed(servedDataDir, 'g', 'letters', 'embedded')).toEqual(new Map([[0, 3]]));
    const rest = cli(['topics', 'tail', 'letters', '--group', 'g'], undefined, servedDataDir);
    expect(rest.code, rest.stderr).toBe(0);
    expect(tailLines(rest.stdout).map((r) => r.value)).toEqual([{ v: 'd' }, { v: 'e' }]);
    expect(await committed(servedDataDir, 'g', 'letters', 'embedded')).toEqual(new Map([[0, 5]]));
  });
});
