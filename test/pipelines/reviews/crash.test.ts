import { existsSync } from 'node:fs';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reviewTables as tables, writeDemoReviews } from '../../../src/pipelines/reviews/index.js';
import { skipWithout } from '../../fixtures/prerequisite.js';
import { killRunAfterCheckpoint, lakeRows, runEnv, runOnce } from '../kill-run.js';

/**
 * kill -9 of `tributary run reviews` (unbounded: spool source and ingest job) while it is taking
 * the demo files in, then `run reviews --once` on the same data dir: the tables hold exactly what
 * an uninterrupted run gives — nothing lost (the spool's durable position and the job's
 * checkpoints), nothing twice (deterministic record ids, two-phase lake commits, seen-id state).
 */
const built = path.resolve('dist/src/cli/main.js');

function tablesOf(dataDir: string) {
  return lakeRows(dataDir, {
    bronze: `SELECT source_file, source_line, outcome FROM ${tables.bronze} ORDER BY 1, 2`,
    silver: `SELECT review_id, product_id, rating, sentiment_label FROM ${tables.silver} ORDER BY review_id`,
    quarantine: `SELECT source_file, source_line, reason FROM ${tables.quarantine} ORDER BY 1, 2`,
    duplicates: `SELECT review_id, source_file, source_line FROM ${tables.duplicates} ORDER BY 2, 3`,
  });
}

describe.skipIf(skipWithout(existsSync(built), `the build is missing (${built}); run npm run build`))(
  'reviews: kill -9 mid-ingest, then a restart',
  () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'reviews-crash-'));
    });
    afterAll(async () => rm(dir, { recursive: true, force: true }));

    it('loses and duplicates nothing (seed 11)', { timeout: 300_000 }, async () => {
      const files = path.join(dir, 'files');
      const demo = await writeDemoReviews(files, { reviewsPerFormat: 4000, seed: 11 });

      const straight = path.join(dir, 'straight');
      await cp(files, path.join(straight, 'spool'), { recursive: true });
      runOnce('reviews', runEnv(straight, { REVIEWS_SPOOL_DIR: path.join(straight, 'spool') }));
      const expected = await tablesOf(straight);
      expect(expected.silver).toHaveLength(demo.reviews - demo.duplicates);

      const crashed = path.join(dir, 'crashed');
      const spool = path.join(crashed, 'spool');
      await cp(files, spool, { recursive: true });
      await killRunAfterCheckpoint(
        'reviews',
        'reviews.ingest',
        runEnv(crashed, { REVIEWS_SPOOL_DIR: spool }),
        11,
      );

      const report = runOnce('reviews', runEnv(crashed, { REVIEWS_SPOOL_DIR: spool }));
      // The kill landed mid-ingest: the restart still had records to take in or to process.
      const restarted = /stream reviews\.ingest: finished; in (\d+)/.exec(report);
      expect(Number(restarted?.[1] ?? 0), report).toBeGreaterThan(0);
      expect(report).toContain(
        `records: ${demo.reviews + demo.badLines} in = ${demo.reviews - demo.duplicates} accepted + ${demo.badLines} quarantined + ${demo.duplicates} duplicates`,
      );
      const actual = await tablesOf(crashed);
      expect(actual.silver).toEqual(expected.silver);
      expect(actual.quarantine).toEqual(expected.quarantine);
      expect(actual.duplicates).toEqual(expected.duplicates);
      expect(actual.bronze).toEqual(expected.bronze);
    });
  },
);
