// Pipeline `viewing` (seed 003): viewing events from CSV / JSON files, a JSON stream endpoint and a
// partner API → validation (first failing rule → quarantine; repeats of an event_id dropped) →
// `bronze.viewing_events` partitioned by event_date / show_type / user_bucket → engagement,
// sessions, device mix, anomalies and also-watched in gold; live one-minute windows per show.
import path from 'node:path';
import type { PipelineServices } from '../types.js';
import { topics } from './jobs.js';

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
  };
}

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
