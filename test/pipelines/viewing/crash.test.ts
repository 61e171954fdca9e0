import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  generateViewing,
  toCsv,
  toNdjson,
  viewingTables as tables,
} from '../../../src/pipelines/viewing/index.js';
import { skipWithout } from '../../fixtures/prerequisite.js';
import { killRunAfterCheckpoint, lakeRows, runEnv, runOnce } from '../kill-run.js';

/**
 * kill -9 of `tributary run viewing` (unbounded: spool source, validation and live jobs) while it
 * is taking generated files in, then `run viewing --once` on the same data dir: bronze, quarantine
 * and duplicates hold exactly what an uninterrupted run gives.
 */
const built = path.resolve('dist/src/cli/main.js');

function tablesOf(dataDir: string) {
  return lakeRows(dataDir, {
    bronze: `SELECT event_id, user_id, show_id, event_type, watch_seconds, user_bucket FROM ${tables.bronze} ORDER BY event_id`,
    quarantine: `SELECT event_id, reason, source FROM ${tables.quarantine} ORDER BY raw`,
    duplicates: `SELECT event_id, source FROM ${tables.duplicates} ORDER BY event_id, source`,
  });
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
      runOnce('viewing', runEnv(straight));
      const expected = await tablesOf(straight);
      expect(expected.bronze).toHaveLength(set.valid.length);

      const crashed = path.join(dir, 'crashed');
      await cp(files, spoolOf(crashed), { recursive: true });
      await killRunAfterCheckpoint('viewing', 'viewing.validate', runEnv(crashed), 13);

      const report = runOnce('viewing', runEnv(crashed));
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
