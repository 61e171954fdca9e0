import type { Command } from 'commander';
import { dataDirPaths, TributaryError } from '../../core/index.js';
import { defaultSessionTimeoutMs, openLog, serveLog } from '../../log/index.js';
import { commandGroup, type CliContext } from '../context.js';
import { kafkaListenerOverride, startKafkaListener } from '../kafka-listener.js';

function integerOption(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new TributaryError(
        'USAGE',
        `${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`,
      );
    return n;
  };
}

/**
 * `tributary log serve`: this process opens the embedded log of the data dir and serves it to the
 * other processes of the machine (CLI commands, worker processes of one consumer group), which
 * find it through `<dataDir>/log/server.json`. `tributary up` does the same next to its API.
 */
export function registerLogServerCommands(program: Command, context: CliContext): void {
  commandGroup(program, 'log', 'The embedded log of the data dir')
    .command('serve')
    .description(
      'serve the embedded log of the data dir to other processes on this machine (commands and workers then share the data dir) until SIGINT/SIGTERM',
    )
    .option('--port <port>', 'TCP port on 127.0.0.1 (default: a free one)', integerOption('--port', 0, 65535))
    .option(
      '--kafka-port <port>',
      'also serve the Kafka protocol on this port (host from config kafkaListener; SASL with API keys; 0 = a free one)',
    )
    .option(
      '--session-timeout-ms <ms>',
      `drop a client silent this long; its group members leave (default ${defaultSessionTimeoutMs})`,
      integerOption('--session-timeout-ms', 1, 3_600_000),
    )
    .action(async (options: { port?: number; sessionTimeoutMs?: number; kafkaPort?: string }) => {
      const config = context.config({
        kafkaListener:
          kafkaListenerOverride(context.config().kafkaListener, { kafkaPort: options.kafkaPort }) ?? 'off',
      });
      if (config.log !== 'embedded') {
        throw new TributaryError(
          'USAGE',
          `log serve serves the embedded log of the data dir, but log = ${config.log}; unset it (or use --log embedded)`,
        );
      }
      // Opens the directory itself even when server.json names another server: the lock then says who holds it.
      const log = await openLog(config, { viaServer: false });
      try {
        const server = await serveLog(log, {
          dir: dataDirPaths(config.dataDir).log,
          ...(options.port === undefined ? {} : { port: options.port }),
          ...(options.sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs: options.sessionTimeoutMs }),
        });
        process.stdout.write(`log server on ${server.host}:${server.port} (pid ${process.pid})\n`);
        const kafka = await startKafkaListener(log, config).catch(async (error: unknown) => {
          await server.close();
          throw error;
        });
        if (kafka !== null) process.stdout.write(`Kafka listener on ${kafka.host}:${kafka.port}\n`);
        await new Promise<void>((resolve) => {
          const stop = () => {
            process.off('SIGINT', stop);
            process.off('SIGTERM', stop);
            resolve();
          };
          process.on('SIGINT', stop);
          process.on('SIGTERM', stop);
        });
        await kafka?.close();
        await server.close();
      } finally {
        await log.close();
      }
    });
}
