import type { Context } from 'hono';
import { z } from 'zod';
import { requestHeader, TributaryError, type Clock } from '../core/index.js';
import type { SseTokens } from './events.js';
import { hasScope, type AuthInfo, type KeyStore } from './keys.js';
import { MemoryRateLimiter, type RateLimitDecision, type RateLimiter } from './rate-limit.js';
import type { ApiRouter, GuardResult, StoredRoute } from './router.js';

/** Auth, scope and rate limit of one request, run before every route (see `ApiRouter.mount`). */
export type Guard = (c: Context, route: StoredRoute) => GuardResult | Promise<GuardResult>;

export interface GuardOptions {
  keys: KeyStore;
  /** Verifies `?token=` on routes that allow it (the SSE stream: EventSource cannot send headers). */
  sseTokens: SseTokens;
  rateLimiter: RateLimiter;
  clock: Clock;
}

/** The key a request presents: `Authorization: Bearer`, HTTP Basic (key as password), raw header or `x-api-key`. */
function credentialOf(c: Context): string | undefined {
  const header = requestHeader(c, 'authorization');
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
  return requestHeader(c, 'x-api-key');
}

/**
 * The guard of every API route: verifies the key (or an SSE token where the route allows one),
 * checks the route's scope, and takes one token from the key's rate limit.
 */
export function createGuard({ keys, sseTokens, rateLimiter, clock }: GuardOptions): Guard {
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
  return (c, route) => {
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
}

/**
 * Runs the guard for a sub-app mounted outside the router (ingest, schema registry) as the given
 * stand-in route (only its scope matters to the guard), and copies its headers onto the answer.
 */
export async function guardMounted(
  guard: Guard,
  c: Context,
  route: StoredRoute,
): Promise<AuthInfo | undefined> {
  const { auth, headers } = await guard(c, route);
  for (const name in headers) c.header(name, headers[name]);
  return auth;
}

/** The stand-in route `guardMounted` checks a mounted sub-app's requests against. */
export function mountedRoute(path: string, scope: StoredRoute['scope']): StoredRoute {
  return {
    method: 'post',
    path,
    summary: path,
    scope,
    responses: {},
    handler: () => Promise.resolve(undefined),
  };
}

/** `/api/whoami` and `/api/keys`: the calling key, and (admin) the key list without secrets. */
export function registerKeyRoutes(router: ApiRouter, keys: KeyStore): void {
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
}
