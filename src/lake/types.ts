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

/**
 * Operations every built-in backend also offers. Kept apart from `Storage` so the lead's interface
 * stays the minimal contract; the lake uses these to avoid copies (local rename instead of copy)
 * and to stage S3 objects in a local cache for DuckDB.
 */
export interface StorageFiles {
  /**
   * Publishes a local file at `path` and removes the local file. The local backend renames it when
   * it sits on the same file system (no copy); S3 uploads it and deletes the local copy.
   * The object is durable (fsync'd) when the promise resolves.
   */
  moveFile(path: string, localFile: string): Promise<void>;
  /** Downloads `path` into `localFile` (created or replaced). */
  getFile(path: string, localFile: string): Promise<void>;
  /** Releases clients and sockets. */
  close(): Promise<void>;
}

/** What `openStorage` returns: the contract plus the file helpers. */
export type LakeStorage = Storage & StorageFiles;
