import { createHash } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { z } from 'zod';
import { TributaryError } from '../../core/index.js';
import { checkConnectorOptions } from '../options-check.js';
import type { Lake, PendingFiles } from '../../lake/index.js';
import type { Log, ProducerRecord } from '../../log/index.js';
import { decodeFile, formatFromName } from '../formats/decode.js';
import {
  convertValue,
  importTypes,
  importTypeToLake,
  inferColumns,
  isMissing,
  type ImportType,
} from './infer.js';

/** Options of the one-shot file import (CSV / JSON / NDJSON / Parquet → lake table or topic). */
export const fileImportOptionsSchema = z
  .object({
    path: z
      .string()
      .min(1)
      .describe('File to import (.csv .json .jsonl .ndjson, optionally .gz, or .parquet).'),
    format: z
      .enum(['auto', 'csv', 'json', 'jsonl', 'parquet'])
      .default('auto')
      .describe('Format; auto picks it from the extension.'),
    table: z
      .string()
      .regex(/^(bronze|silver|gold)\.[A-Za-z_][A-Za-z0-9_]*$/, 'layer.name, e.g. bronze.viewing_events')
      .optional()
      .describe('Lake table to append to (one atomic commit; re-importing the same file is a no-op).'),
    topic: z.string().min(1).optional().describe('Topic to append to instead of a table (records as JSON).'),
    columns: z
      .record(z.string(), z.enum(importTypes))
      .default({})
      .describe('Column types (int, float, bool, timestamp, string); columns left out are inferred.'),
    required: z
      .array(z.string())
      .default([])
      .describe('Columns that must have a value; rows without one are quarantined.'),
    strict: z
      .boolean()
      .default(false)
      .describe('Quarantine rows with fields that are not in columns (default: they are inferred/added).'),
    inferRows: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .default(1000)
      .describe('Rows sampled to infer column types.'),
    batchRows: z
      .number()
      .int()
      .min(1)
      .max(10_000_000)
      .default(100_000)
      .describe('Rows per staged Parquet file / log append.'),
    quarantineFile: z
      .string()
      .optional()
      .describe('NDJSON file for refused rows; default <path>.quarantine.ndjson.'),
    keyField: z.string().optional().describe('topic target: field whose value becomes the record key.'),
    csvDelimiter: z.string().length(1).default(',').describe('CSV field delimiter.'),
  })
  .strict()
  .refine((o) => (o.table === undefined) !== (o.topic === undefined), {
    message: 'give exactly one of table or topic',
    path: ['table'],
  });

export type FileImportOptions = z.infer<typeof fileImportOptionsSchema>;
export type FileImportOptionsInput = z.input<typeof fileImportOptionsSchema>;

export interface QuarantinedRow {
  file: string;
  line: number;
  field: string | null;
  reason: string;
}

export interface FileImportReport {
  file: string;
  format: string;
  rows: number;
  quarantined: number;
  quarantineFile: string | null;
  /** The first quarantined rows' reasons (at most 20). */
  reasons: QuarantinedRow[];
  columns: { name: string; type: ImportType; lakeType: string }[];
  target: { table: string; version: number; applied: boolean } | { topic: string };
}

export interface FileImportDeps {
  lake?: Lake;
  log?: Log;
  /** Extra row validation in code (a zod object schema over the converted row). */
  rowSchema?: z.ZodType;
}

interface RawRow {
  line: number;
  row: Record<string, unknown> | null;
  reason?: string;
}

function parquetTypeToImport(duckType: string): ImportType {
  const t = duckType.toUpperCase();
  if (/^(TINYINT|SMALLINT|INTEGER|BIGINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|HUGEINT)$/.test(t)) return 'int';
  if (/^(FLOAT|DOUBLE|DECIMAL.*)$/.test(t)) return 'float';
  if (t === 'BOOLEAN') return 'bool';
  if (t.startsWith('TIMESTAMP') || t === 'DATE') return 'timestamp';
  return 'string';
}

async function* parquetRows(file: string, types: Map<string, ImportType>): AsyncGenerator<RawRow> {
  const instance = await DuckDBInstance.create(':memory:', { threads: '1' });
  const connection = await instance.connect();
  try {
    const result = await connection.stream(`SELECT * FROM read_parquet('${file.replace(/'/g, "''")}')`);
    const names = result.columnNames();
    const duckTypes = result.columnTypes();
    names.forEach((name, i) => types.set(name, parquetTypeToImport(duckTypes[i].toString())));
    let line = 0;
    for await (const rows of result.yieldRowObjectJson()) {
      for (const row of rows) yield { line: ++line, row: row };
    }
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

async function* textRows(
  file: string,
  format: 'csv' | 'json' | 'jsonl',
  gzip: boolean,
  delimiter: string,
): AsyncGenerator<RawRow> {
  for await (const record of decodeFile(file, {
    format,
    gzip,
    name: path.basename(file),
    csvDelimiter: delimiter,
  })) {
    const parsed = record.parsed;
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      yield { line: record.line, row: null, reason: 'record is not a JSON object' };
    } else {
      yield { line: record.line, row: parsed as Record<string, unknown> };
    }
  }
}

/**
 * Imports one file: infers column types from the first `inferRows` rows (explicit `columns` win),
 * converts and validates every row, writes good rows to a lake table (one atomic commit whose id
 * is derived from the file's identity, so importing the same file twice adds it once) or to a
 * topic, and writes refused rows to a quarantine NDJSON file with file, line, field and reason.
 *
 * Quarantine file format, one JSON object per line:
 *   {"file": "<name>", "line": <1-based line or row>, "field": "<column>"|null, "reason": "<text>", "record": <raw row or null>}
 *
 * @example
 * const report = await importFile({ path: 'events.csv', table: 'bronze.viewing_events', required: ['user_id'] }, { lake });
 */
export async function importFile(
  options: FileImportOptionsInput,
  deps: FileImportDeps,
): Promise<FileImportReport> {
  const o = checkConnectorOptions('file import', fileImportOptionsSchema, options);
  const file = path.resolve(o.path);
  const name = path.basename(file);
  const info = await stat(file).catch(() => null);
  if (info === null || !info.isFile()) throw new TributaryError('NOT_FOUND', `file ${file} does not exist`);
  let format: 'csv' | 'json' | 'jsonl' | 'parquet';
  let gzip = name.toLowerCase().endsWith('.gz');
  if (o.format !== 'auto') format = o.format;
  else if (/\.parquet$/i.test(name)) format = 'parquet';
  else {
    const byName = formatFromName(name);
    if (byName === null || byName.format === 'txt') {
      throw new TributaryError(
        'UNSUPPORTED_MEDIA_TYPE',
        `${name}: cannot tell the format; use .csv .json .jsonl .ndjson .parquet or --format`,
      );
    }
    format = byName.format;
    gzip = byName.gzip;
  }
  if (o.table !== undefined && !deps.lake)
    throw new TributaryError('USAGE', 'importing into a table needs the lake');
  if (o.topic !== undefined && !deps.log)
    throw new TributaryError('USAGE', 'importing into a topic needs the log');

  const parquetTypes = new Map<string, ImportType>();
  const source =
    format === 'parquet' ? parquetRows(file, parquetTypes) : textRows(file, format, gzip, o.csvDelimiter);
  const iterator = source[Symbol.asyncIterator]();

  // Sample for inference; the sampled rows are then processed like the rest.
  const sample: RawRow[] = [];
  for (;;) {
    if (sample.length >= o.inferRows) break;
    const next = await iterator.next();
    if (next.done) break;
    sample.push(next.value);
  }
  const columnTypes = new Map<string, ImportType>();
  if (format === 'parquet') for (const [column, type] of parquetTypes) columnTypes.set(column, type);
  else
    for (const column of inferColumns(sample.flatMap((s) => (s.row ? [s.row] : []))))
      columnTypes.set(column.name, column.type);
  for (const [column, type] of Object.entries(o.columns)) columnTypes.set(column, type);
  for (const column of o.required)
    if (!columnTypes.has(column)) columnTypes.set(column, o.columns[column] ?? 'string');
  const declared = new Set([...Object.keys(o.columns), ...o.required]);

  const quarantinePath = o.quarantineFile ?? `${file}.quarantine.ndjson`;
  let quarantineStream: WriteStream | null = null;
  const reasons: QuarantinedRow[] = [];
  let quarantined = 0;
  const quarantine = async (entry: QuarantinedRow, record: unknown) => {
    quarantined++;
    if (reasons.length < 20) reasons.push(entry);
    quarantineStream ??= createWriteStream(quarantinePath, { flags: 'w' });
    const line = `${JSON.stringify({ ...entry, record: record ?? null })}\n`;
    if (!quarantineStream.write(line))
      await new Promise<void>((resolve) => quarantineStream!.once('drain', () => resolve()));
  };

  const lakeTable = o.table !== undefined ? deps.lake!.table(o.table) : null;
  if (o.topic !== undefined) await deps.log!.ensureTopic(o.topic, { partitions: 1 });
  const pendings: PendingFiles[] = [];
  const identity = createHash('sha256')
    .update(`${file}\0${info.size}\0${info.mtimeMs}`)
    .digest('hex')
    .slice(0, 24);
  let batch: Record<string, unknown>[] = [];
  let rows = 0;
  const lakeTypes = () =>
    Object.fromEntries([...columnTypes].map(([column, type]) => [column, importTypeToLake[type]]));
  const flush = async () => {
    if (batch.length === 0) return;
    if (lakeTable) {
      pendings.push(
        await lakeTable.stage(batch, {
          types: lakeTypes(),
          source: `file:${name}`,
          fileName: `import-${identity}-${pendings.length}`,
        }),
      );
    } else {
      const records: ProducerRecord[] = batch.map((row) => {
        const keyValue = o.keyField === undefined ? null : row[o.keyField];
        return {
          topic: o.topic!,
          key:
            keyValue === null || keyValue === undefined
              ? null
              : typeof keyValue === 'string'
                ? keyValue
                : typeof keyValue === 'bigint'
                  ? keyValue.toString()
                  : JSON.stringify(keyValue),
          value: JSON.stringify(row, (_k, v: unknown) =>
            typeof v === 'bigint' ? (Number.isSafeInteger(Number(v)) ? Number(v) : v.toString()) : v,
          ),
        };
      });
      await deps.log!.append(records);
    }
    rows += batch.length;
    batch = [];
  };

  const handle = async (raw: RawRow) => {
    if (raw.row === null)
      return quarantine(
        { file: name, line: raw.line, field: null, reason: raw.reason ?? 'unreadable record' },
        null,
      );
    const out: Record<string, unknown> = {};
    for (const [field, value] of Object.entries(raw.row)) {
      if (o.strict && !declared.has(field)) {
        return quarantine(
          { file: name, line: raw.line, field, reason: `field ${field} is not in the schema` },
          raw.row,
        );
      }
      let type = columnTypes.get(field);
      if (type === undefined) {
        // A field first seen after the sample: kept as text (its type was never inferred).
        type = 'string';
        columnTypes.set(field, type);
      }
      try {
        out[field] = convertValue(value, type);
      } catch (error) {
        return quarantine(
          {
            file: name,
            line: raw.line,
            field,
            reason: `${field}: ${(error as Error).message} (expected ${type})`,
          },
          raw.row,
        );
      }
    }
    for (const field of o.required) {
      if (isMissing(out[field]))
        return quarantine({ file: name, line: raw.line, field, reason: `${field} is required` }, raw.row);
    }
    if (deps.rowSchema) {
      const result = deps.rowSchema.safeParse(out);
      if (!result.success) {
        const issue = result.error.issues[0];
        const field = issue.path.length > 0 ? issue.path.join('.') : null;
        return quarantine(
          { file: name, line: raw.line, field, reason: `${field ?? 'row'}: ${issue.message}` },
          raw.row,
        );
      }
    }
    batch.push(out);
    if (batch.length >= o.batchRows) await flush();
  };

  try {
    for (const raw of sample) await handle(raw);
    for (;;) {
      const next = await iterator.next();
      if (next.done) break;
      await handle(next.value);
    }
    await flush();
  } catch (error) {
    for (const pending of pendings) await lakeTable?.abort(pending).catch(() => undefined);
    throw error;
  } finally {
    const stream = quarantineStream as WriteStream | null;
    if (stream)
      await new Promise<void>((resolve, reject) =>
        stream.end((error?: Error | null) => (error ? reject(error) : resolve())),
      );
  }

  let target: FileImportReport['target'];
  if (lakeTable) {
    const result = await lakeTable.commit({ commitId: `import-${identity}`, add: pendings });
    target = { table: lakeTable.qualifiedName, version: result.version, applied: result.applied };
  } else {
    target = { topic: o.topic! };
  }
  return {
    file: name,
    format,
    rows,
    quarantined,
    quarantineFile: quarantined > 0 ? quarantinePath : null,
    reasons,
    columns: [...columnTypes].map(([column, type]) => ({
      name: column,
      type,
      lakeType: importTypeToLake[type],
    })),
    target,
  };
}
