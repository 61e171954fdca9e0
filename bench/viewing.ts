import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createSpoolSource, CsvParser } from '../src/connectors/index.js';
import { LocalStorage, openLake } from '../src/lake/index.js';
import { openEmbeddedLog } from '../src/log/index.js';
import {
  generateViewing,
  toCsv,
  viewingSpoolOptions,
  viewingTables,
  viewingTopics,
  viewingValidateJob,
} from '../src/pipelines/viewing/index.js';
import { runJob } from '../src/stream/index.js';
import type { BenchContext, Benchmark, BenchResult } from './types.js';

/**
 * viewing.ingest: a CSV file of generated viewing events → spool source → `viewing.events`
 * (embedded log, group fsync) → the validation job (rules, dedup) → `bronze.viewing_events`
 * partitioned by event_date / show_type / user_bucket, committed. Baseline, same file and run:
 * the platform's CSV parser alone over the file's text.
 */
async function viewingIngest(context: BenchContext): Promise<BenchResult> {
  const users = Number(process.env.TRIBUTARY_BENCH_VIEWING_USERS ?? 4000);
  const set = generateViewing({ users, days: 14, seed: 3, badPerReason: 0, duplicates: 0 });
  const spool = path.join(context.dir, 'spool');
  await mkdir(spool, { recursive: true });
  const file = path.join(spool, 'events.csv');
  await writeFile(file, toCsv(set.records));
  context.progress(`${set.records.length.toLocaleString('en-US')} events in one CSV file`);

  const text = await readFile(file, 'utf8');
  const parser = new CsvParser();
  const baselineStart = performance.now();
  let rows = parser.push(text).length;
  rows += parser.end().length;
  const baseline = (rows - 1) / ((performance.now() - baselineStart) / 1000);

  const log = await openEmbeddedLog({ dir: path.join(context.dir, 'log') });
  const lake = await openLake({ storage: new LocalStorage(path.join(context.dir, 'lake')) });
  try {
    await log.createTopic(viewingTopics.events, { partitions: 4 });
    const started = performance.now();
    const report = await createSpoolSource({ ...viewingSpoolOptions(spool), stableMs: 0 }, { log }).poll();
    await runJob(viewingValidateJob({ log, lake }), { dataDir: path.join(context.dir, 'state'), once: true });
    const seconds = (performance.now() - started) / 1000;
    const snapshot = await lake.table(viewingTables.bronze).snapshot();
    const committed = snapshot?.files.reduce((n, f) => n + f.rows, 0) ?? 0;
    if (report.records !== set.records.length || committed !== set.valid.length) {
      throw new Error(`spooled ${report.records}, bronze holds ${committed}; expected ${set.valid.length}`);
    }
    const value = committed / seconds;
    return {
      value,
      unit: 'events/s',
      baseline,
      baseline_name: 'CSV parse alone (same file) rows/s',
      ratio: value / baseline,
      goal: '>= 500,000 events/s',
      events: committed,
      files: snapshot?.files.length ?? 0,
    };
  } finally {
    await log.close();
    await lake.close();
  }
}

export const viewingBenchmarks: Benchmark[] = [
  {
    name: 'viewing.ingest',
    description:
      'CSV viewing events → spool → log → validation and dedup → bronze by date / show type / user bucket',
    run: viewingIngest,
  },
];
