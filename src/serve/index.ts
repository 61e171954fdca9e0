// Serving: the HTTP API (Hono), API keys, rate limits, caching, live events, `tributary up`.
// Depends on core, and on the dashboard files in src/ui; the lead wires the providers in
// `types.ts` to the log, lake, SQL and stream layers.

// ---- provider interfaces (what the lead and pipelines implement)
export type {
  AskFunction,
  CheckpointStatus,
  ColumnInfo,
  DashboardPage,
  DetailSpec,
  EventBus,
  FilterOperator,
  IngestMount,
  JobStatus,
  LakeLayer,
  LiveEvent,
  PipelineModule,
  PipelineStatus,
  PlatformStatus,
  FencedPartitionStatus,
  ReadinessCheck,
  RowFilter,
  RowSort,
  ServedLayer,
  StatusProvider,
  TableInfo,
  TablePage,
  TablePartitionInfo,
  TableProvider,
  TableQuery,
  TableRef,
} from './types.js';
export { servedLayers, filterOperators } from './types.js';
export type {
  AskFilterField,
  AskSpec,
  ChartSpec,
  FilterSpec,
  GraphSpec,
  TileSpec,
  ValueFormat,
  ValueSource,
} from '../ui/page-types.js';

// ---- app and server
export { createApp, type AppOptions, type TributaryApp } from './app.js';
export { startServer, type RunningServer, type ServerOptions } from './server.js';
export {
  ApiRouter,
  buildOpenApiDocument,
  type RouteDefinition,
  type RouteScope,
  type HandlerContext,
  type OpenApiDocument,
} from './router.js';
export { handleError, httpStatusByCode } from './http-errors.js';

// ---- auth and limits
export {
  KeyStore,
  apiScopes,
  hasScope,
  parseScopes,
  type ApiScope,
  type ApiKeyRecord,
  type AuthInfo,
  type CreateKeyOptions,
} from './keys.js';
export { kafkaAuthenticator } from './kafka-auth.js';
export {
  MemoryRateLimiter,
  RedisRateLimiter,
  createRateLimiter,
  type RateLimiter,
  type RateLimitDecision,
  type RateLimitOptions,
} from './rate-limit.js';

// ---- events, caching, tables
export { createEventBus, SseTokens, visibleTo } from './events.js';
export { ReadCache, type ResponseCache, type ReadCacheOptions } from './cache.js';
export { RedisReadCache, type RedisReadCacheOptions } from './redis-cache.js';
export { cacheGroup, type RouteCacheSpec } from './route-cache.js';
export { parseTableQuery, tableQueryLimits } from './table-query.js';
export { createLakeTableProvider, lakeTableInfos, type LakeTableProviderOptions } from './lake-tables.js';
export { qualityTile, qualityTable, qualityResultsRoute } from './quality-page.js';
export {
  createStreamStatusProvider,
  readPipelineJobs,
  recordPipelineJobs,
  type PipelineDescriptor,
  type StreamStatusOptions,
} from './stream-status.js';

// ---- `tributary up` and `tributary status`
export {
  runUp,
  readUpState,
  readLocalAdminKey,
  upStateFile,
  localAdminKeyFile,
  type UpContext,
  type UpService,
  type UpOptions,
  type UpHandle,
  type UpAppOptions,
  type UpState,
} from './up.js';
export { lakeService, type LakeService } from './lake-service.js';
export { formatStatus, fetchStatus } from './status-text.js';
export { registerTopicRoutes, topicsModule } from './topic-routes.js';
export {
  registerAskRoute,
  askWithinTenant,
  askBodySchema,
  type AskBody,
  type AskRouteOptions,
} from './ask-routes.js';
export { lineageModule, type LineageGraphSource } from './lineage-routes.js';
