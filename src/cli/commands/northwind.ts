import type { Command } from 'commander';
import { openDataDir, TributaryError } from '../../core/index.js';
import { openLog } from '../../log/index.js';
import {
  generateNorthwindDatabase,
  parseDurationMs,
  parseRate,
  simulateSales,
} from '../../pipelines/northwind/index.js';
import type { CliContext } from '../context.js';

/** The parent command `name`, shared with other modules that add sub-commands to it. */
function group(program: Command, name: string, description: string): Command {
  return program.commands.find((c) => c.name() === name) ?? program.command(name).description(description);
}

function positiveInteger(flag: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1)
    throw new TributaryError('USAGE', `${flag} must be a positive integer, got ${JSON.stringify(text)}`);
  return value;
}

/**
 * `tributary generate northwind --scale N [--pg-url url] [--seed n]` and
 * `tributary simulate sales --rate 1000/s [--duration 10s | --count n]`.
 */
export function registerNorthwindCommands(program: Command, context: CliContext): void {
  group(program, 'generate', 'generate demo source data')
    .command('northwind')
    .description(
      'create the PostgreSQL Northwind database (northwind_psql schema) filled with realistic, deterministic data',
    )
    .option('--scale <n>', 'multiplies customers and orders (1 = 91 customers, 830 orders)', '1')
    .option('--pg-url <url>', 'target PostgreSQL (default: the embedded PGlite database under the data dir)')
    .option('--seed <n>', 'PRNG seed', '1996')
    .action(async (options: { scale: string; pgUrl?: string; seed: string }) => {
      const config = context.config();
      await openDataDir(config.dataDir);
      const scale = positiveInteger('--scale', options.scale);
      const seed = positiveInteger('--seed', options.seed);
      let lastReport = 0;
      const report = await generateNorthwindDatabase({
        dataDir: config.dataDir,
        scale,
        seed,
        ...(options.pgUrl === undefined ? {} : { pgUrl: options.pgUrl }),
        progress: (message) => {
          if (Date.now() - lastReport >= 1000) {
            lastReport = Date.now();
            process.stderr.write(`${message}\n`);
          }
        },
      });
      const rows = Object.values(report.rows).reduce((a, b) => a + b, 0);
      process.stdout.write(
        `${JSON.stringify({ target: report.target, scale: report.scale, seed: report.seed, rows: report.rows, elapsedMs: Math.round(report.elapsedMs), rowsPerSecond: Math.round(rows / (report.elapsedMs / 1000)) })}\n`,
      );
    });

  group(program, 'simulate', 'produce simulated events into the log')
    .command('sales')
    .description('append sale events {order_id, product_id, pays, montant, ts} to topic ventes-temps-reel')
    .option('--rate <rate>', 'events per time unit: 1000/s, 60/m', '1000/s')
    .option('--duration <d>', 'stop after this long: 10s, 2m')
    .option('--count <n>', 'stop after this many events')
    .option('--seed <n>', 'PRNG seed', '7')
    .action(async (options: { rate: string; duration?: string; count?: string; seed: string }) => {
      if (options.duration === undefined && options.count === undefined)
        throw new TributaryError('USAGE', 'simulate sales needs --duration or --count');
      const ratePerSecond = parseRate(options.rate);
      const config = context.config();
      await openDataDir(config.dataDir);
      const log = await openLog(config);
      const controller = new AbortController();
      const stop = () => controller.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        const report = await simulateSales(log, {
          ratePerSecond,
          seed: positiveInteger('--seed', options.seed),
          signal: controller.signal,
          // Order ids continue past what is already in the topic, so reruns do not reuse them.
          firstOrderId:
            1_000_000 +
            ((await log.describeTopic('ventes-temps-reel').catch(() => null))?.partitions.reduce(
              (s, p) => s + p.endOffset,
              0,
            ) ?? 0),
          ...(options.duration === undefined ? {} : { durationMs: parseDurationMs(options.duration) }),
          ...(options.count === undefined ? {} : { count: positiveInteger('--count', options.count) }),
          progress: (sent, elapsedMs) =>
            process.stderr.write(`simulate sales: ${sent} events in ${(elapsedMs / 1000).toFixed(1)} s\n`),
        });
        process.stdout.write(
          `${JSON.stringify({ topic: 'ventes-temps-reel', events: report.events, elapsedMs: Math.round(report.elapsedMs), eventsPerSecond: Math.round(report.events / (report.elapsedMs / 1000)) })}\n`,
        );
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        await log.close();
      }
    });
}
