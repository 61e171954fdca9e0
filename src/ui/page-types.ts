/**
 * Dashboard page descriptions: plain JSON a pipeline registers and the browser renders. Shared by
 * the server (which serves them at `/api/ui/pages`) and the client (which draws them), so this file
 * holds types only and imports nothing.
 */

/** Where a value comes from: a JSON API route (read with the user's key) and/or an SSE event. */
export interface ValueSource {
  /** GET route, e.g. `/api/tables/gold/sales_per_minute?sort=-window_start&limit=60`. */
  route?: string;
  /** Dot path inside the route's JSON response, e.g. `rows.0.total` or `total`. */
  field?: string;
  /** SSE event name that carries fresh values, e.g. `window.sales_per_minute`. */
  event?: string;
  /** Dot path inside the event's data. */
  eventField?: string;
}

export type ValueFormat = 'number' | 'integer' | 'bytes' | 'ms' | 'percent' | 'time' | 'text';

export interface TileSpec {
  id: string;
  label: string;
  source: ValueSource;
  format?: ValueFormat;
}

export interface ChartSpec {
  id: string;
  title: string;
  kind: 'bar' | 'line' | 'sparkline';
  /** Route returning rows (`rows` field, or a top-level array) and the x / y columns to plot. */
  route?: string;
  rowsField?: string;
  x: string;
  y: string;
  /** SSE event whose data (one row, or `{ rows: [...] }`) is appended live. */
  event?: string;
  /** Points kept when live rows are appended. */
  maxPoints?: number;
  format?: ValueFormat;
}

export interface DashboardPage {
  /** URL-safe id: the page lives at `/#/p/<id>`. */
  id: string;
  title: string;
  description?: string;
  tiles: TileSpec[];
  charts: ChartSpec[];
  /** Tables shown as HTML tables (first rows), e.g. a gold table's latest rows. */
  tables?: { id: string; title: string; route: string; columns?: string[] }[];
}
