/**
 * The serving layer's plug-in points. The API never reaches into the log, lake or stream engine
 * directly: the lead wires each provider to the real layer (`tributary up`), tests wire small real
 * implementations (DuckDB over Parquet files, an in-memory event bus).
 */
import type { Hono } from 'hono';
import type { SourceStatus } from '../connectors/index.js';
import type { DashboardPage, DetailSpec } from '../ui/page-types.js';
import type { ApiRouter } from './router.js';

export type { DashboardPage, DetailSpec };

/** Lake layers the generic table routes expose. Bronze is raw input and never served. */
export const servedLayers = ['silver', 'gold'] as const;
export type ServedLayer = (typeof servedLayers)[number];
export type LakeLayer = 'bronze' | ServedLayer;

export interface ColumnInfo {
  name: string;
  /** Engine type name as DuckDB reports it (VARCHAR, BIGINT, DOUBLE, TIMESTAMP...). */
  type: string;
}

export interface TablePartitionInfo {
  /** Hive-style partition path, e.g. `date=2026-11-22/company=acme`; '' for unpartitioned tables. */
  path: string;
  files: number;
  sizeBytes: number;
  rows?: number;
}

export interface TableInfo {
  layer: LakeLayer;
  name: string;
  columns: ColumnInfo[];
  partitions: TablePartitionInfo[];
  files: number;
  sizeBytes: number;
  rows?: number;
  /** Last commit time in epoch ms, when known. */
  updatedAtMs?: number;
  /**
   * Column holding the tenant (company) of each row. Tenant-bound API keys only see tables that
   * have one, and only their own rows; tables without it are platform tables (unbound keys only).
   */
  tenantColumn?: string;
}

export type FilterOperator = 'eq' | 'ne' | 'lt' | 'lte' | 'gt' | 'gte' | 'like' | 'in';
export const filterOperators: readonly FilterOperator[] = [
  'eq',
  'ne',
  'lt',
  'lte',
  'gt',
  'gte',
  'like',
  'in',
];

export interface RowFilter {
  /** Always one of the table's real columns (checked by the API before the provider sees it). */
  column: string;
  op: FilterOperator;
  /** Raw text from the query string; the provider binds it as a parameter, never splices it. */
  value: string | string[];
}

export interface RowSort {
  column: string;
  direction: 'asc' | 'desc';
}

export interface TableQuery {
  layer: ServedLayer;
  name: string;
  /** Subset of columns to return (validated); all columns when empty. */
  columns: string[];
  filters: RowFilter[];
  sort: RowSort[];
  limit: number;
  offset: number;
  /** The request's deadline: aborting it interrupts the read. */
  signal?: AbortSignal;
}

export interface TablePage {
  columns: ColumnInfo[];
  rows: Record<string, unknown>[];
  /** Total rows matching the filters (for pagination). */
  total: number;
}

export interface TableRef {
  layer: LakeLayer;
  name: string;
}

/**
 * Read access to the lake for the API. Implementations run read-only SQL with bound parameters;
 * identifiers they receive have already been checked against `describeTable(...).columns`.
 */
export interface TableProvider {
  listTables(): Promise<TableInfo[]>;
  /** Null when the table does not exist. */
  describeTable(layer: LakeLayer, name: string): Promise<TableInfo | null>;
  readRows(query: TableQuery): Promise<TablePage>;
  /** Called after every commit to a table; the API drops cached reads of that table. */
  onCommit?(listener: (table: TableRef) => void): () => void;
  /** Readiness probe (e.g. `SELECT 1`); throws when the engine is unusable. */
  check?(): Promise<void>;
}

export interface CheckpointStatus {
  id: number | string;
  atMs: number;
  durationMs?: number;
}

export interface JobStatus {
  name: string;
  pipeline?: string;
  state: 'running' | 'stopped' | 'failed' | 'starting' | 'idle';
  /** Input records per second over the last measuring window. */
  throughputPerSecond?: number;
  recordsIn?: number;
  recordsOut?: number;
  /** Records behind the log end, summed over the job's input partitions. */
  consumerLag?: number;
  /** Event-time watermark in epoch ms. */
  watermarkMs?: number | null;
  lastCheckpoint?: CheckpointStatus | null;
  dlqCount?: number;
  lateCount?: number;
  error?: string;
  /** When the job last reported (its last checkpoint, or now for a job running in this process). */
  lastSeenMs?: number;
  /** Set when the job only processes one tenant's data. */
  tenant?: string;
  /** Restarts by the supervisor of `tributary up` after failures. */
  restarts?: number;
}

export interface PipelineStatus {
  name: string;
  title?: string;
  state: 'running' | 'stopped' | 'failed' | 'idle';
  jobs: string[];
  lastRunMs?: number | null;
  lastRunStatus?: 'ok' | 'failed' | 'running' | null;
  nextRunMs?: number | null;
  tenant?: string;
}

export type { SourceStatus };

export interface PlatformStatus {
  generatedAtMs: number;
  pipelines: PipelineStatus[];
  jobs: JobStatus[];
  /** Long-running sources the pipelines declare (state, records/s, last error, position). */
  sources?: SourceStatus[];
  /** Log partitions fenced because their data is damaged (reads and writes refused until repaired). */
  fencedPartitions?: FencedPartitionStatus[];
}

export interface FencedPartitionStatus {
  topic: string;
  partition: number;
  reason: string;
}

export interface StatusProvider {
  getStatus(): Promise<PlatformStatus>;
}

/**
 * One live update pushed to dashboards over SSE. `type` is the SSE event name (e.g.
 * `window.sales_per_minute`, `metrics.tick`); `tenant` restricts delivery to keys of that tenant
 * (and unbound keys). Events without a tenant go to unbound keys only.
 */
export interface LiveEvent {
  type: string;
  data: unknown;
  tenant?: string;
}

export interface EventBus {
  publish(event: LiveEvent): void;
  subscribe(listener: (event: LiveEvent) => void): () => void;
}

/** A readiness check contributed by a dependency (log, lake, Redis...). */
export interface ReadinessCheck {
  name: string;
  check(): Promise<void>;
}

/**
 * What a pipeline contributes to the API and dashboard.
 *
 * @example
 * const sales: PipelineModule = {
 *   name: 'sales', title: 'Sales', tenantScoped: true,
 *   routes: (api) => api.route({ method: 'get', path: '/api/sales/summary', scope: 'read', summary: 'Sales summary',
 *     responses: { 200: { description: 'summary', schema: z.object({ total: z.number() }) } },
 *     handler: async ({ auth }) => ({ total: await totalFor(auth.tenant) }) }),
 *   page: { id: 'sales', title: 'Sales', tiles: [...], charts: [...] },
 * };
 */
export interface PipelineModule {
  name: string;
  title: string;
  description?: string;
  /** When true, tenant-bound keys see this pipeline (its routes must filter by `auth.tenant`). */
  tenantScoped?: boolean;
  routes?: (api: ApiRouter) => void;
  page?: DashboardPage;
}

/**
 * RAG question answering (src/ml `ask`), exposed as `POST /api/ask` when given. `company` is the
 * key's tenant for tenant-bound keys (a body value cannot override it), else the body's `company`.
 */
export type AskFunction = (
  question: string,
  options: { company: string; topK?: number; signal?: AbortSignal },
) => Promise<unknown>;

/**
 * A connector ingest sub-app mounted under `/api/ingest` behind the `ingest` scope (auth and rate
 * limit run first). The caller is available to its handlers as `c.get('auth')` (an `AuthInfo`), so
 * routes can refuse or stamp records by `auth.tenant`.
 */
export interface IngestMount {
  app: Hono;
  /**
   * True when the sub-app itself confines tenant-bound keys to their tenant (by `auth.tenant`).
   * Otherwise (the default) tenant-bound keys get 403 on every `/api/ingest` route: topics are
   * not tenant-scoped, so such a key could write into another tenant's data.
   */
  tenantAware?: boolean;
  /** OpenAPI path items (paths relative to `/api/ingest`) the sub-app serves, for the document. */
  openapiPaths?: Record<string, Record<string, unknown>>;
}
