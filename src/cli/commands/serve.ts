import type { Command } from 'commander';
import { dataDirPaths, openDataDir, TributaryError, type TributaryConfig } from '../../core/index.js';
import {
  createStreamStatusProvider,
  fetchStatus,
  formatStatus,
  KeyStore,
  lakeService,
  lakeTableInfos,
  parseScopes,
  readLocalAdminKey,
  readPipelineJobs,
  readUpState,
  runUp,
  type UpAppOptions,
  type UpContext,
  type UpService,
} from '../../serve/index.js';
import { openLakeFromConfig } from '../../lake/index.js';
import { pipelineDefinitions } from '../../pipelines/index.js';
import type { CliContext } from '../context.js';
import { kafkaListenerOverride } from '../kafka-listener.js';

/**
 * What `tributary up` runs besides the API. The lake service is built in; the lead's wiring adds
 * the log, stream jobs, schedules, demo seeding and simulators (services start in list order and
 * stop in reverse), and API extras (pipelines, ingest routes, ask).
 */
export interface UpPlan {
  services: UpService[];
  app?: (context: Omit<UpContext, 'progress'>) => UpAppOptions | Promise<UpAppOptions>;
}

export type UpPlanFactory = (config: TributaryConfig) => UpPlan | Promise<UpPlan>;

/** Default plan: the lake + SQL engine as the table provider, stream job status from the data dir. */
export const defaultUpPlan: UpPlanFactory = (config) => {
  const lake = lakeService();
  return {
    services: [lake],
    app: () => ({
      tables: lake.tables(),
      status: createStreamStatusProvider({ dataDir: config.dataDir }),
    }),
  };
};

/** The plan `up` uses; replace it to wire more layers (kept as one assignable slot on purpose). */
export const upPlan: { factory: UpPlanFactory } = { factory: defaultUpPlan };

export function registerServeCommands(program: Command, context: CliContext): void {
  program
    .command('up')
    .description('start the platform: services, API and dashboard (Ctrl-C stops gracefully)')
    .option('--port <port>', 'API and dashboard port (env TRIBUTARY_PORT, default 3000)')
    .option('--host <host>', 'address to bind (env TRIBUTARY_HOST, default 127.0.0.1)')
    .option(
      '--kafka-port <port>',
      'Kafka protocol listener port (config kafkaListener, default 127.0.0.1:9092; 0 = a free one)',
    )
    .option('--no-kafka', 'do not serve the Kafka protocol')
    .action(async (options: { port?: string; host?: string; kafkaPort?: string; kafka?: boolean }) => {
      const kafkaListener = kafkaListenerOverride(context.config().kafkaListener, options);
      const config = context.config({
        port: options.port,
        host: options.host,
        ...(kafkaListener === undefined ? {} : { kafkaListener }),
      });
      const plan = await upPlan.factory(config);
      const handle = await runUp({
        config,
        services: plan.services,
        ...(plan.app ? { app: plan.app } : {}),
        adminKey: process.env.TRIBUTARY_ADMIN_KEY || undefined,
      });
      await handle.stopped;
    });

  program
    .command('status')
    .description(
      'pipelines, jobs, lag, watermarks, last runs, DLQ counts (from the running API, else the data dir)',
    )
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      const config = context.config();
      const running = await readUpState(config.dataDir);
      let result;
      if (running) {
        const key = process.env.TRIBUTARY_ADMIN_KEY || (await readLocalAdminKey(config.dataDir));
        if (!key)
          throw new TributaryError(
            'UNAUTHENTICATED',
            `tributary up runs at ${running.url} but no admin key was found; set TRIBUTARY_ADMIN_KEY`,
          );
        result = await fetchStatus(running.url, key);
      } else {
        // Without `up`, nothing runs: jobs are what their last status files say (stopped when their
        // process is gone), grouped into the pipelines as `up` last built them.
        const recorded = await readPipelineJobs(config.dataDir);
        const status = await createStreamStatusProvider({
          dataDir: config.dataDir,
          pipelines: pipelineDefinitions.map((d) => ({
            name: d.name,
            title: d.title,
            jobs: recorded[d.name] ?? [],
          })),
        }).getStatus();
        const lake = await openLakeFromConfig(config);
        try {
          result = { status, tables: await lakeTableInfos(lake) };
        } finally {
          await lake.close();
        }
      }
      if (options.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else
        process.stdout.write(
          `${running ? `(from ${running.url})` : '(tributary up is not running; from the data dir)'}\n${formatStatus(result.status, result.tables)}`,
        );
    });

  const keys = program.command('keys').description('API keys: create, list, revoke');
  const openStore = async () => {
    const config = context.config();
    await openDataDir(config.dataDir);
    return KeyStore.open(dataDirPaths(config.dataDir).keys);
  };
  keys
    .command('create')
    .description('create an API key (printed once; only a salted hash is stored)')
    .requiredOption('--scope <scopes>', 'read, ingest, admin (comma-separated; admin implies all)')
    .option('--tenant <company>', 'bind the key to one tenant (company)')
    .option('--name <name>', 'a label for lists')
    .action(async (options: { scope: string; tenant?: string; name?: string }) => {
      const store = await openStore();
      const { key, record } = await store.create({
        scopes: parseScopes(options.scope),
        tenant: options.tenant,
        name: options.name,
      });
      process.stdout.write(`${key}\n`);
      process.stderr.write(
        `created key ${record.id} (${record.name}) scopes=${record.scopes.join(',')}${record.tenant ? ` tenant=${record.tenant}` : ''}; store it now, it is not shown again\n`,
      );
    });
  keys
    .command('list')
    .description('list keys (ids, names, scopes, tenants; never secrets)')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      const records = (await openStore()).list().map((r) => ({
        id: r.id,
        name: r.name,
        scopes: r.scopes.join(','),
        tenant: r.tenant ?? '-',
        created: new Date(r.createdAtMs).toISOString(),
        revoked: r.revokedAtMs === null ? '-' : new Date(r.revokedAtMs).toISOString(),
      }));
      if (options.json) {
        process.stdout.write(`${JSON.stringify(records, null, 2)}\n`);
        return;
      }
      const header = {
        id: 'ID',
        name: 'NAME',
        scopes: 'SCOPES',
        tenant: 'TENANT',
        created: 'CREATED',
        revoked: 'REVOKED',
      };
      const rows = [header, ...records];
      const names = Object.keys(header) as (keyof typeof header)[];
      const widths = names.map((n) => Math.max(...rows.map((r) => r[n].length)));
      for (const row of rows)
        process.stdout.write(
          `${names
            .map((n, i) => row[n].padEnd(widths[i]))
            .join('  ')
            .trimEnd()}\n`,
        );
    });
  keys
    .command('revoke <id>')
    .description('revoke a key by id (takes effect within a second, also in a running `up`)')
    .action(async (id: string) => {
      const record = await (await openStore()).revoke(id);
      process.stdout.write(`revoked ${record.id} (${record.name})\n`);
    });
}
