// The embedded, durable log backend (segment files under the data dir).
export { openEmbeddedLog, type EmbeddedLog, type EmbeddedLogOptions, type FsyncPolicy } from './log.js';
export {
  inspectPartition,
  repairPartition,
  type PartitionInspection,
  type SegmentInspection,
} from './repair.js';
export {
  encodeBatch,
  checkBatch,
  decodeBatchInto,
  batchHeaderBytes,
  type EncodableRecord,
  type BatchHeader,
} from './format.js';
