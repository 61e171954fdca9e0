import { mkdir } from 'node:fs/promises';
import nodePath from 'node:path';
import { DuckDBInstance, type DuckDBConnection, type DuckDBValue } from '@duckdb/node-api';
import { childLogger, toTributaryError, TributaryError } from '../core/index.js';
import { layers, quoteLiteral, type Lake, type Manifest } from '../lake/index.js';
import { toJsonValue, type ResultColumn } from './convert.js';
import { rowsAsJson } from './rows.js';
import { checkReadOnlySql } from './sandbox.js';

export interface SqlEngineOptions {
  /**
   * How often a query re-checks the lake for commits made by other processes (commits through the
   * same `Lake` object refresh at once). 0 = before every query. Default 1000 ms.
   */
  refreshIntervalMs?: number;
  /** DuckDB worker threads (default 2). */
  threads?: number;
  /** DuckDB memory limit, e.g. '1GB'. */
  memoryLimit?: string;
  /** Largest result a query may return (default 1,000,000 rows); larger results are refused. */
  rowsMax?: number;
}

export interface QueryOptions {
  /** Overrides the engine's `rowsMax` for this query. */
  rowsMax?: number;
  /** Interrupts the query when aborted (an API request's deadline); fails with its reason. */
  signal?: AbortSignal;
}

export interface QueryResult {
  columns: ResultColumn[];
  rows: Record<string, unknown>[];
}

/** Query parameters: positional ($1, ?) or named ($name). */
export type QueryParams = unknown[] | Record<string, unknown>;

/**
 * DuckDB over the lake, read-only. Every committed table is a view (`bronze.orders`, …) over
 * exactly the files its newest manifest lists, read with `hive_partitioning = true` so filters on
 * partition columns skip files. Views are replaced when commits happen.
 *
 * Fences: (1) each query is parsed and must be one SELECT without file-reading table functions
 * (`checkReadOnlySql`); (2) after the views exist, DuckDB runs with `enable_external_access =
 * false`, file access limited to the lake directories (`allowed_directories`), extension
 * auto-install/auto-load off, and `lock_configuration = true`, so even a statement that slipped past
 * (1) cannot read other files, attach databases or change settings.
 *
 * S3 lakes: DuckDB's httpfs extension cannot be installed offline, so committed files are fetched
 * into the lake's local cache (`<dataDir>/lake/_cache/`, names are unique and files immutable, so a
 * cached copy never goes stale) and the views read those copies.
 *
 * @example
 * const sql = await openSqlEngine(lake);
 * const rows = await sql.query('select date, count(*) as n from bronze.orders where date = $1 group by date', ['2026-11-22']);
 */
export class SqlEngine {
  readonly #lake: Lake;
  readonly #instance: DuckDBInstance;
  readonly #admin: DuckDBConnection;
  readonly #refreshIntervalMs: number;
  readonly #rowsMax: number;
  readonly #versions = new Map<string, number>();
  #lastRefreshMs = 0;
  #dirty = true;
  #refreshing: Promise<void> | undefined;
  #unsubscribe: () => void;
  #closed = false;

  constructor(lake: Lake, instance: DuckDBInstance, admin: DuckDBConnection, options: SqlEngineOptions) {
    this.#lake = lake;
    this.#instance = instance;
    this.#admin = admin;
    this.#refreshIntervalMs = options.refreshIntervalMs ?? 1000;
    this.#rowsMax = options.rowsMax ?? 1_000_000;
    this.#unsubscribe = lake.onCommit(() => {
      this.#dirty = true;
    });
  }

  /** Tables with a view, as `layer.name`, sorted. */
  tables(): string[] {
    return [...this.#versions.keys()].sort();
  }

  /** Re-reads the newest manifests and replaces the views of tables that changed. */
  async refresh(): Promise<void> {
    this.#refreshing ??= this.#doRefresh().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  async #doRefresh(): Promise<void> {
    this.#dirty = false;
    const snapshots: Manifest[] = await this.#lake.snapshots();
    for (const manifest of snapshots) {
      if (this.#versions.get(manifest.table) === manifest.version) continue;
      await this.#admin.run(await this.#lake.viewSql(manifest));
      this.#versions.set(manifest.table, manifest.version);
    }
    this.#lastRefreshMs = Date.now();
  }

  async #refreshIfStale(): Promise<void> {
    if (this.#dirty || Date.now() - this.#lastRefreshMs >= this.#refreshIntervalMs) await this.refresh();
    else if (this.#refreshing) await this.#refreshing;
  }

  /** Runs one read-only statement and returns JSON-friendly row objects. */
  async query(sql: string, params?: QueryParams, options?: QueryOptions): Promise<Record<string, unknown>[]> {
    return (await this.queryWithColumns(sql, params, options)).rows;
  }

  /** Like `query`, with the result's column names and DuckDB types. */
  async queryWithColumns(
    sql: string,
    params?: QueryParams,
    options: QueryOptions = {},
  ): Promise<QueryResult> {
    if (this.#closed) throw new TributaryError('CLOSED', 'the SQL engine is closed');
    await this.#refreshIfStale();
    // One connection per query: queries from concurrent API requests run in parallel, and no
    // connection-local state survives from one query to the next.
    const connection = await this.#instance.connect();
    const signal = options.signal;
    const interrupt = () => connection.interrupt();
    signal?.addEventListener('abort', interrupt, { once: true });
    try {
      return await this.#run(connection, sql, params, options.rowsMax ?? this.#rowsMax, signal);
    } finally {
      signal?.removeEventListener('abort', interrupt);
      connection.closeSync();
    }
  }

  /**
   * Runs one read-only statement over `rows` as well as the lake: the rows are the temporary table
   * `batch`, which only this query's connection sees and which is dropped with it. The statement
   * passes the same sandbox as `query` (data-quality predicates over a stream batch run here).
   * Column types come from the values (rows.ts); `columns` adds columns no row has (NULL), so a
   * statement naming them still binds, and `nullTypes` types the columns that are NULL throughout.
   *
   * @example
   * await sql.queryRows([{ id: 1 }, { id: null }], 'SELECT count(*) AS missing FROM batch WHERE id IS NULL');
   */
  async queryRows(
    rows: readonly Record<string, unknown>[],
    sql: string,
    options: QueryOptions & {
      columns?: readonly string[];
      nullTypes?: Readonly<Record<string, string>>;
    } = {},
  ): Promise<Record<string, unknown>[]> {
    if (this.#closed) throw new TributaryError('CLOSED', 'the SQL engine is closed');
    const batch = rowsAsJson(rows, options.columns, options.nullTypes);
    await this.#refreshIfStale();
    const connection = await this.#instance.connect();
    try {
      // Written by the engine, not the caller: the caller's text only runs below, checked.
      await connection.run(
        `CREATE TEMP TABLE batch AS SELECT r.* FROM (
           SELECT from_json(line, $2) AS r FROM (SELECT unnest(string_split($1, chr(10))) AS line) WHERE line <> ''
         )`,
        [batch.ndjson, batch.structure],
      );
      return (await this.#run(connection, sql, undefined, options.rowsMax ?? this.#rowsMax)).rows;
    } catch (error) {
      throw this.#mapError(error, sql);
    } finally {
      connection.closeSync();
    }
  }

  async #run(
    connection: DuckDBConnection,
    sql: string,
    params: QueryParams | undefined,
    rowsMax: number,
    signal?: AbortSignal,
  ): Promise<QueryResult> {
    let reader;
    try {
      signal?.throwIfAborted();
      await checkReadOnlySql(connection, sql);
      this.#checkTablesExist(connection, sql);
      // Streamed, and read only one row past the limit, so an oversized result is refused without
      // materializing it.
      reader = await connection.streamAndReadUntil(
        sql,
        rowsMax + 1,
        params as DuckDBValue[] | Record<string, DuckDBValue> | undefined,
      );
    } catch (error) {
      // An interrupted query fails with why it was interrupted (a TIMEOUT), not DuckDB's words.
      if (signal?.aborted) throw toTributaryError(signal.reason, 'TIMEOUT');
      throw this.#mapError(error, sql);
    }
    if (reader.currentRowCount > rowsMax) {
      throw new TributaryError(
        'PAYLOAD_TOO_LARGE',
        `the result has more than ${rowsMax} rows; add a LIMIT or aggregate`,
        {
          details: { rowsMax },
        },
      );
    }
    const names = reader.columnNames();
    const types = reader.columnTypes();
    const rawRows = reader.getRowsJS();
    const rows = rawRows.map((row) => {
      const object: Record<string, unknown> = {};
      for (let i = 0; i < names.length; i++) object[names[i]] = toJsonValue(row[i], types[i]);
      return object;
    });
    return { columns: names.map((name, i) => ({ name, type: types[i].toString() })), rows };
  }

  #existingList(): string {
    const names = this.tables();
    return names.length > 0 ? names.join(', ') : '(none: nothing has been committed to the lake yet)';
  }

  #checkTablesExist(connection: DuckDBConnection, sql: string): void {
    let referenced: readonly string[];
    try {
      referenced = connection.getTableNames(sql, true);
    } catch {
      return;
    }
    for (const name of referenced) {
      const [schema, table] = name.split('.');
      if (
        table !== undefined &&
        (layers as readonly string[]).includes(schema) &&
        !this.#versions.has(name)
      ) {
        throw new TributaryError(
          'NOT_FOUND',
          `table ${name} does not exist; tables: ${this.#existingList()}`,
          { details: { table: name } },
        );
      }
    }
  }

  #mapError(error: unknown, sql: string): TributaryError {
    if (error instanceof TributaryError) return error;
    const message = (error as Error).message ?? String(error);
    const missing = /Catalog Error: Table with name (\S+) does not exist/.exec(message);
    if (missing)
      return new TributaryError(
        'NOT_FOUND',
        `table ${missing[1]} does not exist; tables: ${this.#existingList()}`,
        { cause: error },
      );
    if (/Permission Error|disabled by configuration|configuration has been locked/.test(message)) {
      return new TributaryError(
        'SQL_REFUSED',
        `refused by the read-only sandbox: ${message.split('\n')[0]}`,
        { cause: error, details: { sql } },
      );
    }
    return new TributaryError('INVALID_ARGUMENT', `query failed: ${message}`, {
      cause: error,
      details: { sql },
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    this.#admin.closeSync();
    this.#instance.closeSync();
  }
}

/** Opens a read-only DuckDB engine over the lake's committed tables. */
export async function openSqlEngine(lake: Lake, options: SqlEngineOptions = {}): Promise<SqlEngine> {
  const config: Record<string, string> = {
    threads: String(options.threads ?? 2),
    autoinstall_known_extensions: 'false',
    autoload_known_extensions: 'false',
  };
  if (options.memoryLimit) config.memory_limit = options.memoryLimit;
  const instance = await DuckDBInstance.create(':memory:', config);
  const admin = await instance.connect();
  const engine = new SqlEngine(lake, instance, admin, options);
  try {
    for (const layer of layers) await admin.run(`CREATE SCHEMA ${layer}`);
    await engine.refresh();
    // Files DuckDB may still open once external access is off: the lake's own directories.
    const allowed = new Set<string>([lake.cacheDir]);
    const localRoot = lake.storage.localPath('bronze');
    if (localRoot !== null) allowed.add(nodePath.dirname(localRoot));
    for (const directory of allowed) await mkdir(directory, { recursive: true });
    await admin.run(
      `SET allowed_directories = [${[...allowed].map((d) => quoteLiteral(`${d}${nodePath.sep}`)).join(', ')}]`,
    );
    await admin.run('SET enable_external_access = false');
    await admin.run('SET lock_configuration = true');
  } catch (error) {
    engine.close();
    childLogger('sql').error({ err: error }, 'could not open the SQL engine');
    throw error;
  }
  return engine;
}
