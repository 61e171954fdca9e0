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

/**
 * One filter field of a question box: its value goes to the ask route as `filters.<field>`
 * (equality on a metadata field of the pipeline's retrieval index); empty means "no condition".
 */
export interface AskFilterField {
  /** Metadata field of the index, e.g. `product_id`; also part of the input's id (`ask-<box>-<field>`). */
  field: string;
  label: string;
  /**
   * The index's tenant field: a key bound to a tenant does not see the input (the server asks
   * within the key's tenant); a key without one must fill it in.
   */
  tenant?: boolean;
  required?: boolean;
  /** `number` sends the value as a number (e.g. a star rating); default text. */
  type?: 'text' | 'number';
  /** Suggestions: distinct values of `field` in the rows (`rowsField`, default `rows`) of a GET route. */
  suggestions?: { route: string; rowsField?: string; field: string };
}

/**
 * A question box over a pipeline's retrieval index: `POST <route> {question, filters, k}` — the
 * route `registerAskRoute` mounts, `/api/<pipeline>/ask` — and the answer shown with its
 * citations (the chosen citation fields, the retrieval score and the passage).
 *
 * @example { id: 'reviews', title: 'Ask the reviews', route: '/api/reviews/ask',
 *   filters: [{ field: 'product_id', label: 'Product' }], citationFields: ['review_id', 'product_id', 'rating'] }
 */
export interface AskSpec {
  id: string;
  title: string;
  /** POST route answering `{ answer, citations: [{...fields, score, text}], mode }`. */
  route: string;
  placeholder?: string;
  filters?: AskFilterField[];
  /** Passages to retrieve (the route's default when absent). */
  k?: number;
  /** Citation fields shown above each passage, in this order (default: every field but score and text). */
  citationFields?: string[];
  /** What the passages are, for the "searching…" and "nothing found" lines (default "passages"). */
  what?: string;
}

/**
 * A lineage graph: `route` answers `{ nodes: [{id, kind: source|topic|job|table, name, state?}],
 * edges: [{from, to}] }` (GET /api/lineage); drawn left to right by depth, coloured by kind.
 */
export interface GraphSpec {
  id: string;
  title: string;
  route: string;
}

/**
 * A filter above a page's widgets. Its value goes into the query string of the routes of the
 * widgets it applies to, and into the page's URL (`#/p/<page>?country=France&from=1997-01-01`),
 * so a filtered view can be shared and survives a reload. An empty value means "all" (no
 * parameter). A chart whose route is filtered shows the route's answer only (its live event,
 * which is unfiltered, is not applied).
 *
 * @example { id: 'country', label: 'Country', kind: 'select',
 *   options: { route: '/api/northwind/top-countries?limit=1000', field: 'country' }, appliesTo: ['categories'] }
 * @example { id: 'ordered', label: 'Order date', kind: 'dateRange', params: { from: 'from', to: 'to' } }
 * @example { id: 'year', label: 'Release year', kind: 'numberRange', params: { from: 'year_from', to: 'year_to' }, min: 1900, max: 2100 }
 */
export interface FilterSpec {
  /** Unique on the page; for a select also the query parameter name. */
  id: string;
  label: string;
  /** `numberRange`: two number inputs (e.g. release years), bounded by `min` / `max`. */
  kind: 'select' | 'dateRange' | 'numberRange';
  /** select: a static list, or the distinct values of `field` in the rows (`rowsField`, default `rows`) of a GET route. */
  options?: string[] | { route: string; rowsField?: string; field: string };
  /**
   * dateRange / numberRange: query parameters of the lower and upper bound, both inclusive
   * (default `from` and `to`); a dateRange's values are YYYY-MM-DD.
   */
  params?: { from: string; to: string };
  /** numberRange: the inputs' bounds and step (default 1). */
  min?: number;
  max?: number;
  step?: number;
  /** Ids of the tiles, charts and tables whose routes take this filter; default all of them. */
  appliesTo?: string[];
}

/**
 * A detail view of a table's rows: a row's first cell links to it, the open row lives in the
 * page's URL (`#/p/movies?movie=550`, so it can be shared and survives a reload) and is drawn
 * above the widgets from `route` with `{key}` replaced by the row's `key` value.
 *
 * @example { param: 'movie', key: 'movie_id', route: '/api/movies/{movie_id}', titleField: 'title',
 *   fields: [{ label: 'Genres', field: 'genres' }, { label: 'Reviews', field: 'sentiment.reviews', format: 'integer' }],
 *   lists: [{ title: 'Top cast', field: 'cast', columns: ['name', 'character'] },
 *           { title: 'Reviews', route: '/api/movies/{movie_id}/reviews', columns: ['author', 'sentiment_label'] }] }
 */
export interface DetailSpec {
  /** Page URL parameter holding the open row's key. */
  param: string;
  /** The row column identifying it (its value goes into `route` and `param`). */
  key: string;
  /** GET route answering one object; `{<key>}` is replaced by the row's value. */
  route: string;
  /** Field of the answer shown as the heading. */
  titleField: string;
  /** Values of the answer (dot paths: `sentiment.avg_sentiment`); lists are joined with commas. */
  fields: { label: string; field: string; format?: ValueFormat }[];
  /** Tables: a list inside the answer (`field`) or the rows of another route (`{<key>}` replaced). */
  lists?: { title: string; field?: string; route?: string; rowsField?: string; columns: string[] }[];
}

export interface DashboardPage {
  /** URL-safe id: the page lives at `/#/p/<id>`. */
  id: string;
  title: string;
  description?: string;
  tiles: TileSpec[];
  charts: ChartSpec[];
  /** Tables shown as HTML tables (first rows), e.g. a gold table's latest rows. */
  tables?: { id: string; title: string; route: string; columns?: string[]; detail?: DetailSpec }[];
  /** A question box with cited answers (retrieval over the pipeline's index). */
  ask?: AskSpec;
  /** Filters (dimension selects, date ranges) that go into the widgets' route query strings. */
  filters?: FilterSpec[];
  /** Lineage graphs (source → topic → job → table). */
  graphs?: GraphSpec[];
}
