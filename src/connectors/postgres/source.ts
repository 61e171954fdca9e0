import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { TributaryError } from '../../core/index.js';
// PostgreSQL quotes identifiers and literals as DuckDB does: the lake's quoters serve both.
import { quoteIdentifier, quoteLiteral } from '../../lake/index.js';
import { checkConnectorOptions } from '../options-check.js';
import type { CommitResult, LakeTable, PendingFiles } from '../../lake/index.js';
import { createMemoryStateStore, type ConnectorStateStore } from '../state.js';
import type { PgClient, PgSession } from './client.js';
import { mapPgType, pgValueParser, type PgColumn } from './types.js';

const identifier = /^[A-Za-z_][A-Za-z0-9_$]*$/;
const qualified = /^([A-Za-z_][A-Za-z0-9_$]*\.)?[A-Za-z_][A-Za-z0-9_$]*$/;

/** Options of the PostgreSQL source (snapshot or incremental by a cursor column). */
export const postgresSourceOptionsSchema = z
  .object({
    url: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'postgres://user@host:port/db')
      .optional()
      .describe('PostgreSQL URL; without one the embedded PGlite database under the data dir is read.'),
    table: z
      .string()
      .regex(qualified, 'table or schema.table (letters, digits, _)')
      .describe('Table to read, e.g. public.orders.'),
    columns: z
      .array(z.string().regex(identifier))
      .optional()
      .describe('Columns to read (default all, in table order).'),
    mode: z
      .enum(['snapshot', 'incremental'])
      .default('snapshot')
      .describe('snapshot reads the whole table; incremental only rows past the saved cursor.'),
    cursorColumn: z
      .string()
      .regex(identifier)
      .optional()
      .describe(
        'incremental: a column that only grows for new rows (id, updated_at); rows are read in its order.',
      ),
    fetchRows: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .default(10_000)
      .describe('Rows per FETCH from the server-side cursor (bounds memory).'),
    stateKey: z
      .string()
      .optional()
      .describe('Key of the incremental cursor in the state store; default postgres:<table>.'),
  })
  .strict()
  .refine((o) => o.mode !== 'incremental' || o.cursorColumn !== undefined, {
    message: 'mode incremental needs cursorColumn',
    path: ['cursorColumn'],
  });

export type PostgresSourceOptions = z.infer<typeof postgresSourceOptionsSchema>;
export type PostgresSourceOptionsInput = z.input<typeof postgresSourceOptionsSchema>;

function quoteQualified(name: string): string {
  return name.split('.').map(quoteIdentifier).join('.');
}

export interface PgBatch {
  rows: Record<string, unknown>[];
  /** Cursor column value (PostgreSQL text form) of the batch's last row, incremental mode only. */
  cursor: string | undefined;
}

export interface RawPgBatch {
  /** Text output per column (`columns()` order); null is SQL NULL. */
  raw: (string | null)[][];
  cursor: string | undefined;
}

export interface PgReadReport {
  rows: number;
  batches: number;
  /** The new incremental cursor (saved by `commitCursor`). */
  cursor: string | undefined;
}

/**
 * Reads a PostgreSQL table (real server through `pg`, or embedded PGlite) with a server-side
 * cursor — `DECLARE … NO SCROLL CURSOR` then `FETCH n` in one REPEATABLE READ, READ ONLY
 * transaction — so memory stays bounded by `fetchRows` and a snapshot is consistent. Types map to
 * lake types as documented in `mapPgType`; `columns()` is the typed schema to create the lake
 * table with.
 *
 * @example
 * const client = await openPgClient({ url: 'postgres://postgres@127.0.0.1:5432/shop' });
 * const source = createPostgresSource({ table: 'public.orders' }, { client });
 * const schema = await source.columns();
 * for await (const batch of source.batches()) await lakeTable.append(batch.rows, schema);
 */
export class PostgresSource {
  readonly options: PostgresSourceOptions;
  readonly #client: PgClient;
  readonly #state: ConnectorStateStore;
  #columns: PgColumn[] | null = null;

  constructor(options: PostgresSourceOptionsInput, deps: { client: PgClient; state?: ConnectorStateStore }) {
    this.options = checkConnectorOptions('postgres source', postgresSourceOptionsSchema, options);
    this.#client = deps.client;
    this.#state = deps.state ?? createMemoryStateStore();
  }

  get #stateKey(): string {
    return this.options.stateKey ?? `postgres:${this.options.table}`;
  }

  /** The typed column schema of what `batches()` yields. */
  async columns(session: PgSession = this.#client): Promise<PgColumn[]> {
    if (this.#columns) return this.#columns;
    const result = await session.query(
      `SELECT a.attname, t.typname, a.atttypmod, format_type(a.atttypid, a.atttypmod), a.attnotnull, bt.typname
         FROM pg_attribute a
         JOIN pg_type t ON t.oid = a.atttypid
         LEFT JOIN pg_type bt ON bt.oid = t.typbasetype AND t.typtype = 'd'
        WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum`,
      [quoteQualified(this.options.table)],
    );
    if (result.rows.length === 0)
      throw new TributaryError(
        'NOT_FOUND',
        `PostgreSQL table ${this.options.table} has no columns or does not exist`,
      );
    let columns: PgColumn[] = result.rows.map((row) => {
      const [name, typeName, typmod, formatted, notNull, baseType] = row as [
        string,
        string,
        string | number,
        string,
        string | boolean,
        string | null,
      ];
      return {
        name,
        pgType: formatted,
        // Domains are read as their base type.
        type: mapPgType(baseType ?? typeName, Number(typmod), formatted),
        nullable: !(notNull === true || notNull === 't'),
      };
    });
    if (this.options.columns) {
      const byName = new Map(columns.map((c) => [c.name, c]));
      columns = this.options.columns.map((name) => {
        const column = byName.get(name);
        if (!column)
          throw new TributaryError(
            'NOT_FOUND',
            `PostgreSQL table ${this.options.table} has no column ${name}; columns: ${[...byName.keys()].join(', ')}`,
          );
        return column;
      });
    }
    const cursorColumn = this.options.cursorColumn;
    if (cursorColumn !== undefined && !columns.some((c) => c.name === cursorColumn)) {
      throw new TributaryError(
        'CONFIG_INVALID',
        `cursorColumn ${cursorColumn} is not among the columns read from ${this.options.table}`,
      );
    }
    this.#columns = columns;
    return columns;
  }

  /** The saved incremental cursor (PostgreSQL text form), if any. */
  async savedCursor(): Promise<string | undefined> {
    return (await this.#state.get<{ cursor: string }>(this.#stateKey))?.cursor;
  }

  /** Saves the cursor after the caller has committed the rows it covers (lake commit, append). */
  async commitCursor(cursor: string | undefined): Promise<void> {
    if (cursor !== undefined) await this.#state.set(this.#stateKey, { cursor });
  }

  /**
   * Streams the table (or the rows past the saved cursor) in batches of at most `fetchRows`.
   * The transaction stays open while the caller consumes batches; breaking out of the loop
   * closes it.
   */
  async *batches(): AsyncGenerator<PgBatch> {
    const columns = await this.columns();
    const parsers = columns.map((c) => pgValueParser(this.options.table, c));
    const names = columns.map((c) => c.name);
    let rowIndex = 0;
    for await (const batch of this.rawBatches()) {
      const rows: Record<string, unknown>[] = new Array<Record<string, unknown>>(batch.raw.length);
      for (let r = 0; r < batch.raw.length; r++) {
        const raw = batch.raw[r];
        const row: Record<string, unknown> = {};
        for (let c = 0; c < names.length; c++) {
          const text = raw[c];
          row[names[c]] = text === null || text === undefined ? null : parsers[c](text, rowIndex);
        }
        rowIndex++;
        rows[r] = row;
      }
      yield { rows, cursor: batch.cursor };
    }
  }

  /** SELECT of every column (as `expression(column)` named c0, c1…) past the saved cursor. */
  async #selectSql(columns: PgColumn[], expression: (column: PgColumn) => string): Promise<string> {
    const cursorColumn = this.options.mode === 'incremental' ? this.options.cursorColumn : undefined;
    const saved = cursorColumn === undefined ? undefined : await this.savedCursor();
    // Output columns are renamed c0, c1… so ORDER BY/WHERE see the typed source column, not its text cast.
    const select = columns.map((c, i) => `${expression(c)} AS c${i}`).join(', ');
    let sql = `SELECT ${select} FROM ${quoteQualified(this.options.table)} AS src`;
    if (cursorColumn !== undefined && saved !== undefined) {
      const cursorType = columns.find((c) => c.name === cursorColumn)!.pgType;
      sql += ` WHERE src.${quoteIdentifier(cursorColumn)} > ${quoteLiteral(saved)}::${cursorType}`;
    }
    return sql;
  }

  /** Whether the client can `COPY … TO STDOUT` (pg and PGlite clients can). */
  get canCopy(): boolean {
    return typeof this.#client.copyOut === 'function';
  }

  /**
   * The rows (per mode) as CSV written by PostgreSQL itself (`COPY (SELECT …) TO STDOUT`), in one
   * REPEATABLE READ, READ ONLY transaction, handed to `write` in chunks. Format: RFC 4180, no
   * header, values in PostgreSQL text output (session in UTC, DateStyle ISO; booleans t/f), NULL = empty
   * unquoted field, empty string = `""`, bytea as DuckDB escapes (`\x00\xff`). Rows are in no
   * particular order; `cursor` is the largest cursor-column value copied (incremental mode).
   */
  async copyCsv(
    write: (chunk: Buffer) => Promise<void>,
  ): Promise<{ rows: number; cursor: string | undefined }> {
    return this.#client.transaction(
      async (session) => {
        if (!session.copyOut)
          throw new TributaryError('USAGE', 'this PostgreSQL client cannot COPY TO STDOUT; use rawBatches()');
        await session.query(`SET LOCAL TIME ZONE 'UTC'`);
        await session.query(`SET LOCAL DateStyle = 'ISO, YMD'`);
        await session.query(`SET LOCAL extra_float_digits = 1`);
        const columns = await this.columns(session);
        // COPY prints every value with its type's output function, which is what `::text` gives
        // for the typed lake columns (numbers, dates, times, booleans as t/f), so those skip the
        // cast (a third of the server's time); text-like columns keep it (char(n) loses its
        // padding exactly as in `rawBatches`).
        const select = await this.#selectSql(columns, (c) =>
          c.type === 'BLOB'
            ? `regexp_replace(encode(src.${quoteIdentifier(c.name)}, 'hex'), '(..)', '\\\\x\\1', 'g')`
            : c.type === 'VARCHAR'
              ? `src.${quoteIdentifier(c.name)}::text`
              : `src.${quoteIdentifier(c.name)}`,
        );
        const rows = await session.copyOut(select, `FORMAT csv`, write);
        const cursorColumn = this.options.mode === 'incremental' ? this.options.cursorColumn : undefined;
        let cursor: string | undefined;
        if (cursorColumn !== undefined && rows > 0) {
          // Same snapshot as the COPY (REPEATABLE READ), so this is the last row it copied.
          const column = columns.find((c) => c.name === cursorColumn)!;
          const sql = await this.#selectSql([column], (c) => `src.${quoteIdentifier(c.name)}::text`);
          const last = await session.query(
            `${sql} ORDER BY src.${quoteIdentifier(cursorColumn)} DESC NULLS LAST LIMIT 1`,
          );
          cursor = (last.rows[0]?.[0] as string | null | undefined) ?? undefined;
        }
        return { rows, cursor };
      },
      { readOnly: true, isolation: 'repeatable read' },
    );
  }

  /**
   * Like `batches()` but rows stay PostgreSQL's text output (arrays in `columns()` order, null for
   * NULL): the fastest path when the consumer parses text itself (DuckDB's CSV reader does).
   */
  async *rawBatches(): AsyncGenerator<RawPgBatch> {
    const queue: (RawPgBatch | Error | null)[] = [];
    let wake: (() => void) | null = null;
    let resumeProducer: (() => void) | null = null;
    let stopped = false;
    const push = (item: RawPgBatch | Error | null) => {
      queue.push(item);
      wake?.();
      wake = null;
    };
    // The transaction callback produces batches; the generator hands them out one at a time
    // (at most one batch buffered ahead), which keeps memory bounded and overlaps fetch and use.
    const producer = this.#client
      .transaction(
        async (session) => {
          await session.query(`SET LOCAL TIME ZONE 'UTC'`);
          await session.query(`SET LOCAL DateStyle = 'ISO, YMD'`);
          await session.query(`SET LOCAL extra_float_digits = 1`);
          const columns = await this.columns(session);
          const cursorColumn = this.options.mode === 'incremental' ? this.options.cursorColumn : undefined;
          let sql = await this.#selectSql(columns, (c) => `src.${quoteIdentifier(c.name)}::text`);
          if (cursorColumn !== undefined) sql += ` ORDER BY src.${quoteIdentifier(cursorColumn)}`;
          await session.query(`DECLARE tributary_source NO SCROLL CURSOR FOR ${sql}`);
          const cursorIndex =
            cursorColumn === undefined ? -1 : columns.findIndex((c) => c.name === cursorColumn);
          for (;;) {
            const fetched = await session.query(
              `FETCH FORWARD ${this.options.fetchRows} FROM tributary_source`,
            );
            if (fetched.rows.length === 0) break;
            const last = fetched.rows[fetched.rows.length - 1];
            push({
              raw: fetched.rows as (string | null)[][],
              cursor: cursorIndex >= 0 ? ((last[cursorIndex] as string | null) ?? undefined) : undefined,
            });
            // No await between these checks and parking, so a consumer that stops meanwhile
            // always finds `resumeProducer` set (or `stopped` already true here).
            if (stopped) break;
            if (queue.length > 1) await new Promise<void>((resolve) => (resumeProducer = resolve));
            if (stopped) break;
            if (fetched.rows.length < this.options.fetchRows) break;
          }
          await session.query('CLOSE tributary_source');
        },
        { readOnly: true, isolation: 'repeatable read' },
      )
      .then(
        () => push(null),
        (error: unknown) => push(error instanceof Error ? error : new Error(String(error))),
      );
    try {
      for (;;) {
        if (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
        const item = queue.shift()!;
        const resume = resumeProducer as (() => void) | null;
        resumeProducer = null;
        resume?.();
        if (item === null) return;
        if (item instanceof Error) throw item;
        yield item;
      }
    } finally {
      stopped = true;
      const resume = resumeProducer as (() => void) | null;
      resume?.();
      await producer;
    }
  }

  /**
   * Reads everything (per mode) and hands each batch to `write` (e.g. a lake table append); the
   * incremental cursor is saved only after `write` succeeded for every batch.
   */
  async read(
    write: (rows: Record<string, unknown>[], columns: PgColumn[]) => Promise<void>,
  ): Promise<PgReadReport> {
    const columns = await this.columns();
    let rows = 0;
    let batches = 0;
    let cursor = await this.savedCursor();
    for await (const batch of this.batches()) {
      await write(batch.rows, columns);
      rows += batch.rows.length;
      batches++;
      if (batch.cursor !== undefined) cursor = batch.cursor;
    }
    return { rows, batches, cursor: this.options.mode === 'incremental' ? cursor : undefined };
  }
}

export interface CopyToLakeOptions {
  /** Rows per staged Parquet file (default 1,048,576 with COPY, else 122,880: one DuckDB row group). */
  stageRows?: number;
  /** Commit id; default derived from table and saved cursor (incremental: retries are idempotent). */
  commitId?: string;
  source?: string;
  /** Local scratch directory for the CSV hand-off files (default the OS temp dir). */
  tempDir?: string;
}

/** One CSV field from PostgreSQL text output; NULL is an empty unquoted field, '' is `""`. */
function csvCell(text: string | null, blob: boolean): string {
  if (text === null) return '';
  // bytea hex output '\x00ff' becomes DuckDB's per-byte escape form '\x00\xff'.
  const value = blob ? text.slice(2).replace(/../g, '\\x$&') : text;
  return `"${value.includes('"') ? value.replace(/"/g, '""') : value}"`;
}

/**
 * Copies the table (or the rows past the saved cursor) into a lake table as ONE atomic commit with
 * the PostgreSQL column types, then saves the incremental cursor. A crash before the commit leaves
 * nothing visible; a retry of an incremental load reuses the same commit id, so a commit that did
 * happen is not applied twice.
 *
 * Hand-off: rows stay PostgreSQL text (no JS parsing) and go through scratch CSV files that
 * DuckDB reads with the mapped column types (`read_csv`, explicit types, quoted-empty ≠ NULL),
 * which keeps exact decimals and microsecond timestamps. With a client that can COPY (pg and
 * PGlite both can) PostgreSQL writes the CSV itself (`copyCsv`, format documented there) and JS
 * only splits it at row ends; otherwise rows come from `rawBatches()` and are written as RFC 4180,
 * no header, every non-NULL value quoted, NULL = empty unquoted field, bytea as DuckDB escapes
 * (`\x00\xff`). Both forms read the same with one `read_csv`.
 *
 * @example
 * const result = await copyPostgresToLake(createPostgresSource({ table: 'orders' }, { client }), lake.table('bronze.orders'));
 */
export async function copyPostgresToLake(
  source: PostgresSource,
  table: LakeTable,
  options: CopyToLakeOptions = {},
): Promise<{ rows: number; commit: CommitResult | null; cursor: string | undefined }> {
  const columns = await source.columns();
  // COPY output is staged in larger units: each staged file costs a DuckDB describe + publish,
  // which measured more than the overlap of copying and staging gains on two cores.
  const stageRows = options.stageRows ?? (source.canCopy ? 1_048_576 : 122_880);
  const startCursor = await source.savedCursor();
  const commitId =
    options.commitId ??
    (source.options.mode === 'incremental'
      ? `pg-${source.options.table}-after-${startCursor ?? 'start'}`
      : `pg-${source.options.table}-${Date.now()}-${randomBytes(4).toString('hex')}`);
  const stem = commitId.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 120);
  const scratch = await mkdtemp(path.join(options.tempDir ?? tmpdir(), 'tributary-pg-'));
  const blobs = columns.map((c) => c.type === 'BLOB');
  const typeList = columns.map((c) => `${duckQuote(c.name)}: ${duckQuote(c.type)}`).join(', ');
  const csvReader = (file: string) =>
    `read_csv(${duckQuote(file)}, header = false, auto_detect = false, delim = ',', quote = '"', escape = '"', allow_quoted_nulls = false, max_line_size = 536870912, columns = {${typeList}})`;
  const pendings: PendingFiles[] = [];
  let rows = 0;
  let cursor = startCursor;
  let handle: FileHandle | null = null;
  let fileRows = 0;
  let fileIndex = 0;
  // Staging (DuckDB reads the CSV and writes Parquet on its own threads) overlaps with fetching
  // the next rows: at most one stage runs while the next scratch file fills.
  let inflight: Promise<void> = Promise.resolve();
  const stageFile = async () => {
    if (handle === null) return;
    await handle.close();
    handle = null;
    const index = fileIndex++;
    fileRows = 0;
    const file = path.join(scratch, `part-${index}.csv`);
    const reader = csvReader(file);
    const previous = inflight;
    const next = previous.then(async () => {
      pendings.push(
        await table.stageQuery(`SELECT * FROM ${reader}`, {
          source: options.source ?? `postgres:${source.options.table}`,
          fileName: `${stem}-${index}`,
        }),
      );
      await rm(file, { force: true });
    });
    // Observed through `inflight` below; this handler only keeps it from being "unhandled".
    next.catch(() => undefined);
    inflight = next;
    await previous;
  };
  try {
    if (source.canCopy) {
      // PostgreSQL writes the CSV itself (COPY … TO STDOUT), so JS only finds row ends: a newline
      // outside quotes (`""` toggles twice). Every `stageRows` rows the scratch file is staged
      // while the copy goes on into the next one.
      let quoted = false;
      const copied = await source.copyCsv(async (chunk) => {
        let start = 0;
        for (let i = 0; i < chunk.length; i++) {
          const byte = chunk[i];
          if (byte === 0x22) quoted = !quoted;
          else if (byte === 0x0a && !quoted && ++fileRows >= stageRows) {
            handle ??= await open(path.join(scratch, `part-${fileIndex}.csv`), 'w');
            await handle.write(chunk.subarray(start, i + 1));
            start = i + 1;
            await stageFile();
          }
        }
        if (start < chunk.length) {
          handle ??= await open(path.join(scratch, `part-${fileIndex}.csv`), 'w');
          await handle.write(chunk.subarray(start));
        }
      });
      rows = copied.rows;
      if (copied.cursor !== undefined) cursor = copied.cursor;
    }
    for await (const batch of source.canCopy ? [] : source.rawBatches()) {
      if (handle === null) handle = await open(path.join(scratch, `part-${fileIndex}.csv`), 'w');
      const lines: string[] = new Array<string>(batch.raw.length);
      for (let r = 0; r < batch.raw.length; r++) {
        const raw = batch.raw[r];
        let line = csvCell(raw[0], blobs[0]);
        for (let c = 1; c < raw.length; c++) line += `,${csvCell(raw[c], blobs[c])}`;
        lines[r] = line;
      }
      await handle.write(`${lines.join('\n')}\n`);
      fileRows += batch.raw.length;
      rows += batch.raw.length;
      if (batch.cursor !== undefined) cursor = batch.cursor;
      if (fileRows >= stageRows) await stageFile();
    }
    await stageFile();
    await inflight;
  } catch (error) {
    await inflight.catch(() => undefined);
    for (const pending of pendings) await table.abort(pending).catch(() => undefined);
    throw error;
  } finally {
    const open_ = handle;
    await open_?.close().catch(() => undefined);
    await rm(scratch, { recursive: true, force: true });
  }
  if (rows === 0) return { rows: 0, commit: null, cursor };
  const commit = await table.commit({ commitId, add: pendings });
  if (source.options.mode === 'incremental') await source.commitCursor(cursor);
  return { rows, commit, cursor };
}

/** Single-quoted DuckDB string literal. */
function duckQuote(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

export function createPostgresSource(
  options: PostgresSourceOptionsInput,
  deps: { client: PgClient; state?: ConnectorStateStore },
): PostgresSource {
  return new PostgresSource(options, deps);
}
