import { z } from 'zod';
import { childLogger, metricsRegistry, TributaryError } from '../core/index.js';
import { visibleTo } from './events.js';
import type { AuthInfo } from './keys.js';
import { metricsVisibleTo } from './metrics-text.js';
import type { ApiRouter, OpenApiDocument } from './router.js';
import type { PipelineModule, PlatformStatus, ReadinessCheck, StatusProvider } from './types.js';

const serveLog = childLogger('serve');

/** How long one readiness check may take before it counts as failed. */
const readinessTimeoutMs = 2000;

/** Logs a failed dependency (readiness check, status snapshot, cache invalidation) in full. */
export function logDependencyFailure(name: string, error: unknown): void {
  serveLog.warn({ err: error, check: name }, 'dependency check failed');
}

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

/** What a key sees of the platform's status: everything, or its tenant's pipelines and jobs. */
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

async function runCheck(check: ReadinessCheck) {
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
    logDependencyFailure(check.name, error);
    return {
      name: check.name,
      ok: false,
      latencyMs: Date.now() - startMs,
      code: error instanceof TributaryError ? error.code : 'INTERNAL',
    };
  } finally {
    clearTimeout(timer);
  }
}

export interface PlatformRoutesOptions {
  /** The checks `/ready` runs, each bounded by a timeout. */
  readiness: () => ReadinessCheck[];
  /** Serve /metrics without a key (default true). */
  metricsPublic?: boolean;
  openapi: () => OpenApiDocument;
}

/** `/health`, `/ready`, `/metrics` and `/openapi.json`. */
export function registerPlatformRoutes(router: ApiRouter, options: PlatformRoutesOptions): void {
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
      const results = await Promise.all(options.readiness().map(runCheck));
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
    handler: () => Promise.resolve(options.openapi()),
  });
}

/** `/api/pipelines` (what a key may see) and, with a status provider, `/api/status`. */
export function registerStatusRoutes(
  router: ApiRouter,
  pipelines: readonly PipelineModule[],
  status: StatusProvider | undefined,
): void {
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
}
