import type { Command } from 'commander';
import { dataDirPaths, TributaryError } from '../../core/index.js';
import {
  connectorDocs,
  connectorJsonSchema,
  connectors,
  copyPostgresToLake,
  createFileStateStore,
  createHttpPoller,
  createPostgresSource,
  createSpoolSource,
  importFile,
  openPgClient,
  type HttpPollerOptionsInput,
  type ImportType,
} from '../../connectors/index.js';
import { openLakeFromConfig } from '../../lake/index.js';
import { openLog } from '../../log/index.js';
import { commandGroup, type CliContext, type RegisterCommands } from '../context.js';

function print(value: unknown): void {
  process.stdout.write(
    `${JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`,
  );
}

/** `--column name:type` (repeatable) → { name: type }. */
function collectColumn(value: string, previous: Record<string, ImportType> = {}): Record<string, ImportType> {
  const match = /^([^:]+):(int|float|bool|timestamp|string)$/.exec(value);
  if (!match)
    throw new TributaryError('USAGE', `--column ${value}: expected name:int|float|bool|timestamp|string`);
  return { ...previous, [match[1]]: match[2] as ImportType };
}

interface ImportFlags {
  table?: string;
  topic?: string;
  format?: string;
  column?: Record<string, ImportType>;
  required?: string;
  strict?: boolean;
  quarantine?: string;
  keyField?: string;
}

async function runImport(context: CliContext, file: string, flags: ImportFlags): Promise<void> {
  const config = context.config();
  const log = flags.topic !== undefined ? await openLog(config) : undefined;
  const lake = flags.table !== undefined ? await openLakeFromConfig(config) : undefined;
  try {
    const report = await importFile(
      {
        path: file,
        ...(flags.table !== undefined ? { table: flags.table } : {}),
        ...(flags.topic !== undefined ? { topic: flags.topic } : {}),
        ...(flags.format !== undefined ? { format: flags.format as 'auto' } : {}),
        columns: flags.column ?? {},
        required: flags.required ? flags.required.split(',').map((s) => s.trim()) : [],
        strict: flags.strict ?? false,
        ...(flags.quarantine !== undefined ? { quarantineFile: flags.quarantine } : {}),
        ...(flags.keyField !== undefined ? { keyField: flags.keyField } : {}),
      },
      { ...(lake ? { lake } : {}), ...(log ? { log } : {}) },
    );
    print(report);
    if (report.quarantined > 0) process.exitCode = 3;
  } finally {
    await log?.close();
    await lake?.close();
  }
}

function importOptions(command: Command): Command {
  return command
    .option('--format <format>', 'auto | csv | json | jsonl | parquet', 'auto')
    .option(
      '--column <name:type>',
      'column type (int, float, bool, timestamp, string); repeatable',
      collectColumn,
    )
    .option('--required <columns>', 'comma-separated columns that must have a value')
    .option('--strict', 'quarantine rows with fields not given by --column/--required')
    .option('--quarantine <file>', 'NDJSON file for refused rows (default <file>.quarantine.ndjson)')
    .option('--key-field <field>', 'topic target: field used as the record key');
}

/** `--header "name: value"` (repeatable) → { name: value }. */
function collectHeader(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const colon = value.indexOf(':');
  if (colon <= 0) throw new TributaryError('USAGE', `--header ${value}: expected "name: value"`);
  return { ...previous, [value.slice(0, colon).trim()]: value.slice(colon + 1).trim() };
}

interface HttpFlags {
  topic: string;
  recordsPath: string;
  keyField?: string;
  header?: Record<string, string>;
  rate: string;
  rateMode?: string;
  pagination: string;
  pageParam: string;
  totalPagesPath?: string;
  cursorParam: string;
  nextCursorPath?: string;
  incrementalField?: string;
  incrementalParam?: string;
  pagesMax?: string;
  intervalMs: string;
  allowPrivate?: boolean;
  once?: boolean;
}

/** The poller's options from `ingest http` flags (validated by the poller's one schema). */
export function httpPollerOptionsFromFlags(url: string, flags: HttpFlags): HttpPollerOptionsInput {
  const pagination = (): HttpPollerOptionsInput['pagination'] => {
    switch (flags.pagination) {
      case 'none':
      case 'link':
        return { type: flags.pagination };
      case 'page':
        return {
          type: 'page',
          param: flags.pageParam,
          ...(flags.totalPagesPath !== undefined ? { totalPagesPath: flags.totalPagesPath } : {}),
        };
      case 'cursor':
        if (flags.nextCursorPath === undefined)
          throw new TributaryError('USAGE', '--pagination cursor needs --next-cursor-path');
        return { type: 'cursor', param: flags.cursorParam, nextCursorPath: flags.nextCursorPath };
      default:
        throw new TributaryError(
          'USAGE',
          `--pagination ${flags.pagination}: expected none, page, cursor or link`,
        );
    }
  };
  if ((flags.incrementalField === undefined) !== (flags.incrementalParam === undefined))
    throw new TributaryError('USAGE', '--incremental-field and --incremental-param go together');
  const number = (flag: string, value: string) => {
    const parsed = Number(value);
    if (!Number.isFinite(parsed)) throw new TributaryError('USAGE', `${flag} ${value}: expected a number`);
    return parsed;
  };
  return {
    url,
    topic: flags.topic,
    recordsPath: flags.recordsPath,
    ...(flags.keyField !== undefined ? { keyField: flags.keyField } : {}),
    headers: flags.header ?? {},
    ratePerSecond: number('--rate', flags.rate),
    ...(flags.rateMode !== undefined ? { rateMode: flags.rateMode as 'token-bucket' } : {}),
    pagination: pagination(),
    ...(flags.pagesMax !== undefined ? { pagesMax: number('--pages-max', flags.pagesMax) } : {}),
    ...(flags.incrementalField !== undefined && flags.incrementalParam !== undefined
      ? { incremental: { field: flags.incrementalField, param: flags.incrementalParam } }
      : {}),
    pollIntervalMs: number('--interval-ms', flags.intervalMs),
    allowPrivateNetworks: flags.allowPrivate ?? false,
  };
}

/**
 * Connector commands:
 *   tributary import <file> --table bronze.x | --topic t [--column a:int ...]   (exit 3 when rows were quarantined)
 *   tributary ingest file <file> --topic t                                        (same import, into a topic)
 *   tributary ingest spool <dir> --topic t | --table bronze.x [--once]
 *   tributary ingest http <url> --topic t [--records-path results] [--pagination page] [--rate 4] [--once]
 *   tributary ingest postgres --table public.orders --into bronze.orders [--url …] [--cursor col]
 *   tributary connectors list | docs | schema <name>
 */
export const registerConnectorsCommands: RegisterCommands = (program, context) => {
  importOptions(
    program
      .command('import')
      .description(
        'one-shot import of a CSV / JSON / NDJSON / Parquet file with type inference and validation',
      )
      .argument('<file>', 'file to import')
      .option('--table <layer.name>', 'lake table to append to, e.g. bronze.viewing_events')
      .option('--topic <topic>', 'topic to append to instead'),
  ).action(async (file: string, flags: ImportFlags) => runImport(context, file, flags));

  const ingest = commandGroup(program, 'ingest', 'Put data into the platform');
  importOptions(
    ingest
      .command('file')
      .description(
        'append the records of a CSV / JSON / NDJSON / Parquet file to a topic (validated like import)',
      )
      .argument('<file>', 'file to ingest')
      .requiredOption('--topic <topic>', 'topic to append to'),
  ).action(async (file: string, flags: ImportFlags) => runImport(context, file, flags));

  ingest
    .command('spool')
    .description(
      'watch a spool directory and deliver complete files to a topic or a lake table (Ctrl-C stops)',
    )
    .argument('<dir>', 'directory to watch')
    .option('--topic <topic>', 'topic to append to')
    .option('--table <layer.name>', 'lake table to commit each file to')
    .option('--stable-ms <ms>', 'size/mtime must be unchanged this long before pickup', '1000')
    .option('--poll-ms <ms>', 'scan interval', '500')
    .option('--once', 'scan once, deliver what is complete, exit')
    .action(
      async (
        dir: string,
        flags: { topic?: string; table?: string; stableMs: string; pollMs: string; once?: boolean },
      ) => {
        const config = context.config();
        const log = flags.topic !== undefined ? await openLog(config) : undefined;
        const lake = flags.table !== undefined ? await openLakeFromConfig(config) : undefined;
        try {
          const source = createSpoolSource(
            {
              dir,
              ...(flags.topic !== undefined ? { topic: flags.topic } : {}),
              ...(flags.table !== undefined ? { table: flags.table } : {}),
              stableMs: Number(flags.stableMs),
              pollIntervalMs: Number(flags.pollMs),
            },
            { ...(log ? { log } : {}), ...(lake ? { lake } : {}) },
          );
          if (flags.once) {
            print(await source.poll());
            return;
          }
          const controller = new AbortController();
          const stop = () => controller.abort();
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
          await source.run(controller.signal);
        } finally {
          await log?.close();
          await lake?.close();
        }
      },
    );

  ingest
    .command('http')
    .description(
      'poll a JSON HTTP API into a topic: rate limit, Retry-After, retries, pagination, incremental cursor, SSRF guard (Ctrl-C stops)',
    )
    .argument('<url>', 'first URL to request (http or https)')
    .requiredOption('--topic <topic>', 'topic to append the records to')
    .option('--records-path <path>', 'dot path of the record array in the body, e.g. results', '')
    .option('--key-field <field>', 'record field whose value becomes the record key')
    .option(
      '--header <name:value>',
      'request header, e.g. "authorization: Bearer …"; repeatable',
      collectHeader,
    )
    .option('--rate <n>', 'requests per second, never exceeded', '4')
    .option('--rate-mode <mode>', 'token-bucket | sliding-window (n back to back, never more in any 1 s)')
    .option('--pagination <type>', 'none | page | cursor | link', 'none')
    .option('--page-param <name>', 'page: query parameter of the page number', 'page')
    .option('--total-pages-path <path>', 'page: dot path of the total page count, e.g. total_pages')
    .option('--cursor-param <name>', 'cursor: query parameter carrying the cursor', 'cursor')
    .option('--next-cursor-path <path>', 'cursor: dot path of the next cursor in the body')
    .option('--incremental-field <path>', 'incremental: record field that only grows (e.g. updated_at)')
    .option('--incremental-param <name>', 'incremental: query parameter sent with the highest value seen')
    .option('--pages-max <n>', 'pages fetched per poll at most')
    .option('--interval-ms <ms>', 'pause between polls', '60000')
    .option(
      '--allow-private',
      'allow loopback and private addresses (the SSRF guard refuses them by default)',
    )
    .option('--once', 'poll once (every page), print the report, exit')
    .action(async (url: string, flags: HttpFlags) => {
      const config = context.config();
      const log = await openLog(config);
      try {
        const poller = createHttpPoller(httpPollerOptionsFromFlags(url, flags), {
          log,
          state: createFileStateStore(`${dataDirPaths(config.dataDir).state}/connectors.json`),
        });
        if (flags.once) {
          print(await poller.poll());
          return;
        }
        const controller = new AbortController();
        const stop = () => controller.abort();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        await poller.run(controller.signal);
      } finally {
        await log.close();
      }
    });

  ingest
    .command('postgres')
    .description(
      'copy a PostgreSQL table (snapshot, or incremental by --cursor) into a lake table in one commit',
    )
    .requiredOption('--table <table>', 'source table, e.g. public.orders')
    .requiredOption('--into <layer.name>', 'lake table, e.g. bronze.orders')
    .option('--url <url>', 'PostgreSQL URL (default: the embedded PGlite database under the data dir)')
    .option('--cursor <column>', 'incremental load by this column; the cursor is kept under the data dir')
    .action(async (flags: { table: string; into: string; url?: string; cursor?: string }) => {
      const config = context.config();
      const paths = dataDirPaths(config.dataDir);
      const client = await openPgClient({ url: flags.url, pgliteDir: paths.pglite });
      const lake = await openLakeFromConfig(config);
      try {
        const source = createPostgresSource(
          {
            table: flags.table,
            ...(flags.cursor ? { mode: 'incremental' as const, cursorColumn: flags.cursor } : {}),
          },
          { client, state: createFileStateStore(`${paths.state}/connectors.json`) },
        );
        const result = await copyPostgresToLake(source, lake.table(flags.into));
        print({
          table: flags.into,
          rows: result.rows,
          version: result.commit?.version ?? null,
          applied: result.commit?.applied ?? false,
          cursor: result.cursor ?? null,
        });
      } finally {
        await client.close();
        await lake.close();
      }
    });

  const list = commandGroup(
    program,
    'connectors',
    'Connectors: list them, print their options as docs or JSON Schema',
  );
  list
    .command('list')
    .description('every connector with its kind')
    .action(() => print(connectors().map((c) => ({ name: c.name, kind: c.kind, title: c.title }))));
  list
    .command('docs')
    .description('README-ready markdown of every connector option (generated from the schemas)')
    .action(() => {
      process.stdout.write(connectorDocs());
    });
  list
    .command('schema')
    .description("JSON Schema of a connector's options")
    .argument('<name>', 'connector name')
    .action((name: string) => print(connectorJsonSchema(name)));
};
