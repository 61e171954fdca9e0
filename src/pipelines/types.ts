/**
 * What a pipeline is, for the platform that runs it (`tributary run <pipeline> --once`,
 * `tributary up`, the API and the dashboard). A pipeline is one folder under src/pipelines that
 * exports one `PipelineDefinition`; the platform opens the shared services once and hands them in.
 *
 * Wiring (done by the lead in `tributary up` / `run`):
 *   const services = { config, log, lake, sql, publish: bus.publish };
 *   jobRegistry.register(def.name, def.description, async () => def.jobs(services));
 *   createApp({ ..., pipelines: [def.serve(services)] });
 *   if (freshDataDir) await def.seedDemo?.(services, progress);
 *   const demo = def.startDemo?.(services);   // e.g. a live sales simulator; demo.stop() on shutdown
 */
import type { TributaryConfig } from '../core/index.js';
import type { Lake } from '../lake/index.js';
import type { Log, SchemaRegistry } from '../log/index.js';
import type { LiveEvent, PipelineModule } from '../serve/index.js';
import type { PipelineJobs } from '../stream/index.js';

/** Read-only SQL over the lake (the SQL layer's `SqlEngine.query` fits). */
export type QueryFunction = (sql: string, params?: unknown[]) => Promise<Record<string, unknown>[]>;

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
  /** Seeds demo input on a fresh data dir; does nothing when the input already exists. */
  seedDemo?(services: PipelineServices, progress?: (message: string) => void): Promise<void>;
  /** Starts demo traffic (e.g. a simulator) for `tributary up`. */
  startDemo?(services: PipelineServices): DemoHandle;
}
