// Pipeline `viewing` (seed 003): viewing events from CSV / JSON files, a JSON stream endpoint and a
// partner API → validation (first failing rule → quarantine; repeats of an event_id dropped) →
// `bronze.viewing_events` partitioned by event_date / show_type / user_bucket → engagement,
// sessions, device mix, anomalies and also-watched in gold; live one-minute windows per show.
import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { counter, gauge } from '../../core/index.js';
import { resolvePipelineSettings, type PipelineSettingsSpec } from '../settings.js';
import { tableRowCount } from '../tables.js';
import type { PipelineDefinition, PipelineServices } from '../types.js';
import { generateViewing, liveEvents, toCsv, toNdjson } from './generate.js';
import { viewingGoldJob } from './gold.js';
import {
  sourceHeader,
  tables,
  topics,
  viewingLiveJob,
  viewingValidateJob,
  type RoutedEvent,
} from './jobs.js';
import { LiveBoard, viewingModule } from './routes.js';

export const pipelineName = 'viewing';

/** Partitions of `viewing.events`, keyed by user_id. */
export const eventTopicPartitions = 4;

/** The spool directory of viewing files: `<dataDir>/spool/viewing`. */
export function viewingSpoolDir(services: Pick<PipelineServices, 'config'>): string {
  return path.join(services.config.dataDir, 'spool', 'viewing');
}

/** Spool source options: CSV, JSON lines and JSON arrays (each optionally .gz), keyed by user_id. */
export function viewingSpoolOptions(dir: string) {
  return {
    dir,
    topic: topics.events,
    keyField: 'user_id',
    badRecords: 'forward' as const,
    stableMs: 500,
    pollIntervalMs: 500,
    // Each append also saves the spool's position (two fsyncs) and waits for the log's fsync:
    // history files of millions of events go in batches of 20k rows (≈ 10 MB), not 5k.
    batchRecords: 20_000,
    batchBytes: 16 * 1024 * 1024,
  };
}

const outcomes = counter(
  'tributary_viewing_events_total',
  'Viewing events by outcome (valid, quarantined, duplicate)',
  ['outcome'],
);
const quarantinedByReason = counter(
  'tributary_viewing_quarantined_total',
  'Quarantined viewing events by reason',
  ['reason'],
);
const qualityScore = gauge(
  'tributary_viewing_quality_score',
  'Valid / in over the events this process validated',
);
const seen = { valid: 0, all: 0 };

/** Prometheus counters of the validation job, and the quality score valid / in. */
function countOutcome(routed: RoutedEvent): void {
  outcomes.inc({ outcome: routed.kind });
  if (routed.kind === 'quarantined') quarantinedByReason.inc({ reason: routed.reason });
  seen.all++;
  if (routed.kind === 'valid') seen.valid++;
  qualityScore.set(seen.valid / seen.all);
}

/** What the jobs and the routes of one platform share: the live board. */
const boards = new WeakMap<PipelineServices, LiveBoard>();
function boardOf(services: PipelineServices): LiveBoard {
  let board = boards.get(services);
  if (board === undefined) {
    board = new LiveBoard();
    boards.set(services, board);
  }
  return board;
}

/** Writes a generated set into the spool directory (CSV and gzip-free JSON lines), atomically per file. */
async function spoolGenerated(
  dir: string,
  records: ReturnType<typeof generateViewing>['records'],
): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const half = Math.ceil(records.length / 2);
  const files: [string, string][] = [
    ['history-1.csv', toCsv(records.slice(0, half))],
    ['history-2.jsonl', toNdjson(records.slice(half))],
  ];
  for (const [name, content] of files) {
    const temporary = path.join(dir, `.${name}.tmp`);
    await writeFile(temporary, content);
    await rename(temporary, path.join(dir, name));
  }
  return files.map(([name]) => name);
}

export const viewingSettings = {
  partnerApiUrl: {
    env: ['VIEWING_API_URL'],
    flag: '--viewing-api-url <url>',
    description:
      'partner API of viewing events, cursor-paged (GET …?cursor=); `tributary simulate viewing-api` serves one',
    schema: z.string().regex(/^https?:\/\//, 'an http(s) URL'),
  },
} satisfies PipelineSettingsSpec;

/** Live demo events per second under `tributary up` (a trickle, so the live tiles move). */
export const demoEventsPerSecond = 5;

export const viewingPipeline: PipelineDefinition = {
  name: pipelineName,
  title: 'Viewing',
  description:
    'Viewing events (files, JSON stream, partner API) → validation → partitioned lake → engagement, live, anomalies',
  async jobs(services) {
    await services.log.ensureTopic(topics.events, { partitions: eventTopicPartitions });
    await services.log.ensureTopic(topics.valid, { partitions: eventTopicPartitions });
    const board = boardOf(services);
    return {
      stream: [
        viewingValidateJob({ log: services.log, lake: services.lake, onOutcome: countOutcome }),
        viewingLiveJob({
          log: services.log,
          onWindow: (window) => {
            board.update(window);
            services.publish?.({ type: 'viewing.live', data: board.current().totals });
          },
        }),
      ],
      batch: [viewingGoldJob(services.lake)],
    };
  },
  settings: viewingSettings,
  sources: (services) => {
    const partner = resolvePipelineSettings(pipelineName, viewingSettings, services.config).partnerApiUrl;
    return [
      { name: 'spool', kind: 'spool', options: viewingSpoolOptions(viewingSpoolDir(services)) },
      ...(partner === undefined
        ? []
        : [
            {
              name: 'partner-api',
              kind: 'http' as const,
              options: {
                url: partner,
                topic: topics.events,
                recordsPath: 'events',
                keyField: 'user_id',
                pagination: { type: 'cursor' as const, nextCursorPath: 'next_cursor' },
                incremental: { field: 'seq', param: 'after' },
                pollIntervalMs: 5_000,
                allowPrivateNetworks: true,
              },
            },
          ]),
      {
        // Demo traffic: a trickle of fresh events so the live tiles move (nothing to drain).
        name: 'live-demo',
        kind: 'custom' as const,
        async run(context) {
          const next = liveEvents(`demo-${Date.now()}`, Date.now() % 1_000_000);
          let records = 0;
          while (!context.signal.aborted) {
            const batch = Array.from({ length: demoEventsPerSecond }, () => next(context.clock.now()));
            await services.log.append(
              batch.map((event) => ({
                topic: topics.events,
                key: String(event.user_id),
                value: JSON.stringify(event),
                headers: { [sourceHeader]: 'demo' },
              })),
            );
            records += batch.length;
            context.report({ records, position: String(batch[batch.length - 1].event_ts) });
            await context.clock.sleep(1000, context.signal).catch(() => undefined);
          }
        },
      },
    ];
  },
  async report(services) {
    const count = (table: string) => tableRowCount(services, table);
    const [valid, quarantined, duplicates] = await Promise.all([
      count(tables.bronze),
      count(tables.quarantine),
      count(tables.duplicates),
    ]);
    const total = valid + quarantined + duplicates;
    return [
      `records: ${total} in = ${valid} valid + ${quarantined} quarantined + ${duplicates} duplicates; quality score ${total === 0 ? '-' : (valid / total).toFixed(4)}`,
    ];
  },
  serve: (services) =>
    viewingModule({ query: services.query, lake: services.lake, log: services.log, live: boardOf(services) }),
  async seedDemo(services, progress) {
    const dir = viewingSpoolDir(services);
    if (existsSync(dir) && (await readdir(dir)).length > 0) return;
    const set = generateViewing({ users: 300, days: 21, seed: 2026 });
    const files = await spoolGenerated(dir, set.records);
    progress?.(
      `viewing: ${set.records.length} demo events (${set.valid.length} valid) in ${files.join(', ')}`,
    );
  },
};

export { LiveBoard, viewingModule, viewingFilters } from './routes.js';
export { startPartnerApi, type PartnerApi, type PartnerApiOptions } from './partner-api.js';
export { generateViewing, toCsv, toNdjson, type GeneratedViewing, type RawEvent } from './generate.js';
export { refreshViewingGold, viewingGoldJob, goldQueries as viewingGoldQueries } from './gold.js';
export {
  viewingValidateJob,
  viewingLiveJob,
  topics as viewingTopics,
  tables as viewingTables,
  type LiveWindow,
  type RoutedEvent,
} from './jobs.js';
export { validateEvent, parseEventTs, type ViewingEvent, type QuarantineReason } from './validate.js';
