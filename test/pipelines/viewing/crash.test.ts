import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, seededRandom } from '../../../src/core/index.js';
import { openLakeFromConfig } from '../../../src/lake/index.js';
import {
  generateViewing,
  toCsv,
  toNdjson,
  viewingTables as tables,
} from '../../../src/pipelines/viewing/index.js';
import { checkpointDir } from '../../../src/stream/index.js';
import { openSqlEngine } from '../../../src/sql/index.js';
import { skipWithout } from '../../fixtures/prerequisite.js';

/**
 * kill -9 of `tributary run viewing` (unbounded: spool source, validation and live jobs) while it
 * is taking generated files in, then `run viewing --once` on the same data dir: bronze, quarantine
 * and duplicates hold exactly what an uninterrupted run gives.
 */
const bin = path.resolve('bin/tributary.js');
const built = path.resolve('dist/src/cli/main.js');

function env(dataDir: string): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TRIBUTARY_')));
  return { ...base, TRIBUTARY_DATA_DIR: dataDir, TRIBUTARY_LOG_LEVEL: 'error' };
}

function runOnce(dataDir: string): string {
  const result = spawnSync(process.execPath, [bin, 'run', 'viewing', '--once'], {
    env: env(dataDir),
    encoding: 'utf8',
    timeout: 180_000,
  });
  if (result.status !== 0) throw new Error(`run viewing --once exited ${result.status}: ${result.stderr}`);
  return result.stdout;
}

async function tablesOf(dataDir: string) {
  const config = loadConfig({ env: {}, dotenv: false, overrides: { dataDir } });
  const lake = await openLakeFromConfig(config);
  const sql = await openSqlEngine(lake);
  try {
    const rows = async (text: string) => (await sql.query(text)).map((r) => JSON.stringify(r));
    return {
      bronze: await rows(
        `SELECT event_id, user_id, show_id, event_type, watch_seconds, user_bucket FROM ${tables.bronze} ORDER BY event_id`,
      ),
      quarantine: await rows(`SELECT event_id, reason, source FROM ${tables.quarantine} ORDER BY raw`),
      duplicates: await rows(`SELECT event_id, source FROM ${tables.duplicates} ORDER BY event_id, source`),
    };
  } finally {
    sql.close();
    await lake.close();
  }
}

describe.skipIf(skipWithout(existsSync(built), `the build is missing (${built}); run npm run build`))(
  'viewing: kill -9 mid-ingest, then a restart',
  () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'viewing-crash-'));
    });
    afterAll(async () => rm(dir, { recursive: true, force: true }));

    it('loses and duplicates nothing (seed 13)', { timeout: 300_000 }, async () => {
      const set = generateViewing({ users: 400, days: 10, seed: 13 });
      const files = path.join(dir, 'files');
      await mkdir(files);
      const half = Math.ceil(set.records.length / 2);
      await writeFile(path.join(files, 'a.csv'), toCsv(set.records.slice(0, half)));
      await writeFile(path.join(files, 'b.jsonl'), toNdjson(set.records.slice(half)));
      const spoolOf = (dataDir: string) => path.join(dataDir, 'spool', 'viewing');

      const straight = path.join(dir, 'straight');
      await cp(files, spoolOf(straight), { recursive: true });
      runOnce(straight);
      const expected = await tablesOf(straight);
      expect(expected.bronze).toHaveLength(set.valid.length);

      const crashed = path.join(dir, 'crashed');
      await cp(files, spoolOf(crashed), { recursive: true });
      const child = spawn(process.execPath, [bin, 'run', 'viewing'], {
        env: env(crashed),
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_c, s) => resolve(s)));
      const current = path.join(checkpointDir(crashed, 'viewing.validate'), 'CURRENT');
      const deadline = Date.now() + 60_000;
      while (!existsSync(current)) {
        if (Date.now() > deadline || child.exitCode !== null)
          throw new Error(`run viewing never checkpointed: ${stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await new Promise((resolve) => setTimeout(resolve, Math.floor(seededRandom(13)() * 300)));
      child.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');

      const report = runOnce(crashed);
      const restarted = /stream viewing\.validate: finished; in (\d+)/.exec(report);
      expect(Number(restarted?.[1] ?? 0), report).toBeGreaterThan(0);
      const actual = await tablesOf(crashed);
      // The live demo source of the killed run may have added fresh events: compare the generated ones.
      const generated = (rows: string[]) => rows.filter((r) => !r.includes('"demo-'));
      expect(generated(actual.bronze)).toEqual(expected.bronze);
      expect(actual.quarantine).toEqual(expected.quarantine);
      expect(generated(actual.duplicates)).toEqual(expected.duplicates);
    });
  },
);
