import { readFileSync } from 'node:fs';
import { dataDirPaths, TributaryError, type TributaryConfig } from '../core/index.js';
import { serveKafka, type KafkaListener, type Log } from '../log/index.js';
import { kafkaAuthenticator, KeyStore } from '../serve/index.js';

/** Host and port of a `kafkaListener` setting (`host:port`), or null for `off`. */
export function parseKafkaListener(value: string): { host: string; port: number } | null {
  if (value === 'off') return null;
  const at = value.lastIndexOf(':');
  const port = Number(value.slice(at + 1));
  if (at <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TributaryError(
      'CONFIG_INVALID',
      `kafkaListener = ${JSON.stringify(value)}: expected host:port or off`,
    );
  }
  return { host: value.slice(0, at), port };
}

/** The `kafkaListener` value for `--kafka-port <port>` / `--no-kafka` on top of the configured one. */
export function kafkaListenerOverride(
  configured: string,
  options: { kafka?: boolean; kafkaPort?: string },
): string | undefined {
  if (options.kafka === false) return 'off';
  if (options.kafkaPort === undefined) return undefined;
  const host = parseKafkaListener(configured)?.host ?? '127.0.0.1';
  return `${host}:${options.kafkaPort}`;
}

/**
 * Serves `log` over the Kafka protocol as the configuration says (address, TLS files), with SASL
 * over the data dir's API keys. Null when `kafkaListener` is off.
 */
export async function startKafkaListener(log: Log, config: TributaryConfig): Promise<KafkaListener | null> {
  const address = parseKafkaListener(config.kafkaListener);
  if (address === null) return null;
  if ((config.kafkaTlsCert === undefined) !== (config.kafkaTlsKey === undefined)) {
    throw new TributaryError(
      'CONFIG_INVALID',
      'kafkaTlsCert and kafkaTlsKey go together: set both or neither',
    );
  }
  const readPem = (file: string, key: string) => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new TributaryError(
        'CONFIG_INVALID',
        `${key} = ${file}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`,
        {
          cause: error,
        },
      );
    }
  };
  return serveKafka(log, {
    host: address.host,
    port: address.port,
    authenticator: kafkaAuthenticator(KeyStore.open(dataDirPaths(config.dataDir).keys)),
    ...(config.kafkaTlsCert !== undefined && config.kafkaTlsKey !== undefined
      ? {
          tls: {
            cert: readPem(config.kafkaTlsCert, 'kafkaTlsCert'),
            key: readPem(config.kafkaTlsKey, 'kafkaTlsKey'),
          },
        }
      : {}),
  });
}
