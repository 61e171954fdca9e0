import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { rootLogger } from '../../../src/core/index.js';
import { createSpoolSource } from '../../../src/connectors/index.js';
import { LocalStorage, openLake, type Lake } from '../../../src/lake/index.js';
import { openEmbeddedLog, type EmbeddedLog } from '../../../src/log/index.js';
import {
  generateViewing,
  toCsv,
  viewingSpoolOptions,
  viewingTables,
  viewingTopics,
  viewingValidateJob,
} from '../../../src/pipelines/viewing/index.js';
import { runJob } from '../../../src/stream/index.js';

const logger = rootLogger.child({}, { level: 'silent' });
const dayMs = 86_400_000;

let dir: string;
let lake: Lake;
let log: EmbeddedLog;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tributary-viewing-retention-'));
  lake = await openLake({ storage: new LocalStorage(path.join(dir, 'lake')) });
  // A week of retention and small segments, so retention has closed segments to judge.
  log = await openEmbeddedLog({
    dir: path.join(dir, 'log'),
    retentionMs: 7 * dayMs,
    segmentBytes: 64 * 1024,
    retentionCheckMs: 0,
  });
});
afterEach(async () => {
  await log.close();
  await lake.close();
  await rm(dir, { recursive: true, force: true });
});

describe('viewing: historical files and the log retention', () => {
  it('events weeks old survive the topic retention: records carry the ingest time, not event_ts', async () => {
    const history = generateViewing({
      users: 20,
      days: 7,
      seed: 5,
      endMs: Date.now() - 30 * dayMs,
      badPerReason: 0,
      duplicates: 0,
    });
    await log.createTopic(viewingTopics.events, { partitions: 2 });
    const spool = path.join(dir, 'spool');
    await mkdir(spool);
    await writeFile(path.join(spool, 'history.csv'), toCsv(history.records));
    const report = await createSpoolSource(
      { ...viewingSpoolOptions(spool), stableMs: 0 },
      { log, logger },
    ).poll();
    expect(report.records).toBe(history.records.length);
    await log.enforceRetention();
    for (const p of (await log.describeTopic(viewingTopics.events)).partitions) expect(p.startOffset).toBe(0);
    await runJob(viewingValidateJob({ log, lake }), { dataDir: path.join(dir, 'state'), once: true });
    const snapshot = await lake.table(viewingTables.bronze).snapshot();
    expect(snapshot?.files.reduce((n, f) => n + f.rows, 0)).toBe(history.valid.length);

    // The same events stamped with their event time would have been deleted by that retention.
    await log.createTopic('stamped', { partitions: 1 });
    for (let i = 0; i < history.records.length; i += 50)
      await log.append(
        history.records.slice(i, i + 50).map((r) => ({
          topic: 'stamped',
          value: JSON.stringify(r),
          timestamp: Date.parse(String(r.event_ts)),
        })),
      );
    await log.enforceRetention();
    const stamped = await log.describeTopic('stamped');
    expect(stamped.partitions[0].startOffset).toBeGreaterThan(0);
  });
});
