import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openEmbeddedLog } from '../../src/log/index.js';
import { seededRandom } from '../../src/core/index.js';

/**
 * Kills a real writer process with SIGKILL at seeded random moments, reopens the log, and checks
 * that every acknowledged record is there exactly once, in order, byte for byte, and that nothing
 * partial is visible. Runs the compiled writer (`npm test` builds first).
 */
const writer = path.resolve('dist/src/log/embedded/crash-writer.js');
const runs = process.env.TRIBUTARY_SLOW === '1' ? 100 : 20;
const root = mkdtempSync(path.join(os.tmpdir(), 'tributary-crash-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function crashValue(seq: number): string {
  return `${seq}:${'abcdefghijklmnopqrstuvwxyz'.repeat(4).slice(0, seq % 97)}`;
}

/** Starts the writer, kills it `delayMs` after it is ready, and returns the acks it printed. */
function runAndKill(
  dir: string,
  seed: number,
  delayMs: number,
  fsync: string,
): Promise<{ seq: number; partition: number; offset: number }[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [writer, dir, String(seed), fsync], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let killTimer: NodeJS.Timeout | undefined;
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (killTimer === undefined && stdout.includes('ready\n')) {
        killTimer = setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (_code, signal) => {
      if (killTimer !== undefined) clearTimeout(killTimer);
      if (signal !== 'SIGKILL')
        return reject(new Error(`writer exited on its own (seed ${seed}): ${stderr}`));
      const acks = stdout
        .split('\n')
        .filter((line) => line.startsWith('ack '))
        .map((line) => {
          const [, seq, partition, offset] = line.split(' ').map(Number);
          return { seq: seq, partition: partition, offset: offset };
        });
      resolve(acks);
    });
  });
}

describe('embedded log survives kill -9', () => {
  it('has the compiled writer (npm test builds it; otherwise run `npm run build`)', () => {
    expect(existsSync(writer), `${writer} is missing: run \`npm run build\` first`).toBe(true);
  });

  // Normal runs kill a group-commit writer `runs` times; the slow suite adds fsync=always and
  // fsync=never (kill -9 keeps the page cache, so even unsynced acknowledged writes must survive).
  const policies =
    process.env.TRIBUTARY_SLOW === '1' ? (['group', 'always', 'never'] as const) : (['group'] as const);
  for (const fsync of policies) {
    it(
      `every acknowledged record is present exactly once after ${runs} kills (fsync ${fsync})`,
      async () => {
        const dir = path.join(root, fsync);
        const rng = seededRandom({ group: 1234, always: 5678, never: 9012 }[fsync]);
        const acked = new Map<number, { partition: number; offset: number }>();
        let killsWithAcks = 0;
        const perKind = runs;
        for (let run = 0; run < perKind; run++) {
          const seed = Math.floor(rng() * 1e9);
          const delayMs = 5 + Math.floor(rng() * 150);
          const acks = await runAndKill(dir, seed, delayMs, fsync);
          if (acks.length > 0) killsWithAcks++;
          for (const a of acks) acked.set(a.seq, { partition: a.partition, offset: a.offset });

          const log = await openEmbeddedLog({ dir, retentionCheckMs: 0, segmentBytes: 64 * 1024 });
          try {
            const seen = new Map<number, { partition: number; offset: number }>();
            const description = await log.describeTopic('crash');
            for (const p of description.partitions) {
              let offset = 0;
              let lastSeq = -1;
              for (;;) {
                const records = await log.fetch('crash', p.partition, offset, { maxRecords: 5000 });
                if (records.length === 0) break;
                for (const r of records) {
                  expect(r.offset, `seed ${seed}: offsets are contiguous`).toBe(offset);
                  offset++;
                  const seq = Number(new TextDecoder().decode(r.key!).slice(1));
                  expect(new TextDecoder().decode(r.value!), `seed ${seed}: record ${seq} is whole`).toBe(
                    crashValue(seq),
                  );
                  expect(seen.has(seq), `seed ${seed}: seq ${seq} appears once`).toBe(false);
                  expect(seq, `seed ${seed}: order within partition ${p.partition}`).toBeGreaterThan(lastSeq);
                  lastSeq = seq;
                  seen.set(seq, { partition: r.partition, offset: r.offset });
                }
              }
              expect(offset).toBe(p.endOffset);
            }
            for (const [seq, where] of acked) {
              expect(
                seen.get(seq),
                `seed ${seed}: acknowledged seq ${seq} survived at the acknowledged position`,
              ).toEqual(where);
            }
          } finally {
            await log.close();
          }
        }
        // The test must really have killed writers in the middle of acknowledged work.
        expect(killsWithAcks).toBeGreaterThan(perKind / 2);
        expect(acked.size).toBeGreaterThan(100);
        // Each run starts a node process; on a loaded CI machine that alone can take a second or two.
      },
      runs * 10_000,
    );
  }
});
