import type { MiddlewareHandler } from 'hono';
import { secureHeaders } from 'hono/secure-headers';
import { histogram } from '../core/index.js';

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

/** A cached JSON answer: every API header and `x-cache: hit`. */
export function completeJsonResponse(
  body: Uint8Array<ArrayBuffer>,
  headers: Record<string, string>,
): Response {
  return apiJsonResponse(200, body, headers, 'hit');
}

/**
 * A JSON answer that already carries every API header, so the header middleware leaves it alone.
 * One Response from a plain record, no Headers object (see apiSecurityHeaders): with such a body
 * and a plain record, @hono/node-server writes it straight to the socket.
 */
export function apiJsonResponse(
  status: number,
  body: Uint8Array<ArrayBuffer> | string,
  headers: Record<string, string>,
  cache?: 'hit',
): Response {
  // Content-Length comes first so its scan for one stops at once.
  const record: Record<string, string> = {
    'content-length': String(typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength),
  };
  for (const [name, value] of apiSecurityHeaderEntries) record[name] = value;
  for (const name in headers) record[name] = headers[name]!;
  record['content-type'] = 'application/json';
  if (cache !== undefined) record['x-cache'] = cache;
  const response: MarkedResponse = new Response(body, { status, headers: record });
  response[completeResponse] = true;
  return response;
}

/**
 * Documents (dashboard, docs) get the full browser hardening set; JSON and text API answers get
 * the short set OWASP recommends for APIs (each extra header costs on every cached read).
 */
export function securityHeaders(): MiddlewareHandler {
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
  return async (c, next) => {
    const path = c.req.path;
    if (path === '/' || path === '/docs' || path.startsWith('/ui/')) return documentHeaders(c, next);
    await next();
    // Added after the handler, where absent (a handler's own value wins, as it did when these were
    // set first); cache hits already carry them in their plain header record.
    if ((c.res as MarkedResponse)[completeResponse]) return;
    const headers = c.res.headers;
    for (const [name, value] of apiSecurityHeaderEntries) if (!headers.has(name)) headers.set(name, value);
  };
}

const requestDuration = histogram('tributary_http_request_duration_seconds', 'API request duration', [
  'method',
  'route',
  'status',
]);

/** Observes each request's duration by method, route and status; `onRequest` counts requests. */
export function requestMetrics(onRequest: () => void): MiddlewareHandler {
  const durationChildren = new Map<string, ReturnType<typeof requestDuration.labels>>();
  return async (c, next) => {
    // performance.now() is a plain double: no BigInt allocation per request.
    const startMs = performance.now();
    onRequest();
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
  };
}
