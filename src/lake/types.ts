/**
 * Storage: where lake files live. Local disk by default, S3-compatible object storage when scaled.
 * Paths are '/'-separated keys relative to the lake root (no leading '/', no '..').
 * One contract suite (`storage.case.ts`) runs against every backend.
 */
export interface StorageObjectInfo {
  path: string;
  sizeBytes: number;
  modifiedMs: number;
}

export interface Storage {
  readonly kind: 'local' | 's3';
  /** Human-readable root, e.g. /data/.tributary/lake or s3://bucket/prefix. */
  readonly root: string;
  put(path: string, data: Uint8Array): Promise<void>;
  /**
   * Writes only when `path` does not exist; resolves false when it does. This is the commit
   * primitive: exactly one of two racing committers wins.
   */
  putIfAbsent(path: string, data: Uint8Array): Promise<boolean>;
  /** Uploads a local file (a Parquet file DuckDB wrote) to `path`. */
  putFile(path: string, localFile: string): Promise<void>;
  get(path: string): Promise<Uint8Array>;
  /** Null when absent. */
  stat(path: string): Promise<StorageObjectInfo | null>;
  /** Every object whose path starts with `prefix`, sorted by path. */
  list(prefix: string): Promise<StorageObjectInfo[]>;
  delete(path: string): Promise<void>;
  /** A path DuckDB can read directly (local file path) or null when files must be fetched first. */
  localPath(path: string): string | null;
}
