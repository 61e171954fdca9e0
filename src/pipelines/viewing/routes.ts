import { z } from 'zod';
import { limits, requestHeader, TributaryError } from '../../core/index.js';
import { decodeBytes } from '../../connectors/index.js';
import type { Log } from '../../log/index.js';
import type { DashboardPage, PipelineModule } from '../../serve/index.js';
import type { PipelineServices } from '../types.js';
import { rowsResponse, rowsWhenPresent, tableRowCount } from '../tables.js';
import { sourceHeader, tables, topics, type LiveWindow } from './jobs.js';
import { devices, showTypes } from './validate.js';

const date = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, 'a date YYYY-MM-DD')
  .describe('UTC date, YYYY-MM-DD');

/** The dashboard's filters, as query parameters of the routes that take them. */
export const viewingFilters = z.object({
  from: date.optional().describe('First event_date included'),
  to: date.optional().describe('Last event_date included'),
  show_type: z.enum(showTypes).optional(),
  country: z
    .string()
    .regex(/^[A-Za-z]{2}$/, 'an ISO 3166-1 alpha-2 code')
    .transform((c) => c.toUpperCase())
    .optional(),
  device: z.enum(devices).optional(),
});
type Filters = z.infer<typeof viewingFilters>;

/** WHERE clause and parameters for the filters over bronze (event_date prunes partitions). */
function where(filters: Filters, first = 1): { sql: string; params: unknown[] } {
  const clauses: string[] = [];
  const params: unknown[] = [];
  const add = (clause: string, value: unknown) => {
    params.push(value);
    clauses.push(clause.replace('?', `$${first + params.length - 1}`));
  };
  if (filters.from) add('event_date >= CAST(? AS DATE)', filters.from);
  if (filters.to) add('event_date <= CAST(? AS DATE)', filters.to);
  if (filters.show_type) add('show_type = ?', filters.show_type);
  if (filters.country) add('country = ?', filters.country);
  if (filters.device) add('device = ?', filters.device);
  return { sql: clauses.length === 0 ? '' : `WHERE ${clauses.join(' AND ')}`, params };
}

export const page: DashboardPage = {
  id: 'viewing',
  title: 'Viewing',
  description: 'Viewing events → validation → bronze by date, show type and user bucket → engagement',
  tiles: [
    {
      id: 'score',
      label: 'Data-quality score',
      source: { route: '/api/viewing/quality', field: 'score' },
      format: 'percent',
    },
    {
      id: 'valid',
      label: 'Valid events',
      source: { route: '/api/viewing/quality', field: 'valid' },
      format: 'integer',
    },
    {
      id: 'live-viewers',
      label: 'Viewers, last minute',
      source: {
        route: '/api/viewing/live',
        field: 'totals.viewers',
        event: 'viewing.live',
        eventField: 'viewers',
      },
      format: 'integer',
    },
    {
      id: 'live-hours',
      label: 'Watch seconds, last minute',
      source: {
        route: '/api/viewing/live',
        field: 'totals.watch_seconds',
        event: 'viewing.live',
        eventField: 'watch_seconds',
      },
      format: 'integer',
    },
  ],
  charts: [
    {
      id: 'top',
      title: 'Top shows (watch hours)',
      kind: 'bar',
      route: '/api/viewing/shows/top?limit=10',
      rowsField: 'rows',
      x: 'show_title',
      y: 'watch_hours',
      format: 'number',
    },
    {
      id: 'daily',
      title: 'Watch hours per day',
      kind: 'line',
      route: '/api/viewing/daily',
      rowsField: 'rows',
      x: 'event_date',
      y: 'watch_hours',
      format: 'number',
    },
    {
      id: 'devices',
      title: 'Device mix (watch hours)',
      kind: 'bar',
      route: '/api/viewing/devices',
      rowsField: 'rows',
      x: 'device',
      y: 'watch_hours',
      format: 'number',
    },
  ],
  filters: [
    {
      id: 'dates',
      label: 'Event date',
      kind: 'dateRange',
      params: { from: 'from', to: 'to' },
      appliesTo: ['top', 'daily'],
    },
    {
      id: 'show_type',
      label: 'Show type',
      kind: 'select',
      options: [...showTypes],
      appliesTo: ['top', 'daily'],
    },
    {
      id: 'country',
      label: 'Country',
      kind: 'select',
      options: { route: '/api/viewing/countries', field: 'country' },
      appliesTo: ['top'],
    },
    { id: 'device', label: 'Device', kind: 'select', options: [...devices], appliesTo: ['top'] },
  ],
  tables: [
    {
      id: 'anomalies',
      title: 'Anomalies (> 3σ from the trailing 7 days)',
      route: '/api/viewing/anomalies?limit=10',
      columns: ['event_date', 'show_title', 'watch_hours', 'trailing_mean', 'z_score'],
    },
    {
      id: 'reasons',
      title: 'Quarantined by reason',
      route: '/api/viewing/quality',
      columns: ['reason', 'events'],
    },
  ],
};

/** Latest live window per show, fed by the live job (process-local: the API runs beside it). */
export class LiveBoard {
  readonly #latest = new Map<string, LiveWindow>();

  update(window: LiveWindow): void {
    const current = this.#latest.get(window.show_id);
    if (current === undefined || current.window_start <= window.window_start)
      this.#latest.set(window.show_id, window);
  }

  /** Windows of the most recent minute that has any. */
  current(): {
    window_start: string | null;
    rows: LiveWindow[];
    totals: { viewers: number; watch_seconds: number };
  } {
    let newest: string | null = null;
    for (const w of this.#latest.values())
      if (newest === null || w.window_start > newest) newest = w.window_start;
    const rows = [...this.#latest.values()]
      .filter((w) => w.window_start === newest)
      .sort((a, b) => b.viewers - a.viewers);
    return {
      window_start: newest,
      rows,
      totals: {
        viewers: rows.reduce((n, w) => n + w.viewers, 0),
        watch_seconds: rows.reduce((n, w) => n + w.watch_seconds, 0),
      },
    };
  }
}

export interface ViewingRoutesDeps extends Pick<PipelineServices, 'query' | 'lake'> {
  log: Log;
  live: LiveBoard;
}

/** API routes under /api/viewing (read scope; the event stream endpoint needs ingest) and the page. */
export function viewingModule(deps: ViewingRoutesDeps): PipelineModule {
  const rowsOf = (signal: AbortSignal, table: string, sql: string, params: unknown[] = []) =>
    rowsWhenPresent({ ...deps, signal }, table, sql, params);
  const limit = z.object({ limit: z.coerce.number().int().min(1).max(1000).default(20) });
  return {
    name: 'viewing',
    title: 'Viewing',
    description:
      'Viewing events → engagement per show, day, user and device; live windows; anomalies; also-watched',
    page,
    routes(api) {
      api.route({
        method: 'get',
        path: '/api/viewing/shows/top',
        cache: { tables: [tables.bronze] },
        summary: 'Shows ranked by watch hours within the filters (date range, show type, country, device)',
        tags: ['viewing'],
        scope: 'read',
        query: viewingFilters.extend(limit.shape),
        responses: rowsResponse,
        handler: async ({ query, signal }) => {
          const filter = where(query);
          return {
            rows: await rowsOf(
              signal,
              tables.bronze,
              `SELECT show_id, arg_max(show_title, event_ts) AS show_title, arg_max(show_type, event_ts) AS show_type,
                      sum(watch_seconds) / 3600.0 AS watch_hours,
                      count(*) FILTER (WHERE event_type = 'play') AS plays,
                      count(DISTINCT user_id) FILTER (WHERE event_type = 'play') AS viewers
               FROM ${tables.bronze} ${filter.sql}
               GROUP BY show_id ORDER BY watch_hours DESC, show_id LIMIT $${filter.params.length + 1}`,
              [...filter.params, query.limit],
            ),
          };
        },
      });
      api.route({
        method: 'get',
        path: '/api/viewing/shows/:showId',
        cache: { tables: [tables.showEngagement, tables.bronze, tables.alsoWatched] },
        summary: "One show's engagement, its daily series and the shows its viewers also watched",
        tags: ['viewing'],
        scope: 'read',
        params: z.object({ showId: z.string().min(1).max(200) }),
        responses: { 200: { description: 'engagement, daily, also_watched' } },
        handler: async ({ params, signal }) => {
          const [engagement] = await rowsOf(
            signal,
            tables.showEngagement,
            `SELECT * FROM ${tables.showEngagement} WHERE show_id = $1`,
            [params.showId],
          );
          if (engagement === undefined)
            throw new TributaryError('NOT_FOUND', `no viewing of show ${JSON.stringify(params.showId)}`);
          return {
            engagement,
            daily: await rowsOf(
              signal,
              tables.bronze,
              `SELECT CAST(event_date AS VARCHAR) AS event_date, sum(watch_seconds) / 3600.0 AS watch_hours,
                      count(*) FILTER (WHERE event_type = 'play') AS plays, count(DISTINCT user_id) AS active_users
               FROM ${tables.bronze} WHERE show_id = $1 GROUP BY event_date ORDER BY event_date`,
              [params.showId],
            ),
            also_watched: await rowsOf(
              signal,
              tables.alsoWatched,
              `SELECT a.other_show_id, e.show_title AS other_show_title, a.co_viewers, a.lift, a.rank
               FROM ${tables.alsoWatched} a LEFT JOIN ${tables.showEngagement} e ON e.show_id = a.other_show_id
               WHERE a.show_id = $1 ORDER BY a.rank`,
              [params.showId],
            ),
          };
        },
      });
      api.route({
        method: 'get',
        path: '/api/viewing/users/:userId',
        cache: { tables: [tables.userActivity] },
        summary: "One user's sessions, watch hours, shows watched, favourite show type and last seen",
        tags: ['viewing'],
        scope: 'read',
        params: z.object({ userId: z.string().min(1).max(200) }),
        responses: { 200: { description: 'user activity' } },
        handler: async ({ params, signal }) => {
          const [row] = await rowsOf(
            signal,
            tables.userActivity,
            `SELECT * FROM ${tables.userActivity} WHERE user_id = $1`,
            [params.userId],
          );
          if (row === undefined)
            throw new TributaryError('NOT_FOUND', `no viewing of user ${JSON.stringify(params.userId)}`);
          return row;
        },
      });
      api.route({
        method: 'get',
        path: '/api/viewing/daily',
        cache: { tables: [tables.dailyEngagement] },
        summary: 'Active users, watch hours and plays per day (all show types, or one)',
        tags: ['viewing'],
        scope: 'read',
        query: viewingFilters.pick({ from: true, to: true, show_type: true }),
        responses: rowsResponse,
        handler: async ({ query, signal }) => {
          const filter = where(query);
          return {
            rows: await rowsOf(
              signal,
              tables.dailyEngagement,
              `SELECT CAST(event_date AS VARCHAR) AS event_date, sum(active_users) AS active_users,
                      sum(watch_hours) AS watch_hours, sum(plays) AS plays
               FROM ${tables.dailyEngagement} ${filter.sql} GROUP BY event_date ORDER BY event_date`,
              filter.params,
            ),
          };
        },
      });
      api.route({
        method: 'get',
        path: '/api/viewing/devices',
        cache: { tables: [tables.deviceMix] },
        summary: 'Users and watch hours per device (gold.device_mix)',
        tags: ['viewing'],
        scope: 'read',
        responses: rowsResponse,
        handler: async ({ signal }) => ({
          rows: await rowsOf(
            signal,
            tables.deviceMix,
            `SELECT * FROM ${tables.deviceMix} ORDER BY watch_hours DESC, device`,
          ),
        }),
      });
      api.route({
        method: 'get',
        path: '/api/viewing/countries',
        cache: { tables: [tables.bronze] },
        summary: 'Countries with valid events (the dashboard country filter)',
        tags: ['viewing'],
        scope: 'read',
        responses: rowsResponse,
        handler: async ({ signal }) => ({
          rows: await rowsOf(
            signal,
            tables.bronze,
            `SELECT DISTINCT country FROM ${tables.bronze} ORDER BY country`,
          ),
        }),
      });
      api.route({
        method: 'get',
        path: '/api/viewing/anomalies',
        cache: { tables: [tables.anomalies] },
        summary: 'Show-days whose watch hours lie more than 3 standard deviations from the trailing 7 days',
        tags: ['viewing'],
        scope: 'read',
        query: limit,
        responses: rowsResponse,
        handler: async ({ query, signal }) => ({
          rows: await rowsOf(
            signal,
            tables.anomalies,
            `SELECT show_id, show_title, CAST(event_date AS VARCHAR) AS event_date, watch_hours, trailing_mean, trailing_stddev, z_score
             FROM ${tables.anomalies} ORDER BY event_date DESC, abs(z_score) DESC LIMIT $1`,
            [query.limit],
          ),
        }),
      });
      api.route({
        method: 'get',
        path: '/api/viewing/live',
        summary: 'The latest one-minute window per show (distinct viewers, watch seconds)',
        tags: ['viewing'],
        scope: 'read',
        responses: { 200: { description: 'window_start, rows, totals' } },
        handler: () => Promise.resolve(deps.live.current()),
      });
      api.route({
        method: 'get',
        path: '/api/viewing/quality',
        cache: { tables: [tables.bronze, tables.quarantine, tables.duplicates] },
        summary:
          'Events in = valid + quarantined + duplicates, quarantine reasons, and the quality score valid / in',
        tags: ['viewing'],
        scope: 'read',
        responses: { 200: { description: 'reconciliation and score' } },
        handler: async ({ signal }) => {
          const count = (table: string) => tableRowCount({ ...deps, signal }, table);
          const [valid, quarantined, duplicates] = await Promise.all([
            count(tables.bronze),
            count(tables.quarantine),
            count(tables.duplicates),
          ]);
          const reasons = await rowsOf(
            signal,
            tables.quarantine,
            `SELECT reason, count(*) AS events FROM ${tables.quarantine} GROUP BY reason ORDER BY events DESC, reason`,
          );
          const total = valid + quarantined + duplicates;
          return {
            in: total,
            valid,
            quarantined,
            duplicates,
            score: total === 0 ? null : valid / total,
            rows: reasons,
          };
        },
      });
      api.route({
        method: 'post',
        path: '/api/viewing/events',
        summary:
          'Viewing events as NDJSON or a JSON array; answered after the durable append (idempotent by event_id: repeats are dropped downstream)',
        tags: ['viewing'],
        scope: 'ingest',
        responses: {
          202: { description: 'appended' },
          400: { description: 'not NDJSON / a JSON array' },
          413: { description: 'body or record count over the limit' },
        },
        handler: async ({ c }) => {
          const type = (requestHeader(c, 'content-type') ?? '').toLowerCase();
          const body = new Uint8Array(await c.req.arrayBuffer());
          const trimmed = Buffer.from(body.subarray(0, 64)).toString('utf8').trimStart();
          const format = type.startsWith('application/json') || trimmed.startsWith('[') ? 'json' : 'jsonl';
          const records: {
            topic: string;
            key: string | null;
            value: string;
            headers: Record<string, string>;
          }[] = [];
          for await (const record of decodeBytes(body, { format, gzip: false, name: 'request body' })) {
            if (records.length >= limits.ingestRecordsPerRequestMax) {
              throw new TributaryError(
                'PAYLOAD_TOO_LARGE',
                `more than ${limits.ingestRecordsPerRequestMax} events in one request`,
              );
            }
            const parsed = record.parsed as Record<string, unknown> | null;
            const user = parsed !== null && typeof parsed === 'object' ? parsed.user_id : undefined;
            records.push({
              topic: topics.events,
              key: typeof user === 'string' && user !== '' ? user : null,
              value: record.value,
              headers: { [sourceHeader]: 'api' },
            });
          }
          if (records.length > 0) await deps.log.append(records);
          return c.json({ appended: records.length }, 202);
        },
      });
    },
  };
}
