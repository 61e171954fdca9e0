import type { Command } from 'commander';
import { openDataDir, TributaryError } from '../../core/index.js';
import { createMemoryLog, openLog, type Log } from '../../log/index.js';
import {
  generateNorthwindDatabase,
  liveTopic,
  parseDurationMs,
  parseRate,
  simulateSales,
} from '../../pipelines/northwind/index.js';
import { commandGroup, numberOption, type CliContext } from '../context.js';
import { callPlatform, runningPlatform, type RunningPlatform } from '../remote.js';

/**
 * A log for `simulateSales` while `tributary up` holds the data dir: events go into an in-memory
 * log, paced as usual, and a forwarder posts them (keys, values, timestamps) in order to the
 * platform's topics API. `drain` waits until everything appended was accepted by the platform.
 */
async function forwardingLog(platform: RunningPlatform, onError: () => void) {
  const buffer = createMemoryLog();
  await buffer.ensureTopic(liveTopic, { partitions: 1 });
  let finished = false;
  const decoder = new TextDecoder('utf-8');
  const forwarder = (async () => {
    let offset = 0;
    for (;;) {
      // Read `finished` before fetching: once set, every append is visible to this fetch.
      const last = finished;
      const records = await buffer.fetch(liveTopic, 0, offset, { maxRecords: 5000, waitMs: last ? 0 : 200 });
      if (records.length === 0) {
        if (last) return;
        continue;
      }
      await callPlatform(platform, 'POST', `/api/topics/${encodeURIComponent(liveTopic)}/records`, {
        json: {
          records: records.map((r) => ({
            key: r.key === null ? null : decoder.decode(r.key),
            value: r.value === null ? null : decoder.decode(r.value),
            timestamp: r.timestamp,
          })),
        },
      });
      offset = records[records.length - 1].offset + 1;
    }
  })();
  forwarder.catch(onError);
  let drained: Promise<void> | undefined;
  const log: Log = buffer;
  return {
    log,
    /** Waits until everything appended was accepted by the platform, then frees the buffer. */
    drain(): Promise<void> {
      finished = true;
      drained ??= forwarder.finally(() => buffer.close());
      return drained;
    },
  };
}

/**
 * `tributary generate northwind --scale N [--pg-url url] [--seed n]` and
 * `tributary simulate sales --rate 1000/s [--duration 10s | --count n]`.
 */
export function registerNorthwindCommands(program: Command, context: CliContext): void {
  commandGroup(program, 'generate', 'generate demo source data')
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
      const scale = numberOption('--scale', options.scale, { min: 1, integer: true });
      const seed = numberOption('--seed', options.seed, { min: 1, integer: true });
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

  commandGroup(program, 'simulate', 'produce simulated events into the log')
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
      const controller = new AbortController();
      const stop = () => controller.abort();
      // While `tributary up` holds the embedded log, the events go through its API.
      const platform = config.log === 'embedded' ? await runningPlatform(config.dataDir) : null;
      // A failed forward stops the simulation; `drain` then rethrows the failure.
      const forwarding = platform ? await forwardingLog(platform, () => controller.abort()) : null;
      const log = forwarding ? forwarding.log : await openLog(config);
      const firstOrderId = async (): Promise<number> => {
        const description = platform
          ? await callPlatform<{ partitions: { endOffset: number }[] }>(
              platform,
              'GET',
              `/api/topics/${encodeURIComponent(liveTopic)}`,
            ).catch(() => null)
          : await log.describeTopic(liveTopic).catch(() => null);
        return 1_000_000 + (description?.partitions.reduce((s, p) => s + p.endOffset, 0) ?? 0);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        const report = await simulateSales(log, {
          ratePerSecond,
          seed: numberOption('--seed', options.seed, { min: 1, integer: true }),
          signal: controller.signal,
          // Order ids continue past what is already in the topic, so reruns do not reuse them.
          firstOrderId: await firstOrderId(),
          ...(options.duration === undefined ? {} : { durationMs: parseDurationMs(options.duration) }),
          ...(options.count === undefined
            ? {}
            : { count: numberOption('--count', options.count, { min: 1, integer: true }) }),
          progress: (sent, elapsedMs) =>
            process.stderr.write(`simulate sales: ${sent} events in ${(elapsedMs / 1000).toFixed(1)} s\n`),
        });
        await forwarding?.drain();
        process.stdout.write(
          `${JSON.stringify({ topic: 'ventes-temps-reel', events: report.events, elapsedMs: Math.round(report.elapsedMs), eventsPerSecond: Math.round(report.events / (report.elapsedMs / 1000)) })}\n`,
        );
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        if (forwarding) await forwarding.drain().catch(() => undefined);
        else await log.close();
      }
    });
}
