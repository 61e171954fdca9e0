import { Hono, type Context } from 'hono';
import { secureHeaders } from 'hono/secure-headers';
import { streamSSE } from 'hono/streaming';
import { z } from 'zod';
import {
  childLogger,
  counter,
  histogram,
  limits,
  metricsRegistry,
  TributaryError,
  type Clock,
  systemClock,
} from '../core/index.js';
import type { SchemaRegistry } from '../log/index.js';
import { createUiRoutes, type UiRoutesOptions } from '../ui/server.js';
import { ReadCache, type ResponseCache } from './cache.js';
import { groupsOfTable } from './route-cache.js';
import { createEventBus, SseTokens, visibleTo } from './events.js';
import { errorBody, handleError } from './http-errors.js';
import { hasScope, type AuthInfo, type KeyStore } from './keys.js';
import { MemoryRateLimiter, type RateLimitDecision, type RateLimiter } from './rate-limit.js';
import {
  ApiRouter,
  bodyLimitMiddleware,
  buildOpenApiDocument,
  type GuardResult,
  type OpenApiDocument,
  cacheSpecOf,
  type StoredRoute,
} from './router.js';
import { metricsVisibleTo } from './metrics-text.js';
import { createSchemaRegistryApp, schemaRegistryOpenApiPaths } from './schema-registry-routes.js';
import { parseTableQuery, tableQueryLimits, tableReadError } from './table-query.js';
import {
  servedLayers,
  type AskFunction,
  type EventBus,
  type IngestMount,
  type LiveEvent,
  type PipelineModule,
  type PlatformStatus,
  type ReadinessCheck,
  type StatusProvider,
  type ServedLayer,
  type TableInfo,
  type TableProvider,
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

const requestDuration = histogram('tributary_http_request_duration_seconds', 'API request duration', [
  'method',
  'route',
  'status',
]);
const cacheLookups = counter('tributary_api_cache_lookups_total', 'Gold read cache lookups', ['result']);
const cacheHits = cacheLookups.labels('hit');
const cacheMisses = cacheLookups.labels('miss');
const sseClients = counter('tributary_api_sse_connections_total', 'SSE connections opened');

/** Bound on events queued for one slow SSE client; older ones are dropped first. */
const sseQueueMax = 1000;
const readinessTimeoutMs = 2000;
const statusLog = childLogger('serve');

const tableInfoSchema = z.object({
  layer: z.string(),
  name: z.string(),
  columns: z.array(z.object({ name: z.string(), type: z.string() })),
  partitions: z.array(
    z.object({ path: z.string(), files: z.number(), sizeBytes: z.number(), rows: z.number().optional() }),
  ),
  files: z.number(),
  sizeBytes: z.number(),
  rows: z.number().optional(),
  updatedAtMs: z.number().optional(),
  tenantColumn: z.string().optional(),
});

const tablePageSchema = z.object({
  table: z.string(),
  columns: z.array(z.object({ name: z.string(), type: z.string() })),
  rows: z.array(z.record(z.string(), z.unknown())),
  total: z.number(),
  limit: z.number(),
  offset: z.number(),
});

const pipelineInfoSchema = z.object({
  name: z.string(),
  title: z.string(),
  description: z.string().optional(),
  tenantScoped: z.boolean(),
  page: z.unknown().optional(),
});

const statusSchema = z.object({
  generatedAtMs: z.number(),
  pipelines: z.array(z.record(z.string(), z.unknown())),
  jobs: z.array(z.record(z.string(), z.unknown())),
  sources: z.array(z.record(z.string(), z.unknown())).optional(),
  fencedPartitions: z
    .array(z.object({ topic: z.string(), partition: z.number(), reason: z.string() }))
    .optional(),
});

const tableParams = z.object({
  layer: z.enum(servedLayers).describe('Lake layer: silver or gold'),
  name: z
    .string()
    .regex(/^[a-z][a-z0-9_]{0,62}$/)
    .describe('Table name'),
});

const tableQuery = z.looseObject({
  columns: z.string().max(2000).optional().describe('Comma-separated columns to return'),
  sort: z.string().max(400).optional().describe('Comma-separated columns; prefix with - for descending'),
  limit: z
    .string()
    .max(12)
    .optional()
    .describe(`Rows per page, 1..${tableQueryLimits.limitMax} (default ${tableQueryLimits.limitDefault})`),
  offset: z.string().max(12).optional().describe('Rows to skip'),
});

/**
 * Headers of every JSON/text API answer: the short set OWASP recommends for APIs. Kept as a plain
 * record so cached reads can answer with one `Response` built from plain objects (building a
 * WHATWG Headers object per request was the largest remaining cost of a cache hit).
 */
const apiSecurityHeaders: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'cache-control': 'no-store',
};
const apiSecurityHeaderEntries = Object.entries(apiSecurityHeaders);

/**
 * Marks responses that already carry every API header (cache hits): the header middleware skips
 * them. A symbol property rather than a WeakSet: cheaper to set and test on every cached read.
 */
const completeResponse = Symbol('tributary.completeResponse');
type MarkedResponse = Response & { [completeResponse]?: true };

/** Cache key of a read: the caller's tenant and the exact query string. */
function rawQueryKey(c: Context, auth: AuthInfo | undefined): string {
  const url = c.req.url;
  const question = url.indexOf('?');
  return `${auth?.tenant ?? ''}\u0000${question < 0 ? '' : url.slice(question + 1)}`;
}

/** Node's raw request under @hono/node-server (`c.env.incoming`); absent in other runtimes. */
interface NodeBindings {
  incoming?: { headers: Record<string, string | string[] | undefined> };
}

function headerOf(c: Context, name: 'authorization' | 'x-api-key'): string | undefined {
  // Reading the raw header avoids building a WHATWG Headers object on every authenticated request
  // (a visible share of a cached read's cost).
  const incoming = (c.env as NodeBindings | undefined)?.incoming;
  if (!incoming) return c.req.header(name);
  const value = incoming.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function credentialOf(c: Context): string | undefined {
  const header = headerOf(c, 'authorization');
  if (header !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match) return match[1];
    // HTTP Basic with the key as the password (any user name): how Confluent schema registry
    // clients send credentials.
    const basic = /^Basic\s+(\S+)\s*$/i.exec(header);
    if (basic) {
      const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
      return decoded.slice(decoded.indexOf(':') + 1);
    }
    return header;
  }
  return headerOf(c, 'x-api-key');
}

function filterStatus(status: PlatformStatus, tenant: string | undefined): PlatformStatus {
  if (tenant === undefined) return status;
  return {
    generatedAtMs: status.generatedAtMs,
    pipelines: status.pipelines.filter((p) => visibleTo(p.tenant, tenant)),
    jobs: status.jobs.filter((j) => visibleTo(j.tenant, tenant)),
    // Sources belong to the platform, not to a tenant: tenant-bound keys do not see them.
    ...(status.sources ? { sources: [] } : {}),
  };
}

/** What a tenant-bound key may see of a table: its own partitions only, or nothing at all. */
function tableForTenant(table: TableInfo, tenant: string | undefined): TableInfo | null {
  if (tenant === undefined) return table;
  if (table.tenantColumn === undefined) return null;
  const segment = `${table.tenantColumn}=${tenant}`;
  const partitions = table.partitions.filter((p) => p.path.split('/').includes(segment));
  const { rows: _rows, ...rest } = table;
  return {
    ...rest,
    partitions,
    files: partitions.reduce((n, p) => n + p.files, 0),
    sizeBytes: partitions.reduce((n, p) => n + p.sizeBytes, 0),
  };
}

/**
 * Builds the API (and, unless `ui: false`, the dashboard) as a Hono app over the given providers.
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
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  const keepAliveMs = options.sseKeepAliveMs ?? 15_000;
  const sseTokens = new SseTokens(options.sseTokenTtlMs ?? 60_000);
  const cache = new ReadCache(options.cache);
  const responseCache: ResponseCache = options.responseCache ?? cache;
  /** The response cache when it is not the in-process one (Redis): gold reads go there too. */
  const shared = responseCache === cache ? null : responseCache;
  const pipelines = options.pipelines ?? [];
  const router = new ApiRouter();
  const closers: (() => void)[] = [];
  const openStreams = new Set<() => void>();
  let requestsTotal = 0;

  if (options.tables?.onCommit) {
    closers.push(
      options.tables.onCommit((table) => {
        const tableKey = `${table.layer}.${table.name}`;
        cache.invalidate(tableKey);
        // Cacheable routes over this table (alone, or with others); the gold cache above already
        // covers a route over this table alone when both are the in-process cache.
        const specs = router.routes().flatMap((r) => cacheSpecOf(r) ?? []);
        const groups = groupsOfTable(specs, tableKey);
        // Gold table reads are cached under the table itself.
        if (shared !== null && !groups.includes(tableKey)) groups.push(tableKey);
        for (const group of groups) {
          if (shared === null && group === tableKey) continue;
          void Promise.resolve(responseCache.invalidate(group)).catch((error: unknown) =>
            handleReadinessFailure('response cache', error),
          );
        }
        events.publish({ type: 'lake.commit', data: { layer: table.layer, name: table.name } });
      }),
    );
  }

  // Answers synchronously when the limiter can (the in-memory one): a cached read then needs no
  // promise or microtask between the socket and its answer. Rejections are thrown synchronously.
  // A subclass that overrides `take` keeps its own (asynchronous) decision.
  const takeNow =
    rateLimiter instanceof MemoryRateLimiter && rateLimiter.take === MemoryRateLimiter.prototype.take
      ? (key: string) => rateLimiter.takeNow(key)
      : undefined;
  const rateLimited = (auth: AuthInfo, decision: RateLimitDecision, c: Context): GuardResult => {
    if (!decision.allowed) {
      c.header('X-RateLimit-Remaining', String(decision.remaining));
      throw new TributaryError(
        'RATE_LIMITED',
        `rate limit exceeded for key ${auth.keyId}; retry in ${decision.retryAfterMs} ms`,
        {
          retryAfterMs: decision.retryAfterMs,
        },
      );
    }
    // Returned rather than set with c.header(): a cache hit puts it in its plain header record.
    return { auth, headers: { 'x-ratelimit-remaining': String(decision.remaining) } };
  };
  const guard = (c: Context, route: StoredRoute): GuardResult | Promise<GuardResult> => {
    let auth: AuthInfo | null | undefined;
    const presented = credentialOf(c);
    if (presented !== undefined) {
      auth = keys.verify(presented);
      if (!auth && route.scope !== 'public') {
        c.header('WWW-Authenticate', 'Bearer');
        throw new TributaryError('UNAUTHENTICATED', 'the API key is invalid or revoked');
      }
    } else if (route.allowQueryToken) {
      const token = c.req.query('token');
      if (token !== undefined) {
        const keyId = sseTokens.verify(token, clock.now());
        auth = keyId === null ? null : keys.lookup(keyId);
        if (!auth)
          throw new TributaryError(
            'UNAUTHENTICATED',
            'the event token is invalid or expired; mint a new one with POST /api/events/token',
          );
      }
    }
    if (route.scope === 'public') return { auth: auth ?? undefined, headers: {} };
    if (!auth) {
      c.header('WWW-Authenticate', 'Bearer');
      throw new TributaryError(
        'UNAUTHENTICATED',
        'this route needs an API key: send `Authorization: Bearer trb_...` (create one with `tributary keys create`)',
      );
    }
    if (!hasScope(auth, route.scope)) {
      throw new TributaryError(
        'FORBIDDEN',
        `this route needs scope "${route.scope}"; the key has ${auth.scopes.join(', ')}`,
      );
    }
    const caller = auth;
    if (takeNow) return rateLimited(caller, takeNow(caller.keyId), c);
    return rateLimiter.take(caller.keyId).then((decision) => rateLimited(caller, decision, c));
  };

  // ---- platform routes -----------------------------------------------------------------------
  router.route({
    method: 'get',
    path: '/health',
    summary: 'Liveness: the process answers',
    tags: ['platform'],
    scope: 'public',
    responses: { 200: { description: 'alive', schema: z.object({ status: z.literal('ok') }) } },
    handler: () => Promise.resolve({ status: 'ok' as const }),
  });

  router.route({
    method: 'get',
    path: '/ready',
    summary: 'Readiness: every dependency answers',
    tags: ['platform'],
    scope: 'public',
    responses: {
      200: {
        description: 'ready',
        schema: z.object({
          status: z.string(),
          checks: z.array(
            z.object({
              name: z.string(),
              ok: z.boolean(),
              latencyMs: z.number(),
              code: z.string().optional(),
            }),
          ),
        }),
      },
      503: { description: 'a dependency failed' },
    },
    handler: async ({ c }) => {
      const checks: ReadinessCheck[] = [...(options.readiness ?? [])];
      if (options.tables?.check) checks.push({ name: 'lake', check: () => options.tables!.check!() });
      if ('ping' in rateLimiter && typeof rateLimiter.ping === 'function') {
        const limiter = rateLimiter as RateLimiter & { ping(): Promise<void> };
        checks.push({ name: 'redis', check: () => limiter.ping() });
      }
      if ('ping' in responseCache && typeof responseCache.ping === 'function') {
        const shared = responseCache as ResponseCache & { ping(): Promise<void> };
        checks.push({ name: 'response cache', check: () => shared.ping() });
      }
      const results = await Promise.all(
        checks.map(async (check) => {
          const startMs = Date.now();
          let timer: NodeJS.Timeout | undefined;
          try {
            await Promise.race([
              check.check(),
              new Promise((_, reject) => {
                timer = setTimeout(
                  () => reject(new TributaryError('TIMEOUT', `${check.name} readiness timed out`)),
                  readinessTimeoutMs,
                );
              }),
            ]);
            return { name: check.name, ok: true, latencyMs: Date.now() - startMs };
          } catch (error) {
            // Public route: say which dependency failed, keep its error text for the server log.
            handleReadinessFailure(check.name, error);
            return {
              name: check.name,
              ok: false,
              latencyMs: Date.now() - startMs,
              code: error instanceof TributaryError ? error.code : 'INTERNAL',
            };
          } finally {
            clearTimeout(timer);
          }
        }),
      );
      const ok = results.every((r) => r.ok);
      return c.json({ status: ok ? 'ready' : 'not_ready', checks: results }, ok ? 200 : 503);
    },
  });

  router.route({
    method: 'get',
    path: '/metrics',
    summary: 'Prometheus metrics (text exposition format)',
    tags: ['platform'],
    scope: options.metricsPublic === false ? 'read' : 'public',
    responses: { 200: { description: 'metrics', contentType: 'text/plain; version=0.0.4' } },
    // Samples labelled with a tenant (company ids) only for keys that may see that tenant.
    handler: async ({ c, auth }) =>
      c.body(metricsVisibleTo(await metricsRegistry.metrics(), auth), 200, {
        'content-type': metricsRegistry.contentType,
      }),
  });

  router.route({
    method: 'get',
    path: '/openapi.json',
    summary: 'This OpenAPI 3.1 document',
    tags: ['platform'],
    scope: 'public',
    responses: { 200: { description: 'OpenAPI document' } },
    handler: () => Promise.resolve(openapi()),
  });

  // ---- lake tables ---------------------------------------------------------------------------
  const tables = options.tables;
  /**
   * Table descriptions only change on commits, so with commit notifications they are kept until
   * the table's next commit (same generation as the read cache); without, they are read each time.
   */
  const descriptions = new Map<string, { generation: number; info: TableInfo }>();
  const describeCached = async (layer: ServedLayer, name: string): Promise<TableInfo | null> => {
    if (!tables) return null;
    if (!tables.onCommit) return tables.describeTable(layer, name);
    const tableKey = `${layer}.${name}`;
    const generation = cache.generation(tableKey);
    const hit = descriptions.get(tableKey);
    if (hit && hit.generation === generation) return hit.info;
    const info = await tables.describeTable(layer, name);
    if (info && cache.generation(tableKey) === generation) {
      if (descriptions.size >= 10_000) descriptions.clear();
      descriptions.set(tableKey, { generation, info });
    }
    return info;
  };
  if (tables) {
    router.route({
      method: 'get',
      path: '/api/tables',
      summary: 'Lake tables with partitions, files and sizes',
      tags: ['tables'],
      scope: 'read',
      responses: { 200: { description: 'tables', schema: z.object({ tables: z.array(tableInfoSchema) }) } },
      handler: async ({ auth }) => {
        const all = await tables.listTables();
        return {
          tables: all.map((t) => tableForTenant(t, auth?.tenant)).filter((t): t is TableInfo => t !== null),
        };
      },
    });

    router.route({
      method: 'get',
      path: '/api/tables/:layer/:name',
      summary: 'Rows of a silver or gold table: filters, sorting and pagination on the table’s columns',
      description:
        'Filters: `filter[col]=value` or `col=op:value` with op in eq, ne, lt, lte, gt, gte, like, in (comma-separated). ' +
        'Values are bound as parameters, never spliced into SQL. Gold reads are cached until the table’s next commit.',
      tags: ['tables'],
      scope: 'read',
      params: tableParams,
      query: tableQuery,
      extraParameters: [
        {
          name: 'filter',
          in: 'query',
          style: 'deepObject',
          explode: true,
          required: false,
          schema: { type: 'object', additionalProperties: { type: 'string' } },
        },
      ],
      responses: {
        200: { description: 'a page of rows', schema: tablePageSchema },
        404: { description: 'no such table' },
      },
      fastPath: (c, auth, headers) => {
        // Cached gold reads are keyed by the exact query string (validated when first read). A
        // shared (Redis) cache answers asynchronously, in the handler.
        if (c.req.param('layer') !== 'gold' || !tables.onCommit || shared !== null) return undefined;
        const cached = cache.get(`gold.${c.req.param('name')}`, rawQueryKey(c, auth));
        if (cached === undefined) return undefined;
        cacheHits.inc();
        // One Response from a plain record, no Headers object (see apiSecurityHeaders): with a
        // Uint8Array body and a plain record, @hono/node-server writes it straight to the socket.
        // Content-Length comes first so its scan for one stops at once.
        const record: Record<string, string> = { 'content-length': String(cached.byteLength) };
        for (const [name, value] of apiSecurityHeaderEntries) record[name] = value;
        for (const name in headers) record[name] = headers[name]!;
        record['content-type'] = 'application/json';
        record['x-cache'] = 'hit';
        const response: MarkedResponse = new Response(cached, { status: 200, headers: record });
        response[completeResponse] = true;
        return response;
      },
      handler: async ({ c, params, auth, signal }) => {
        const notFound = () =>
          new TributaryError('NOT_FOUND', `table ${params.layer}.${params.name} does not exist`);
        const described = await describeCached(params.layer, params.name);
        const table = described ? tableForTenant(described, auth?.tenant) : null;
        if (!table) throw notFound();
        const parsed = parseTableQuery(table, c.req.queries());
        const tenant = auth?.tenant;
        const tableKey = `${table.layer}.${table.name}`;
        const cacheable = params.layer === 'gold' && tables.onCommit !== undefined;
        const queryKey = rawQueryKey(c, auth);
        if (cacheable && shared !== null) {
          const hit = await shared.get(tableKey, queryKey);
          if (hit !== undefined) {
            cacheHits.inc();
            return c.body(hit, 200, { 'content-type': 'application/json', 'x-cache': 'hit' });
          }
        }
        if (cacheable) cacheMisses.inc();
        const generation = shared !== null ? await shared.generation(tableKey) : cache.generation(tableKey);
        const filters =
          tenant !== undefined
            ? [...parsed.filters, { column: table.tenantColumn!, op: 'eq' as const, value: tenant }]
            : parsed.filters;
        const page = await tables
          .readRows({ layer: params.layer, name: params.name, ...parsed, filters, signal })
          .catch((error: unknown) => {
            throw tableReadError(error, tableKey, filters);
          });
        const body = JSON.stringify({
          table: tableKey,
          columns: page.columns,
          rows: page.rows,
          total: page.total,
          limit: parsed.limit,
          offset: parsed.offset,
        });
        if (cacheable && shared !== null) await shared.set(tableKey, queryKey, generation, body);
        else if (cacheable) cache.set(tableKey, queryKey, generation, body);
        return c.body(body, 200, {
          'content-type': 'application/json',
          'x-cache': cacheable ? 'miss' : 'off',
        });
      },
    });
  }

  // ---- pipelines and status ------------------------------------------------------------------
  const visiblePipelines = (auth: AuthInfo | undefined) =>
    pipelines.filter((p) => auth?.tenant === undefined || p.tenantScoped === true);
  router.route({
    method: 'get',
    path: '/api/pipelines',
    summary: 'Registered pipelines and their dashboard pages',
    tags: ['pipelines'],
    scope: 'read',
    responses: {
      200: { description: 'pipelines', schema: z.object({ pipelines: z.array(pipelineInfoSchema) }) },
    },
    handler: ({ auth }) =>
      Promise.resolve({
        pipelines: visiblePipelines(auth).map((p) => ({
          name: p.name,
          title: p.title,
          ...(p.description ? { description: p.description } : {}),
          tenantScoped: p.tenantScoped === true,
          ...(p.page ? { page: p.page } : {}),
        })),
      }),
  });

  const status = options.status;
  if (status) {
    router.route({
      method: 'get',
      path: '/api/status',
      summary: 'Pipelines, jobs, lag, watermarks, checkpoints, DLQ and late counts',
      tags: ['pipelines'],
      scope: 'read',
      responses: { 200: { description: 'status', schema: statusSchema } },
      handler: async ({ auth }) => filterStatus(await status.getStatus(), auth?.tenant),
    });
  }

  // ---- live events (SSE) ---------------------------------------------------------------------
  router.route({
    method: 'post',
    path: '/api/events/token',
    summary: 'Mint a short-lived token for the SSE stream (EventSource cannot send headers)',
    tags: ['events'],
    scope: 'read',
    responses: {
      200: { description: 'token', schema: z.object({ token: z.string(), expiresAtMs: z.number() }) },
    },
    handler: ({ auth }) => Promise.resolve(sseTokens.mint(auth!.keyId, clock.now())),
  });

  router.route({
    method: 'get',
    path: '/api/events',
    summary: 'Server-Sent Events: window results, live views, lake commits, status ticks',
    description:
      'Authenticate with the header, or with `?token=` from POST /api/events/token. `types` filters event names (`window.*` matches a prefix).',
    tags: ['events'],
    scope: 'read',
    allowQueryToken: true,
    timeoutMs: null,
    query: z.object({
      token: z.string().max(512).optional().describe('SSE token from POST /api/events/token'),
      types: z.string().max(1000).optional().describe('Comma-separated event names; name.* matches a prefix'),
    }),
    responses: { 200: { description: 'event stream', contentType: 'text/event-stream' } },
    handler: ({ c, auth, query }) => {
      const patterns = query.types ? query.types.split(',').filter(Boolean) : [];
      const wanted = (type: string) =>
        patterns.length === 0 ||
        patterns.some((p) => (p.endsWith('*') ? type.startsWith(p.slice(0, -1)) : type === p));
      sseClients.inc();
      return Promise.resolve(
        streamSSE(c, async (stream) => {
          const queue: LiveEvent[] = [];
          let closed = false;
          let wake: (() => void) | undefined;
          const unsubscribe = events.subscribe((event) => {
            if (!visibleTo(event.tenant, auth!.tenant) || !wanted(event.type)) return;
            if (queue.length >= sseQueueMax) queue.shift();
            queue.push(event);
            wake?.();
          });
          const end = () => {
            closed = true;
            wake?.();
          };
          openStreams.add(end);
          stream.onAbort(end);
          try {
            await stream.writeSSE({
              event: 'ready',
              data: JSON.stringify({ keyId: auth!.keyId, tenant: auth!.tenant ?? null }),
              retry: 3000,
            });
            let sequence = 0;
            while (!closed) {
              if (queue.length === 0) {
                let timer: NodeJS.Timeout | undefined;
                await new Promise<void>((resolve) => {
                  wake = resolve;
                  timer = setTimeout(resolve, keepAliveMs);
                });
                clearTimeout(timer);
                wake = undefined;
                if (closed) break;
                if (queue.length === 0) {
                  await stream.write(': keepalive\n\n');
                  continue;
                }
              }
              const event = queue.shift()!;
              sequence += 1;
              await stream.writeSSE({
                event: event.type,
                data: JSON.stringify(event.data ?? null),
                id: String(sequence),
              });
            }
          } finally {
            unsubscribe();
            openStreams.delete(end);
          }
        }),
      );
    },
  });

  router.route({
    method: 'get',
    path: '/api/whoami',
    summary: 'The calling key: id, name, scopes and tenant (the dashboard adapts to it)',
    tags: ['platform'],
    scope: 'read',
    responses: {
      200: {
        description: 'caller',
        schema: z.object({
          keyId: z.string(),
          name: z.string(),
          scopes: z.array(z.string()),
          tenant: z.string().nullable(),
        }),
      },
    },
    handler: ({ auth }) =>
      Promise.resolve({
        keyId: auth!.keyId,
        name: auth!.name,
        scopes: auth!.scopes,
        tenant: auth!.tenant ?? null,
      }),
  });

  // ---- admin and optional features ------------------------------------------------------------
  router.route({
    method: 'get',
    path: '/api/keys',
    summary: 'API keys (ids, names, scopes, tenants; never secrets)',
    tags: ['admin'],
    scope: 'admin',
    responses: {
      200: {
        description: 'keys',
        schema: z.object({
          keys: z.array(
            z.object({
              id: z.string(),
              name: z.string(),
              scopes: z.array(z.string()),
              tenant: z.string().nullable(),
              createdAtMs: z.number(),
              revokedAtMs: z.number().nullable(),
            }),
          ),
        }),
      },
    },
    // A key bound to a tenant sees only that tenant's keys; only unbound admin keys see all.
    handler: ({ auth }) =>
      Promise.resolve({
        keys: keys
          .list()
          .filter((k) => auth?.tenant === undefined || k.tenant === auth.tenant)
          .map((k) => ({
            id: k.id,
            name: k.name,
            scopes: k.scopes,
            tenant: k.tenant,
            createdAtMs: k.createdAtMs,
            revokedAtMs: k.revokedAtMs,
          })),
      }),
  });

  const ask = options.ask;
  if (ask) {
    router.route({
      method: 'post',
      path: '/api/ask',
      summary: 'Ask a question over ingested documents (retrieval-augmented answer with sources)',
      tags: ['ml'],
      scope: 'read',
      body: z.object({
        question: z.string().min(1).max(2000),
        company: z
          .string()
          .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/)
          .optional()
          .describe('Whose documents to search; fixed to the key’s tenant for tenant-bound keys'),
        topK: z.number().int().min(1).max(50).optional(),
      }),
      responses: { 200: { description: 'answer with sources' } },
      handler: async ({ body, auth, signal }) => {
        const company = auth?.tenant ?? body.company;
        if (company === undefined)
          throw new TributaryError(
            'INVALID_ARGUMENT',
            'body.company is required for keys not bound to a tenant',
          );
        return ask(body.question, { company, signal, ...(body.topK ? { topK: body.topK } : {}) });
      },
    });
  }

  for (const pipeline of pipelines) pipeline.routes?.(router);

  // ---- assembly ------------------------------------------------------------------------------
  const durationChildren = new Map<string, ReturnType<typeof requestDuration.labels>>();
  const app = new Hono();
  app.onError(handleError);
  app.notFound((c) => c.json(errorBody('NOT_FOUND', `no route ${c.req.method} ${c.req.path}`), 404));
  app.use('*', async (c, next) => {
    // performance.now() is a plain double: no BigInt allocation per request.
    const startMs = performance.now();
    requestsTotal += 1;
    await next();
    const seconds = (performance.now() - startMs) / 1000;
    const route = c.req.routePath || 'unmatched';
    const key = `${c.req.method} ${route} ${c.res.status}`;
    // Labelled children are looked up once per (method, route, status): hashing labels on every
    // request shows up in cached-read profiles.
    let child = durationChildren.get(key);
    if (!child) {
      child = requestDuration.labels(c.req.method, route, String(c.res.status));
      if (durationChildren.size < 1000) durationChildren.set(key, child);
    }
    child.observe(seconds);
  });
  // Documents (dashboard, docs) get the full browser hardening set; JSON and text API answers get
  // the short set OWASP recommends for APIs (each extra header costs on every cached read).
  const documentHeaders = secureHeaders({
    contentSecurityPolicy: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'"],
      imgSrc: ["'self'", 'data:'],
      connectSrc: ["'self'"],
      objectSrc: ["'none'"],
      baseUri: ["'self'"],
      frameAncestors: ["'none'"],
      formAction: ["'self'"],
    },
    crossOriginEmbedderPolicy: false,
  });
  app.use('*', async (c, next) => {
    const path = c.req.path;
    if (path === '/' || path === '/docs' || path.startsWith('/ui/'))
      return documentHeaders(c as Parameters<typeof documentHeaders>[0], next);
    await next();
    // Added after the handler, where absent (a handler's own value wins, as it did when these were
    // set first); cache hits already carry them in their plain header record.
    if ((c.res as MarkedResponse)[completeResponse]) return;
    const headers = c.res.headers;
    for (const [name, value] of apiSecurityHeaderEntries) if (!headers.has(name)) headers.set(name, value);
  });
  // The body limit runs per route (routes may declare their own, e.g. uploads); see ApiRouter.mount.
  const bodyLimitBytes = options.bodyLimitBytes ?? limits.httpBodyBytesMax;

  if (options.ingest) {
    const ingest = options.ingest;
    const ingestRoute: StoredRoute = {
      method: 'post',
      path: '/api/ingest/*',
      summary: 'ingest',
      scope: 'ingest',
      responses: {},
      handler: () => Promise.resolve(undefined),
    };
    app.use('/api/ingest/*', bodyLimitMiddleware(bodyLimitBytes));
    app.use('/api/ingest/*', async (c, next) => {
      const { auth, headers } = await guard(c as Context, ingestRoute);
      for (const name in headers) c.header(name, headers[name]);
      // Ingest topics are not tenant-scoped: a tenant-bound key could write into (or poison)
      // another tenant's stream, so only sub-apps that check the tenant themselves accept one.
      if (auth?.tenant !== undefined && ingest.tenantAware !== true) {
        throw new TributaryError(
          'FORBIDDEN',
          `key ${auth.keyId} is bound to tenant "${auth.tenant}", and /api/ingest topics are not tenant-scoped; use a key without a tenant`,
        );
      }
      c.set('auth' as never, auth as never);
      await next();
    });
    app.route('/api/ingest', ingest.app);
  }
  if (options.schemaRegistry) {
    const registryRoutes = new Map<string, StoredRoute>();
    const authorize = async (c: Context, scope: StoredRoute['scope']) => {
      let route = registryRoutes.get(scope);
      if (route === undefined) {
        route = {
          method: 'get',
          path: '/schema-registry/*',
          summary: 'schema registry',
          scope,
          responses: {},
          handler: () => Promise.resolve(undefined),
        };
        registryRoutes.set(scope, route);
      }
      const { auth, headers } = await guard(c, route);
      for (const name in headers) c.header(name, headers[name]);
      if (auth?.tenant !== undefined)
        throw new TributaryError(
          'FORBIDDEN',
          `key ${auth.keyId} is bound to tenant "${auth.tenant}"; schema registry subjects belong to no tenant`,
        );
    };
    app.use('/schema-registry/*', bodyLimitMiddleware(bodyLimitBytes));
    app.route('/schema-registry', createSchemaRegistryApp(options.schemaRegistry, authorize));
  }
  // Routes are cached only where commits invalidate them: without a table provider reporting
  // commits, a cached answer could outlive the data it was read from.
  router.mount(app, guard, {
    timeoutMs: requestTimeoutMs,
    bodyLimitBytes,
    ...(options.tables?.onCommit ? { responseCache } : {}),
  });
  if (options.ui !== false) app.route('/', createUiRoutes(options.ui ?? {}));

  // Routes are fixed once the app is built, so the document is rendered once.
  let openapiDocument: OpenApiDocument | undefined;
  function openapi(): OpenApiDocument {
    if (openapiDocument) return openapiDocument;
    const mounted = (prefix: string, paths: Record<string, Record<string, unknown>>) =>
      Object.entries(paths).map(([p, item]): [string, Record<string, unknown>] => [`${prefix}${p}`, item]);
    const ingestPaths = Object.fromEntries([
      ...mounted('/api/ingest', options.ingest?.openapiPaths ?? {}),
      ...mounted('/schema-registry', options.schemaRegistry ? schemaRegistryOpenApiPaths() : {}),
    ]);
    openapiDocument = buildOpenApiDocument(
      router.routes(),
      {
        title: 'Tributary API',
        version: options.version ?? '0.1.0',
        description:
          'Lake tables, pipeline status, live events and ingestion. Keys: `tributary keys create --scope read`.',
      },
      ingestPaths,
    );
    return openapiDocument;
  }

  const statusTickMs = options.statusTickMs ?? 2000;
  if (statusTickMs > 0) {
    let lastRequests = 0;
    let lastMs = clock.now();
    let ticking = false;
    const timer = setInterval(() => {
      if (openStreams.size === 0 || ticking) return;
      ticking = true;
      const nowMs = clock.now();
      const requestsPerSecond = ((requestsTotal - lastRequests) * 1000) / Math.max(1, nowMs - lastMs);
      lastRequests = requestsTotal;
      lastMs = nowMs;
      void (async () => {
        try {
          const snapshot = status
            ? await status.getStatus()
            : { generatedAtMs: nowMs, pipelines: [], jobs: [] };
          events.publish({
            type: 'status.tick',
            data: { ...snapshot, api: { requestsPerSecond, rssBytes: process.memoryUsage.rss() } },
          });
        } catch (error) {
          handleReadinessFailure('status', error);
        } finally {
          ticking = false;
        }
      })();
    }, statusTickMs);
    timer.unref();
    closers.push(() => clearInterval(timer));
  }

  return {
    app,
    router,
    events,
    cache,
    responseCache,
    openapi,
    close: async () => {
      for (const end of [...openStreams]) end();
      for (const close of closers) close();
      await rateLimiter.close();
      await responseCache.close?.();
    },
  };
}

function handleReadinessFailure(name: string, error: unknown): void {
  statusLog.warn({ err: error, check: name }, 'dependency check failed');
}
