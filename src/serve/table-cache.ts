import { counter, limits } from '../core/index.js';
import type { ReadCache, ResponseCache } from './cache.js';
import { groupsOfTable } from './route-cache.js';
import { cacheSpecOf, type ApiRouter } from './router.js';
import type { EventBus, ServedLayer, TableInfo, TableProvider } from './types.js';

const cacheLookups = counter('tributary_api_cache_lookups_total', 'Gold read cache lookups', ['result']);
export const goldCacheHits = cacheLookups.labels('hit');
export const goldCacheMisses = cacheLookups.labels('miss');

export interface CommitInvalidationOptions {
  /** Reports commits through `onCommit` (a provider without it needs no invalidation). */
  tables: TableProvider;
  /** The in-process gold read cache. */
  cache: ReadCache;
  /** The cache of routes declaring `cache: { tables }` (the in-process one, or a shared one). */
  responseCache: ResponseCache;
  router: ApiRouter;
  events: EventBus;
  onError(error: unknown): void;
}

/**
 * On every lake commit: drops the table's gold reads and the groups of cacheable routes that read
 * it, and publishes `lake.commit` to live clients. Returns the unsubscribe function.
 */
export function invalidateOnCommit(options: CommitInvalidationOptions): () => void {
  const { tables, cache, responseCache, router, events } = options;
  if (!tables.onCommit) return () => {};
  /** The response cache when it is not the in-process one (Redis): gold reads go there too. */
  const shared = responseCache === cache ? null : responseCache;
  return tables.onCommit((table) => {
    const tableKey = `${table.layer}.${table.name}`;
    cache.invalidate(tableKey);
    // Cacheable routes over this table (alone, or with others); the gold cache above already
    // covers a route over this table alone when both are the in-process cache.
    const specs = router.routes().flatMap((r) => cacheSpecOf(r) ?? []);
    const groups = groupsOfTable(specs, tableKey);
    // Gold table reads are cached under the table itself.
    if (shared !== null && !groups.includes(tableKey)) groups.push(tableKey);
    for (const group of groups) {
      if (shared === null && group === tableKey) continue;
      void Promise.resolve(responseCache.invalidate(group)).catch((error: unknown) => options.onError(error));
    }
    events.publish({ type: 'lake.commit', data: { layer: table.layer, name: table.name } });
  });
}

/**
 * Table descriptions only change on commits, so with commit notifications they are kept until
 * the table's next commit (same generation as the read cache); without, they are read each time.
 */
export class TableDescriptions {
  readonly #descriptions = new Map<string, { generation: number; info: TableInfo }>();
  readonly #tables: TableProvider;
  readonly #cache: ReadCache;

  constructor(tables: TableProvider, cache: ReadCache) {
    this.#tables = tables;
    this.#cache = cache;
  }

  async describe(layer: ServedLayer, name: string): Promise<TableInfo | null> {
    if (!this.#tables.onCommit) return this.#tables.describeTable(layer, name);
    const tableKey = `${layer}.${name}`;
    const generation = this.#cache.generation(tableKey);
    const hit = this.#descriptions.get(tableKey);
    if (hit && hit.generation === generation) return hit.info;
    const info = await this.#tables.describeTable(layer, name);
    if (info && this.#cache.generation(tableKey) === generation) {
      if (this.#descriptions.size >= limits.apiTableDescriptionsMax) this.#descriptions.clear();
      this.#descriptions.set(tableKey, { generation, info });
    }
    return info;
  }
}
