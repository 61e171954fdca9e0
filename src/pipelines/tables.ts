import { z } from 'zod';
import type { Lake } from '../lake/index.js';
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

/** A table rebuilt whole from one SELECT (a gold aggregate). */
export interface RebuildQuery {
  table: string;
  sql: string;
}

/**
 * Replaces each table with its query's result, one commit per table (`<commitPrefix>:<table>`,
 * so a retried run is recognised); returns the rows written. Stopping (`up` shutting down) waits
 * for one statement at most, not the whole rebuild.
 */
export async function rebuildTables(
  lake: Lake,
  queries: readonly RebuildQuery[],
  commitPrefix: string,
  signal?: AbortSignal,
): Promise<number> {
  let rowsOut = 0;
  for (const query of queries) {
    signal?.throwIfAborted();
    const result = await lake
      .table(query.table)
      .writeQuery(query.sql, { mode: 'overwrite', commitId: `${commitPrefix}:${query.table}` });
    rowsOut += result.rowsAdded;
  }
  return rowsOut;
}
