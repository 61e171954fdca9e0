// Lake: bronze/silver/gold tables of Parquet files on local or S3 storage, committed atomically
// through versioned manifests. Depends on core only.
export type { Storage, StorageObjectInfo, StorageFiles, LakeStorage } from './types.js';
export { LocalStorage } from './storage/local.js';
export { S3Storage, type S3StorageOptions } from './storage/s3.js';
export { openStorage, type StorageConfig } from './storage/open.js';
export {
  hiveNullValue,
  encodePartitionValue,
  decodePartitionValue,
  encodePartitionPath,
  decodePartitionPath,
  partitionValueOf,
  checkPartitionColumn,
  type PartitionValues,
} from './partition.js';
export {
  mergeSchema,
  widenType,
  canonicalType,
  quoteIdentifier,
  quoteLiteral,
  type ColumnSchema,
  type TableSchema,
} from './schema.js';
export {
  encodeManifest,
  decodeManifest,
  manifestPath,
  manifestFormat,
  manifestFormatVersion,
  type Manifest,
  type ManifestFile,
  type ManifestOperation,
} from './manifest.js';
export {
  LakeTable,
  layers,
  addBronzeColumns,
  parseTableName,
  checkTableName,
  type Layer,
  type StagedFile,
  type PendingFiles,
  type StageOptions,
  type OverwriteSpec,
  type CommitOptions,
  type CommitResult,
  type CommitEvent,
  type WriteOptions,
  type WriteQueryOptions,
  type CompactOptions,
  type GcOptions,
  type GcResult,
} from './table.js';
export type { RowGroup } from './writer.js';
export {
  Lake,
  openLake,
  openLakeFromConfig,
  describeSnapshot,
  type OpenLakeOptions,
  type TableInfo,
  type PartitionInfo,
  type CommitListener,
} from './lake.js';
export { lakeMetrics } from './metrics.js';
