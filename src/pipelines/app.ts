import { createLakeTableProvider, lineageModule, topicsModule, type AppOptions } from '../serve/index.js';
import type { SqlEngine } from '../sql/index.js';
import { LineageGraphReader } from '../stream/index.js';
import { documentsAsk } from './documents/index.js';
import type { PipelineDefinition, PipelineServices } from './types.js';

/** What the API of some pipelines needs: their shared services and the SQL engine over the lake. */
export interface PipelineAppInput {
  definitions: readonly PipelineDefinition[];
  services: PipelineServices;
  sql: SqlEngine;
}

/**
 * The API options `tributary up` serves for its pipelines, so tests and tools build the app the way
 * `up` does: lake tables through the lake provider, each pipeline's own module, the topics and
 * lineage modules, the schema registry, and the documents pipeline's `/api/ask` when it is there.
 * `up` adds status, the ingest routes and readiness checks.
 *
 * @example
 * const api = createApp({ keys, ...pipelineAppOptions({ definitions: [northwindPipeline], services, sql }) });
 */
export function pipelineAppOptions({
  definitions,
  services,
  sql,
}: PipelineAppInput): Pick<AppOptions, 'tables' | 'pipelines' | 'schemaRegistry' | 'ask'> {
  return {
    tables: createLakeTableProvider({ lake: services.lake, sql }),
    pipelines: [
      ...definitions.map((d) => d.serve(services)),
      topicsModule(services.log, services.schemaRegistry),
      lineageModule(new LineageGraphReader(services.config.dataDir)),
    ],
    ...(services.schemaRegistry === undefined ? {} : { schemaRegistry: services.schemaRegistry }),
    ...(definitions.some((d) => d.name === 'documents') ? { ask: documentsAsk(services) } : {}),
  };
}
