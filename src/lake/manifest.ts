import { TributaryError } from '../core/index.js';
import type { TableSchema } from './schema.js';

export const manifestFormat = 'tributary.lake.manifest';
export const manifestFormatVersion = 1;

/** A committed data file; `path` is relative to the table directory. */
export interface ManifestFile {
  path: string;
  /** Encoded Hive partition path ('' for an unpartitioned table). */
  partition: string;
  rows: number;
  bytes: number;
  /** The commit that added the file. */
  commitId: string;
}

export type ManifestOperation = 'append' | 'overwrite' | 'compact';

/** One snapshot of a table: everything a reader needs, in one object. */
export interface Manifest {
  table: string;
  version: number;
  commitId: string;
  operation: ManifestOperation;
  committedAtMs: number;
  partitionColumns: string[];
  schema: TableSchema;
  files: ManifestFile[];
  /** Ids of the latest commits, oldest first, at most `limits.lakeRecentCommitIdsMax`. */
  recentCommitIds: string[];
}

/** Key of manifest `version` relative to the table directory; zero-padded so keys sort by version. */
export function manifestPath(version: number): string {
  return `_manifests/${String(version).padStart(20, '0')}.json`;
}

export function parseManifestPath(relative: string): number | null {
  const match = /^_manifests\/(\d{20})\.json$/.exec(relative);
  return match ? Number(match[1]) : null;
}

/*
 * Lake table on-disk format, version 1 (also described in src/lake/FORMAT.md).
 *
 * A table `<layer>.<name>` lives under `<layer>/<name>/` in the lake storage:
 *
 *   <layer>/<name>/_manifests/00000000000000000001.json   snapshot 1
 *   <layer>/<name>/_manifests/00000000000000000002.json   snapshot 2 …
 *   <layer>/<name>/date=2026-11-22/part-<unique>.parquet   data (Parquet, zstd), Hive partition dirs
 *   <layer>/<name>/date=2026-11-22/_SUCCESS                marker: partition committed
 *   _catalog/<layer>.<name>                                 '<layer>.<name>\n': table discovery
 *
 * Commit protocol: data files are written first under unique names (invisible: readers see only
 * files listed in the newest manifest). A commit reads the newest manifest N, builds N+1 (N's files
 * minus overwritten partitions plus the new files) and publishes it with `putIfAbsent`; when another
 * committer took N+1 first, it re-reads and retries on top of the winner. The commit id is checked
 * against `recentCommitIds` before each attempt, so a retried commit is applied once. After the
 * manifest, `_SUCCESS` markers are written for the touched partitions (advisory, for Spark-style
 * readers; repaired by `gc`). Files no manifest references are deleted by `gc` after a grace period.
 *
 * Manifest encoding: one JSON object on one line, UTF-8, followed by '\n', keys in exactly this
 * order (the encoder fixes it, so equal snapshots are equal bytes):
 *
 *   {"format":"tributary.lake.manifest","formatVersion":1,"table":"bronze.orders","version":2,
 *    "commitId":"c-2","operation":"append","committedAtMs":1763769600000,
 *    "partitionColumns":["date"],"schema":[{"name":"id","type":"BIGINT"},…],
 *    "files":[{"path":"date=2026-11-22/part-x.parquet","partition":"date=2026-11-22","rows":10,
 *              "bytes":812,"commitId":"c-1"},…],
 *    "recentCommitIds":["c-1","c-2"]}
 *
 * `files` is sorted by path. A reader refuses a larger `formatVersion` (FORMAT_VERSION) and any
 * manifest that does not parse or lacks a field (CORRUPT_DATA).
 */
export function encodeManifest(manifest: Manifest): Uint8Array {
  const ordered = {
    format: manifestFormat,
    formatVersion: manifestFormatVersion,
    table: manifest.table,
    version: manifest.version,
    commitId: manifest.commitId,
    operation: manifest.operation,
    committedAtMs: manifest.committedAtMs,
    partitionColumns: manifest.partitionColumns,
    schema: manifest.schema.map((c) => ({ name: c.name, type: c.type })),
    files: [...manifest.files]
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
      .map((f) => ({
        path: f.path,
        partition: f.partition,
        rows: f.rows,
        bytes: f.bytes,
        commitId: f.commitId,
      })),
    recentCommitIds: manifest.recentCommitIds,
  };
  return new TextEncoder().encode(`${JSON.stringify(ordered)}\n`);
}

export function decodeManifest(data: Uint8Array, where: string): Manifest {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data)) as Record<string, unknown>;
  } catch (error) {
    throw new TributaryError(
      'CORRUPT_DATA',
      `lake manifest ${where} is not valid JSON: ${(error as Error).message}`,
      { cause: error },
    );
  }
  if (parsed === null || typeof parsed !== 'object' || parsed.format !== manifestFormat) {
    throw new TributaryError('CORRUPT_DATA', `lake manifest ${where} is not a ${manifestFormat} object`);
  }
  if (typeof parsed.formatVersion !== 'number' || parsed.formatVersion > manifestFormatVersion) {
    throw new TributaryError(
      'FORMAT_VERSION',
      `lake manifest ${where} has format version ${String(parsed.formatVersion)}; this build reads up to ${manifestFormatVersion}. Upgrade Tributary.`,
    );
  }
  const fail = (field: string) =>
    new TributaryError('CORRUPT_DATA', `lake manifest ${where}: field ${field} is missing or malformed`);
  const str = (v: unknown, field: string) => {
    if (typeof v !== 'string') throw fail(field);
    return v;
  };
  const num = (v: unknown, field: string) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw fail(field);
    return v;
  };
  const arr = (v: unknown, field: string) => {
    if (!Array.isArray(v)) throw fail(field);
    return v as unknown[];
  };
  const operation = str(parsed.operation, 'operation');
  if (!['append', 'overwrite', 'compact'].includes(operation)) throw fail('operation');
  return {
    table: str(parsed.table, 'table'),
    version: num(parsed.version, 'version'),
    commitId: str(parsed.commitId, 'commitId'),
    operation: operation as ManifestOperation,
    committedAtMs: num(parsed.committedAtMs, 'committedAtMs'),
    partitionColumns: arr(parsed.partitionColumns, 'partitionColumns').map((c) =>
      str(c, 'partitionColumns[]'),
    ),
    schema: arr(parsed.schema, 'schema').map((c) => {
      const column = c as Record<string, unknown>;
      return { name: str(column?.name, 'schema[].name'), type: str(column?.type, 'schema[].type') };
    }),
    files: arr(parsed.files, 'files').map((f) => {
      const file = f as Record<string, unknown>;
      return {
        path: str(file?.path, 'files[].path'),
        partition: str(file?.partition, 'files[].partition'),
        rows: num(file?.rows, 'files[].rows'),
        bytes: num(file?.bytes, 'files[].bytes'),
        commitId: str(file?.commitId, 'files[].commitId'),
      };
    }),
    recentCommitIds: arr(parsed.recentCommitIds, 'recentCommitIds').map((c) => str(c, 'recentCommitIds[]')),
  };
}
