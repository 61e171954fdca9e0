// Connectors: where data enters and leaves. Each connector is a folder with its options as one zod
// schema; `connectors()` in registry.ts lists them all. Other layers import only from here.

// formats
export { CsvParser, csvField, type CsvRow } from './formats/csv.js';
export {
  decodeBytes,
  decodeFile,
  decodeStream,
  formatFromName,
  recordFormats,
  type DecodedRecord,
  type DecodeOptions,
  type RecordFormat,
} from './formats/decode.js';

// spool directory source
export { spoolOptionsSchema, type SpoolOptions, type SpoolOptionsInput } from './spool/options.js';
export {
  createSpoolSource,
  SpoolSource,
  spoolHeaders,
  type SpoolFile,
  type SpoolFileOutcome,
  type SpoolPollReport,
  type SpoolSourceDeps,
} from './spool/source.js';

// connector state
export { createFileStateStore, createMemoryStateStore, type ConnectorStateStore } from './state.js';

// HTTP API poller
export {
  httpPollerOptionsSchema,
  type HttpPollerOptions,
  type HttpPollerOptionsInput,
} from './http/options.js';
export {
  assertUrlAllowed,
  guardedFetch,
  isPrivateAddress,
  type GuardedFetchOptions,
  type LookupFn,
  type NetPolicy,
} from './http/netguard.js';
export {
  createHttpPoller,
  getPath,
  HttpPoller,
  nextLink,
  type HttpPage,
  type HttpPollerDeps,
  type HttpPollReport,
} from './http/poller.js';

// PostgreSQL source and upsert sink (pg or embedded PGlite behind one PgClient)
export {
  connectPg,
  openPgClient,
  openPglite,
  pgliteClient,
  pgReachable,
  type PgClient,
  type PgField,
  type PgResult,
  type PgSession,
} from './postgres/client.js';
export { mapPgType, pgValueParser, type PgColumn } from './postgres/types.js';
export {
  copyPostgresToLake,
  createPostgresSource,
  PostgresSource,
  type CopyToLakeOptions,
  postgresSourceOptionsSchema,
  type PgBatch,
  type PgReadReport,
  type RawPgBatch,
  type PostgresSourceOptions,
  type PostgresSourceOptionsInput,
} from './postgres/source.js';
export {
  createPostgresUpsertSink,
  PostgresUpsertSink,
  postgresSinkOptionsSchema,
  sinkOffsetsDdl,
  type PostgresSinkOptions,
  type PostgresSinkOptionsInput,
  type SinkFlushResult,
} from './postgres/sink.js';

// HTTP ingest endpoint (Hono sub-app mounted by the serving layer)
export {
  createIngestRoutes,
  ingestOptionsSchema,
  type IngestOptions,
  type IngestRoutesConfig,
} from './ingest/routes.js';
export { IdempotencyStore, type StoredResponse } from './ingest/idempotency.js';

// one-shot file import (CSV / JSON / NDJSON / Parquet → lake table or topic)
export {
  convertValue,
  importTypes,
  importTypeToLake,
  inferColumns,
  typeOfValue,
  widenImportType,
  type ImportType,
} from './files/infer.js';
export {
  fileImportOptionsSchema,
  importFile,
  type FileImportDeps,
  type FileImportOptions,
  type FileImportOptionsInput,
  type FileImportReport,
  type QuarantinedRow,
} from './files/import.js';

// registry: every connector, its options schema, JSON Schema and generated docs
export {
  connectorDocs,
  connectorJsonSchema,
  connectors,
  getConnector,
  parseConnectorOptions,
  type ConnectorDefinition,
} from './registry.js';

// sources a pipeline declares, run and supervised by the platform (`tributary up`, `run --once`)
export {
  SourceRunner,
  type PipelineSources,
  type SourceContext,
  type SourceDeclaration,
  type SourceDrainReport,
  type SourceKind,
  type SourceProgress,
  type SourceRunnerDeps,
  type SourceStatus,
} from './sources/runner.js';
