import { Hono } from 'hono';
import { limits, systemClock, type Clock } from '../core/index.js';
import type { SchemaRegistry } from '../log/index.js';
import { createUiRoutes, type UiRoutesOptions } from '../ui/server.js';
import { requestMetrics, securityHeaders } from './api-headers.js';
import { registerPlatformAskRoute } from './ask-routes.js';
import { createGuard, registerKeyRoutes } from './auth.js';
import { ReadCache, type ResponseCache } from './cache.js';
import { createEventBus, SseTokens } from './events.js';
import { errorBody, handleError } from './http-errors.js';
import type { KeyStore } from './keys.js';
import { mountedOpenApiPaths, mountIngest, mountSchemaRegistry } from './mounts.js';
import { MemoryRateLimiter, type RateLimiter } from './rate-limit.js';
import { ApiRouter, buildOpenApiDocument, type OpenApiDocument } from './router.js';
import { LiveStreams, startStatusTicks } from './sse-routes.js';
import { logDependencyFailure, registerPlatformRoutes, registerStatusRoutes } from './status-routes.js';
import { invalidateOnCommit } from './table-cache.js';
import { registerTableRoutes } from './table-routes.js';
import type {
  AskFunction,
  EventBus,
  IngestMount,
  PipelineModule,
  ReadinessCheck,
  StatusProvider,
  TableProvider,
} from './types.js';

export interface AppOptions {
  keys: KeyStore;
  tables?: TableProvider;
  status?: StatusProvider;
  /** Live updates for SSE; a fresh in-memory bus when omitted. */
  events?: EventBus;
  pipelines?: PipelineModule[];
  ingest?: IngestMount;
  ask?: AskFunction;
  /** Served as the Confluent Schema Registry REST API at `/schema-registry`. */
  schemaRegistry?: SchemaRegistry;
  readiness?: ReadinessCheck[];
  /** Per-key token bucket; in-memory with `rateLimit` (default 50/s, burst 100) when omitted. */
  rateLimiter?: RateLimiter;
  rateLimit?: { ratePerSecond: number; burst: number };
  /** Serve /metrics without a key (default true). */
  metricsPublic?: boolean;
  bodyLimitBytes?: number;
  requestTimeoutMs?: number;
  /** Gold read cache bounds. */
  cache?: { entriesMax?: number; bytesMax?: number };
  /**
   * Cache of the routes that declare `cache: { tables }`: the in-process gold read cache by
   * default, or a shared one (`RedisReadCache`), closed with the app.
   */
  responseCache?: ResponseCache;
  sseKeepAliveMs?: number;
  sseTokenTtlMs?: number;
  /** Period of the `status.tick` event while SSE clients are connected; 0 disables. */
  statusTickMs?: number;
  /** Dashboard files; false serves the API only. */
  ui?: false | UiRoutesOptions;
  clock?: Clock;
  version?: string;
}

export interface TributaryApp {
  app: Hono;
  router: ApiRouter;
  events: EventBus;
  cache: ReadCache;
  responseCache: ResponseCache;
  openapi(): OpenApiDocument;
  /** Ends SSE streams, timers and subscriptions (the HTTP server is closed by `startServer`). */
  close(): Promise<void>;
}

/** The readiness checks of `/ready`: the given ones, then the lake and the Redis-backed limiter and cache. */
function readinessChecks(
  options: AppOptions,
  rateLimiter: RateLimiter,
  responseCache: ResponseCache,
): ReadinessCheck[] {
  const checks: ReadinessCheck[] = [...(options.readiness ?? [])];
  const tables = options.tables;
  if (tables?.check) checks.push({ name: 'lake', check: () => tables.check!() });
  if ('ping' in rateLimiter && typeof rateLimiter.ping === 'function') {
    const limiter = rateLimiter as RateLimiter & { ping(): Promise<void> };
    checks.push({ name: 'redis', check: () => limiter.ping() });
  }
  if ('ping' in responseCache && typeof responseCache.ping === 'function') {
    const shared = responseCache as ResponseCache & { ping(): Promise<void> };
    checks.push({ name: 'response cache', check: () => shared.ping() });
  }
  return checks;
}

/**
 * Builds the API (and, unless `ui: false`, the dashboard) as a Hono app over the given providers.
 * Each concern lives in its own module; this function only assembles them: the guard (auth.ts),
 * platform and status routes (status-routes.ts), lake tables and their caches (table-routes.ts,
 * table-cache.ts), live events (sse-routes.ts), keys, the pipelines' own routes, and the mounted
 * ingest and schema registry sub-apps (mounts.ts).
 *
 * @example
 * const { app, close } = createApp({ keys: KeyStore.open(paths.keys), tables, status, pipelines });
 * const server = await startServer(app, { host: '127.0.0.1', port: 3000 });
 */
export function createApp(options: AppOptions): TributaryApp {
  const clock = options.clock ?? systemClock;
  const keys = options.keys;
  const events = options.events ?? createEventBus();
  const rateLimiter =
    options.rateLimiter ??
    new MemoryRateLimiter(options.rateLimit ?? { ratePerSecond: 50, burst: 100 }, clock);
  const sseTokens = new SseTokens(options.sseTokenTtlMs ?? 60_000);
  const cache = new ReadCache(options.cache);
  const responseCache: ResponseCache = options.responseCache ?? cache;
  const pipelines = options.pipelines ?? [];
  const status = options.status;
  const tables = options.tables;
  const router = new ApiRouter();
  const streams = new LiveStreams();
  const closers: (() => void)[] = [];
  let requestsTotal = 0;

  if (tables) {
    closers.push(
      invalidateOnCommit({
        tables,
        cache,
        responseCache,
        router,
        events,
        onError: (error) => logDependencyFailure('response cache', error),
      }),
    );
  }

  // Routes fixed once the app is built, so the document is rendered once.
  let openapiDocument: OpenApiDocument | undefined;
  const openapi = (): OpenApiDocument =>
    (openapiDocument ??= buildOpenApiDocument(
      router.routes(),
      {
        title: 'Tributary API',
        version: options.version ?? '0.1.0',
        description:
          'Lake tables, pipeline status, live events and ingestion. Keys: `tributary keys create --scope read`.',
      },
      mountedOpenApiPaths(options.ingest, options.schemaRegistry),
    ));

  registerPlatformRoutes(router, {
    readiness: () => readinessChecks(options, rateLimiter, responseCache),
    ...(options.metricsPublic === undefined ? {} : { metricsPublic: options.metricsPublic }),
    openapi,
  });
  if (tables)
    registerTableRoutes(router, { tables, cache, shared: responseCache === cache ? null : responseCache });
  registerStatusRoutes(router, pipelines, status);
  streams.register(router, { events, sseTokens, clock, keepAliveMs: options.sseKeepAliveMs ?? 15_000 });
  registerKeyRoutes(router, keys);
  if (options.ask) registerPlatformAskRoute(router, options.ask);
  for (const pipeline of pipelines) pipeline.routes?.(router);

  const app = new Hono();
  app.onError(handleError);
  app.notFound((c) => c.json(errorBody('NOT_FOUND', `no route ${c.req.method} ${c.req.path}`), 404));
  app.use(
    '*',
    requestMetrics(() => (requestsTotal += 1)),
  );
  app.use('*', securityHeaders());
  const guard = createGuard({ keys, sseTokens, rateLimiter, clock });
  // The body limit runs per route (routes may declare their own, e.g. uploads); see ApiRouter.mount.
  const bodyLimitBytes = options.bodyLimitBytes ?? limits.httpBodyBytesMax;
  if (options.ingest) mountIngest(app, options.ingest, guard, bodyLimitBytes);
  if (options.schemaRegistry) mountSchemaRegistry(app, options.schemaRegistry, guard, bodyLimitBytes);
  // Routes are cached only where commits invalidate them: without a table provider reporting
  // commits, a cached answer could outlive the data it was read from.
  router.mount(app, guard, {
    timeoutMs: options.requestTimeoutMs ?? 30_000,
    bodyLimitBytes,
    ...(tables?.onCommit ? { responseCache } : {}),
  });
  if (options.ui !== false) app.route('/', createUiRoutes(options.ui ?? {}));

  const statusTickMs = options.statusTickMs ?? 2000;
  if (statusTickMs > 0) {
    closers.push(
      startStatusTicks({
        events,
        status,
        streams,
        clock,
        periodMs: statusTickMs,
        requestsTotal: () => requestsTotal,
        onError: (error) => logDependencyFailure('status', error),
      }),
    );
  }

  return {
    app,
    router,
    events,
    cache,
    responseCache,
    openapi,
    close: async () => {
      streams.endAll();
      for (const close of closers) close();
      await rateLimiter.close();
      await responseCache.close?.();
    },
  };
}
