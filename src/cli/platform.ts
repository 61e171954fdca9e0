/**
 * Opens the shared services a pipeline runs on (log, lake, read-only SQL) once per process and
 * registers every pipeline with the stream layer's job registry, so `run`, `jobs` and `up` all see
 * the same pipelines built the same way.
 *
 * The embedded log allows one process per log directory; every command in a process shares one
 * opened platform, reference-counted, closed by the last user.
 */
import { openDataDir, type TributaryConfig } from '../core/index.js';
import { openLakeFromConfig, type Lake } from '../lake/index.js';
import { openLog, openSchemaRegistry, type Log, type SchemaRegistry } from '../log/index.js';
import { pipelineDefinitions, type PipelineServices } from '../pipelines/index.js';
import { openSqlEngine, type SqlEngine } from '../sql/index.js';
import {
  configureLineage,
  flushLineage,
  jobRegistry,
  lakeAndLogSchemas,
  type JobRegistry,
} from '../stream/index.js';

export interface Platform {
  config: TributaryConfig;
  log: Log;
  lake: Lake;
  sql: SqlEngine;
  schemaRegistry: SchemaRegistry;
  services: PipelineServices;
  /** Releases this user's reference; the last one closes SQL, lake and log. */
  release(): Promise<void>;
}

let shared: { dataDir: string; users: number; opened: Promise<Omit<Platform, 'release'>> } | undefined;

async function openPlatformServices(config: TributaryConfig): Promise<Omit<Platform, 'release'>> {
  await openDataDir(config.dataDir);
  const log = await openLog(config);
  const lake = await openLakeFromConfig(config);
  const sql = await openSqlEngine(lake);
  // Every batch run and stream job of this process reports lineage to the data dir (and the
  // OpenLineage endpoint when configured), with schemas read from this lake and log.
  configureLineage(config.dataDir, {
    ...(config.openLineageUrl === undefined ? {} : { url: config.openLineageUrl }),
    ...(config.openLineageApiKey === undefined
      ? {}
      : { http: { headers: { authorization: `Bearer ${config.openLineageApiKey}` } } }),
    schemas: lakeAndLogSchemas({ lake, log }),
  });
  const schemaRegistry = await openSchemaRegistry(config);
  const services: PipelineServices = {
    config,
    log,
    lake,
    query: (text, params, options) => sql.query(text, params, options),
    schemaRegistry,
  };
  return { config, log, lake, sql, schemaRegistry, services };
}

export async function acquirePlatform(config: TributaryConfig): Promise<Platform> {
  if (shared && shared.dataDir !== config.dataDir) {
    throw new Error(`a platform for ${shared.dataDir} is already open in this process`);
  }
  shared ??= { dataDir: config.dataDir, users: 0, opened: openPlatformServices(config) };
  shared.users++;
  const current = shared;
  let opened: Omit<Platform, 'release'>;
  try {
    opened = await current.opened;
  } catch (error) {
    current.users--;
    if (shared === current) shared = undefined;
    throw error;
  }
  let released = false;
  return {
    ...opened,
    async release() {
      if (released) return;
      released = true;
      current.users--;
      if (current.users > 0) return;
      if (shared === current) shared = undefined;
      await flushLineage();
      opened.sql.close();
      await opened.schemaRegistry.close();
      await opened.lake.close();
      await opened.log.close();
    },
  };
}

/** Registers every pipeline's jobs (built on an acquired platform) with the job registry. */
export function registerPipelineJobs(registry: JobRegistry = jobRegistry): void {
  const known = new Set(registry.pipelines().map((p) => p.name));
  for (const definition of pipelineDefinitions) {
    if (known.has(definition.name)) continue;
    registry.register(definition.name, definition.description, async ({ config }) => {
      const platform = await acquirePlatform(config);
      try {
        const jobs = await definition.jobs(platform.services);
        return {
          ...jobs,
          close: async () => {
            try {
              await jobs.close?.();
            } finally {
              await platform.release();
            }
          },
        };
      } catch (error) {
        await platform.release();
        throw error;
      }
    });
  }
}
