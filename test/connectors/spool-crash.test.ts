import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openEmbeddedLog } from '../../src/log/index.js';
import { skipWithout } from '../fixtures/prerequisite.js';

// Runs the compiled child (`npm run build` first; `npm test` does it through `pretest`).
const child = path.resolve('dist/src/connectors/testing/spool-child.js');

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'spool-crash-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function run(
  spool: string,
  logDir: string,
  killWhen?: () => Promise<boolean>,
): Promise<{ code: number | null; signal: string | null; out: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [child, spool, logDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    proc.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    proc.on('error', reject);
    proc.on('exit', (code, signal) => resolve({ code, signal, out }));
    if (killWhen) {
      const check = async () => {
        if (proc.exitCode !== null) return;
        if (await killWhen()) proc.kill('SIGKILL');
        else setTimeout(() => void check(), 5);
      };
      void check();
    }
  });
}

describe.skipIf(skipWithout(existsSync(child), `the compiled child ${child} is missing (npm run build)`))(
  'spool source survives kill -9 mid-file (compiled child process)',
  () => {
    it('delivers every record exactly once across two SIGKILLs', async () => {
      const spool = path.join(dir, 'spool');
      const logDir = path.join(dir, 'log');
      const { mkdir } = await import('node:fs/promises');
      await mkdir(spool);
      const lines = Array.from({ length: 3000 }, (_, i) => `record-${i}`);
      await writeFile(path.join(spool, 'big.txt'), `${lines.join('\n')}\n`);
      const stateFile = path.join(spool, '.tributary-spool.state.json');
      const recordsDone = async () => {
        const text = await readFile(stateFile, 'utf8').catch(() => null);
        if (text === null) return 0;
        try {
          return (JSON.parse(text) as { current: { recordsDone: number } | null }).current?.recordsDone ?? 0;
        } catch {
          return 0;
        }
      };
      const first = await run(spool, logDir, async () => (await recordsDone()) >= 500);
      expect(first.signal).toBe('SIGKILL');
      const second = await run(spool, logDir, async () => (await recordsDone()) >= 1500);
      expect(second.signal).toBe('SIGKILL');
      const third = await run(spool, logDir);
      expect(third.code, third.out).toBe(0);
      expect(existsSync(path.join(spool, 'big.txt.COMPLETED'))).toBe(true);
      const log = await openEmbeddedLog({ dir: logDir, retentionCheckMs: 0 });
      try {
        const values: string[] = [];
        let offset = 0;
        for (;;) {
          const batch = await log.fetch('crash', 0, offset, { maxRecords: 10_000 });
          if (batch.length === 0) break;
          values.push(...batch.map((r) => Buffer.from(r.value!).toString('utf8')));
          offset = batch[batch.length - 1].offset + 1;
        }
        expect(values.length).toBe(lines.length);
        expect(values).toEqual(lines);
      } finally {
        await log.close();
      }
    });
  },
);
