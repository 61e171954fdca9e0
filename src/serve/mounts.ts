import type { Context, Hono } from 'hono';
import { jsonAnswerKey, TributaryError, type JsonAnswer } from '../core/index.js';
import type { SchemaRegistry } from '../log/index.js';
import { apiJsonResponse } from './api-headers.js';
import { guardMounted, mountedRoute, type Guard } from './auth.js';
import { bodyLimitMiddleware, type StoredRoute } from './router.js';
import { createSchemaRegistryApp, schemaRegistryOpenApiPaths } from './schema-registry-routes.js';
import type { IngestMount } from './types.js';

/**
 * Mounts the connectors' ingest routes at `/api/ingest` behind the body limit and the guard
 * (scope `ingest`). Ingest topics are not tenant-scoped: tenant-bound keys get 403 unless the
 * sub-app checks the tenant itself (`tenantAware`).
 */
export function mountIngest(app: Hono, ingest: IngestMount, guard: Guard, bodyLimitBytes: number): void {
  const route = mountedRoute('/api/ingest/*', 'ingest');
  app.use('/api/ingest/*', bodyLimitMiddleware(bodyLimitBytes));
  app.use('/api/ingest/*', async (c, next) => {
    const { auth, headers } = await guard(c as Context, route);
    // Ingest topics are not tenant-scoped: a tenant-bound key could write into (or poison)
    // another tenant's stream, so only sub-apps that check the tenant themselves accept one.
    if (auth?.tenant !== undefined && ingest.tenantAware !== true) {
      for (const name in headers) c.header(name, headers[name]);
      throw new TributaryError(
        'FORBIDDEN',
        `key ${auth.keyId} is bound to tenant "${auth.tenant}", and /api/ingest topics are not tenant-scoped; use a key without a tenant`,
      );
    }
    c.set('auth' as never, auth as never);
    // The sub-app answers with the guard's headers (rate-limit state) and the API's own.
    const answer: JsonAnswer = (status, body, extra) =>
      apiJsonResponse(status, JSON.stringify(body), extra === undefined ? headers : { ...headers, ...extra });
    c.set(jsonAnswerKey as never, answer as never);
    await next();
  });
  app.route('/api/ingest', ingest.app);
}

/**
 * Mounts the Confluent Schema Registry REST API at `/schema-registry`; its routes name the scope
 * they need, and subjects belong to no tenant, so tenant-bound keys get 403.
 */
export function mountSchemaRegistry(
  app: Hono,
  registry: SchemaRegistry,
  guard: Guard,
  bodyLimitBytes: number,
): void {
  const routes = new Map<string, StoredRoute>();
  const authorize = async (c: Context, scope: StoredRoute['scope']) => {
    let route = routes.get(scope);
    if (route === undefined) {
      route = mountedRoute('/schema-registry/*', scope);
      routes.set(scope, route);
    }
    const auth = await guardMounted(guard, c, route);
    if (auth?.tenant !== undefined)
      throw new TributaryError(
        'FORBIDDEN',
        `key ${auth.keyId} is bound to tenant "${auth.tenant}"; schema registry subjects belong to no tenant`,
      );
  };
  app.use('/schema-registry/*', bodyLimitMiddleware(bodyLimitBytes));
  app.route('/schema-registry', createSchemaRegistryApp(registry, authorize));
}

/** OpenAPI paths of the mounted sub-apps, with their mount prefixes. */
export function mountedOpenApiPaths(
  ingest: IngestMount | undefined,
  registry: SchemaRegistry | undefined,
): Record<string, Record<string, unknown>> {
  const mounted = (prefix: string, paths: Record<string, Record<string, unknown>>) =>
    Object.entries(paths).map(([p, item]): [string, Record<string, unknown>] => [`${prefix}${p}`, item]);
  return Object.fromEntries([
    ...mounted('/api/ingest', ingest?.openapiPaths ?? {}),
    ...mounted('/schema-registry', registry ? schemaRegistryOpenApiPaths() : {}),
  ]);
}
