import { z } from 'zod';
import type { PipelineServices } from './types.js';

/** The OpenAPI response of a route answering `{ rows: [...] }`. */
export const rowsResponse = {
  200: { description: 'rows', schema: z.object({ rows: z.array(z.record(z.string(), z.unknown())) }) },
};

/** What the helpers below read through; `signal` is the request's (see QueryFunction). */
export type QueryServices = Pick<PipelineServices, 'query' | 'lake'> & { signal?: AbortSignal | undefined };

/**
 * Rows of a query over `table`, or none while the table does not exist yet: a fresh platform
 * answers an empty page that fills as data arrives, not an error.
 */
export async function rowsWhenPresent(
  services: QueryServices,
  table: string,
  sql: string,
  params: unknown[] = [],
): Promise<Record<string, unknown>[]> {
  if ((await services.lake.table(table).snapshot()) === null) return [];
  return services.query(sql, params, { signal: services.signal });
}

/** Rows of `table` (0 before it exists), for reconciliations. */
export async function tableRowCount(services: QueryServices, table: string): Promise<number> {
  return Number((await rowsWhenPresent(services, table, `SELECT count(*) AS n FROM ${table}`))[0]?.n ?? 0);
}
