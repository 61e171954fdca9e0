// The log layer's door: the `Log` contract, its backends (memory, embedded, Kafka, and the remote
// client of a log server) and the Kafka-compatible partitioner. Other layers import only from here.
export type * from './types.js';
export { openLog, parseKafkaUrl, parseLogServerUrl, type LogConfig, type OpenLogOptions } from './open.js';
export {
  serveLog,
  defaultSessionTimeoutMs,
  connectRemoteLog,
  readLogServerInfo,
  type LogServer,
  type LogServerOptions,
  type LogServerInfo,
  type RemoteLog,
  type RemoteLogOptions,
} from './remote/index.js';
export {
  openEmbeddedLog,
  inspectPartition,
  repairPartition,
  type EmbeddedLog,
  type EmbeddedLogOptions,
  type FsyncPolicy,
  type PartitionInspection,
  type SegmentInspection,
} from './embedded/index.js';
export { createMemoryLog, type MemoryLog, type MemoryLogOptions } from './memory.js';
export { murmur2, toPositive, partitionForKey, Partitioner } from './partitioner.js';
export { rangeAssign } from './local-group.js';
export { offsetRanges, type PartitionOffsetRange } from './append-summary.js';
export { startOffsets, notAssigned } from './records.js';
export * from './schemas/index.js';
export {
  serveKafka,
  servedApiVersions,
  scramCredential,
  scramIterations,
  type KafkaListener,
  type KafkaListenerOptions,
  type KafkaAuthenticator,
  type KafkaPrincipal,
  type ScramCredential,
} from './kafka-wire/index.js';
