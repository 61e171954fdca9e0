import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { partitionForKey } from '../../src/log/index.js';

/** Drives the built CLI (`npm test` builds first) against a scratch data dir. */
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'tributary-topics-cli-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

function cli(args: string[], input?: string) {
  const result = spawnSync(process.execPath, ['bin/tributary.js', '--data-dir', dataDir, ...args], {
    input,
    encoding: 'utf8',
    env: { ...process.env, TRIBUTARY_LOG_LEVEL: 'error' },
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
