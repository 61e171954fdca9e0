/**
 * The registry pipelines fill with their jobs, read by `tributary jobs`, `tributary run` and the
 * scheduler. Factories get the environment (config, data dir) and build jobs lazily, so listing
 * jobs does not open databases.
 */
import type { TributaryConfig } from '../../core/index.js';
import { TributaryError } from '../../core/index.js';
import type { StreamJob } from '../job.js';
import type { BatchJob } from './dag.js';

export interface JobEnvironment {
  config: TributaryConfig;
}

export interface PipelineJobs {
  stream?: StreamJob[];
  batch?: BatchJob[];
  /** Releases what the factory opened (log, lake, database pools). */
  close?: () => Promise<void>;
}

export type PipelineFactory = (env: JobEnvironment) => PipelineJobs | Promise<PipelineJobs>;

export interface PipelineEntry {
  name: string;
  description: string;
  factory: PipelineFactory;
}

export class JobRegistry {
  readonly #pipelines = new Map<string, PipelineEntry>();

  /**
   * @example jobRegistry.register('sales', 'Northwind ETL and live sales view', async (env) => ({ batch: [...], stream: [...] }))
   */
  register(name: string, description: string, factory: PipelineFactory): void {
    if (this.#pipelines.has(name))
      throw new TributaryError('ALREADY_EXISTS', `pipeline ${name} is registered twice`);
    this.#pipelines.set(name, { name, description, factory });
  }

  /** Shorthand for a pipeline that only has batch jobs. */
  registerBatchJobs(
    name: string,
    description: string,
    jobs: (env: JobEnvironment) => BatchJob[] | Promise<BatchJob[]>,
  ): void {
    this.register(name, description, async (env) => ({ batch: await jobs(env) }));
  }

  pipelines(): PipelineEntry[] {
    return [...this.#pipelines.values()];
  }

  get(name: string): PipelineEntry {
    const entry = this.#pipelines.get(name);
    if (entry === undefined) {
      throw new TributaryError(
        'NOT_FOUND',
        `no pipeline ${name}; pipelines: ${[...this.#pipelines.keys()].join(', ') || '(none registered)'}`,
      );
    }
    return entry;
  }

  /** Builds every pipeline and returns all batch jobs with the pipeline they belong to. */
  async batchJobs(
    env: JobEnvironment,
  ): Promise<{ pipeline: string; jobs: BatchJob[]; close: () => Promise<void> }[]> {
    const out: { pipeline: string; jobs: BatchJob[]; close: () => Promise<void> }[] = [];
    for (const entry of this.#pipelines.values()) {
      const built = await entry.factory(env);
      out.push({
        pipeline: entry.name,
        jobs: built.batch ?? [],
        close: built.close ?? (() => Promise.resolve()),
      });
    }
    return out;
  }
}

/** The process-wide registry (pipelines register into it when their module loads). */
export const jobRegistry = new JobRegistry();
