import type { Context, Hono, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { z } from 'zod';
import {
  abortWhenClientGone,
  discardRequestBody,
  parseJsonBounded,
  readRequestBody,
  requestHeader,
  TributaryError,
} from '../core/index.js';
import { errorBody } from './http-errors.js';
import type { ResponseCache } from './cache.js';
import type { ApiScope, AuthInfo } from './keys.js';
import { cachedAnswer, type RouteCacheSpec } from './route-cache.js';

/** `public` routes need no key; the others need a key holding that scope (admin implies all). */
export type RouteScope = 'public' | ApiScope;
export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

export interface RouteResponse {
  description: string;
  schema?: z.ZodType;
  /** Defaults to application/json. */
  contentType?: string;
}

export interface HandlerContext<P, Q, B> {
  c: Context;
  params: P;
  query: Q;
  body: B;
  /** Set for every non-public route (and for public ones when a valid key was sent). */
  auth: AuthInfo | undefined;
  /**
   * Aborted when the route's timeout passes (reason: the TIMEOUT error) or the client goes away;
   * pass it to queries and fetches so the work stops with the answer.
   */
  signal: AbortSignal;
}

type AnyObject = z.ZodObject;

/**
 * One route: the definition feeds both the Hono handler (validation, auth, limits) and the
 * OpenAPI document, so the two cannot drift apart.
 */
export interface RouteDefinition<
  P extends AnyObject = AnyObject,
  Q extends AnyObject = AnyObject,
  B extends z.ZodType = z.ZodType,
> {
  method: HttpMethod;
  /** Hono syntax: `/api/tables/:layer/:name`. */
  path: string;
  summary: string;
  description?: string;
  tags?: string[];
  scope: RouteScope;
  params?: P;
  query?: Q;
  body?: B;
  /** Extra OpenAPI parameters the zod schemas cannot express (e.g. `filter[col]` deep objects). */
  extraParameters?: Record<string, unknown>[];
  responses: Record<number, RouteResponse>;
  /** Per-route timeout; null for long-lived responses (SSE). Default: the app's request timeout. */
  timeoutMs?: number | null;
  /** Accept an SSE token (`?token=`) instead of a header; only for EventSource routes. */
  allowQueryToken?: boolean;
  /**
   * Largest request body this route accepts, instead of the app's default (`AppOptions.bodyLimitBytes`);
   * e.g. file uploads. Larger bodies get 413 PAYLOAD_TOO_LARGE before the handler runs.
   */
  bodyLimitBytes?: number;
  /**
   * Runs after auth and before validation; a Response short-circuits the route. For answers that
   * were validated when first computed (cached reads), so hits skip parsing entirely. `headers` are
   * the per-request headers the guard produced (e.g. `x-ratelimit-remaining`): the returned
   * Response must carry them itself.
   */
  fastPath?: (
    c: Context,
    auth: AuthInfo | undefined,
    headers: Readonly<Record<string, string>>,
  ) => Response | undefined;
  /**
   * GET routes: cache the JSON answer until one of these lake tables commits (per caller tenant
   * and exact path + query string), in the app's response cache (in process by default, Redis with
   * `responseCache: redis`).
   * @example cache: { tables: ['gold.kpi_summary'] }
   */
  cache?: RouteCacheSpec;
  handler(context: HandlerContext<z.infer<P>, z.infer<Q>, z.infer<B>>): Promise<unknown>;
}

/** A route with its generic parameters erased, as stored by the router. */
export type StoredRoute = Omit<RouteDefinition, 'handler'> & {
  handler(context: HandlerContext<unknown, unknown, unknown>): Promise<unknown>;
};

/** What the guard (auth, scope, rate limit) hands the route: the caller and headers to answer with. */
export interface GuardResult {
  auth: AuthInfo | undefined;
  /** Lower-case header names → values, e.g. `x-ratelimit-remaining`. */
  headers: Record<string, string>;
}

export interface MountOptions {
  /** Default per-route timeout (routes override with `timeoutMs`). */
  timeoutMs: number;
  /** Default body limit for routes that may carry a body (routes override with `bodyLimitBytes`). */
  bodyLimitBytes: number;
  /** Where routes that declare `cache` keep their answers; without it they are not cached. */
  responseCache?: ResponseCache;
}

/**
 * The 413 check for a body-carrying request. Only requests that may carry a body pay for it (it
 * materializes the full Request); the limit also holds for chunked bodies without Content-Length.
 */
export function bodyLimitMiddleware(maxBytes: number): MiddlewareHandler {
  const tooLarge = (c: Context) =>
    c.json(errorBody('PAYLOAD_TOO_LARGE', `request body exceeds ${maxBytes} bytes`), 413, {
      connection: 'close',
    });
  const limit = bodyLimit({ maxSize: maxBytes, onError: tooLarge });
  return async (c, next) => {
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    const declared = Number(requestHeader(c, 'content-length') ?? 'NaN');
    if (Number.isFinite(declared) && declared > maxBytes) {
      // Answered before the body is read: read it away first (up to a bound), so the client,
      // still sending, gets the 413 instead of a connection reset.
      await discardRequestBody(c);
      return tooLarge(c);
    }
    // A declared length within the limit is all Node's HTTP parser delivers, so only chunked
    // bodies need counting. Deciding that from Node's own headers (as Hono's bodyLimit does from
    // the WHATWG ones) leaves the body unread, and routes that read Node's stream directly (HTTP
    // ingest) never pay for building a WHATWG Request.
    if (Number.isFinite(declared) && requestHeader(c, 'transfer-encoding') === undefined) return next();
    return limit(c, next);
  };
}

/** Request bodies as text (a leading BOM dropped, as `Request.text()` does). */
const utf8 = new TextDecoder();

function validationMessage(where: string, error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${where}${issue.path.length > 0 ? `.${issue.path.join('.')}` : ''}: ${issue.message}`)
    .join('; ');
}

/**
 * Collects route definitions; `createApp` mounts them and renders the OpenAPI document from them.
 * Pipelines receive the same router, so their routes get auth, limits and documentation for free.
 */
export class ApiRouter {
  readonly #routes: StoredRoute[] = [];

  route<P extends AnyObject = AnyObject, Q extends AnyObject = AnyObject, B extends z.ZodType = z.ZodType>(
    definition: RouteDefinition<P, Q, B>,
  ): this {
    if (!definition.path.startsWith('/'))
      throw new TributaryError('INVALID_ARGUMENT', `route path ${definition.path} must start with /`);
    const clash = this.#routes.find((r) => r.method === definition.method && r.path === definition.path);
    if (clash)
      throw new TributaryError(
        'ALREADY_EXISTS',
        `route ${definition.method.toUpperCase()} ${definition.path} is defined twice`,
      );
    if (
      definition.bodyLimitBytes !== undefined &&
      !(Number.isSafeInteger(definition.bodyLimitBytes) && definition.bodyLimitBytes > 0)
    )
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `route ${definition.method.toUpperCase()} ${definition.path}: bodyLimitBytes must be a positive integer, got ${definition.bodyLimitBytes}`,
      );
    this.#routes.push(definition);
    return this;
  }

  routes(): readonly StoredRoute[] {
    return this.#routes;
  }

  /**
   * Registers every route on `app`. The body limit (the route's own, else the default) runs first
   * for body-carrying methods, then `guard` (auth, scope, rate limit) returns the caller;
   * validation errors become 400 INVALID_ARGUMENT naming the field.
   */
  mount(
    app: Hono,
    guard: (c: Context, route: StoredRoute) => GuardResult | Promise<GuardResult>,
    options: MountOptions,
  ): void {
    const defaultLimit = bodyLimitMiddleware(options.bodyLimitBytes);
    const defaultTimeoutMs = options.timeoutMs;
    for (const route of this.#routes) {
      const fastPath = route.fastPath;
      const run = async (c: Context, { auth, headers }: GuardResult) => {
        for (const name in headers) c.header(name, headers[name]);
        const params = route.params ? parseOrThrow('path', route.params, c.req.param()) : {};
        const query = route.query ? parseOrThrow('query', route.query, c.req.query()) : {};
        let body: unknown = undefined;
        if (route.body) {
          const type = requestHeader(c, 'content-type') ?? '';
          if (!type.toLowerCase().startsWith('application/json')) {
            throw new TributaryError(
              'UNSUPPORTED_MEDIA_TYPE',
              `${route.path} expects Content-Type: application/json`,
            );
          }
          const bytes = await readRequestBody(c, route.bodyLimitBytes ?? options.bodyLimitBytes);
          body = parseOrThrow('body', route.body, parseJsonBounded(utf8.decode(bytes), 'request body'));
        }
        const timeoutMs = route.timeoutMs === undefined ? defaultTimeoutMs : route.timeoutMs;
        // One controller for the deadline and the client going away: the handler's signal.
        const deadline = new AbortController();
        abortWhenClientGone(c, deadline);
        const signal = deadline.signal;
        const handle = () =>
          timeoutMs === null
            ? route.handler({ c, params, query, body, auth, signal })
            : withTimeout(
                (handlerSignal) => route.handler({ c, params, query, body, auth, signal: handlerSignal }),
                deadline,
                signal,
                timeoutMs,
                `${route.method.toUpperCase()} ${route.path}`,
              );
        if (cacheSpecOf(route) !== undefined && options.responseCache !== undefined)
          return cachedAnswer(c, cacheSpecOf(route)!, auth, options.responseCache, handle);
        const result = await handle();
        if (result instanceof Response) return result;
        return c.json(result as object);
      };
      // Not async: when the guard answers synchronously and the fast path hits (a cached read),
      // the Response is returned without a promise of our own. Thrown errors reach Hono's onError
      // either way (compose awaits the handler inside its try).
      const answer = (c: Context, guarded: GuardResult): Response | Promise<Response> =>
        fastPath?.(c, guarded.auth, guarded.headers) ?? run(c, guarded);
      const handler = (c: Context): Response | Promise<Response> => {
        const guarded = guard(c, route);
        return guarded instanceof Promise ? guarded.then((g) => answer(c, g)) : answer(c, guarded);
      };
      const method = route.method.toUpperCase();
      if (route.method === 'get') app.on(method, route.path, handler);
      else
        app.on(
          method,
          route.path,
          route.bodyLimitBytes === undefined ? defaultLimit : bodyLimitMiddleware(route.bodyLimitBytes),
          async (c) => {
            try {
              return await handler(c);
            } finally {
              // What the route left unread (refused before reading, or no body expected) is read
              // away within the drain bound, so the client reads the answer, not a reset.
              await discardRequestBody(c);
            }
          },
        );
    }
  }
}

/** The cache spec of a GET route (other methods are never cached). */
export function cacheSpecOf(route: StoredRoute): RouteCacheSpec | undefined {
  return route.method === 'get' ? route.cache : undefined;
}

function parseOrThrow(where: string, schema: z.ZodType, value: unknown): unknown {
  const result = schema.safeParse(value);
  if (!result.success) throw new TributaryError('INVALID_ARGUMENT', validationMessage(where, result.error));
  return result.data;
}

/**
 * Runs `work` with a deadline: past `timeoutMs` the answer is TIMEOUT and `deadline` is aborted
 * with that error as its reason, so queries and fetches given `signal` stop too.
 */
async function withTimeout<T>(
  work: (signal: AbortSignal) => Promise<T>,
  deadline: AbortController,
  signal: AbortSignal,
  timeoutMs: number,
  what: string,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new TributaryError('TIMEOUT', `${what} did not finish within ${timeoutMs} ms`);
      deadline.abort(error);
      reject(error);
    }, timeoutMs);
  });
  try {
    return await Promise.race([work(signal), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// OpenAPI 3.1

export interface OpenApiInfo {
  title: string;
  version: string;
  description?: string;
}

export type OpenApiDocument = Record<string, unknown> & {
  openapi: string;
  paths: Record<string, Record<string, unknown>>;
};

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const result = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as Record<
    string,
    unknown
  >;
  delete result.$schema;
  return result;
}

function objectParameters(schema: AnyObject, location: 'path' | 'query'): Record<string, unknown>[] {
  const json = jsonSchema(schema, 'input');
  const properties = (json.properties ?? {}) as Record<string, Record<string, unknown>>;
  const required = new Set((json.required ?? []) as string[]);
  return Object.entries(properties).map(([name, property]) => {
    const { description, ...rest } = property;
    return {
      name,
      in: location,
      required: location === 'path' || required.has(name),
      ...(typeof description === 'string' ? { description } : {}),
      schema: rest,
    };
  });
}

const scopeDescription: Record<RouteScope, string> = {
  public: 'Public: no key needed.',
  read: 'Needs an API key with scope `read` (or `admin`).',
  ingest: 'Needs an API key with scope `ingest` (or `admin`).',
  admin: 'Needs an API key with scope `admin`.',
};

/** Renders the router's routes (plus any extra path items) as an OpenAPI 3.1 document. */
export function buildOpenApiDocument(
  routes: readonly StoredRoute[],
  info: OpenApiInfo,
  extraPaths: Record<string, Record<string, unknown>> = {},
): OpenApiDocument {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const openApiPath = route.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const parameters = [
      ...(route.params ? objectParameters(route.params, 'path') : []),
      ...(route.query ? objectParameters(route.query, 'query') : []),
      ...(route.extraParameters ?? []),
    ];
    const responses: Record<string, unknown> = {};
    for (const [status, response] of Object.entries(route.responses)) {
      responses[status] = {
        description: response.description,
        ...(response.schema || response.contentType
          ? {
              content: {
                [response.contentType ?? 'application/json']: {
                  schema: response.schema ? jsonSchema(response.schema, 'output') : {},
                },
              },
            }
          : {}),
      };
    }
    if (route.scope !== 'public') {
      responses['401'] ??= { $ref: '#/components/responses/Unauthenticated' };
      responses['403'] ??= { $ref: '#/components/responses/Forbidden' };
      responses['429'] ??= { $ref: '#/components/responses/RateLimited' };
    }
    (paths[openApiPath] ??= {})[route.method] = {
      operationId: `${route.method}${route.path.replace(/[^A-Za-z0-9]+(.)?/g, (_, ch: string | undefined) => (ch ?? '').toUpperCase())}`,
      summary: route.summary,
      description: [route.description, scopeDescription[route.scope]].filter(Boolean).join('\n\n'),
      tags: route.tags ?? [],
      'x-tributary-scope': route.scope,
      ...(route.bodyLimitBytes !== undefined ? { 'x-tributary-body-limit-bytes': route.bodyLimitBytes } : {}),
      ...(cacheSpecOf(route) !== undefined ? { 'x-tributary-cache-tables': cacheSpecOf(route)!.tables } : {}),
      ...(route.scope === 'public' ? { security: [] } : {}),
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(route.body
        ? {
            requestBody: {
              required: true,
              content: { 'application/json': { schema: jsonSchema(route.body, 'input') } },
            },
          }
        : {}),
      responses,
    };
  }
  for (const [pathName, item] of Object.entries(extraPaths))
    paths[pathName] = { ...(paths[pathName] ?? {}), ...item };
  const errorSchema = {
    type: 'object',
    properties: {
      error: {
        type: 'object',
        properties: { code: { type: 'string' }, message: { type: 'string' } },
        required: ['code', 'message'],
      },
    },
    required: ['error'],
  };
  return {
    openapi: '3.1.0',
    info,
    servers: [{ url: '/' }],
    security: [{ bearerKey: [] }],
    paths,
    components: {
      securitySchemes: {
        bearerKey: {
          type: 'http',
          scheme: 'bearer',
          description: 'API key `trb_<id>_<secret>` (`tributary keys create`)',
        },
      },
      schemas: { Error: errorSchema },
      responses: {
        Unauthenticated: {
          description: 'No or invalid API key',
          content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
        },
        Forbidden: {
          description: 'Key lacks the scope',
          content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
        },
        RateLimited: {
          description: 'Rate limit exceeded; see Retry-After',
          headers: { 'Retry-After': { schema: { type: 'integer' } } },
          content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
        },
      },
    },
  };
}
