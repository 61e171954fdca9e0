import {
  childLogger,
  dataDirPaths,
  openDataDir,
  retry,
  TributaryError,
  type TributaryConfig,
} from '../core/index.js';
import { openEmbeddedLog } from './embedded/index.js';
import { connectRemoteLog, readLogServerInfo } from './remote/index.js';
import type { Log } from './types.js';

const logger = childLogger('log.open');

/** The configuration keys `openLog` reads. */
export type LogConfig = Pick<
  TributaryConfig,
  'dataDir' | 'log' | 'logFsync' | 'logGroupCommitMs' | 'logRetentionMs' | 'logRetentionBytes'
> &
  Partial<Pick<TributaryConfig, 'kafkaSaslMechanism' | 'kafkaSaslUsername' | 'kafkaSaslPassword'>>;

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

/** Host and port of a `tributary://host:port` setting (a log server, see `serveLog`). */
export function parseLogServerUrl(url: string): { host: string; port: number } {
  const match = /^tributary:\/\/([^\s/:]+):(\d{1,5})\/?$/.exec(url);
  const port = Number(match?.[2]);
  if (!match || port < 1 || port > 65535) {
    throw new TributaryError(
      'CONFIG_INVALID',
      `log = ${JSON.stringify(url)}: expected tributary://host:port (the address of \`tributary log serve\`)`,
    );
  }
  return { host: match[1], port };
}

export interface OpenLogOptions {
  /** How often the embedded log applies retention in the background; 0 turns it off. */
  retentionCheckMs?: number;
  /**
   * For the embedded log: connect to the log server of the data dir when one runs (default), or
   * open the directory in any case (what the server itself does).
   */
  viaServer?: boolean;
}

/**
 * Opens the log the configuration selects: the embedded log under `<dataDir>/log` (default), Kafka
 * for `log: kafka://host:9092,...` (the Kafka client is loaded only then; SASL with
 * `kafkaSaslPassword` set, e.g. an API key for a Tributary Kafka listener), or a log server for
 * `log: tributary://host:port` (token from TRIBUTARY_LOG_TOKEN, else the data dir's server.json).
 *
 * The embedded log belongs to one process. When another process serves it (`tributary up`,
 * `tributary log serve`: `<dataDir>/log/server.json` names a live process), this connects to that
 * server instead, so any command or worker can share the data dir; if the server does not answer,
 * the directory is opened, which fails with the lock's own error when its owner is alive.
 *
 * @example
 * const log = await openLog(loadConfig());
 * await log.ensureTopic('events', { partitions: 4 });
 */
export async function openLog(config: LogConfig, options: OpenLogOptions = {}): Promise<Log> {
  if (config.log.startsWith('tributary://')) {
    const { host, port } = parseLogServerUrl(config.log);
    const token =
      process.env.TRIBUTARY_LOG_TOKEN || readLogServerInfo(dataDirPaths(config.dataDir).log)?.token;
    if (!token) {
      throw new TributaryError(
        'UNAUTHENTICATED',
        `log = ${config.log}: no token for the log server; set TRIBUTARY_LOG_TOKEN to the token in the server's <dataDir>/log/server.json`,
      );
    }
    return connectRemoteLog({ host, port, token });
  }
  if (config.log.startsWith('kafka://')) {
    const { openKafkaLog } = await import('./kafka/index.js');
    return openKafkaLog({
      brokers: parseKafkaUrl(config.log),
      retentionMs: config.logRetentionMs,
      retentionBytes: config.logRetentionBytes,
      // SASL only with a password: a plain Kafka or Redpanda cluster may need none.
      ...(config.kafkaSaslPassword
        ? {
            sasl: {
              mechanism: config.kafkaSaslMechanism ?? 'PLAIN',
              username: config.kafkaSaslUsername ?? 'tributary',
              password: config.kafkaSaslPassword,
            },
          }
        : {}),
    });
  }
  const paths = await openDataDir(config.dataDir);
  if (options.viaServer !== false) {
    const server = readLogServerInfo(paths.log);
    if (server !== null && server.pid !== process.pid) {
      try {
        // A loaded machine can miss one connect or HELLO deadline; while the server's process lives,
        // try again rather than fall back to a directory whose lock that process holds.
        return await retry(
          () => connectRemoteLog({ host: server.host, port: server.port, token: server.token }),
          {
            attemptsMax: 3,
            baseMs: 200,
            maxMs: 2000,
            retryable: () => readLogServerInfo(paths.log)?.pid === server.pid,
          },
        );
      } catch (error) {
        logger.warn(
          { err: error, pid: server.pid, address: `${server.host}:${server.port}` },
          'the log server of the data dir did not answer; opening the log directory instead',
        );
      }
    }
  }
  return openEmbeddedLog({
    dir: paths.log,
    fsync: config.logFsync,
    groupCommitMs: config.logGroupCommitMs,
    retentionMs: config.logRetentionMs,
    retentionBytes: config.logRetentionBytes,
    ...(options.retentionCheckMs === undefined ? {} : { retentionCheckMs: options.retentionCheckMs }),
  });
}
