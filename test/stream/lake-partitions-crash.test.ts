import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataDirPaths } from '../../src/core/index.js';
import { LocalStorage, openLake } from '../../src/lake/index.js';
import { openEmbeddedLog } from '../../src/log/index.js';
import { bucket } from '../../src/stream/index.js';
import {
  viewEvents,
  viewsTopic,
  viewUserBuckets,
  type ViewEvent,
} from '../../src/stream/testing/partitioned-lake.js';
import { queryLake } from '../lake/helpers.js';
import { runKillableWorker } from './kill-worker.js';

// kill -9 of the compiled worker running a column-partitioned lake sink (2 days × 3 show types ×
// 16 user buckets = 96 partitions, events in time order, at most 60 open: the second day's
// partitions push the first day's out through the LRU bound), once while held after a batch (files
// staged, checkpoint not yet taken) and once at a racing point (it may die inside a checkpoint or a
// lake commit); the restart must commit every event exactly once, in its partition.
const worker = path.resolve('dist/src/stream/testing/partitioned-lake.js');
const n = 6_000;
let root: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'tributary-lakeparts-crash-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function seed(dataDir: string, events: readonly ViewEvent[]): Promise<void> {
  const log = await openEmbeddedLog({ dir: dataDirPaths(dataDir).log, fsync: 'never' });
  await log.createTopic(viewsTopic, { partitions: 1 });
  await log.append(events.map((e) => ({ topic: viewsTopic, key: e.user_id, value: JSON.stringify(e) })));
  await log.close();
}

/** Runs the worker; killed with SIGKILL when held after batch `holdAfter`, or as soon as it printed batch `killAt`. */
function runWorker(dataDir: string, kill: { holdAfter?: number; killAt?: number }): Promise<string | null> {
  const args = [worker, dataDir, '--open-partitions-max=60'];
  if (kill.holdAfter !== undefined) args.push(`--hold-after=${kill.holdAfter}`);
  return runKillableWorker(
    args,
    (stdout) =>
      stdout.includes('held\n') || (kill.killAt !== undefined && stdout.includes(`batch ${kill.killAt}\n`)),
  );
}

async function committed(dataDir: string): Promise<Record<string, unknown>[]> {
  const lake = await openLake({ storage: new LocalStorage(dataDirPaths(dataDir).lake) });
  try {
    if ((await lake.table('silver', 'views').snapshot()) === null) return [];
    return await queryLake(
      lake,
      "select view_id::int id, user_id, strftime(event_date, '%Y-%m-%d') d, show_type, user_bucket::int b from silver.views order by view_id",
    );
  } finally {
    await lake.close();
  }
}

describe('column-partitioned lake sink, kill -9', () => {
  it('commits every event exactly once in its partition after kills mid-run', async () => {
    expect(existsSync(worker), 'run `npm run build` first').toBe(true);
    const [holdAfter, killAt] = fc.sample(
      fc.tuple(fc.integer({ min: 14, max: 18 }), fc.integer({ min: 2, max: 6 })),
      {
        seed: 7,
        numRuns: 1,
      },
    )[0];
    const events = viewEvents(n, { users: 2_000, days: 2, seed: 3 }).sort((a, b) => a.ts - b.ts);
    const dir = path.join(root, 'killed');
    await seed(dir, events);

    expect(await runWorker(dir, { holdAfter })).toBe('SIGKILL');
    const afterFirst = await committed(dir);
    // Killed on the second day: the first day's partitions, rolled by the LRU bound, are committed.
    expect(afterFirst.length).toBeGreaterThan(0);
    expect(afterFirst.length).toBeLessThan(n);
    expect(await runWorker(dir, { killAt })).toBe('SIGKILL');
    const afterSecond = await committed(dir);
    expect(new Set(afterSecond.map((r) => r.id)).size).toBe(afterSecond.length);

    expect(await runWorker(dir, {})).toBeNull();
    const rows = await committed(dir);
    expect(rows).toEqual(
      [...events]
        .sort((a, b) => a.view_id - b.view_id)
        .map((e) => ({
          id: e.view_id,
          user_id: e.user_id,
          d: new Date(e.ts).toISOString().slice(0, 10),
          show_type: e.show_type,
          b: bucket(e.user_id, viewUserBuckets),
        })),
    );
  }, 120_000);
});
