// Pipelines: one folder per seed pipeline, each exporting one `PipelineDefinition`, listed here
// once. The platform (CLI `run`, `worker`, `up`) reads this list; nothing else enumerates pipelines.
import { TributaryError } from '../core/index.js';
import { documentsAsk, documentsPipeline } from './documents/index.js';
import { moviesPipeline } from './movies/index.js';
import { northwindPipeline } from './northwind/index.js';
import { reviewsPipeline } from './reviews/index.js';
import { viewingPipeline } from './viewing/index.js';
import type { PipelineDefinition } from './types.js';

export type * from './types.js';
export { documentsAsk };
export { pipelineAppOptions, type PipelineAppInput } from './app.js';
export { resolvePipelineSettings, type PipelineSetting, type PipelineSettingsSpec } from './settings.js';

export const pipelineDefinitions: readonly PipelineDefinition[] = [
  reviewsPipeline,
  northwindPipeline,
  moviesPipeline,
  viewingPipeline,
  documentsPipeline,
];

export function findPipeline(name: string): PipelineDefinition {
  const found = pipelineDefinitions.find((p) => p.name === name);
  if (!found) {
    throw new TributaryError(
      'NOT_FOUND',
      `no pipeline ${name}; pipelines: ${pipelineDefinitions.map((p) => p.name).join(', ')}`,
    );
  }
  return found;
}

/**
 * Whether the generic ingest routes may write `topic`: not a topic a pipeline declares internal,
 * and not a dead-letter topic (`*.dlq`), whose records only the engine writes.
 */
export function outsideWritesAllowed(pipelines: readonly PipelineDefinition[]): (topic: string) => boolean {
  const internal = new Set(pipelines.flatMap((p) => p.internalTopics ?? []));
  return (topic) => !internal.has(topic) && !topic.endsWith('.dlq');
}
