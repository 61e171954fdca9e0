import type { Context } from 'hono';
import { z } from 'zod';
import { TributaryError } from '../core/index.js';
import { completeJsonResponse } from './api-headers.js';
import type { ReadCache, ResponseCache } from './cache.js';
import type { AuthInfo } from './keys.js';
import type { ApiRouter } from './router.js';
import { goldCacheHits, goldCacheMisses, TableDescriptions } from './table-cache.js';
import { parseTableQuery, tableQueryLimits, tableReadError } from './table-query.js';
import { servedLayers, type TableInfo, type TableProvider } from './types.js';

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

/** Cache key of a read: the caller's tenant and the exact query string. */
function rawQueryKey(c: Context, auth: AuthInfo | undefined): string {
  const url = c.req.url;
  const question = url.indexOf('?');
  return `${auth?.tenant ?? ''}\u0000${question < 0 ? '' : url.slice(question + 1)}`;
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

export interface TableRoutesOptions {
  tables: TableProvider;
  /** The in-process gold read cache (also the generation source of table descriptions). */
  cache: ReadCache;
  /** A shared response cache (Redis) that gold reads go to instead of `cache`; null for none. */
  shared: ResponseCache | null;
}

/**
 * `GET /api/tables` and `GET /api/tables/:layer/:name`. Gold reads are cached until the table's
 * next commit when the provider reports commits: in process (answered on the fast path, before
 * any promise) or in the shared cache.
 */
export function registerTableRoutes(router: ApiRouter, { tables, cache, shared }: TableRoutesOptions): void {
  const descriptions = new TableDescriptions(tables, cache);
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
      goldCacheHits.inc();
      return completeJsonResponse(cached, headers);
    },
    handler: async ({ c, params, auth, signal }) => {
      const notFound = () =>
        new TributaryError('NOT_FOUND', `table ${params.layer}.${params.name} does not exist`);
      const described = await descriptions.describe(params.layer, params.name);
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
          goldCacheHits.inc();
          return c.body(hit, 200, { 'content-type': 'application/json', 'x-cache': 'hit' });
        }
      }
      if (cacheable) goldCacheMisses.inc();
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
