import type { Command } from 'commander';
import { openDataDir, TributaryError } from '../../core/index.js';
import { openLakeFromConfig, type TableInfo } from '../../lake/index.js';
import { openSqlEngine, type QueryResult } from '../../sql/index.js';
import type { CliContext } from '../context.js';

const formats = ['table', 'json', 'csv'] as const;
type Format = (typeof formats)[number];

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function cellText(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  return JSON.stringify(value);
}

/** Aligned plain-text table. */
export function renderTable(columns: string[], rows: Record<string, unknown>[]): string {
  const cells = rows.map((row) => columns.map((c) => cellText(row[c]).replace(/\n/g, '\\n')));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i].length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [
    line(columns),
    line(widths.map((w) => '-'.repeat(w))),
    ...cells.map(line),
    `(${rows.length} row${rows.length === 1 ? '' : 's'})`,
  ].join('\n');
}

/** RFC 4180 CSV with a header row. */
export function renderCsv(columns: string[], rows: Record<string, unknown>[]): string {
  const quote = (text: string) => (/[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text);
  return [
    columns.map(quote).join(','),
    ...rows.map((row) => columns.map((c) => quote(cellText(row[c]))).join(',')),
  ].join('\r\n');
}

export function renderResult(result: QueryResult, format: Format): string {
  const columns = result.columns.map((c) => c.name);
  if (format === 'json') return JSON.stringify(result.rows);
  if (format === 'csv') return renderCsv(columns, result.rows);
  return renderTable(columns, result.rows);
}

export function renderTables(tables: TableInfo[]): string {
  if (tables.length === 0) return 'no tables yet (nothing has been committed to the lake)';
  const lines: string[] = [];
  for (const t of tables) {
    const partitioning =
      t.partitionColumns.length > 0
        ? `partitioned by ${t.partitionColumns.join(', ')}; ${t.partitions.length} partition(s)`
        : 'unpartitioned';
    lines.push(
      `${t.table}  version ${t.version}  rows ${t.rows}  files ${t.files}  ${formatBytes(t.bytes)}  ${partitioning}`,
    );
    if (t.partitionColumns.length > 0) {
      for (const p of t.partitions)
        lines.push(`  ${p.path}  rows ${p.rows}  files ${p.files}  ${formatBytes(p.bytes)}`);
    }
  }
  return lines.join('\n');
}

export function registerLakeCommands(program: Command, context: CliContext): void {
  program
    .command('tables')
    .description('list lake tables with partitions, row counts, file counts and sizes')
    .option('--json', 'print one JSON array')
    .action(async (options: { json?: boolean }) => {
      const config = context.config();
      await openDataDir(config.dataDir);
      const lake = await openLakeFromConfig(config);
      try {
        const tables = await lake.listTables();
        process.stdout.write(`${options.json ? JSON.stringify(tables) : renderTables(tables)}\n`);
      } finally {
        await lake.close();
      }
    });

  const lakeCommand = program
    .command('lake')
    .description('lake maintenance: compact small files, garbage-collect');
  lakeCommand
    .command('compact')
    .description('rewrite the files of each partition of a table into one Parquet file (one atomic commit)')
    .argument('<table>', 'layer.name, e.g. bronze.orders')
    .option('--min-files <n>', 'compact partitions with at least this many files to merge', '2')
    .option('--file-rows-below <n>', 'merge only files of fewer rows than this (larger ones stay)')
    .action(async (table: string, options: { minFiles: string; fileRowsBelow?: string }) => {
      const minFiles = Number(options.minFiles);
      if (!Number.isInteger(minFiles) || minFiles < 2)
        throw new TributaryError('USAGE', `--min-files ${options.minFiles}: expected an integer >= 2`);
      const fileRowsBelow = options.fileRowsBelow === undefined ? undefined : Number(options.fileRowsBelow);
      if (fileRowsBelow !== undefined && (!Number.isInteger(fileRowsBelow) || fileRowsBelow < 1))
        throw new TributaryError(
          'USAGE',
          `--file-rows-below ${options.fileRowsBelow}: expected a positive integer`,
        );
      const config = context.config();
      await openDataDir(config.dataDir);
      const lake = await openLakeFromConfig(config);
      try {
        const result = await lake.table(table).compact({ minFiles, fileRowsBelow });
        process.stdout.write(
          result
            ? `${table}: version ${result.version}, ${result.filesRemoved} files rewritten into ${result.filesAdded}\n`
            : `${table}: nothing to compact\n`,
        );
      } finally {
        await lake.close();
      }
    });
  lakeCommand
    .command('gc')
    .description(
      'delete files no kept snapshot references, old manifests and scratch output; repair _SUCCESS markers',
    )
    .option('--grace-ms <ms>', 'keep unreferenced files younger than this (commits in flight)', '3600000')
    .option('--keep-versions <n>', 'manifests kept per table', '10')
    .action(async (options: { graceMs: string; keepVersions: string }) => {
      const graceMs = Number(options.graceMs);
      const keepVersions = Number(options.keepVersions);
      if (!Number.isInteger(graceMs) || graceMs < 0)
        throw new TributaryError('USAGE', `--grace-ms ${options.graceMs}: expected an integer >= 0`);
      if (!Number.isInteger(keepVersions) || keepVersions < 1)
        throw new TributaryError(
          'USAGE',
          `--keep-versions ${options.keepVersions}: expected an integer >= 1`,
        );
      const config = context.config();
      await openDataDir(config.dataDir);
      const lake = await openLakeFromConfig(config);
      try {
        const results = await lake.gc({ graceMs, keepVersions });
        for (const [table, r] of Object.entries(results)) {
          process.stdout.write(
            `${table}: ${r.deletedFiles.length} files, ${r.deletedManifests} manifests deleted; ${r.repairedMarkers} markers repaired\n`,
          );
        }
      } finally {
        await lake.close();
      }
    });

  program
    .command('query')
    .description('run one read-only SQL query over the lake (tables are bronze.x, silver.x, gold.x)')
    .argument('<sql>', 'a SELECT statement')
    .option('--format <format>', `output: ${formats.join(' | ')}`, 'table')
    .action(async (sql: string, options: { format: string }) => {
      if (!(formats as readonly string[]).includes(options.format)) {
        throw new TributaryError(
          'USAGE',
          `--format ${JSON.stringify(options.format)}: expected one of ${formats.join(', ')}`,
        );
      }
      const config = context.config();
      await openDataDir(config.dataDir);
      const lake = await openLakeFromConfig(config);
      try {
        const engine = await openSqlEngine(lake, { refreshIntervalMs: 0 });
        try {
          const result = await engine.queryWithColumns(sql);
          process.stdout.write(`${renderResult(result, options.format as Format)}\n`);
        } finally {
          engine.close();
        }
      } finally {
        await lake.close();
      }
    });
}
