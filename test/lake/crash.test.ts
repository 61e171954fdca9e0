import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalStorage, openLake } from '../../src/lake/index.js';
import { queryLake } from './helpers.js';
import { seededRandom } from '../../src/core/index.js';

const writerScript = path.resolve('dist/src/lake/testing/crash-writer.js');
const rowsPerCommit = 20;
const runs = process.env.TRIBUTARY_SLOW === '1' ? 100 : 20;
const seed = 20261122;

interface RunLog {
  acked: Map<string, number>;
  begun: string[];
}

async function runWriter(
  dir: string,
  tag: string,
  retryId: string | undefined,
  killAfterMs: number,
): Promise<RunLog> {
  const child = spawn(process.execPath, [writerScript, dir, tag, ...(retryId ? [retryId] : [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log: RunLog = { acked: new Map(), begun: [] };
  let buffer = '';
  let stderr = '';
  let timer: NodeJS.Timeout | undefined;
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let newline;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      const [word, id, version] = line.split(' ');
      if (word === 'ready') timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      if (word === 'begin') log.begun.push(id);
      if (word === 'ack') log.acked.set(id, Number(version));
    }
  });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('exit', (c, s) => resolve([c, s])),
  );
  clearTimeout(timer);
  if (signal !== 'SIGKILL') throw new Error(`crash writer exited on its own (code ${code}): ${stderr}`);
  return log;
}

describe('lake commits survive kill -9 at random points', () => {
  it(
    `${runs} seeded runs (seed ${seed}): only whole commits visible, every acknowledged commit exactly once`,
    { timeout: 600_000 },
    async () => {
      expect(existsSync(writerScript), `${writerScript} is missing: run \`npm run build\` first`).toBe(true);
      const dir = await mkdtemp(path.join(os.tmpdir(), 'tributary-lake-crash-'));
      const random = seededRandom(seed);
      const everAcked = new Set<string>();
      let lastOverwriteAcked: string | undefined;
      let retryId: string | undefined;
      let midCommitKills = 0;
      try {
        for (let run = 0; run < runs; run++) {
          const killAfterMs = Math.floor(random() * 400);
          const log = await runWriter(dir, `r${run}`, retryId, killAfterMs);
          for (const id of log.acked.keys()) everAcked.add(id);
          for (const id of log.begun) if (id.endsWith('-o') && log.acked.has(id)) lastOverwriteAcked = id;
          // The last begun commit's outcome is unknown: the next writer retries it.
          const last = log.begun.at(-1);
          retryId = last !== undefined && !log.acked.has(last) ? last : undefined;
          if (retryId !== undefined) midCommitKills++;

          const lake = await openLake({ storage: new LocalStorage(dir) });
          try {
            const context = `run ${run} (seed ${seed}, killed after ${killAfterMs} ms, ${log.acked.size} acks)`;
            const snapshot = await lake.table('bronze', 'crash').snapshot();
            if (snapshot === null) {
              expect(everAcked.size, context).toBe(0);
              continue;
            }
            // Reading every committed file succeeds (no partial file is referenced), and each
            // commit's rows are all there or none.
            const counts = await queryLake(
              lake,
              'select "commit" as id, count(*)::int as n, count(distinct seq)::int as d from bronze.crash group by all',
            );
            const byCommit = new Map(counts.map((r) => [String(r.id), Number(r.n)]));
            for (const row of counts)
              expect([row.n, row.d], `${context}: commit ${String(row.id)} is partial or duplicated`).toEqual(
                [rowsPerCommit, rowsPerCommit],
              );
            // Every acknowledged append is present exactly once; overwrites replace the partition.
            for (const id of everAcked) {
              if (!id.endsWith('-o'))
                expect(byCommit.get(id), `${context}: acknowledged ${id}`).toBe(rowsPerCommit);
              expect(snapshot.recentCommitIds, context).toContain(id);
            }
            const special = counts.filter((r) => String(r.id).endsWith('-o'));
            expect(
              special.length,
              `${context}: the overwritten partition holds one commit`,
            ).toBeLessThanOrEqual(1);
            if (lastOverwriteAcked !== undefined) expect(special.length, context).toBe(1);
            // gc removes everything uncommitted and repairs markers.
            await lake.gc({ graceMs: 0, keepVersions: 1 });
            const tableDir = path.join(dir, 'bronze', 'crash');
            const onDisk = (await readdir(tableDir, { recursive: true })).map(String);
            const parquet = onDisk.filter((f) => f.endsWith('.parquet')).sort();
            const after = await lake.table('bronze', 'crash').snapshot();
            expect(parquet, context).toEqual(after!.files.map((f) => f.path).sort());
            for (const partition of new Set(after!.files.map((f) => f.partition)))
              expect(onDisk, context).toContain(`${partition}/_SUCCESS`);
            expect(await readdir(path.join(dir, '_tmp')), context).toEqual([]);
          } finally {
            await lake.close();
          }
        }
        expect(everAcked.size, 'the writer must make progress in some runs').toBeGreaterThan(runs / 2);
        // The kills must land inside commits (between stage and acknowledgement) to prove anything.
        expect(midCommitKills, 'runs killed with a commit in flight').toBeGreaterThan(runs / 2);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
});
