import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { openDataDir, TributaryError } from '../../core/index.js';
import { decodeFile, formatFromName } from '../../connectors/index.js';
import { openLog, type ProducerRecord } from '../../log/index.js';
import {
  eventTopicPartitions,
  generateViewing,
  startPartnerApi,
  toCsv,
  toNdjson,
  viewingSpoolDir,
  viewingTopics,
} from '../../pipelines/viewing/index.js';
import { commandGroup, numberOption, type CliContext } from '../context.js';

/** Records appended to the log per batch by `ingest viewing`. */
const ingestBatchRecords = 5000;

/**
 * The viewing pipeline's commands: `generate viewing`, `ingest viewing <files…>` and
 * `simulate viewing-api`.
 */
export function registerViewingCommands(program: Command, context: CliContext): void {
  commandGroup(program, 'generate', 'Generate demo data')
    .command('viewing')
    .description(
      'Realistic viewing events (binge runs, prime-time peaks per country, device mix, ratings, a sprinkle of every bad-record kind and duplicates) as CSV + JSON lines',
    )
    .option('--users <n>', 'users', '200')
    .option('--days <n>', 'days of history, ending now', '14')
    .option('--seed <n>', 'random seed (same seed, same events)', '1')
    .option(
      '--out <dir>',
      'directory to write into (default: the viewing spool directory, which `up` watches)',
    )
    .action(async (options: { users: string; days: string; seed: string; out?: string }) => {
      const config = context.config();
      const dir = options.out ?? viewingSpoolDir({ config });
      const set = generateViewing({
        users: numberOption('--users', options.users, { min: 1, integer: true }),
        days: numberOption('--days', options.days, { min: 1, integer: true }),
        seed: numberOption('--seed', options.seed, { min: 0, integer: true }),
      });
      await mkdir(dir, { recursive: true });
      const half = Math.ceil(set.records.length / 2);
      const stamp = `${options.seed}-${Date.now()}`;
      for (const [name, content] of [
        [`viewing-${stamp}-1.csv`, toCsv(set.records.slice(0, half))],
        [`viewing-${stamp}-2.jsonl`, toNdjson(set.records.slice(half))],
      ] as const) {
        // Written under a dot name and renamed, so a watching spool never sees half a file.
        const temporary = path.join(dir, `.${name}.tmp`);
        await writeFile(temporary, content);
        await rename(temporary, path.join(dir, name));
      }
      const bad = Object.values(set.quarantined).reduce((a: number, b) => a + (b ?? 0), 0);
      process.stdout.write(
        `${set.records.length} events (${set.valid.length} valid, ${bad} bad, ${set.duplicates} duplicates) written to ${dir}\n`,
      );
    });

  commandGroup(program, 'ingest', 'Put data into the platform')
    .command('viewing')
    .description(
      'Viewing event files (CSV with the schema header, JSON lines, JSON arrays; .gz) into viewing.events',
    )
    .argument('<files...>', 'files to ingest')
    .action(async (files: string[]) => {
      const config = context.config();
      await openDataDir(config.dataDir);
      // Through the log server when `up` runs, else the data dir's embedded log.
      const log = await openLog(config);
      try {
        await log.ensureTopic(viewingTopics.events, { partitions: eventTopicPartitions });
        let total = 0;
        for (const file of files) {
          const format = formatFromName(file);
          if (format === null || format.format === 'txt') {
            throw new TributaryError(
              'INVALID_ARGUMENT',
              `${file}: not a .csv, .jsonl, .ndjson or .json file (optionally .gz)`,
            );
          }
          let batch: ProducerRecord[] = [];
          let count = 0;
          const name = path.basename(file);
          for await (const record of decodeFile(file, { ...format, name, badRecords: 'yield' })) {
            const user = (record.parsed as Record<string, unknown> | undefined)?.user_id;
            batch.push({
              topic: viewingTopics.events,
              key: typeof user === 'string' && user !== '' ? user : null,
              value: record.value,
              headers: {
                'tributary.source': name,
                ...(record.error === undefined ? {} : { 'tributary.decode-error': record.error }),
              },
            });
            if (batch.length >= ingestBatchRecords) {
              await log.append(batch);
              count += batch.length;
              batch = [];
            }
          }
          if (batch.length > 0) await log.append(batch);
          count += batch.length;
          total += count;
          process.stdout.write(`${file}: ${count} records\n`);
        }
        process.stderr.write(`ingest viewing: ${total} records appended to ${viewingTopics.events}\n`);
      } finally {
        await log.close();
      }
    });

  commandGroup(program, 'simulate', 'produce simulated events into the log')
    .command('viewing-api')
    .description(
      "A partner's cursor-paged viewing-events API (GET /events?cursor=&limit=) for the viewing poller",
    )
    .option('--port <port>', 'port (0 = any free port)', '8090')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--seed <n>', 'random seed of the history', '3')
    .option('--live-rate <n>', 'fresh events per second after the history', '5')
    .option('--token <token>', 'require Authorization: Bearer <token>')
    .action(
      async (options: { port: string; host: string; seed: string; liveRate: string; token?: string }) => {
        const api = await startPartnerApi({
          port: numberOption('--port', options.port, { min: 0, integer: true }),
          host: options.host,
          seed: numberOption('--seed', options.seed, { min: 0, integer: true }),
          liveEventsPerSecond: numberOption('--live-rate', options.liveRate, { min: 0, integer: true }),
          ...(options.token === undefined ? {} : { token: options.token }),
        });
        process.stdout.write(
          `viewing partner API at ${api.url}/events (set VIEWING_API_URL=${api.url}/events); Ctrl-C stops it\n`,
        );
        await new Promise<void>((resolve) => {
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        });
        await api.close();
      },
    );
}
