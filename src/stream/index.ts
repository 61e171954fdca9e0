// Stream layer's door: the job API, windows, sinks, the runner, checkpoints, pipelines and the
// batch job DAG. Other layers import only from here.
export type {
  Key,
  RecordMeta,
  Sink,
  SinkContext,
  TableLookup,
  WindowEmitKind,
  WindowResult,
} from './types.js';
export {
  stream,
  JobBuilder,
  Stream,
  KeyedStream,
  WindowedStream,
  type Decoder,
  type ErrorPolicy,
  type JobOptions,
  type JoinedPair,
  type SideInput,
  type SourceOptions,
  type StreamJob,
} from './job.js';
export {
  tumbling,
  hopping,
  session,
  type Aggregator,
  type WindowOptions,
  type WindowSpec,
} from './windows.js';
export type { MapState, ProcessContext, ProcessOptions, ValueState } from './state.js';
export {
  topicSink,
  callbackSink,
  sinkWhere,
  lakeSink,
  formatTimePartition,
  type CallbackMeta,
  type LakeSink,
  type LakeSinkOptions,
  type StagedFile,
  type TopicSink,
  type TopicSinkOptions,
  type TwoPhaseTable,
  type StageGroup,
} from './sinks.js';
export {
  JobTask,
  dlqHeaders,
  shuffleHeaders,
  outputId,
  type JobCounters,
  type TaskSnapshot,
} from './runtime.js';
export {
  runJob,
  startJob,
  jobStatus,
  jobStatusFile,
  readJobStatusFiles,
  resetJob,
  type CheckpointInfo,
  type JobHandle,
  type JobStatus,
  type RunJobOptions,
  type TaskAssignment,
} from './runner.js';
export {
  checkpointDir,
  readCheckpoint,
  resetCheckpoints,
  type CheckpointManifest,
  type CheckpointState,
  type SinkIntent,
} from './checkpoint.js';
export {
  runPipelineOnce,
  runRegisteredPipeline,
  orderStreamJobs,
  batchHistoryFile,
  type PipelineOnceOptions,
  type PipelineOnceResult,
  type RegisteredRunOptions,
} from './pipeline.js';
export {
  BatchDag,
  RunHistory,
  sqlJob,
  dateRange,
  encodeRunRecord,
  type BatchJob,
  type BatchJobContext,
  type BatchJobResult,
  type DagOptions,
  type RunOptions,
  type RunRecord,
  type RunStatus,
  type SqlEngine,
} from './batch/dag.js';
export {
  JobRegistry,
  jobRegistry,
  type JobEnvironment,
  type PipelineEntry,
  type PipelineFactory,
  type PipelineJobs,
} from './batch/registry.js';
export {
  lakeTableTarget,
  type LakeStagedFile,
  type LakeTableQualityOptions,
  type LakeTableTargetOptions,
} from './lake.js';
export {
  qualityRules,
  compileQuality,
  qualityActions,
  qualityColumns,
  type CompiledQuality,
  type QualityAction,
  type QualityRule,
} from './quality/rules.js';
export {
  writeCheckedQuery,
  writeCheckedRows,
  checkRows,
  recordQualityResults,
  qualityResultRows,
  qualityResultsTable,
  quarantineTableOf,
  qualityMetrics,
  type CheckedRows,
  type CheckedWriteOptions,
  type CheckedRowsWriteOptions,
  type CheckRowsOptions,
  type QualityReport,
  type QualityRuleResult,
} from './quality/run.js';
export { bucket, bucketColumn, type LakePartitionColumn } from './lake-partitions.js';
export {
  runWorker,
  planScaledJob,
  repartitionTopicOf,
  type ScaledStage,
  type WorkerOptions,
  type WorkerResult,
} from './scale.js';
export {
  JobCheckpoints,
  TaskStore,
  openCheckpointStorage,
  encodeLeaseRecord,
  leaseFormatVersion,
  type LeaseRecord,
  type TaskStoreOptions,
} from './task-store.js';
export { loadTable, type LoadedTable, type LoadTableOptions } from './table.js';
export {
  LineageEmitter,
  FileLineageTransport,
  HttpLineageTransport,
  configureLineage,
  lineageFor,
  flushLineage,
  lineageDir,
  lakeAndLogSchemas,
  LineageRun,
  type LineageEmitterOptions,
  type LineageRunOptions,
  type LineageTransport,
  type HttpLineageTransportOptions,
  type SchemaResolver,
} from './lineage/emitter.js';
export {
  runEvent,
  datasetOf,
  datasetUri,
  encodeLineageEvent,
  decodeLineageLine,
  inferFields,
  uuidOf,
  openLineageSchemaUrl,
  lineageProducer,
  topicNamespace,
  lakeNamespace,
  type DatasetRef,
  type LineageDataset,
  type LineageEventType,
  type LineageRunEvent,
  type RunEventInput,
  type SchemaField,
} from './lineage/event.js';
export {
  LineageGraphBuilder,
  LineageGraphReader,
  readLineageGraph,
  datasetKind,
  type LineageEdge,
  type LineageGraph,
  type LineageNode,
  type LineageNodeKind,
} from './lineage/graph.js';
