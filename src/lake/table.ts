import { randomBytes, randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import nodePath from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { forEachBounded, limits, TributaryError, type Clock } from '../core/index.js';
import {
  decodeManifest,
  encodeManifest,
  manifestPath,
  parseManifestPath,
  type Manifest,
  type ManifestFile,
  type ManifestOperation,
} from './manifest.js';
import { lakeMetrics } from './metrics.js';
import {
  checkPartitionColumn,
  encodePartitionPath,
  partitionValueOf,
  type PartitionValues,
} from './partition.js';
import { canonicalType, mergeSchema, quoteLiteral, type TableSchema } from './schema.js';
import type { LakeStorage } from './types.js';
import type { ParquetWriter, RowGroup, WrittenFile } from './writer.js';

export const layers = ['bronze', 'silver', 'gold'] as const;
export type Layer = (typeof layers)[number];

/** A staged data file: written and durable, not visible until a commit lists it. */
export interface StagedFile {
  /** Relative to the table directory, e.g. `date=2026-11-22/part-x-0.parquet`. */
  path: string;
  /** Encoded Hive partition path ('' when unpartitioned). */
  partition: string;
  rows: number;
  bytes: number;
}

/**
 * Output of `stage`: plain JSON, so a stream engine can keep it in its checkpoint and commit it
 * after a restart.
 */
export interface PendingFiles {
  table: string;
  partitionColumns: string[];
  /** Columns of the staged files, partition columns included. */
  schema: TableSchema;
  files: StagedFile[];
}

export interface StageOptions {
  /** Hive partition columns, outermost first; defaults to the table's. */
  partitionBy?: string[];
  /**
   * Deterministic file-name stem (e.g. `job-7-ckpt-42-task-0`): staging the same data again after a
   * crash replaces the same objects instead of leaving orphans. Must be unique per commit.
   */
  fileName?: string;
  /** DuckDB types for columns that are new to the table (`{ price: 'DECIMAL(12,2)' }`). */
  types?: Record<string, string>;
  /** Bronze only: the `_source` value (default `unspecified`). */
  source?: string;
  /**
   * The files will replace the whole table (committed with `overwritePartitions: 'all'`), so the
   * table's current schema and partitioning are not enforced: a full rebuild may change them.
   */
  replaceTable?: boolean;
}

/** Which partitions a commit replaces: those it writes to, all of them, or a list. */
export type OverwriteSpec = 'touched' | 'all' | PartitionValues[];

export interface CommitOptions {
  /** Identifies the commit: a retry with the same id is recognised and not applied twice. */
  commitId: string;
  add?: PendingFiles | PendingFiles[];
  /** Replace whole partitions instead of appending. */
  overwritePartitions?: OverwriteSpec;
  /** Optimistic check: fail with CONFLICT unless the table is still at this version (0 = new). */
  ifVersion?: number;
}

export interface CommitResult {
  table: string;
  commitId: string;
  /** The snapshot that contains the commit. */
  version: number;
  /** False when the commit id had been applied already (a retry); nothing changed. */
  applied: boolean;
  operation: ManifestOperation;
  filesAdded: number;
  filesRemoved: number;
  rowsAdded: number;
  partitions: string[];
}

export interface CommitEvent extends CommitResult {
  manifest: Manifest;
}

export interface WriteOptions extends StageOptions {
  /** Default: a random id (no retry protection); pass a stable id to make retries idempotent. */
  commitId?: string;
}

export interface WriteQueryOptions {
  commitId?: string;
  partitionBy?: string[];
  fileName?: string;
  /** append (default), overwrite = replace the whole table, overwrite-partitions = the partitions written. */
  mode?: 'append' | 'overwrite' | 'overwrite-partitions';
  source?: string;
  /** See `StageOptions.replaceTable`; implied by `mode: 'overwrite'`. */
  replaceTable?: boolean;
}

export interface CompactOptions {
  /** Only this partition; default every partition. */
  partition?: PartitionValues;
  /** Compact a partition only when it has at least this many files (default 2) to merge. */
  minFiles?: number;
  /**
   * Merge only files of fewer rows than this; larger ones stay as they are (default: every file).
   * Compaction then bin-packs the small files, as Delta's OPTIMIZE and Iceberg's rewrite do, instead
   * of rewriting the whole partition each time: a partition that keeps growing would otherwise be
   * rewritten whole on every compaction, a cost that grows with its size.
   */
  fileRowsBelow?: number;
  commitId?: string;
}

export interface GcOptions {
  /** Unreferenced files younger than this are kept: they may be staged for a commit in flight. */
  graceMs?: number;
  /** Manifests kept behind the newest (readers that opened an older snapshot keep working). */
  keepVersions?: number;
}

export interface GcResult {
  deletedFiles: string[];
  deletedManifests: number;
  repairedMarkers: number;
}

/** What a table needs from its lake (kept narrow so tables are easy to test). */
export interface TableContext {
  storage: LakeStorage;
  writer: ParquetWriter;
  clock: Clock;
  /** Local scratch directory for DuckDB output (same file system as local storage). */
  scratchDir: string;
  emit(event: CommitEvent): void;
  /** Creates the views of the lake tables `sql` reads (all tables when it cannot tell). */
  prepareViews(connection: DuckDBConnection, sql: string): Promise<void>;
  localFiles(table: string, files: readonly ManifestFile[]): Promise<string[]>;
}

const tableNamePattern = /^[a-z_][a-z0-9_]{0,127}$/;
const markerName = '_SUCCESS';
const catalogPrefix = '_catalog/';

export function checkTableName(layer: string, name: string): { layer: Layer; name: string } {
  if (!(layers as readonly string[]).includes(layer)) {
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `table layer ${JSON.stringify(layer)} must be one of ${layers.join(', ')}`,
    );
  }
  if (!tableNamePattern.test(name)) {
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `table name ${JSON.stringify(name)} must match ${tableNamePattern.source} (lower case, digits, _)`,
    );
  }
  return { layer: layer as Layer, name };
}

/** `bronze.orders` → {layer, name}. */
export function parseTableName(qualified: string): { layer: Layer; name: string } {
  const dot = qualified.indexOf('.');
  if (dot < 0)
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `table ${JSON.stringify(qualified)} must be written <layer>.<name>, e.g. bronze.orders`,
    );
  return checkTableName(qualified.slice(0, dot), qualified.slice(dot + 1));
}

export function catalogKey(qualified: string): string {
  return `${catalogPrefix}${qualified}`;
}
export { catalogPrefix };

/** Adds the bronze metadata columns to each row (a new object; the input is not modified). */
export function addBronzeColumns(
  rows: readonly Record<string, unknown>[],
  source: string,
  ingestedAtMs: number,
): Record<string, unknown>[] {
  const timestamp = new Date(ingestedAtMs);
  return rows.map((row) => ({ ...row, _ingestion_timestamp: timestamp, _source: source }));
}

/** The bronze metadata columns as constants of every group (no row is copied). */
function bronzeGroups(groups: readonly RowGroup[], source: string, ingestedAtMs: number): RowGroup[] {
  const bronze = { _ingestion_timestamp: new Date(ingestedAtMs), _source: source };
  return groups.map((g) => ({ rows: g.rows, constants: { ...g.constants, ...bronze } }));
}

/** First non-null value of `name` in the groups (a group's constant, else its rows), or null. */
function firstValue(groups: readonly RowGroup[], name: string): unknown {
  for (const group of groups) {
    if (group.rows.length === 0) continue;
    if (group.constants !== undefined && name in group.constants) {
      const value = group.constants[name];
      if (value !== null && value !== undefined) return value;
      continue;
    }
    for (const row of group.rows) {
      const value = row[name];
      if (value !== null && value !== undefined) return value;
    }
  }
  return null;
}

/**
 * One lake table: stage files, commit them atomically, read snapshots. Obtain it from
 * `lake.table(layer, name)`.
 *
 * @example
 * const orders = lake.table('bronze', 'orders');
 * await orders.append(rows, { partitionBy: ['date'], source: 'northwind', commitId: 'load-2026-11-22' });
 */
export class LakeTable {
  readonly layer: Layer;
  readonly name: string;
  /** `<layer>.<name>` */
  readonly qualifiedName: string;
  /** Storage key prefix of the table directory, e.g. `bronze/orders`. */
  readonly directory: string;
  readonly #context: TableContext;
  #cached: Manifest | null = null;

  constructor(layer: Layer, name: string, context: TableContext) {
    this.layer = layer;
    this.name = name;
    this.qualifiedName = `${layer}.${name}`;
    this.directory = `${layer}/${name}`;
    this.#context = context;
  }

  /** The newest committed snapshot, or null when nothing was committed yet. */
  async snapshot(): Promise<Manifest | null> {
    const listed = await this.#context.storage.list(`${this.directory}/_manifests/`);
    let latest = 0;
    for (const object of listed) {
      const version = parseManifestPath(object.path.slice(this.directory.length + 1));
      if (version !== null && version > latest) latest = version;
    }
    if (latest === 0) return null;
    return this.#read(latest);
  }

  /** Snapshot `version` (kept until gc removes it). */
  async #read(version: number): Promise<Manifest> {
    if (this.#cached?.version === version) return this.#cached;
    const key = `${this.directory}/${manifestPath(version)}`;
    const manifest = decodeManifest(
      await this.#context.storage.get(key),
      `${this.#context.storage.root}/${key}`,
    );
    if (manifest.version !== version || manifest.table !== this.qualifiedName) {
      throw new TributaryError(
        'CORRUPT_DATA',
        `lake manifest ${key} names ${manifest.table} version ${manifest.version}`,
      );
    }
    if (!this.#cached || this.#cached.version < version) this.#cached = manifest;
    return manifest;
  }

  #stem(fileName: string | undefined): string {
    if (fileName === undefined) return `part-${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,150}$/.test(fileName)) {
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `fileName ${JSON.stringify(fileName)} must be letters, digits, '_', '.', '-'`,
      );
    }
    return `part-${fileName}`;
  }

  #partitionColumns(requested: string[] | undefined, current: Manifest | null): string[] {
    const columns = requested ?? current?.partitionColumns ?? [];
    columns.forEach(checkPartitionColumn);
    if (current && current.files.length > 0 && current.partitionColumns.join('/') !== columns.join('/')) {
      throw new TributaryError(
        'SCHEMA_MISMATCH',
        `table ${this.qualifiedName} is partitioned by (${current.partitionColumns.join(', ')}); new data is partitioned by (${columns.join(', ')})`,
      );
    }
    return columns;
  }

  /**
   * Publishes files DuckDB wrote into the scratch directory under the table directory, several at
   * once (each is durable on its own; none is visible before a manifest names it).
   */
  async #publish(written: WrittenFile[], outDir: string, committed?: Manifest | null): Promise<StagedFile[]> {
    const staged = new Array<StagedFile>(written.length);
    const existing = new Map((committed?.files ?? []).map((f) => [f.path, f]));
    try {
      await forEachBounded(written, limits.lakePublishConcurrencyMax, async (file, i) => {
        const relative = file.partition === '' ? file.fileName : `${file.partition}/${file.fileName}`;
        const already = existing.get(relative);
        if (already) {
          // A deterministic name restaged after its commit landed: committed files are immutable,
          // so keep the committed object (the commit id check then recognises the retry).
          staged[i] = {
            path: relative,
            partition: already.partition,
            rows: already.rows,
            bytes: already.bytes,
          };
          return;
        }
        await this.#context.storage.moveFile(`${this.directory}/${relative}`, file.localFile);
        staged[i] = { path: relative, partition: file.partition, rows: file.rows, bytes: file.bytes };
        lakeMetrics.filesWritten.inc({ table: this.qualifiedName });
        lakeMetrics.bytesWritten.inc({ table: this.qualifiedName }, file.bytes);
        lakeMetrics.rowsWritten.inc({ table: this.qualifiedName }, file.rows);
      });
    } finally {
      await rm(outDir, { recursive: true, force: true });
    }
    return staged;
  }

  /**
   * Phase one of a commit: writes `rows` as Parquet under unique names. Nothing is visible until
   * `commit({ add: pending })`. Bronze tables get `_ingestion_timestamp` and `_source`.
   */
  async stage(rows: readonly Record<string, unknown>[], options: StageOptions = {}): Promise<PendingFiles> {
    return this.stageGroups([{ rows }], options);
  }

  /**
   * `stage` for rows that come in groups sharing some column values (a stream sink's partitions):
   * each group's `constants` fill those columns for all its rows without copying a row. All
   * groups are written by one DuckDB statement (one file per partition) and published together.
   */
  async stageGroups(groups: readonly RowGroup[], options: StageOptions = {}): Promise<PendingFiles> {
    const current = await this.snapshot();
    const base = options.replaceTable ? null : current;
    const partitionColumns = this.#partitionColumns(options.partitionBy, base);
    const input =
      this.layer === 'bronze'
        ? bronzeGroups(groups, options.source ?? 'unspecified', this.#context.clock.now())
        : groups;
    if (!input.some((g) => g.rows.length > 0))
      return { table: this.qualifiedName, partitionColumns, schema: [], files: [] };
    const schema = this.#inferColumns(input, base?.schema ?? [], options.types ?? {}, partitionColumns);
    for (const column of partitionColumns) {
      if (!schema.some((c) => c.name === column)) {
        throw new TributaryError(
          'BAD_RECORD',
          `table ${this.qualifiedName}: partition column ${column} is missing from every record`,
        );
      }
    }
    const outDir = nodePath.join(this.#context.scratchDir, randomUUID());
    const written = await this.#context.writer.writeRows(
      this.qualifiedName,
      input,
      schema,
      partitionColumns,
      outDir,
      this.#stem(options.fileName),
    );
    const files = await this.#publish(written, outDir, options.fileName === undefined ? null : current);
    return { table: this.qualifiedName, partitionColumns, schema, files };
  }

  /** Phase one for a DuckDB SELECT over the lake (`SELECT … FROM bronze.orders`). */
  async stageQuery(
    sql: string,
    options: Omit<WriteQueryOptions, 'commitId' | 'mode'> = {},
  ): Promise<PendingFiles> {
    const current = await this.snapshot();
    const base = options.replaceTable ? null : current;
    const partitionColumns = this.#partitionColumns(options.partitionBy, base);
    const prepare = (connection: DuckDBConnection) => this.#context.prepareViews(connection, sql);
    let select = sql.trim().replace(/;+\s*$/, '');
    if (this.layer === 'bronze') {
      const described = await this.#context.writer.describe(select, prepare);
      const extra: string[] = [];
      if (!described.some((c) => c.name === '_ingestion_timestamp')) {
        extra.push(
          `TIMESTAMP ${quoteLiteral(new Date(this.#context.clock.now()).toISOString().replace('T', ' ').replace('Z', ''))} AS _ingestion_timestamp`,
        );
      }
      if (!described.some((c) => c.name === '_source'))
        extra.push(`${quoteLiteral(options.source ?? 'unspecified')} AS _source`);
      if (extra.length > 0) select = `SELECT *, ${extra.join(', ')} FROM (${select}) AS source_query`;
    }
    const outDir = nodePath.join(this.#context.scratchDir, randomUUID());
    const { files: written, schema } = await this.#context.writer.writeQuery(
      select,
      partitionColumns,
      outDir,
      this.#stem(options.fileName),
      prepare,
    );
    // Check types against the table before publishing anything.
    mergeSchema(this.qualifiedName, base?.schema ?? null, schema);
    const files = await this.#publish(written, outDir, options.fileName === undefined ? null : current);
    return { table: this.qualifiedName, partitionColumns, schema, files };
  }

  /**
   * Deletes staged files that will not be committed. Files the newest snapshot references are kept
   * (a deterministic `fileName` restaged after its commit names the committed object).
   */
  async abort(pending: PendingFiles): Promise<void> {
    const committed = new Set((await this.snapshot())?.files.map((f) => f.path) ?? []);
    for (const file of pending.files) {
      if (!committed.has(file.path)) await this.#context.storage.delete(`${this.directory}/${file.path}`);
    }
  }

  #inferColumns(
    groups: readonly RowGroup[],
    existing: TableSchema,
    declared: Record<string, string>,
    partitionColumns: string[],
  ): TableSchema {
    const names: string[] = [];
    const seen = new Set<string>();
    const see = (key: string) => {
      if (!seen.has(key)) {
        seen.add(key);
        names.push(key);
      }
    };
    for (const group of groups) {
      if (group.rows.length === 0) continue;
      // Rows of one source mostly share their keys (and their order): a row whose keys are those
      // of the row before it adds no name, so only its keys are compared.
      let previous: string[] = [];
      for (const row of group.rows) {
        const keys = Object.keys(row);
        if (keys.length === previous.length && keys.every((key, i) => key === previous[i])) continue;
        for (const key of keys) see(key);
        previous = keys;
      }
      if (group.constants !== undefined) for (const key in group.constants) see(key);
    }
    const existingTypes = new Map(existing.map((c) => [c.name.toLowerCase(), c]));
    return names.map((name) => {
      if (name === '' || name.includes('\0'))
        throw new TributaryError('BAD_RECORD', `table ${this.qualifiedName}: empty or NUL column name`);
      const known = existingTypes.get(name.toLowerCase());
      // The record's spelling is kept: DuckDB matches column names case-insensitively.
      // A column still "NULL" (only NULL partitions so far) takes the type of its first value.
      if (known && canonicalType(known.type) !== '"NULL"') return { name, type: known.type };
      if (declared[name] !== undefined) return { name, type: canonicalType(declared[name]) };
      return { name, type: inferType(firstValue(groups, name), partitionColumns.includes(name)) };
    });
  }

  /**
   * Phase two: publishes staged files (and/or replaces partitions) as one new snapshot, all or
   * nothing. Safe to call again with the same `commitId` after a crash or timeout.
   */
  async commit(options: CommitOptions): Promise<CommitResult> {
    const adds = options.add === undefined ? [] : Array.isArray(options.add) ? options.add : [options.add];
    for (const pending of adds) {
      if (pending.table !== this.qualifiedName) {
        throw new TributaryError(
          'INVALID_ARGUMENT',
          `files staged for ${pending.table} cannot be committed to ${this.qualifiedName}`,
        );
      }
    }
    return this.#commit({
      commitId: options.commitId,
      adds,
      overwrite: options.overwritePartitions,
      removeFiles: undefined,
      ifVersion: options.ifVersion,
      operation: options.overwritePartitions === undefined ? 'append' : 'overwrite',
    });
  }

  async #commit(request: {
    commitId: string;
    adds: PendingFiles[];
    overwrite: OverwriteSpec | undefined;
    removeFiles: Set<string> | undefined;
    ifVersion: number | undefined;
    operation: ManifestOperation;
  }): Promise<CommitResult> {
    const { commitId, adds } = request;
    if (typeof commitId !== 'string' || commitId.length === 0 || commitId.length > 256) {
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `commitId must be a non-empty string of at most 256 characters`,
      );
    }
    const added = adds.flatMap((p) => p.files);
    const addedPartitionColumns = adds.find((p) => p.files.length > 0)?.partitionColumns;
    for (const pending of adds) {
      if (
        pending.files.length > 0 &&
        pending.partitionColumns.join('/') !== addedPartitionColumns?.join('/')
      ) {
        throw new TributaryError(
          'INVALID_ARGUMENT',
          `table ${this.qualifiedName}: one commit cannot mix partitionings`,
        );
      }
    }
    const stopTimer = lakeMetrics.commitSeconds.startTimer({ table: this.qualifiedName });
    const storage = this.#context.storage;

    for (let attempt = 0; attempt < limits.lakeCommitAttemptsMax; attempt++) {
      const current = await this.snapshot();
      if (current?.recentCommitIds.includes(commitId)) {
        lakeMetrics.commitsDeduplicated.inc({ table: this.qualifiedName });
        stopTimer();
        return {
          table: this.qualifiedName,
          commitId,
          version: current.version,
          applied: false,
          operation: request.operation,
          filesAdded: 0,
          filesRemoved: 0,
          rowsAdded: 0,
          partitions: [],
        };
      }
      if (request.ifVersion !== undefined && (current?.version ?? 0) !== request.ifVersion) {
        throw new TributaryError(
          'CONFLICT',
          `table ${this.qualifiedName} is at version ${current?.version ?? 0}, not ${request.ifVersion}`,
          { retryAfterMs: 0 },
        );
      }
      if (attempt === 0) {
        // Every staged file must exist before a manifest may point at it (a pending list kept in a
        // checkpoint can outlive its files when gc ran in between).
        const missing = (
          await Promise.all(
            added.map(async (f) =>
              (await storage.stat(`${this.directory}/${f.path}`)) === null ? f.path : null,
            ),
          )
        ).filter((p): p is string => p !== null);
        if (missing.length > 0) {
          throw new TributaryError(
            'NOT_FOUND',
            `table ${this.qualifiedName}: staged file(s) ${missing.slice(0, 5).join(', ')} no longer exist; stage the data again`,
          );
        }
        if (current === null)
          await storage.put(
            catalogKey(this.qualifiedName),
            new TextEncoder().encode(`${this.qualifiedName}\n`),
          );
      }
      const partitionColumns = addedPartitionColumns ?? current?.partitionColumns ?? [];
      const replacingTable = request.overwrite === 'all';
      if (
        !replacingTable &&
        current &&
        current.files.length > 0 &&
        added.length > 0 &&
        current.partitionColumns.join('/') !== partitionColumns.join('/')
      ) {
        throw new TributaryError(
          'SCHEMA_MISMATCH',
          `table ${this.qualifiedName} is partitioned by (${current.partitionColumns.join(', ')}); new files by (${partitionColumns.join(', ')})`,
        );
      }
      // A whole-table overwrite starts the schema afresh: no file of the old one stays visible.
      let schema = replacingTable && added.length > 0 ? null : (current?.schema ?? null);
      for (const pending of adds)
        if (pending.files.length > 0) schema = mergeSchema(this.qualifiedName, schema, pending.schema);

      const replaced = this.#partitionsToReplace(request.overwrite, added, current, partitionColumns);
      const previousFiles = current?.files ?? [];
      if (request.removeFiles) {
        const present = new Set(previousFiles.map((f) => f.path));
        const gone = [...request.removeFiles].filter((p) => !present.has(p));
        if (gone.length > 0)
          throw new TributaryError(
            'CONFLICT',
            `table ${this.qualifiedName}: files ${gone.slice(0, 3).join(', ')} were removed by a concurrent commit`,
          );
      }
      const kept = previousFiles.filter(
        (f) => !(replaced === 'all' || replaced.has(f.partition) || request.removeFiles?.has(f.path)),
      );
      const addedPaths = new Set(added.map((f) => f.path));
      const files: ManifestFile[] = [
        ...kept.filter((f) => !addedPaths.has(f.path)),
        ...added.map((f) => ({
          path: f.path,
          partition: f.partition,
          rows: f.rows,
          bytes: f.bytes,
          commitId,
        })),
      ];
      const manifest: Manifest = {
        table: this.qualifiedName,
        version: (current?.version ?? 0) + 1,
        commitId,
        operation: request.operation,
        committedAtMs: this.#context.clock.now(),
        partitionColumns,
        schema: schema ?? [],
        files,
        recentCommitIds: [...(current?.recentCommitIds ?? []), commitId].slice(
          -limits.lakeRecentCommitIdsMax,
        ),
      };
      const published = await storage.putIfAbsent(
        `${this.directory}/${manifestPath(manifest.version)}`,
        encodeManifest(manifest),
      );
      if (!published) {
        lakeMetrics.commitRetries.inc({ table: this.qualifiedName });
        continue;
      }
      this.#cached = manifest;
      const touched = new Set([...added.map((f) => f.partition), ...(replaced === 'all' ? [] : replaced)]);
      const livePartitions = new Set(files.map((f) => f.partition));
      await forEachBounded(
        [...touched].filter((p) => livePartitions.has(p)),
        limits.lakePublishConcurrencyMax,
        (p) => this.#writeMarker(p, manifest),
      );
      stopTimer();
      lakeMetrics.commits.inc({ table: this.qualifiedName, operation: request.operation });
      const result: CommitResult = {
        table: this.qualifiedName,
        commitId,
        version: manifest.version,
        applied: true,
        operation: request.operation,
        filesAdded: added.length,
        filesRemoved: previousFiles.length - kept.length,
        rowsAdded: added.reduce((sum, f) => sum + f.rows, 0),
        partitions: [...touched].sort(),
      };
      this.#context.emit({ ...result, manifest });
      return result;
    }
    stopTimer();
    throw new TributaryError(
      'CONFLICT',
      `table ${this.qualifiedName}: gave up after ${limits.lakeCommitAttemptsMax} attempts lost to concurrent commits`,
      { retryAfterMs: 100 },
    );
  }

  #partitionsToReplace(
    spec: OverwriteSpec | undefined,
    added: StagedFile[],
    current: Manifest | null,
    partitionColumns: string[],
  ): Set<string> | 'all' {
    if (spec === undefined) return new Set();
    if (spec === 'all') return 'all';
    if (spec === 'touched') return new Set(added.map((f) => f.partition));
    const columns = current?.partitionColumns.length ? current.partitionColumns : partitionColumns;
    return new Set(
      spec.map((values) => {
        const keys = Object.keys(values);
        if (keys.join('/') !== columns.join('/')) {
          throw new TributaryError(
            'INVALID_ARGUMENT',
            `table ${this.qualifiedName}: a partition to overwrite must give (${columns.join(', ')}) in order; got (${keys.join(', ')})`,
          );
        }
        return encodePartitionPath(Object.fromEntries(keys.map((k) => [k, partitionValueOf(values[k])])));
      }),
    );
  }

  /*
   * `_SUCCESS` marker, one per committed partition directory (the table directory when
   * unpartitioned): `{"version":<n>,"commitId":"<id>"}\n`, the snapshot that last wrote the
   * partition. Written after the manifest, so a crash can leave it missing or stale; `gc` repairs.
   */
  async #writeMarker(partition: string, manifest: Manifest): Promise<void> {
    const key =
      partition === '' ? `${this.directory}/${markerName}` : `${this.directory}/${partition}/${markerName}`;
    await this.#context.storage.put(
      key,
      new TextEncoder().encode(
        `${JSON.stringify({ version: manifest.version, commitId: manifest.commitId })}\n`,
      ),
    );
  }

  /** Stage and commit in one call (append). */
  async append(rows: readonly Record<string, unknown>[], options: WriteOptions = {}): Promise<CommitResult> {
    const pending = await this.stage(rows, options);
    return this.#commitOrAbort(pending, { commitId: options.commitId ?? randomUUID() });
  }

  /**
   * Stage and commit, replacing the partitions the rows fall into (`partitions: 'all'` replaces the
   * whole table). Running it again with the same rows yields the same table.
   */
  async overwrite(
    rows: readonly Record<string, unknown>[],
    options: WriteOptions & { partitions?: OverwriteSpec } = {},
  ): Promise<CommitResult> {
    const pending = await this.stage(rows, { ...options, replaceTable: options.partitions === 'all' });
    return this.#commitOrAbort(pending, {
      commitId: options.commitId ?? randomUUID(),
      overwritePartitions: options.partitions ?? 'touched',
    });
  }

  /** Writes a SELECT's result (batch jobs: silver and gold are SQL) and commits it. */
  async writeQuery(sql: string, options: WriteQueryOptions = {}): Promise<CommitResult> {
    const mode = options.mode ?? 'append';
    const pending = await this.stageQuery(sql, {
      ...options,
      replaceTable: mode === 'overwrite' || options.replaceTable === true,
    });
    return this.#commitOrAbort(pending, {
      commitId: options.commitId ?? randomUUID(),
      ...(mode === 'overwrite'
        ? { overwritePartitions: 'all' as const }
        : mode === 'overwrite-partitions'
          ? { overwritePartitions: 'touched' as const }
          : {}),
    });
  }

  async #commitOrAbort(pending: PendingFiles, options: Omit<CommitOptions, 'add'>): Promise<CommitResult> {
    try {
      const result = await this.commit({ ...options, add: pending });
      if (!result.applied) await this.abort(pending);
      return result;
    } catch (error) {
      await this.abort(pending).catch(() => undefined);
      throw error;
    }
  }

  /** Rewrites each partition's small files into one file, committed atomically. */
  async compact(options: CompactOptions = {}): Promise<CommitResult | null> {
    const current = await this.snapshot();
    if (!current) return null;
    const minFiles = options.minFiles ?? 2;
    const only = options.partition
      ? encodePartitionPath(
          Object.fromEntries(Object.entries(options.partition).map(([k, v]) => [k, partitionValueOf(v)])),
        )
      : undefined;
    const rowsBelow = options.fileRowsBelow ?? Number.POSITIVE_INFINITY;
    const groups = new Map<string, ManifestFile[]>();
    for (const file of current.files) {
      if (only !== undefined && file.partition !== only) continue;
      if (file.rows >= rowsBelow) continue;
      groups.set(file.partition, [...(groups.get(file.partition) ?? []), file]);
    }
    const pendings: PendingFiles[] = [];
    const removed = new Set<string>();
    const commitId = options.commitId ?? `compact-${randomUUID()}`;
    try {
      for (const [partition, files] of groups) {
        if (files.length < minFiles) continue;
        const locals = await this.#context.localFiles(this.qualifiedName, files);
        const outDir = nodePath.join(this.#context.scratchDir, randomUUID());
        const select = `SELECT * FROM read_parquet([${locals.map(quoteLiteral).join(', ')}], hive_partitioning = false, union_by_name = true)`;
        const { files: written } = await this.#context.writer.writeQuery(
          select,
          [],
          outDir,
          this.#stem(undefined),
        );
        const placed = written.map((f) => ({ ...f, partition }));
        const staged = await this.#publish(placed, outDir);
        pendings.push({
          table: this.qualifiedName,
          partitionColumns: current.partitionColumns,
          schema: current.schema,
          files: staged,
        });
        for (const file of files) removed.add(file.path);
      }
      if (removed.size === 0) return null;
      return await this.#commit({
        commitId,
        adds: pendings,
        overwrite: undefined,
        removeFiles: removed,
        ifVersion: undefined,
        operation: 'compact',
      });
    } catch (error) {
      for (const pending of pendings) await this.abort(pending).catch(() => undefined);
      throw error;
    }
  }

  /**
   * Deletes what no kept snapshot references: data files older than `graceMs`, manifests beyond
   * `keepVersions`; writes missing `_SUCCESS` markers and removes markers of partitions that no
   * longer exist.
   */
  async gc(options: GcOptions = {}): Promise<GcResult> {
    const graceMs = options.graceMs ?? 3_600_000;
    const keepVersions = Math.max(1, options.keepVersions ?? 10);
    const storage = this.#context.storage;
    const objects = await storage.list(`${this.directory}/`);
    const result: GcResult = { deletedFiles: [], deletedManifests: 0, repairedMarkers: 0 };
    const versions = objects
      .map((o) => parseManifestPath(o.path.slice(this.directory.length + 1)))
      .filter((v): v is number => v !== null)
      .sort((a, b) => a - b);
    const latest = versions.at(-1);
    if (latest === undefined) return result;
    const keptVersions = versions.filter((v) => v > latest - keepVersions);
    const referenced = new Set<string>();
    let newest: Manifest | null = null;
    for (const version of keptVersions) {
      const manifest = await this.#read(version);
      for (const file of manifest.files) referenced.add(file.path);
      if (version === latest) newest = manifest;
    }
    const now = this.#context.clock.now();
    const livePartitions = new Set(newest?.files.map((f) => f.partition) ?? []);
    const markers = new Set<string>();
    for (const object of objects) {
      const relative = object.path.slice(this.directory.length + 1);
      const version = parseManifestPath(relative);
      if (version !== null) {
        if (version <= latest - keepVersions) {
          await storage.delete(object.path);
          result.deletedManifests++;
        }
        continue;
      }
      const slash = relative.lastIndexOf('/');
      const base = relative.slice(slash + 1);
      const partition = slash < 0 ? '' : relative.slice(0, slash);
      if (base === markerName) {
        if (livePartitions.has(partition)) markers.add(partition);
        else await storage.delete(object.path);
        continue;
      }
      if (!referenced.has(relative) && now - object.modifiedMs >= graceMs) {
        await storage.delete(object.path);
        result.deletedFiles.push(relative);
      }
    }
    if (result.deletedFiles.length > 0)
      lakeMetrics.filesDeleted.inc({ table: this.qualifiedName }, result.deletedFiles.length);
    if (newest) {
      for (const partition of livePartitions) {
        if (!markers.has(partition)) {
          await this.#writeMarker(partition, newest);
          result.repairedMarkers++;
        }
      }
    }
    return result;
  }
}

/** DuckDB type for a column new to the table, from its first non-null JS value. */
function inferType(sample: unknown, isPartitionColumn: boolean): string {
  // A partition column is not stored in the files, only named by their directory: when every value
  // is NULL (a stream sink's NULL partition) its type is left open ("NULL", which the next typed
  // file's type replaces), instead of a VARCHAR that a later `level=3` could no longer merge with.
  if (sample === null || sample === undefined) return isPartitionColumn ? '"NULL"' : 'VARCHAR';
  switch (typeof sample) {
    case 'string':
      return 'VARCHAR';
    case 'boolean':
      return 'BOOLEAN';
    case 'bigint':
      return 'BIGINT';
    case 'number':
      // Numbers are DOUBLE so a later 1.5 is not refused, except partition columns, whose values
      // name directories (hour=5, not hour=5.0).
      return isPartitionColumn && Number.isInteger(sample) ? 'BIGINT' : 'DOUBLE';
    default:
      if (sample instanceof Date) return 'TIMESTAMP';
      if (sample instanceof Uint8Array) return 'BLOB';
      return 'VARCHAR';
  }
}
