/**
 * What `tributary up` runs: the shared platform (log, lake, SQL), then every pipeline — demo seed
 * on a fresh data dir, stream jobs started, its batch DAG run once at start and then on its cron
 * schedules, its declared sources, demo traffic — and the API wired to all of it. Jobs, schedules
 * and sources run under core's supervisor: one that fails is logged, shown in status and restarted
 * with capped backoff; only it stops, never `up`.
 */
import {
  childLogger,
  dataDirPaths,
  RateBudgets,
  supervise,
  type Supervised,
  type SupervisedStatus,
  type TributaryConfig,
} from '../core/index.js';
import { createIngestRoutes, SourceRunner } from '../connectors/index.js';
import {
  outsideWritesAllowed,
  pipelineAppOptions,
  pipelineDefinitions,
  type DemoHandle,
  type PipelineDefinition,
} from '../pipelines/index.js';
import {
  createStreamStatusProvider,
  recordPipelineJobs,
  type JobStatus,
  type StatusProvider,
  type FencedPartitionStatus,
  type UpAppOptions,
  type UpContext,
  type UpService,
} from '../serve/index.js';
import { serveLog, type EmbeddedLog, type KafkaListener, type Log, type LogServer } from '../log/index.js';
import { BatchDag, batchHistoryFile, lineageFor, startJob, type PipelineJobs } from '../stream/index.js';
import { startKafkaListener } from './kafka-listener.js';
import { acquirePlatform, type Platform } from './platform.js';

const log = childLogger('up');

export interface UpPlan {
  services: UpService[];
  app: (context: Omit<UpContext, 'progress'>) => UpAppOptions | Promise<UpAppOptions>;
}

/** What the pipelines of one `up` share: job names, rate budgets, and what runs supervised. */
interface Supervision {
  jobNames: Map<string, string[]>;
  budgets: RateBudgets;
  /** Stream jobs by job name. */
  jobs: Map<string, { pipeline: string; supervised: Supervised }>;
  /** Other loops (batch schedules), shown in status only while they fail. */
  loops: { pipeline: string; supervised: Supervised }[];
  sources: SourceRunner[];
  /** Pipelines whose start failed (seeding, job set-up): shown as failed; the others and the API go on. */
  startFailures: { pipeline: string; error: string }[];
}

/**
 * Adds what the supervisor knows to the stream layer's status: restarts, the error of a job that
 * is waiting to restart (or never got going), failing batch schedules, and every declared source.
 */
/** Partitions of `log` fenced because their data is damaged (see `PartitionInfo.fenced`). */
async function fencedPartitions(log: Log): Promise<FencedPartitionStatus[]> {
  const fenced: FencedPartitionStatus[] = [];
  for (const topic of await log.listTopics()) {
    const description = await log.describeTopic(topic).catch(() => null);
    for (const p of description?.partitions ?? [])
      if (p.fenced !== undefined) fenced.push({ topic, partition: p.partition, reason: p.fenced });
  }
  return fenced;
}

function supervisedStatus(inner: StatusProvider, supervision: Supervision, log: Log): StatusProvider {
  return {
    async getStatus() {
      const status = await inner.getStatus();
      const fenced = await fencedPartitions(log);
      const listed = new Set(status.jobs.map((j) => j.name));
      const jobs: JobStatus[] = status.jobs.map((job) => {
        const supervised = supervision.jobs.get(job.name)?.supervised.status();
        if (!supervised) return job;
        const waiting = supervised.state === 'backoff' || supervised.state === 'failed';
        return {
          ...job,
          restarts: supervised.restarts,
          ...(waiting
            ? { state: 'failed' as const, error: supervised.lastError ?? job.error ?? 'failed' }
            : {}),
        };
      });
      const failing = (s: SupervisedStatus) => s.state === 'backoff' || s.state === 'failed';
      for (const [name, { pipeline, supervised }] of supervision.jobs) {
        const s = supervised.status();
        if (!listed.has(name) && failing(s))
          jobs.push({
            name,
            pipeline,
            state: 'failed',
            error: s.lastError ?? 'failed',
            restarts: s.restarts,
          });
      }
      for (const { pipeline, supervised } of supervision.loops) {
        const s = supervised.status();
        if (failing(s))
          jobs.push({
            name: s.name,
            pipeline,
            state: 'failed',
            error: s.lastError ?? 'failed',
            restarts: s.restarts,
          });
      }
      for (const { pipeline, error } of supervision.startFailures)
        jobs.push({ name: `${pipeline} start`, pipeline, state: 'failed', error, restarts: 0 });
      const sources = supervision.sources.flatMap((runner) => runner.status());
      const notStarted = new Set(supervision.startFailures.map((f) => f.pipeline));
      return {
        ...status,
        pipelines: status.pipelines.map((p) =>
          notStarted.has(p.name) ? { ...p, state: 'failed' as const } : p,
        ),
        jobs,
        ...(sources.length > 0 ? { sources } : {}),
        ...(fenced.length > 0 ? { fencedPartitions: fenced } : {}),
      };
    },
  };
}

function pipelineService(
  definition: PipelineDefinition,
  platform: () => Platform,
  supervision: Supervision,
): UpService {
  let jobs: PipelineJobs | undefined;
  const supervised: Supervised[] = [];
  let sources: SourceRunner | undefined;
  let demo: DemoHandle | undefined;
  const service: UpService = {
    name: `pipeline ${definition.name}`,
    async start(context) {
      try {
        await startPipeline(context);
      } catch (error) {
        // One pipeline that cannot start (its seed database on a full disk, a job that will not
        // build) must not take the platform and the other pipelines down: it is shown as failed
        // with the cause, what it had started is stopped, and the operator restarts `up` once fixed.
        const message = error instanceof Error ? error.message : String(error);
        log.error({ err: error, pipeline: definition.name }, 'pipeline failed to start; the others go on');
        supervision.startFailures.push({ pipeline: definition.name, error: message });
        context.progress(`failed to start: ${message}`);
        await service.stop().catch((stopError: unknown) => {
          log.warn({ err: stopError, pipeline: definition.name }, 'stopping a pipeline that failed to start');
        });
      }
    },
    stop,
  };
  return service;

  async function startPipeline(context: Parameters<UpService['start']>[0]): Promise<void> {
    const { services, config, log: eventLog, lake } = platform();
    if (definition.seedDemo) {
      context.progress('seeding demo data (only on a fresh data dir)');
      await definition.seedDemo(services, (message) => context.progress(message));
    }
    jobs = await definition.jobs(services);
    supervision.jobNames.set(definition.name, [
      ...(jobs.stream ?? []).map((j) => j.name),
      ...(jobs.batch ?? []).map((j) => j.name),
    ]);
    await recordPipelineJobs(config.dataDir, Object.fromEntries(supervision.jobNames));
    // Scaled out (config workerPipelines), the pipeline's stream jobs belong to its worker
    // processes; running them here as well would process every record twice.
    const scaledOut = config.workerPipelines.split(',').includes(definition.name);
    // Every stream job runs under the supervisor: a failure is logged, shown in status and
    // retried with capped backoff from its last checkpoint; the other jobs and the API go on.
    for (const job of scaledOut ? [] : (jobs.stream ?? [])) {
      const run = supervise({
        name: `stream job ${job.name}`,
        run: async (signal) => {
          await startJob(job, { dataDir: config.dataDir, signal }).done;
        },
      });
      supervised.push(run);
      supervision.jobs.set(job.name, { pipeline: definition.name, supervised: run });
    }
    context.progress(
      scaledOut
        ? `stream job(s) left to worker processes (workerPipelines): ${(jobs.stream ?? []).map((j) => j.name).join(', ') || '-'}`
        : `${(jobs.stream ?? []).length} stream job(s) running: ${(jobs.stream ?? []).map((j) => j.name).join(', ') || '-'}`,
    );
    const batch = jobs.batch ?? [];
    if (batch.length > 0) {
      const dag = new BatchDag([...batch], {
        historyFile: batchHistoryFile(config.dataDir),
        lineage: lineageFor(config.dataDir),
      });
      // The first batch run and the scheduler go on in the background so the API comes up at once.
      let ranAtStart = definition.batchOnStart === false;
      const schedule = supervise({
        name: `${definition.name} batch schedule`,
        run: async (signal) => {
          if (!ranAtStart) {
            ranAtStart = true;
            const records = await dag
              .runAll({ partition: null, trigger: 'pipeline', signal })
              .catch((error: unknown) => {
                log.error({ err: error, pipeline: definition.name }, 'batch run at start failed');
                return [];
              });
            for (const r of records)
              log.info({ job: r.job, status: r.status, ms: r.durationMs }, 'batch run at start');
          }
          await dag.runScheduler(signal);
        },
      });
      supervised.push(schedule);
      supervision.loops.push({ pipeline: definition.name, supervised: schedule });
      supervision.loops.push({
        pipeline: definition.name,
        supervised: supervise({
          name: `${definition.name} batch on input commits`,
          run: (signal) => dag.runOnInputCommits(lake, signal),
        }),
      });
      context.progress(
        `${batch.length} batch job(s): ${definition.batchOnStart === false ? 'on schedule' : 'first run started, then on schedule'}`,
      );
    }
    for (const [name, options] of Object.entries(definition.rateBudgets ?? {}))
      supervision.budgets.declare(name, options);
    const declared = definition.sources?.(services) ?? [];
    if (declared.length > 0) {
      sources = new SourceRunner([{ pipeline: definition.name, sources: declared }], {
        log: eventLog,
        lake,
        dataDir: config.dataDir,
        budgets: supervision.budgets,
      });
      supervision.sources.push(sources);
      sources.start();
      context.progress(
        // Drop folders are named, so the operator knows where files go.
        `${declared.length} source(s): ${declared.map((d) => `${d.name} (${d.kind === 'spool' ? `spool ${d.options.dir}` : d.kind})`).join(', ')}`,
      );
    }
    demo = definition.startDemo?.(services);
  }

  async function stop(): Promise<void> {
    await demo?.stop();
    // Sources first (they feed the jobs), then the jobs take their final checkpoints.
    await sources?.stop();
    await Promise.allSettled(supervised.map((s) => s.stop()));
    await jobs?.close?.();
  }
}

/**
 * @param pipelines the pipelines to run (default every registered one; tests pass their own).
 */
export function createUpPlan(
  config: TributaryConfig,
  pipelines: readonly PipelineDefinition[] = pipelineDefinitions,
): UpPlan {
  let platform: Platform | undefined;
  let logServer: LogServer | undefined;
  let kafkaListener: KafkaListener | null = null;
  const current = (): Platform => {
    if (!platform) throw new Error('the platform service has not started');
    return platform;
  };
  const platformService: UpService = {
    name: 'log, lake and SQL engine',
    async start(context) {
      platform = await acquirePlatform(config);
      platform.services.publish = (event) => context.events.publish(event);
      context.progress(`log: ${platform.log.kind}; lake: ${platform.lake.storage.root}`);
      // This process owns the embedded log: serve it, so workers and CLI commands share the data dir.
      if (platform.log.kind === 'embedded') {
        try {
          logServer = await serveLog(platform.log, { dir: dataDirPaths(config.dataDir).log });
          kafkaListener = await startKafkaListener(platform.log, config);
        } catch (error) {
          // A failed start is not stopped: give the platform back here.
          await logServer?.close();
          logServer = undefined;
          await platform.release();
          platform = undefined;
          throw error;
        }
        context.progress(`log server on ${logServer.host}:${logServer.port}`);
        if (kafkaListener !== null) {
          context.progress(
            `Kafka listener on ${kafkaListener.host}:${kafkaListener.port} (SASL PLAIN / SCRAM-SHA-256 with an API key)`,
          );
        }
      }
    },
    async stop() {
      await kafkaListener?.close();
      kafkaListener = null;
      await logServer?.close();
      logServer = undefined;
      await platform?.release();
      platform = undefined;
    },
  };
  const supervision: Supervision = {
    jobNames: new Map(),
    budgets: new RateBudgets(),
    jobs: new Map(),
    loops: [],
    sources: [],
    startFailures: [],
  };
  return {
    services: [platformService, ...pipelines.map((d) => pipelineService(d, current, supervision))],
    app: () => {
      const { sql, log: eventLog, services } = current();
      return {
        ...pipelineAppOptions({ definitions: pipelines, services, sql }),
        status: supervisedStatus(
          createStreamStatusProvider({
            dataDir: config.dataDir,
            pipelines: () =>
              pipelines.map((d) => ({
                name: d.name,
                title: d.title,
                jobs: supervision.jobNames.get(d.name) ?? [],
              })),
          }),
          supervision,
          eventLog,
        ),
        // The connectors' ingest routes do not scope topics by tenant: tenant-bound keys get 403 there.
        ingest: {
          app: createIngestRoutes({
            log: eventLog,
            // Every topic but those a pipeline declares internal (and DLQs): 403 for those.
            topicsAllowed: outsideWritesAllowed(pipelines),
            // Declared `ingest` sources count what clients post to their topics.
            onAppended: (topic, records, offsets) => {
              for (const runner of supervision.sources) runner.ingestAppended(topic, records, offsets);
            },
          }),
          tenantAware: false,
        },
        readiness: [
          {
            name: 'log',
            // Not ready while the embedded log refuses writes (full disk, I/O error).
            check: async () => {
              if (eventLog.kind === 'embedded') (eventLog as EmbeddedLog).assertWritable();
              await eventLog.listTopics();
            },
          },
        ],
      };
    },
  };
}
