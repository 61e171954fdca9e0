/**
 * Dashboard pieces for data-quality results (`gold.quality_results`, written by the stream
 * layer's quality rules), read through the generic table route: a tile with the last run's
 * quarantined rows and a table of the last run's rules. Any pipeline page adds them for its tables.
 *
 * @example
 * const page: DashboardPage = { …, tiles: [qualityTile('silver.sales')], tables: [qualityTable('silver.sales', rules.length)] };
 */
import type { DashboardPage, TileSpec } from '../ui/page-types.js';

type TableSpec = NonNullable<DashboardPage['tables']>[number];

/** Route of a table's quality results, newest run first (rules of one run share `checked_at`). */
export function qualityResultsRoute(table: string, limit: number): string {
  return `/api/tables/gold/quality_results?table_name=eq:${encodeURIComponent(table)}&sort=-checked_at,rule&limit=${limit}`;
}

/** Rows of `table` the last run quarantined. */
export function qualityTile(table: string, label = `Quarantined rows of ${table} (last run)`): TileSpec {
  return {
    id: `quality-${table.replace(/[^a-z0-9]+/g, '-')}`,
    label,
    source: { route: qualityResultsRoute(table, 1), field: 'rows.0.rows_quarantined' },
    format: 'integer',
  };
}

/** One row per rule of the last run: action, passed, failed, and the run's reconciliation. */
export function qualityTable(table: string, ruleCount: number): TableSpec {
  return {
    id: `quality-${table.replace(/[^a-z0-9]+/g, '-')}`,
    title: `Data quality of ${table}, last run`,
    route: qualityResultsRoute(table, ruleCount),
    columns: [
      'rule',
      'action',
      'passed',
      'failed',
      'rows_in',
      'rows_passed',
      'rows_flagged',
      'rows_quarantined',
      'status',
      'checked_at',
    ],
  };
}
