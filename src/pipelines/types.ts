/**
 * What a pipeline is, for the platform that runs it (`tributary run <pipeline> --once`,
 * `tributary up`, the API and the dashboard). A pipeline is one folder under src/pipelines that
 * exports one `PipelineDefinition`; the platform opens the shared services once and hands them in.
 *
 * Wiring (done by the lead in `tributary up` / `run`):
 *   const services = { config, log, lake, sql, publish: bus.publish };
 *   jobRegistry.register(def.name, def.description, async () => def.jobs(services));
 *   createApp({ ..., ...pipelineAppOptions({ definitions, services, sql }) });  // def.serve(services) for each
 *   if (freshDataDir) await def.seedDemo?.(services, progress);
 *   sources.start();  // def.sources(services), each supervised: restarted with backoff, never ends `up`
 *   const demo = def.startDemo?.(services);   // prefer a `custom` source: it is supervised and shown
 *
 * Sources: a pipeline declares its long-running inputs instead of starting them itself; `up`
 * starts them under a supervisor, shows them in `tributary status`, `/api/status` and the
 * dashboard, and stops them gracefully; `tributary run <pipeline> --once` drains them first.
 *
 * @example
 * export const moviesPipeline: PipelineDefinition = {
 *   name: 'movies', title: 'Movies', description: '…', jobs, serve,
 *   rateBudgets: { tmdb: { mode: 'sliding-window', requestsMax: 4, windowMs: 1000 } },
 *   sources: ({ config }) => [
 *     { name: 'popular', kind: 'http', rateBudget: 'tmdb',
 *       options: { url: 'https://api.themoviedb.org/3/movie/popular', topic: 'movies.raw',
 *                  recordsPath: 'results', pagination: { type: 'page', totalPagesPath: 'total_pages' },
 *                  headers: { authorization: `Bearer ${process.env.TMDB_TOKEN}` }, pollIntervalMs: 3_600_000 } },
 *     { name: 'ratings-inbox', kind: 'spool',
 *       options: { dir: path.join(config.dataDir, 'inbox', 'movies'), topic: 'ratings.raw' } },
 *   ],
 * };
 */
import type { ThrottleOptions, TributaryConfig } from '../core/index.js';
import type { SourceDeclaration } from '../connectors/index.js';
import type { Lake } from '../lake/index.js';
import type { Log, SchemaRegistry } from '../log/index.js';
import type { LiveEvent, PipelineModule } from '../serve/index.js';
import type { PipelineJobs } from '../stream/index.js';
import type { PipelineSettingsSpec } from './settings.js';

/**
 * Read-only SQL over the lake (the SQL layer's `SqlEngine.query` fits). Routes pass their request's
 * `signal`, so a query of a request that timed out (or whose client left) is interrupted.
 */
export type QueryFunction = (
  sql: string,
  params?: unknown[],
  options?: { signal?: AbortSignal | undefined },
) => Promise<Record<string, unknown>[]>;

/** Services the platform opens once and shares between pipelines. */
export interface PipelineServices {
  config: TributaryConfig;
  log: Log;
  lake: Lake;
  /** Read-only SQL for API routes. */
  query: QueryFunction;
  /** Pushes a live update to dashboards (SSE); optional so batch-only runs need no event bus. */
  publish?: (event: LiveEvent) => void;
  /**
   * The schema registry (Avro subjects): the data dir's, or the external `schemaRegistryUrl`; the
   * same one `up` serves at `/schema-registry`. Set by the platform; `openSchemaRegistry(config)`
   * opens it where a caller built the services by hand.
   */
  schemaRegistry?: SchemaRegistry;
}

export interface DemoHandle {
  stop(): Promise<void>;
}

export interface PipelineDefinition {
  name: string;
  title: string;
  description: string;
  /** Batch DAG and stream jobs, built against the shared services. `close` releases what it opened. */
  jobs(services: PipelineServices): Promise<PipelineJobs>;
  /**
   * Whether `tributary up` runs the batch DAG once at start (default true), before its schedules.
   * A pipeline whose batch jobs report on a past day (documents' daily report) says false.
   */
  batchOnStart?: boolean;
  /** API routes and dashboard page. */
  serve(services: PipelineServices): PipelineModule;
  /**
   * Topics only this pipeline writes (its stages and its own routes): the generic ingest routes
   * refuse them with 403, so nobody can forge a stage's records. Topics not named here accept
   * outside writes.
   */
  internalTopics?: readonly string[];
  /**
   * Settings the pipeline reads (its own, not core config keys): set in the config's
   * `pipelineSettings.<pipeline>`, by the setting's `flag` of `tributary run`, or through its
   * environment variables. Read them with `resolvePipelineSettings` (settings.ts).
   */
  settings?: PipelineSettingsSpec;
  /** Seeds demo input on a fresh data dir; does nothing when the input already exists. */
  seedDemo?(services: PipelineServices, progress?: (message: string) => void): Promise<void>;
  /**
   * Starts demo traffic for `tributary up`. Unsupervised: prefer a `custom` source in `sources`,
   * which `up` restarts on failure and shows in status.
   */
  startDemo?(services: PipelineServices): DemoHandle;
  /**
   * Long-running sources `tributary up` runs and supervises and `run --once` drains: spool
   * directories, HTTP pollers, file imports, PostgreSQL tables, or the pipeline's own code
   * (`kind: 'custom'`). See `SourceDeclaration` in src/connectors/sources/runner.ts.
   */
  sources?(services: PipelineServices): SourceDeclaration[];
  /**
   * Named rate budgets shared by every source that names one (`rateBudget` of an `http` source),
   * e.g. one per external API. Declared per process: two pipelines naming the same budget share it
   * and must declare the same limits.
   */
  rateBudgets?: Record<string, ThrottleOptions>;
  /**
   * Lines `tributary run <pipeline> --once` prints after the run: the pipeline's own
   * reconciliation (e.g. `records: in = accepted + quarantined + duplicates`), read from its tables.
   */
  report?(services: PipelineServices): Promise<string[]>;
}
