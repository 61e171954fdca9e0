import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import {
  childLogger,
  openDataDir,
  processAlive,
  TributaryError,
  writeFileAtomic,
  type TributaryConfig,
} from '../core/index.js';
import { openSchemaRegistry, type SchemaRegistry } from '../log/index.js';
import { createApp, type AppOptions, type TributaryApp } from './app.js';
import { createEventBus } from './events.js';
import { KeyStore } from './keys.js';
import { createRateLimiter } from './rate-limit.js';
import { RedisReadCache } from './redis-cache.js';
import { startServer, type RunningServer } from './server.js';
import type { EventBus, JobStatus, PipelineStatus, PlatformStatus, StatusProvider } from './types.js';

const log = childLogger('up');

function redisResponseCache(config: TributaryConfig): RedisReadCache {
  if (config.redisUrl === undefined)
    throw new TributaryError(
      'INVALID_ARGUMENT',
      'responseCache is redis but redisUrl is not set (TRIBUTARY_REDIS_URL or REDIS_URL)',
    );
  return new RedisReadCache(config.redisUrl);
}

/** What `up` hands each service when it starts. */
export interface UpContext {
  config: TributaryConfig;
  dataDir: string;
  /** The bus the API streams over SSE: publish window results and live views here. */
  events: EventBus;
  /** One progress line (e.g. "seeding northwind: 40%"), shown under the service's name. */
  progress(message: string): void;
  /** Aborted when shutdown begins, so long start-ups (seeding) can give up early. */
  signal: AbortSignal;
}

/**
 * A part of the running platform: the log, stream jobs, schedules, demo seeding, simulators.
 * Services start in order and stop in reverse order.
 *
 * @example
 * const simulator: UpService = {
 *   name: 'sales simulator',
 *   async start(ctx) { timer = setInterval(() => ctx.events.publish({ type: 'window.sales', data: nextWindow() }), 1000); },
 *   async stop() { clearInterval(timer); },
 * };
 */
export interface UpService {
  name: string;
  start(context: UpContext): Promise<void>;
  stop(): Promise<void>;
  /** Jobs and pipelines this service runs, merged into /api/status when no status provider is given. */
  status?(): Promise<Partial<Pick<PlatformStatus, 'jobs' | 'pipelines' | 'sources'>>>;
}

/** API wiring produced once services are up (providers often need a started log or lake). */
export type UpAppOptions = Omit<AppOptions, 'keys' | 'events' | 'rateLimiter'>;

export interface UpOptions {
  config: TributaryConfig;
  services?: UpService[];
  app?: (context: Omit<UpContext, 'progress'>) => UpAppOptions | Promise<UpAppOptions>;
  /** Where progress and the URL go (default stdout). */
  out?: { write(text: string): unknown };
  /** Install SIGINT/SIGTERM handlers (default true). */
  handleSignals?: boolean;
  /** Budget for a whole shutdown (default 10 s). */
  stopTimeoutMs?: number;
  /** A key to use instead of creating the local admin key (env TRIBUTARY_ADMIN_KEY). */
  adminKey?: string | undefined;
}

export interface UpHandle {
  url: string;
  api: TributaryApp;
  server: RunningServer;
  /** The admin key when it was created by this start (printed once), else undefined. */
  createdAdminKey: string | undefined;
  stop(reason?: string): Promise<void>;
  /** Resolves when the platform has stopped (after a signal or `stop`). */
  stopped: Promise<void>;
}

/**
 * `<dataDir>/up.json`, written while `up` runs so `tributary status` can find the API:
 *   { "pid": 1234, "url": "http://127.0.0.1:3000", "startedAtMs": 1795370000000 }
 */
export function upStateFile(dataDir: string): string {
  return path.join(dataDir, 'up.json');
}

/** The local admin key, readable only by its owner (mode 0600), so local tools can call the API. */
export function localAdminKeyFile(dataDir: string): string {
  return path.join(dataDir, 'local-admin.key');
}

export interface UpState {
  pid: number;
  url: string;
  startedAtMs: number;
}

export async function readUpState(dataDir: string): Promise<UpState | null> {
  let state: UpState;
  try {
    state = JSON.parse(await readFile(upStateFile(dataDir), 'utf8')) as UpState;
  } catch {
    return null;
  }
  return processAlive(state.pid) ? state : null;
}

export async function readLocalAdminKey(dataDir: string): Promise<string | null> {
  try {
    return (await readFile(localAdminKeyFile(dataDir), 'utf8')).trim();
  } catch {
    return null;
  }
}

async function ensureAdminKey(
  store: KeyStore,
  dataDir: string,
  given: string | undefined,
): Promise<{ key: string; created: boolean }> {
  if (given !== undefined) {
    if (!store.verify(given)?.scopes.includes('admin')) {
      throw new TributaryError(
        'CONFIG_INVALID',
        'TRIBUTARY_ADMIN_KEY is not a valid admin key of this data dir',
      );
    }
    return { key: given, created: false };
  }
  const existing = await readLocalAdminKey(dataDir);
  if (existing && store.verify(existing)?.scopes.includes('admin')) return { key: existing, created: false };
  const { key } = await store.create({ scopes: ['admin'], name: 'local-admin' });
  const file = localAdminKeyFile(dataDir);
  await writeFileAtomic(file, `${key}\n`, { mode: 0o600 });
  return { key, created: true };
}

function mergedStatus(services: UpService[]): StatusProvider {
  return {
    async getStatus() {
      const parts = await Promise.all(
        services.map((s) =>
          s.status
            ? s.status()
            : Promise.resolve<Partial<Pick<PlatformStatus, 'jobs' | 'pipelines' | 'sources'>>>({}),
        ),
      );
      const jobs: JobStatus[] = parts.flatMap((p) => p.jobs ?? []);
      const pipelines: PipelineStatus[] = parts.flatMap((p) => p.pipelines ?? []);
      const sources = parts.flatMap((p) => p.sources ?? []);
      return { generatedAtMs: Date.now(), pipelines, jobs, ...(sources.length > 0 ? { sources } : {}) };
    },
  };
}

function withDeadline(promise: Promise<unknown>, ms: number): Promise<'done' | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.then(() => 'done' as const),
    new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), Math.max(0, ms));
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * `tributary up`: opens the data dir, makes sure a local admin key exists (printing it once when
 * new), starts the services in order with progress lines, serves the API and dashboard, and on
 * SIGINT/SIGTERM stops everything in reverse order within `stopTimeoutMs`.
 */
export async function runUp(options: UpOptions): Promise<UpHandle> {
  const { config } = options;
  const out = options.out ?? process.stdout;
  const services = options.services ?? [];
  const stopTimeoutMs = options.stopTimeoutMs ?? 10_000;
  const paths = await openDataDir(config.dataDir);
  const store = KeyStore.open(paths.keys);
  const admin = await ensureAdminKey(store, config.dataDir, options.adminKey);
  const events = createEventBus();
  const abort = new AbortController();
  const started: UpService[] = [];

  const stopServices = async (deadlineMs: number) => {
    for (const service of [...started].reverse()) {
      const outcome = await withDeadline(
        service
          .stop()
          .catch((error: unknown) =>
            log.error({ err: error, service: service.name }, 'service failed to stop'),
          ),
        deadlineMs - Date.now(),
      );
      out.write(
        `  ${outcome === 'done' ? '✓' : '✗'} stopped ${service.name}${outcome === 'timeout' ? ' (timed out)' : ''}\n`,
      );
    }
    started.length = 0;
  };

  out.write(`Tributary: starting in ${config.dataDir}\n`);
  for (const [index, service] of services.entries()) {
    const startMs = Date.now();
    const label = `[${index + 1}/${services.length}] ${service.name}`;
    out.write(`${label} …\n`);
    try {
      await service.start({
        config,
        dataDir: config.dataDir,
        events,
        signal: abort.signal,
        progress: (message) => out.write(`    ${message}\n`),
      });
    } catch (error) {
      out.write(`${label} failed: ${error instanceof Error ? error.message : String(error)}\n`);
      abort.abort();
      await stopServices(Date.now() + stopTimeoutMs);
      throw error;
    }
    started.push(service);
    out.write(`${label} ready (${Date.now() - startMs} ms)\n`);
  }

  let api: TributaryApp;
  let server: RunningServer;
  let ownRegistry: SchemaRegistry | undefined;
  try {
    const appOptions = options.app
      ? await options.app({ config, dataDir: config.dataDir, events, signal: abort.signal })
      : {};
    // The data dir's registry (or the external one it is configured with), unless the app brings one.
    if (appOptions.schemaRegistry === undefined) ownRegistry = await openSchemaRegistry(config);
    api = createApp({
      metricsPublic: config.metricsPublic,
      status: mergedStatus(services),
      ...(ownRegistry === undefined ? {} : { schemaRegistry: ownRegistry }),
      ...appOptions,
      keys: store,
      events,
      ...(config.responseCache === 'redis' ? { responseCache: redisResponseCache(config) } : {}),
      rateLimiter: createRateLimiter({
        redisUrl: config.redisUrl,
        ratePerSecond: config.rateLimitPerSecond,
        burst: config.rateLimitBurst,
      }),
    });
    server = await startServer(api.app, { host: config.host, port: config.port });
  } catch (error) {
    abort.abort();
    await ownRegistry?.close();
    await stopServices(Date.now() + stopTimeoutMs);
    throw error;
  }
  await writeFileAtomic(
    upStateFile(config.dataDir),
    `${JSON.stringify({ pid: process.pid, url: server.url, startedAtMs: Date.now() } satisfies UpState)}\n`,
  );

  out.write(`\nDashboard: ${server.url}/\nAPI docs:  ${server.url}/docs\n`);
  out.write(
    `Schema registry: ${server.url}/schema-registry${config.schemaRegistryUrl === undefined ? '' : ` (forwards to ${new URL(config.schemaRegistryUrl).origin})`} — the API key as Bearer token or Basic password\n`,
  );
  if (admin.created) {
    out.write(
      `Admin key (shown once; also in ${localAdminKeyFile(config.dataDir)}, mode 600):\n  ${admin.key}\n`,
    );
  } else {
    out.write(`Admin key: in ${localAdminKeyFile(config.dataDir)} (or TRIBUTARY_ADMIN_KEY)\n`);
  }
  out.write('Press Ctrl-C to stop.\n');

  let resolveStopped!: () => void;
  const stopped = new Promise<void>((resolve) => {
    resolveStopped = resolve;
  });
  let stopping: Promise<void> | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      out.write(`\n${signal} again: exiting now\n`);
      process.exit(130);
    }
    void stop(signal);
  };
  const stop = (reason = 'stop'): Promise<void> => {
    stopping ??= (async () => {
      const deadlineMs = Date.now() + stopTimeoutMs;
      out.write(`\nStopping (${reason}) …\n`);
      abort.abort();
      await withDeadline(
        (async () => {
          await api.close();
          await server.close(Math.min(2000, stopTimeoutMs / 4));
          await ownRegistry?.close();
        })(),
        Math.min(3000, stopTimeoutMs / 3),
      );
      await stopServices(deadlineMs);
      await rm(upStateFile(config.dataDir), { force: true });
      if (options.handleSignals !== false) {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      out.write('Stopped.\n');
      resolveStopped();
    })();
    return stopping;
  };
  if (options.handleSignals !== false) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  return {
    url: server.url,
    api,
    server,
    createdAdminKey: admin.created ? admin.key : undefined,
    stop,
    stopped,
  };
}
