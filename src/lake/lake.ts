import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import nodePath from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { childLogger, dataDirPaths, systemClock, TributaryError, type Clock } from '../core/index.js';
import type { Manifest, ManifestFile } from './manifest.js';
import { decodePartitionPath, type PartitionValues } from './partition.js';
import { quoteIdentifier, quoteLiteral } from './schema.js';
import { openStorage, type StorageConfig } from './storage/open.js';
import {
  catalogPrefix,
  checkTableName,
  layers,
  LakeTable,
  parseTableName,
  type CommitEvent,
  type GcOptions,
  type GcResult,
  type Layer,
  type TableContext,
} from './table.js';
import type { LakeStorage } from './types.js';
import { ParquetWriter } from './writer.js';

export interface OpenLakeOptions {
  storage: LakeStorage;
  /**
   * Local directory for DuckDB scratch output (`_tmp/`) and, for S3, downloaded files (`_cache/`).
   * For local storage use the storage root, so publishing a file is a rename. Default: the local
   * storage root, or required for S3.
   */
  workDir?: string;
  clock?: Clock;
}

export interface PartitionInfo {
  /** Encoded Hive path, e.g. `date=2026-11-22` ('' for an unpartitioned table). */
  path: string;
  values: PartitionValues;
  rows: number;
  files: number;
  bytes: number;
}

export interface TableInfo {
  /** `<layer>.<name>` */
  table: string;
  layer: Layer;
  name: string;
  version: number;
  committedAtMs: number;
  partitionColumns: string[];
  schema: Manifest['schema'];
  rows: number;
  files: number;
  bytes: number;
  partitions: PartitionInfo[];
}

export type CommitListener = (event: CommitEvent) => void;

/**
 * The lake: bronze/silver/gold tables on one storage, a DuckDB instance that writes their Parquet
 * files, and commit notifications (the SQL engine and serving caches refresh on them).
 *
 * @example
 * const lake = await openLake({ storage: new LocalStorage('/data/lake') });
 * await lake.table('bronze', 'orders').append([{ id: 1, date: '2026-11-22' }], { partitionBy: ['date'], source: 'northwind' });
 * console.log(await lake.listTables());
 * await lake.close();
 */
export class Lake {
  readonly storage: LakeStorage;
  readonly workDir: string;
  readonly #instance: DuckDBInstance;
  readonly #writer: ParquetWriter;
  readonly #clock: Clock;
  readonly #listeners = new Set<CommitListener>();
  readonly #tables = new Map<string, LakeTable>();
  readonly #context: TableContext;
  #closed = false;

  constructor(storage: LakeStorage, workDir: string, instance: DuckDBInstance, clock: Clock) {
    this.storage = storage;
    this.workDir = workDir;
    this.#instance = instance;
    this.#writer = new ParquetWriter(instance);
    this.#clock = clock;
    this.#context = {
      storage,
      writer: this.#writer,
      clock,
      scratchDir: this.scratchDir,
      emit: (event) => this.#emit(event),
      prepareViews: (connection, sql) => this.prepareViewsFor(connection, sql),
      localFiles: (table, files) => this.localFiles(table, files),
    };
  }

  /** DuckDB scratch output; lives beside the tables so publishing is a rename on local storage. */
  get scratchDir(): string {
    return nodePath.join(this.workDir, '_tmp');
  }

  /** Downloaded copies of S3 objects (immutable: names are unique, so a cached file is never stale). */
  get cacheDir(): string {
    return nodePath.join(this.workDir, '_cache');
  }

  /** `lake.table('bronze', 'orders')` or `lake.table('bronze.orders')`. */
  table(layerOrQualified: string, name?: string): LakeTable {
    this.#checkOpen();
    const parsed =
      name === undefined ? parseTableName(layerOrQualified) : checkTableName(layerOrQualified, name);
    const key = `${parsed.layer}.${parsed.name}`;
    let table = this.#tables.get(key);
    if (!table) {
      table = new LakeTable(parsed.layer, parsed.name, this.#context);
      this.#tables.set(key, table);
    }
    return table;
  }

  /** Names (`layer.name`) of tables that have at least one commit, sorted. */
  async tableNames(): Promise<string[]> {
    const entries = await this.storage.list(catalogPrefix);
    const names = entries
      .map((e) => e.path.slice(catalogPrefix.length))
      .filter((n) => /^(bronze|silver|gold)\.[a-z_][a-z0-9_]*$/.test(n));
    const withSnapshots = await Promise.all(
      names.map(async (n) => ((await this.table(n).snapshot()) ? n : null)),
    );
    return withSnapshots.filter((n): n is string => n !== null).sort();
  }

  /** Newest snapshot of every committed table. */
  async snapshots(): Promise<Manifest[]> {
    const names = await this.tableNames();
    const snapshots = await Promise.all(names.map((n) => this.table(n).snapshot()));
    return snapshots.filter((s): s is Manifest => s !== null);
  }

  /** Tables with partitions, row counts, file counts and sizes (from the manifests: no data is read). */
  async listTables(): Promise<TableInfo[]> {
    return (await this.snapshots()).map(describeSnapshot);
  }

  /** Called after every commit made through this lake object (same process). Returns an unsubscribe. */
  onCommit(listener: CommitListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(event: CommitEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (error) {
        childLogger('lake').error({ err: error, table: event.table }, 'commit listener failed');
      }
    }
  }

  /** Local paths DuckDB can read for committed files (downloads S3 objects into the cache). */
  async localFiles(table: string, files: readonly ManifestFile[]): Promise<string[]> {
    const { layer, name } = parseTableName(table);
    const directory = `${layer}/${name}`;
    return Promise.all(
      files.map(async (file) => {
        const key = `${directory}/${file.path}`;
        const direct = this.storage.localPath(key);
        if (direct !== null) return direct;
        const cached = nodePath.join(this.cacheDir, layer, name, ...file.path.split('/'));
        if (!existsSync(cached)) await this.storage.getFile(key, cached);
        return cached;
      }),
    );
  }

  /** SQL that defines the view over exactly the committed files of `manifest`. */
  async viewSql(manifest: Manifest): Promise<string> {
    const { layer, name } = parseTableName(manifest.table);
    const target = `${quoteIdentifier(layer)}.${quoteIdentifier(name)}`;
    if (manifest.files.length === 0) {
      const columns =
        manifest.schema.length > 0
          ? manifest.schema.map((c) => `CAST(NULL AS ${c.type}) AS ${quoteIdentifier(c.name)}`).join(', ')
          : 'NULL AS empty';
      return `CREATE OR REPLACE VIEW ${target} AS SELECT ${columns} LIMIT 0`;
    }
    const paths = await this.localFiles(manifest.table, manifest.files);
    const options = ['hive_partitioning = true', 'union_by_name = true'];
    if (manifest.partitionColumns.length > 0) {
      const types = manifest.partitionColumns.map((column) => {
        const type = manifest.schema.find((c) => c.name === column)?.type ?? 'VARCHAR';
        return `${quoteLiteral(column)}: ${quoteLiteral(type)}`;
      });
      options.push(`hive_types = {${types.join(', ')}}`);
    }
    return `CREATE OR REPLACE VIEW ${target} AS SELECT * FROM read_parquet([${paths.map(quoteLiteral).join(', ')}], ${options.join(', ')})`;
  }

  /**
   * Creates schemas bronze/silver/gold and one view per committed table on `connection`. Schemas and
   * views live in the catalog its instance shares with every other connection, and DuckDB's catalog
   * is transactional: two connections creating `bronze` (or replacing one view) at the same moment
   * fail one of them with "Catalog write-write conflict". So this DDL runs one statement list at a
   * time (the queue below); the queries that read the views still run in parallel.
   */
  async prepareViews(connection: DuckDBConnection, snapshots?: Manifest[]): Promise<void> {
    const statements = layers.map((layer) => `CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(layer)}`);
    for (const manifest of snapshots ?? (await this.snapshots()))
      statements.push(await this.viewSql(manifest));
    const run = this.#catalogChanges.then(async () => {
      for (const statement of statements) await connection.run(statement);
    });
    this.#catalogChanges = run.catch(() => undefined);
    await run;
  }

  /** The catalog DDL of `prepareViews` in progress (see there). */
  #catalogChanges: Promise<void> = Promise.resolve();

  /**
   * Like `prepareViews`, limited to the lake tables `sql` names, so a batch query over one table does
   * not read (or, on S3, download) every table's files.
   */
  async prepareViewsFor(connection: DuckDBConnection, sql: string): Promise<void> {
    // Table names are found lexically, not with DuckDB's `getTableNames`: that one binds the query,
    // so a view that already exists hides the table behind it (and its file list would go stale),
    // and aliased tables come back as "x AS a". A name that only looks like a table (inside a
    // string literal, say) costs one extra manifest read and is skipped when it has no snapshot.
    const wanted = new Set<string>();
    for (const match of sql.matchAll(/\b(bronze|silver|gold)\s*\.\s*"?([a-z_][a-z0-9_]*)"?/gi)) {
      wanted.add(`${match[1].toLowerCase()}.${match[2].toLowerCase()}`);
    }
    const snapshots = await Promise.all(
      [...wanted].map((name) =>
        this.table(name)
          .snapshot()
          .catch(() => null),
      ),
    );
    await this.prepareViews(
      connection,
      snapshots.filter((s): s is Manifest => s !== null),
    );
  }

  /** Garbage-collects every table, and scratch output left by crashed writers. */
  async gc(options: GcOptions = {}): Promise<Record<string, GcResult>> {
    const results: Record<string, GcResult> = {};
    for (const name of await this.tableNames()) results[name] = await this.table(name).gc(options);
    const graceMs = options.graceMs ?? 3_600_000;
    const entries = await readdir(this.scratchDir).catch(() => [] as string[]);
    for (const entry of entries) {
      const full = nodePath.join(this.scratchDir, entry);
      const info = await stat(full).catch(() => null);
      if (info && this.#clock.now() - info.mtimeMs >= graceMs)
        await rm(full, { recursive: true, force: true });
    }
    await this.#evictCache(graceMs);
    return results;
  }

  /** Removes cached copies (S3) of files the newest snapshots no longer list, once older than the grace period. */
  async #evictCache(graceMs: number): Promise<void> {
    if (!existsSync(this.cacheDir)) return;
    const live = new Set<string>();
    for (const manifest of await this.snapshots()) {
      const [layer, name] = manifest.table.split('.');
      for (const file of manifest.files)
        live.add(nodePath.join(this.cacheDir, layer, name, ...file.path.split('/')));
    }
    const entries = await readdir(this.cacheDir, { recursive: true, withFileTypes: true });
    for (const entry of entries) {
      if (!entry.isFile()) continue;
      const full = nodePath.join(entry.parentPath, entry.name);
      if (live.has(full)) continue;
      const info = await stat(full).catch(() => null);
      if (info && this.#clock.now() - info.mtimeMs >= graceMs) await rm(full, { force: true });
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    this.#instance.closeSync();
    await this.storage.close();
  }

  #checkOpen(): void {
    if (this.#closed) throw new TributaryError('CLOSED', 'the lake is closed');
  }
}

export function describeSnapshot(manifest: Manifest): TableInfo {
  const { layer, name } = parseTableName(manifest.table);
  const partitions = new Map<string, PartitionInfo>();
  for (const file of manifest.files) {
    let info = partitions.get(file.partition);
    if (!info) {
      info = {
        path: file.partition,
        values: decodePartitionPath(file.partition, manifest.partitionColumns),
        rows: 0,
        files: 0,
        bytes: 0,
      };
      partitions.set(file.partition, info);
    }
    info.rows += file.rows;
    info.files += 1;
    info.bytes += file.bytes;
  }
  return {
    table: manifest.table,
    layer,
    name,
    version: manifest.version,
    committedAtMs: manifest.committedAtMs,
    partitionColumns: manifest.partitionColumns,
    schema: manifest.schema,
    rows: manifest.files.reduce((s, f) => s + f.rows, 0),
    files: manifest.files.length,
    bytes: manifest.files.reduce((s, f) => s + f.bytes, 0),
    partitions: [...partitions.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
  };
}

/** Opens a lake on a storage backend. */
export async function openLake(options: OpenLakeOptions): Promise<Lake> {
  const workDir = options.workDir ?? (options.storage.kind === 'local' ? options.storage.root : undefined);
  if (workDir === undefined)
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `openLake: workDir is required for ${options.storage.kind} storage (scratch and cache)`,
    );
  await mkdir(nodePath.join(workDir, '_tmp'), { recursive: true });
  // A private in-memory DuckDB for writing; two threads keep it from starving the engine.
  const instance = await DuckDBInstance.create(':memory:', { threads: '2' });
  return new Lake(options.storage, workDir, instance, options.clock ?? systemClock);
}

/** Opens the lake the configuration names: `<dataDir>/lake` or S3 with its cache under `<dataDir>/lake`. */
export async function openLakeFromConfig(config: StorageConfig & { clock?: Clock }): Promise<Lake> {
  const storage = openStorage(config);
  return openLake({
    storage,
    workDir: dataDirPaths(config.dataDir).lake,
    ...(config.clock ? { clock: config.clock } : {}),
  });
}
