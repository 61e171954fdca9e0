import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isTributaryError } from '../../src/core/index.js';
import { connectRemoteLog, readLogServerInfo, type RemoteLog } from '../../src/log/index.js';
import { until as waitUntil } from '../fixtures/processes.js';

/**
 * One consumer group as several processes: a log server (`tributary log serve`, compiled CLI) and
 * member processes (compiled `member-worker.js`) that find it through `<dataDir>/log/server.json`.
 * Killing a member (kill -9) or stopping it (SIGSTOP, past the session timeout) hands its
 * partitions to the others; no partition is ever owned by two live members. `npm test` builds first.
 */
const cli = path.resolve('bin/tributary.js');
const worker = path.resolve('dist/src/log/remote/member-worker.js');
const root = mkdtempSync(path.join(os.tmpdir(), 'tributary-remote-crash-'));
const children: ChildProcessWithoutNullStreams[] = [];
afterAll(() => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

const topic = 'work';
const group = 'workers';
const sessionTimeoutMs = 3000;

interface Proc {
  child: ChildProcessWithoutNullStreams;
  lines: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function start(args: string[]): Proc {
  const child = spawn(process.execPath, args, {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, TRIBUTARY_LOG_LEVEL: 'error' },
  });
  children.push(child);
  const lines: string[] = [];
  let partial = '';
  child.stdout.on('data', (chunk: Buffer) => {
    const text = partial + chunk.toString();
    const parts = text.split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      if (code !== 0 && signal === null) process.stderr.write(`child ${args.join(' ')} failed:\n${stderr}\n`);
      resolve({ code, signal });
    }),
  );
  return { child, lines, exited };
}

/** Waits (polling every 20 ms) for `condition`; fails after a generous deadline, never on speed. */
const until = (what: string, condition: () => boolean) => waitUntil(what, condition, 30_000);

/** The partitions a member said it owns in its last `assignment` line (undefined before any). */
function latestAssignment(member: Proc): number[] | undefined {
  const line = member.lines.filter((l) => l.startsWith('assignment')).at(-1);
  if (line === undefined) return undefined;
  const list = line.slice('assignment'.length).trim();
  return list === '' ? [] : list.split(',').map(Number);
}

/** True when `members` own every partition exactly once, each `perMember` of them. */
function ownsAllOnce(members: Proc[], perMember: number): boolean {
  const lists = members.map(latestAssignment);
  if (lists.some((l) => l === undefined || l.length !== perMember)) return false;
  const all = lists.flat() as number[];
  return all.length === 6 && new Set(all).size === 6;
}

describe('a consumer group across processes sharing one embedded log', () => {
  it('has the compiled CLI and member worker (npm test builds them; otherwise run `npm run build`)', () => {
    expect(existsSync(worker), `${worker} is missing: run \`npm run build\` first`).toBe(true);
  });

  it('rebalances at once when a member is killed, after the session timeout when one is stopped', async () => {
    const dataDir = path.join(root, 'data');
    const server = start([
      cli,
      '--data-dir',
      dataDir,
      'log',
      'serve',
      '--session-timeout-ms',
      String(sessionTimeoutMs),
    ]);
    await until('the server prints its address', () => server.lines.length > 0);
    const match = /^log server on 127\.0\.0\.1:(\d+) \(pid (\d+)\)$/.exec(server.lines[0]);
    expect(match, server.lines[0]).not.toBeNull();
    expect(Number(match![2])).toBe(server.child.pid);

    const info = readLogServerInfo(path.join(dataDir, 'log'))!;
    expect(info.port).toBe(Number(match![1]));
    const wrong = await connectRemoteLog({ host: info.host, port: info.port, token: `${info.token}x` }).then(
      () => null,
      (error: unknown) => error,
    );
    expect(isTributaryError(wrong, 'UNAUTHENTICATED'), String(wrong)).toBe(true);

    let admin: RemoteLog | undefined = await connectRemoteLog(info);
    try {
      await admin.createTopic(topic, { partitions: 6 });

      // A CLI command in another process shares the data dir through the server too.
      const listed = spawnSync(process.execPath, [cli, '--data-dir', dataDir, 'topics', 'describe', topic], {
        encoding: 'utf8',
        env: { ...process.env, TRIBUTARY_LOG_LEVEL: 'error' },
      });
      expect(listed.status, listed.stderr).toBe(0);
      expect((JSON.parse(listed.stdout) as { partitions: unknown[] }).partitions).toHaveLength(6);

      const members = [0, 1, 2].map(() => start([worker, dataDir, group, topic]));
      await until('three members own two partitions each', () => ownsAllOnce(members, 2));
      for (const member of members) expect(member.lines[0]).toBe('ready remote');

      // Every record is read once by the group.
      await admin.append(Array.from({ length: 60 }, (_, i) => ({ topic, key: `k${i}`, value: `v${i}` })));
      const reads = () => members.flatMap((m) => m.lines.filter((l) => l.startsWith('read ')));
      await until('the group read all 60 records', () => reads().length >= 60);
      expect(new Set(reads()).size).toBe(60);
      expect(reads()).toHaveLength(60);

      // kill -9: the connection closes, the member leaves, the other two take its partitions.
      members[0].child.kill('SIGKILL');
      expect((await members[0].exited).signal).toBe('SIGKILL');
      await until('two members own three partitions each', () => ownsAllOnce(members.slice(1), 3));

      // SIGSTOP: the connection stays open but falls silent; after the session timeout the
      // server drops it and the last member owns everything.
      members[1].child.kill('SIGSTOP');
      await until('the last member owns all six partitions', () => ownsAllOnce(members.slice(2), 6));
      members[1].child.kill('SIGKILL');
      await members[1].exited;

      // While a member is alive the group has members: a reset is refused (as Kafka does).
      const refused = await admin.resetOffsets(group, topic, 'earliest').then(
        () => null,
        (error: unknown) => error,
      );
      expect(isTributaryError(refused, 'CONFLICT'), String(refused)).toBe(true);

      members[2].child.kill('SIGTERM');
      expect((await members[2].exited).code).toBe(0);
      expect(members[2].lines.at(-1)).toBe('closed');

      // No members left: the reset goes through, and a new member gets every partition.
      await admin.resetOffsets(group, topic, 'earliest');
      const fresh = admin.consumer({ group, topics: [topic] });
      const deadline = Date.now() + 30_000;
      while (fresh.assignment().length < 6 && Date.now() < deadline) await fresh.poll({ waitMs: 50 });
      expect(fresh.assignment().map((tp) => tp.partition)).toEqual([0, 1, 2, 3, 4, 5]);
      await fresh.close();
      await admin.close();
      admin = undefined;

      server.child.kill('SIGTERM');
      expect((await server.exited).code).toBe(0);
      expect(readLogServerInfo(path.join(dataDir, 'log'))).toBeNull();
      expect(existsSync(path.join(dataDir, 'log', 'server.json'))).toBe(false);
    } finally {
      await admin?.close();
    }
  }, 120_000);
});
