import type { Context } from 'hono';
import { counter } from '../core/index.js';
import type { ResponseCache } from './cache.js';
import type { AuthInfo } from './keys.js';

/**
 * What a cacheable GET route declares (`RouteDefinition.cache`): the lake tables (`layer.name`)
 * its answer is computed from. The JSON answer is cached per caller tenant and exact path + query
 * string until one of these tables commits.
 */
export interface RouteCacheSpec {
  tables: readonly string[];
}

const lookups = counter(
  'tributary_api_response_cache_total',
  'Response cache lookups of cacheable routes by backend (memory, redis) and result (hit, miss)',
  ['backend', 'result'],
);

/**
 * The cache entry group of a route: its table, or its tables joined (a commit to any of them
 * invalidates the group; the app maps each table to the groups that contain it).
 */
export function cacheGroup(tables: readonly string[]): string {
  return [...new Set(tables)].sort().join(',');
}

/** Every group a commit to `table` invalidates, among the declared specs. */
export function groupsOfTable(specs: readonly RouteCacheSpec[], table: string): string[] {
  return [...new Set(specs.filter((s) => s.tables.includes(table)).map((s) => cacheGroup(s.tables)))];
}

/**
 * Answers a cacheable route: a hit is the stored JSON; a miss runs the handler and stores its
 * answer with the generation read before it ran (a commit meanwhile makes the entry a miss).
 * Answers the handler builds itself (a `Response`) are passed through uncached.
 */
export async function cachedAnswer(
  c: Context,
  spec: RouteCacheSpec,
  auth: AuthInfo | undefined,
  cache: ResponseCache,
  run: () => Promise<unknown>,
): Promise<Response> {
  const group = cacheGroup(spec.tables);
  const url = c.req.url;
  const question = url.indexOf('?');
  const key = `${auth?.tenant ?? ''}\u0000${c.req.path}\u0000${question < 0 ? '' : url.slice(question + 1)}`;
  const hit = await cache.get(group, key);
  if (hit !== undefined) {
    lookups.inc({ backend: cache.backend, result: 'hit' });
    return c.body(hit, 200, { 'content-type': 'application/json', 'x-cache': 'hit' });
  }
  lookups.inc({ backend: cache.backend, result: 'miss' });
  const generation = await cache.generation(group);
  const result = await run();
  if (result instanceof Response) return result;
  const body = JSON.stringify(result);
  await cache.set(group, key, generation, body);
  return c.body(body, 200, { 'content-type': 'application/json', 'x-cache': 'miss' });
}
