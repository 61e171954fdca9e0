/**
 * What `requestHeader` needs of a Hono context (structurally, so the core stays free of Hono): its
 * bindings, where @hono/node-server puts Node's request as `env.incoming`, and its request.
 */
export interface RequestHeaderSource {
  env: unknown;
  req: { header(name: string): string | undefined };
}

/** Node's request under @hono/node-server; absent in other runtimes. */
interface NodeBindings {
  incoming?: { headers: Record<string, string | string[] | undefined> };
}

/**
 * A request header (`name` in lower case), read from Node's own request when there is one. Hono's
 * `c.req.header()` builds a WHATWG Headers object from all of the request's headers first, which
 * showed as a visible share of a cached read's and of an HTTP ingest request's CPU. Repeated headers
 * read as Node joins them (`a, b`).
 */
export function requestHeader(c: RequestHeaderSource, name: string): string | undefined {
  const incoming = (c.env as NodeBindings | undefined)?.incoming;
  if (incoming === undefined) return c.req.header(name);
  const value = incoming.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}
