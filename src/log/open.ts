import { openDataDir, TributaryError, type TributaryConfig } from '../core/index.js';
import { openEmbeddedLog } from './embedded/index.js';
import type { Log } from './types.js';

/** The configuration keys `openLog` reads. */
export type LogConfig = Pick<
  TributaryConfig,
  'dataDir' | 'log' | 'logFsync' | 'logGroupCommitMs' | 'logRetentionMs' | 'logRetentionBytes'
>;

/** Brokers of a `kafka://host:port[,host:port]` setting. */
export function parseKafkaUrl(url: string): string[] {
  const match = /^kafka:\/\/(.+)$/.exec(url);
  const brokers = (match?.[1] ?? '')
    .split(',')
    .map((b) => b.trim().replace(/\/+$/, ''))
    .filter(Boolean);
  if (brokers.length === 0 || brokers.some((b) => !/^[^\s/:]+:\d{1,5}$/.test(b))) {
    throw new TributaryError(
      'CONFIG_INVALID',
      `log = ${JSON.stringify(url)}: expected kafka://host:port[,host:port]`,
    );
  }
  return brokers;
}

/**
 * Opens the log the configuration selects: the embedded log under `<dataDir>/log` (default), or
 * Kafka for `log: kafka://host:9092,...` (the Kafka client is loaded only then).
 *
 * @example
 * const log = await openLog(loadConfig());
 * await log.ensureTopic('events', { partitions: 4 });
 */
export async function openLog(config: LogConfig, options: { retentionCheckMs?: number } = {}): Promise<Log> {
  if (config.log.startsWith('kafka://')) {
    const { openKafkaLog } = await import('./kafka/index.js');
    return openKafkaLog({
      brokers: parseKafkaUrl(config.log),
      retentionMs: config.logRetentionMs,
      retentionBytes: config.logRetentionBytes,
    });
  }
  const paths = await openDataDir(config.dataDir);
  return openEmbeddedLog({
    dir: paths.log,
    fsync: config.logFsync,
    groupCommitMs: config.logGroupCommitMs,
    retentionMs: config.logRetentionMs,
    retentionBytes: config.logRetentionBytes,
    ...(options.retentionCheckMs === undefined ? {} : { retentionCheckMs: options.retentionCheckMs }),
  });
}
