import { childLogger } from '../../core/index.js';
import { runJob, startJob, type JobHandle, type JobStatus, type StreamJob } from '../../stream/index.js';
import { documentStages, type DocumentStage } from './jobs.js';

const logger = childLogger('pipelines.documents.run');

export interface RunStagesOptions {
  /** Data dir for checkpoints and job status files. */
  dataDir: string;
  signal?: AbortSignal;
}

/**
 * Bounded run of stages in pipeline order (docproc → embedding → analytics + sink): each stage
 * reads what its topics hold when it starts, which includes everything the stages before it wrote,
 * so one call moves every uploaded document through all topics and into the lake
 * (`tributary run documents --once`). Jobs of one stage run concurrently.
 */
export async function runStagesOnce(
  jobs: Record<DocumentStage, StreamJob[]>,
  options: RunStagesOptions,
  stages: readonly DocumentStage[] = documentStages,
): Promise<JobStatus[]> {
  const statuses: JobStatus[] = [];
  for (const stage of documentStages) {
    if (!stages.includes(stage)) continue;
    const results = await Promise.all(
      jobs[stage].map((job) =>
        runJob(job, {
          dataDir: options.dataDir,
          once: true,
          ...(options.signal ? { signal: options.signal } : {}),
        }),
      ),
    );
    for (const status of results)
      logger.info({ job: status.job, counters: status.counters }, 'stage finished');
    statuses.push(...results);
  }
  return statuses;
}

/**
 * Starts stages as unbounded jobs in this process (a worker runs one stage, `tributary up` all of
 * them). Stop them with `stopStages`, which checkpoints and closes each job.
 */
export function startStages(
  jobs: Record<DocumentStage, StreamJob[]>,
  options: RunStagesOptions,
  stages: readonly DocumentStage[] = documentStages,
): JobHandle[] {
  const handles: JobHandle[] = [];
  for (const stage of documentStages) {
    if (!stages.includes(stage)) continue;
    for (const job of jobs[stage])
      handles.push(
        startJob(job, { dataDir: options.dataDir, ...(options.signal ? { signal: options.signal } : {}) }),
      );
  }
  return handles;
}

export async function stopStages(handles: readonly JobHandle[]): Promise<JobStatus[]> {
  return Promise.all(handles.map((handle) => handle.stop()));
}
