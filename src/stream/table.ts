/**
 * Dimension tables for stream–table joins (`keyedStream.joinTable(table, join)`): rows loaded from
 * anywhere — a lake table through read-only SQL, a PostgreSQL query — held in memory by key, and
 * reloaded in the background so the join sees changes (Flink's lookup join with a cache TTL, Kafka
 * Streams' GlobalKTable without the changelog topic).
 *
 * Lookups are synchronous against the current snapshot; a reload builds a new snapshot and swaps it
 * in whole, so a join never sees half a reload. A failed reload keeps the last good snapshot (the
 * failure is logged and counted) rather than failing the job: enrichment goes stale, it does not stop.
 *
 * @example
 * const customers = await loadTable(() => sql.query('select * from silver.customers'), {
 *   key: (row) => row.customer_id as string,
 *   refreshMs: 60_000,
 * });
 * job.keyBy((o) => o.customer_id).joinTable(customers, (order, customer) => ({ ...order, country: customer?.country }));
 */
import { childLogger, counter, toTributaryError, TributaryError } from '../core/index.js';
import type { Key, TableLookup } from './types.js';

export interface LoadTableOptions<R> {
  /** The join key of a row (the same value the stream's `keyBy` returns). */
  key: (row: R) => Key;
  /** Reload every this many ms (0 or absent: load once). */
  refreshMs?: number;
  /** Name in logs and metrics. Default 'table'. */
  name?: string;
}

export interface LoadedTable<R> extends TableLookup<Key, R> {
  readonly name: string;
  /** Rows in the current snapshot. */
  readonly size: number;
  /** Wall time of the last successful load (epoch ms). */
  readonly loadedAtMs: number;
  /** Failed reloads since the table was opened (the previous snapshot stayed in use). */
  readonly failedReloads: number;
  /** Reloads now; resolves when the new snapshot is in use, rejects (keeping the old one) on failure. */
  refresh(): Promise<void>;
  /** Stops background reloads. */
  close(): void;
}

const reloadFailures = counter(
  'tributary_stream_table_reload_failures_total',
  'Failed reloads of stream–table join tables (the previous rows stay in use)',
  ['table'],
);

/** Loads a dimension table for `joinTable`; the first load must succeed. */
export async function loadTable<R>(
  load: () => Promise<readonly R[]>,
  options: LoadTableOptions<R>,
): Promise<LoadedTable<R>> {
  const name = options.name ?? 'table';
  const refreshMs = options.refreshMs ?? 0;
  if (!Number.isFinite(refreshMs) || refreshMs < 0)
    throw new TributaryError('INVALID_ARGUMENT', `table ${name}: refreshMs must be >= 0, got ${refreshMs}`);
  const log = childLogger('stream.table', { table: name });
  let rows = new Map<Key, R>();
  let loadedAtMs = 0;
  let failedReloads = 0;
  let inFlight: Promise<void> | null = null;

  async function reload(): Promise<void> {
    const loaded = await load();
    const next = new Map<Key, R>();
    for (const row of loaded) {
      const key = options.key(row);
      if (typeof key !== 'string' && typeof key !== 'number') {
        throw new TributaryError(
          'VALIDATION_FAILED',
          `table ${name}: key of row ${JSON.stringify(row)?.slice(0, 200)} is ${typeof key}, expected a string or number`,
        );
      }
      next.set(key, row);
    }
    rows = next;
    loadedAtMs = Date.now();
  }

  function refresh(): Promise<void> {
    // Concurrent refreshes share one load.
    inFlight ??= reload()
      .catch((error: unknown) => {
        if (loadedAtMs > 0) {
          failedReloads++;
          reloadFailures.inc({ table: name });
        }
        throw toTributaryError(error);
      })
      .finally(() => {
        inFlight = null;
      });
    return inFlight;
  }

  await refresh();
  const timer =
    refreshMs > 0
      ? setInterval(() => {
          refresh().catch((error: unknown) => {
            log.warn({ err: error }, 'table reload failed; the previous rows stay in use');
          });
        }, refreshMs)
      : null;
  timer?.unref();

  return {
    name,
    get: (key: Key) => rows.get(key),
    get size() {
      return rows.size;
    },
    get loadedAtMs() {
      return loadedAtMs;
    },
    get failedReloads() {
      return failedReloads;
    },
    refresh,
    close() {
      if (timer !== null) clearInterval(timer);
    },
  };
}
