// Pipelines: one folder per seed pipeline, each exporting one `PipelineDefinition`, listed here
// once. The platform (CLI `run`, `worker`, `up`) reads this list; nothing else enumerates pipelines.
import { TributaryError } from '../core/index.js';
import { documentsAsk, documentsPipeline } from './documents/index.js';
import { northwindPipeline } from './northwind/index.js';
import type { PipelineDefinition } from './types.js';

export type * from './types.js';
export { documentsAsk };
export { resolvePipelineSettings, type PipelineSetting, type PipelineSettingsSpec } from './settings.js';

export const pipelineDefinitions: readonly PipelineDefinition[] = [northwindPipeline, documentsPipeline];

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
