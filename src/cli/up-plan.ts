/**
 * What `tributary up` runs: the shared platform (log, lake, SQL), then every pipeline — demo seed
 * on a fresh data dir, stream jobs started, its batch DAG run once at start and then on its cron
 * schedules, demo traffic — and the API wired to all of it.
 */
import { childLogger, dataDirPaths, type TributaryConfig } from '../core/index.js';
import { createIngestRoutes } from '../connectors/index.js';
import {
  documentsAsk,
  pipelineDefinitions,
  type DemoHandle,
  type PipelineDefinition,
} from '../pipelines/index.js';
import {
  createLakeTableProvider,
  createStreamStatusProvider,
  topicsModule,
  type UpAppOptions,
  type UpContext,
  type UpService,
} from '../serve/index.js';
import { serveLog, type KafkaListener, type LogServer } from '../log/index.js';
import { BatchDag, batchHistoryFile, startJob, type JobHandle, type PipelineJobs } from '../stream/index.js';
import { startKafkaListener } from './kafka-listener.js';
import { acquirePlatform, type Platform } from './platform.js';

const log = childLogger('up');

export interface UpPlan {
  services: UpService[];
  app: (context: Omit<UpContext, 'progress'>) => UpAppOptions | Promise<UpAppOptions>;
}

function pipelineService(
  definition: PipelineDefinition,
  platform: () => Platform,
  jobNames: Map<string, string[]>,
): UpService {
  const controller = new AbortController();
  let jobs: PipelineJobs | undefined;
  let handles: JobHandle[] = [];
  let demo: DemoHandle | undefined;
  const background: Promise<unknown>[] = [];
  return {
    name: `pipeline ${definition.name}`,
    async start(context) {
      const { services, config } = platform();
      if (definition.seedDemo) {
        context.progress('seeding demo data (only on a fresh data dir)');
        await definition.seedDemo(services, (message) => context.progress(message));
      }
      jobs = await definition.jobs(services);
      jobNames.set(definition.name, [
        ...(jobs.stream ?? []).map((j) => j.name),
        ...(jobs.batch ?? []).map((j) => j.name),
      ]);
      handles = (jobs.stream ?? []).map((job) =>
        startJob(job, { dataDir: config.dataDir, signal: controller.signal }),
      );
      context.progress(
        `${handles.length} stream job(s) running: ${handles.map((h) => h.job.name).join(', ') || '-'}`,
      );
      const batch = jobs.batch ?? [];
      if (batch.length > 0) {
        const dag = new BatchDag([...batch], { historyFile: batchHistoryFile(config.dataDir) });
        // The first batch run and the scheduler go on in the background so the API comes up at once.
        const runAtStart =
          definition.batchOnStart === false
            ? Promise.resolve()
            : dag
                .runAll({ partition: null, trigger: 'pipeline', signal: controller.signal })
                .then((records) => {
                  for (const r of records)
                    log.info({ job: r.job, status: r.status, ms: r.durationMs }, 'batch run at start');
                })
                .catch((error: unknown) =>
                  log.error({ err: error, pipeline: definition.name }, 'batch run at start failed'),
                );
        background.push(runAtStart.then(() => dag.runScheduler(controller.signal)));
        context.progress(
          `${batch.length} batch job(s): ${definition.batchOnStart === false ? 'on schedule' : 'first run started, then on schedule'}`,
        );
      }
      demo = definition.startDemo?.(services);
    },
    async stop() {
      await demo?.stop();
      controller.abort();
      await Promise.allSettled([...handles.map((h) => h.stop()), ...background]);
      await jobs?.close?.();
    },
  };
}

export function createUpPlan(config: TributaryConfig): UpPlan {
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
  const jobNames = new Map<string, string[]>();
  return {
    services: [platformService, ...pipelineDefinitions.map((d) => pipelineService(d, current, jobNames))],
    app: () => {
      const { lake, sql, log: eventLog, services } = current();
      return {
        tables: createLakeTableProvider({ lake, sql }),
        status: createStreamStatusProvider({
          dataDir: config.dataDir,
          pipelines: () =>
            pipelineDefinitions.map((d) => ({
              name: d.name,
              title: d.title,
              jobs: jobNames.get(d.name) ?? [],
            })),
        }),
        pipelines: [...pipelineDefinitions.map((d) => d.serve(services)), topicsModule(eventLog)],
        // The connectors' ingest routes do not scope topics by tenant: tenant-bound keys get 403 there.
        ingest: { app: createIngestRoutes({ log: eventLog, topicsAllowed: ['*'] }), tenantAware: false },
        ask: documentsAsk(services),
        readiness: [{ name: 'log', check: async () => void (await eventLog.listTopics()) }],
      };
    },
  };
}
