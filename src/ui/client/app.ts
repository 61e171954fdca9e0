/**
 * The dashboard: a platform page and one page per pipeline (described by the pipeline's
 * `DashboardPage`, served in /api/pipelines) and the topic view. Hash routing: `#/`, `#/p/<page id>`, `#/topics[/<topic>]`.
 */
import type { ChartSpec, DashboardPage, TileSpec } from '../page-types.js';
import { ApiError, LiveConnection, apiGet, clearKey, getKey, setKey } from './api.js';
import { askBox, type Caller } from './ask.js';
import { drawChart, sparkline, type ChartPoint } from './charts.js';
import { detailLink, renderDetail } from './detail.js';
import { filterBar, filteredRoute, pageHash, parseHash } from './filters.js';
import { drawLineage, type GraphData } from './graph.js';
import { h, pick } from './dom.js';
import { formatAge, formatBytes, formatCell, formatValue } from './format.js';
import { renderTopics } from './topics.js';

interface Job {
  name: string;
  pipeline?: string;
  state: string;
  throughputPerSecond?: number;
  recordsIn?: number;
  consumerLag?: number;
  watermarkMs?: number | null;
  lastCheckpoint?: { id: number | string; atMs: number; durationMs?: number } | null;
  dlqCount?: number;
  lateCount?: number;
  error?: string;
}
interface Pipeline {
  name: string;
  title?: string;
  state: string;
  jobs: string[];
  lastRunMs?: number | null;
  lastRunStatus?: string | null;
  nextRunMs?: number | null;
}
interface Source {
  name: string;
  kind: string;
  state: string;
  records: number;
  recordsPerSecond: number;
  refused: number;
  lastError: string | null;
  lastErrorAtMs: number | null;
  position: string | null;
  restarts: number;
}
interface Status {
  generatedAtMs: number;
  pipelines: Pipeline[];
  jobs: Job[];
  sources?: Source[];
  api?: { requestsPerSecond: number };
}
interface Table {
  layer: string;
  name: string;
  partitions: { path: string; files: number; sizeBytes: number }[];
  files: number;
  sizeBytes: number;
  updatedAtMs?: number;
}
interface PipelineInfo {
  name: string;
  title: string;
  description?: string;
  page?: DashboardPage;
}

const main = document.getElementById('main')!;
const nav = document.getElementById('nav')!;
const liveBadge = document.getElementById('live')!;
const keyButton = document.getElementById('key-button')!;
const live = new LiveConnection();
let pipelines: PipelineInfo[] = [];
/** The key's identity (tenant decides the question box's company field); read once per key. */
let caller: Promise<Caller> | null = null;
/** Incremented on every navigation, so a slow fetch of a previous page never draws over this one. */
let renderGeneration = 0;

live.onState = (state) => {
  liveBadge.textContent = state === 'live' ? 'live' : state === 'connecting' ? 'connecting…' : 'offline';
  liveBadge.className = `live live-${state}`;
};

function section(title: string, ...children: Node[]): HTMLElement {
  return h('section', { class: 'card' }, h('h2', {}, title), ...children);
}

function tile(id: string, label: string, value: string, extra?: Node): HTMLElement {
  return h(
    'div',
    { class: 'tile', id: `tile-${id}` },
    h('div', { class: 'tile-label' }, label),
    h('div', { class: 'tile-value' }, value),
    extra ?? null,
  );
}

function setTile(id: string, value: string): void {
  const element = document.querySelector(`#tile-${CSS.escape(id)} .tile-value`);
  if (element && element.textContent !== value) {
    element.textContent = value;
    element.classList.remove('flash');
    void (element as HTMLElement).offsetWidth;
    element.classList.add('flash');
  }
}

function table(headers: string[], rows: (string | Node)[][], id?: string): HTMLElement {
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      id ? { id } : {},
      h('thead', {}, h('tr', {}, ...headers.map((t) => h('th', {}, t)))),
      h(
        'tbody',
        {},
        ...(rows.length > 0
          ? rows.map((r) => h('tr', {}, ...r.map((c) => h('td', {}, c))))
          : [h('tr', {}, h('td', { colspan: headers.length, class: 'muted' }, 'nothing yet'))]),
      ),
    ),
  );
}

function stateBadge(state: string): HTMLElement {
  return h('span', { class: `badge badge-${state}` }, state);
}

function chartBox(id: string, title: string): HTMLElement {
  return h(
    'figure',
    { class: 'chart-box', id: `chart-${id}` },
    h('figcaption', {}, title),
    h('div', { class: 'chart-slot' }),
  );
}

function putChart(id: string, svg: SVGSVGElement): void {
  const slot = document.querySelector(`#chart-${CSS.escape(id)} .chart-slot`);
  slot?.replaceChildren(svg);
}

function showError(error: unknown): void {
  if (error instanceof ApiError && error.status === 401) {
    renderLogin('That key was refused. Paste a valid API key.');
    return;
  }
  const message = error instanceof Error ? error.message : String(error);
  main.replaceChildren(
    h('div', { class: 'card error' }, h('h2', {}, 'Could not load this page'), h('p', {}, message)),
  );
}

// ---- login ------------------------------------------------------------------------------------

function renderLogin(message?: string): void {
  live.stop();
  nav.replaceChildren();
  const input = h('input', {
    type: 'password',
    id: 'api-key',
    name: 'api-key',
    placeholder: 'trb_…',
    autocomplete: 'off',
    required: true,
  });
  const form = h(
    'form',
    { class: 'card login', id: 'login-form' },
    h('h2', {}, 'Connect to Tributary'),
    h('p', {}, '`tributary up` printed a local admin key; `tributary keys create --scope read` makes more.'),
    message ? h('p', { class: 'error-text' }, message) : null,
    h('label', { for: 'api-key' }, 'API key'),
    input,
    h('button', { type: 'submit' }, 'Open dashboard'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    setKey(input.value);
    void boot();
  });
  main.replaceChildren(form);
}

// ---- platform page ----------------------------------------------------------------------------

const throughputHistory: ChartPoint[] = [];
const rpsHistory: number[] = [];

function sumOf(jobs: Job[], field: 'throughputPerSecond' | 'consumerLag' | 'dlqCount' | 'lateCount'): number {
  return jobs.reduce((n, j) => n + (j[field] ?? 0), 0);
}

function jobRows(jobs: Job[]): (string | Node)[][] {
  return jobs.map((j) => [
    j.name,
    j.pipeline ?? '—',
    stateBadge(j.state),
    formatValue(j.throughputPerSecond ?? 0),
    formatValue(j.consumerLag ?? 0, 'integer'),
    j.watermarkMs ? `${formatValue(j.watermarkMs, 'time')} (${formatAge(j.watermarkMs)})` : '—',
    j.lastCheckpoint
      ? `#${j.lastCheckpoint.id} ${formatAge(j.lastCheckpoint.atMs)}${j.lastCheckpoint.durationMs !== undefined ? `, ${formatValue(j.lastCheckpoint.durationMs, 'ms')}` : ''}`
      : '—',
    formatValue(j.dlqCount ?? 0, 'integer'),
    formatValue(j.lateCount ?? 0, 'integer'),
  ]);
}

function applyStatus(status: Status): void {
  const running = status.pipelines.filter((p) => p.state === 'running').length;
  setTile('pipelines', `${running} / ${status.pipelines.length}`);
  setTile('jobs', `${status.jobs.filter((j) => j.state === 'running').length} / ${status.jobs.length}`);
  setTile('throughput', `${formatValue(sumOf(status.jobs, 'throughputPerSecond'))} /s`);
  setTile('lag', formatValue(sumOf(status.jobs, 'consumerLag'), 'integer'));
  setTile('dlq', formatValue(sumOf(status.jobs, 'dlqCount'), 'integer'));
  setTile('late', formatValue(sumOf(status.jobs, 'lateCount'), 'integer'));
  throughputHistory.push({ x: status.generatedAtMs, y: sumOf(status.jobs, 'throughputPerSecond') });
  if (throughputHistory.length > 90) throughputHistory.shift();
  putChart('throughput', drawChart('line', throughputHistory, { label: 'Throughput (records/s)' }));
  putChart(
    'lag',
    drawChart(
      'bar',
      status.jobs.map((j) => ({ x: j.name, y: j.consumerLag ?? 0 })),
      { label: 'Consumer lag by job', format: 'integer', color: '#d97706' },
    ),
  );
  const jobsTable = document.getElementById('jobs-table');
  if (jobsTable)
    jobsTable.replaceWith(table(jobHeaders, jobRows(status.jobs), 'jobs-table').querySelector('table')!);
  const sourcesTable = document.getElementById('sources-table');
  if (sourcesTable)
    sourcesTable.replaceWith(
      table(sourceHeaders, sourceRows(status.sources ?? []), 'sources-table').querySelector('table')!,
    );
  if (status.api) {
    setTile('api', `${formatValue(status.api.requestsPerSecond)} /s`);
    rpsHistory.push(status.api.requestsPerSecond);
    if (rpsHistory.length > 60) rpsHistory.shift();
    document
      .querySelector('#tile-api .spark')
      ?.replaceChildren(sparkline(rpsHistory, { label: 'API requests per second' }));
  }
}

const sourceHeaders = [
  'Source',
  'Kind',
  'State',
  'Records/s',
  'Records',
  'Refused',
  'Restarts',
  'Position',
  'Last error',
];

function sourceRows(sources: Source[]): (string | Node)[][] {
  return sources.map((s) => [
    s.name,
    s.kind,
    stateBadge(s.state),
    formatValue(s.recordsPerSecond),
    formatValue(s.records, 'integer'),
    formatValue(s.refused, 'integer'),
    formatValue(s.restarts, 'integer'),
    s.position ?? '—',
    s.lastError ? `${s.lastError}${s.lastErrorAtMs ? ` (${formatAge(s.lastErrorAtMs)})` : ''}` : '—',
  ]);
}

const jobHeaders = [
  'Job',
  'Pipeline',
  'State',
  'Records/s',
  'Lag',
  'Watermark',
  'Last checkpoint',
  'DLQ',
  'Late',
];

/** gold.quality_results (the stream layer's data-quality rules), newest checks first. */
const qualityRoute = '/api/tables/gold/quality_results?sort=-checked_at,table_name,rule&limit=20';
const qualityColumns = [
  'table_name',
  'rule',
  'action',
  'failed',
  'rows_in',
  'rows_quarantined',
  'status',
  'checked_at',
];

function lastQualityRun(rows: Record<string, unknown>[]): string {
  const last = rows[0];
  return last === undefined ? '—' : `${String(last.status)} · ${String(last.table_name)}`;
}

async function renderPlatform(generation: number): Promise<void> {
  // A server without a status or table provider answers 404: show the page without that part.
  const missingIsEmpty =
    <T>(empty: T) =>
    (error: unknown): T => {
      if (error instanceof ApiError && error.status === 404) return empty;
      throw error;
    };
  const [status, tables] = await Promise.all([
    apiGet<Status>('/api/status').catch(missingIsEmpty<Status | null>(null)),
    apiGet<{ tables: Table[] }>('/api/tables').catch(missingIsEmpty<{ tables: Table[] }>({ tables: [] })),
  ]);
  // Data-quality results of every pipeline, newest first, once some run has written them (the
  // listing shows what this key may read, so the request is not refused).
  const quality = tables.tables.some((t) => t.layer === 'gold' && t.name === 'quality_results')
    ? await apiGet<{ rows: Record<string, unknown>[] }>(qualityRoute)
    : { rows: [] };
  if (generation !== renderGeneration) return;
  const lakeBytes = tables.tables.reduce((n, t) => n + t.sizeBytes, 0);
  main.replaceChildren(
    h('h1', {}, 'Platform'),
    h(
      'div',
      { class: 'tiles' },
      tile('pipelines', 'Pipelines running', '—'),
      tile('jobs', 'Jobs running', '—'),
      tile('throughput', 'Throughput', '—'),
      tile('lag', 'Consumer lag', '—'),
      tile('dlq', 'Dead letters', '—'),
      tile('late', 'Late records', '—'),
      tile('lake', 'Lake size', formatBytes(lakeBytes)),
      tile('quality', 'Last quality check', lastQualityRun(quality.rows)),
      tile('api', 'API requests', '—', h('div', { class: 'spark' })),
    ),
    h(
      'div',
      { class: 'grid-2' },
      section('Throughput (records/s, live)', chartBox('throughput', '')),
      section('Consumer lag by job', chartBox('lag', '')),
    ),
    section('Jobs', table(jobHeaders, [], 'jobs-table')),
    section('Sources', table(sourceHeaders, [], 'sources-table')),
    section(
      'Pipelines',
      table(
        ['Pipeline', 'State', 'Jobs', 'Last run', 'Next run'],
        (status?.pipelines ?? []).map((p) => [
          p.title ?? p.name,
          stateBadge(p.state),
          p.jobs.join(', ') || '—',
          p.lastRunMs ? `${formatAge(p.lastRunMs)}${p.lastRunStatus ? ` (${p.lastRunStatus})` : ''}` : '—',
          p.nextRunMs ? formatValue(p.nextRunMs, 'time') : '—',
        ]),
        'pipelines-table',
      ),
    ),
    section(
      'Data quality (latest checks)',
      table(
        qualityColumns,
        quality.rows.map((r) => qualityColumns.map((c) => formatCell(r[c]))),
        'quality-table',
      ),
    ),
    h(
      'div',
      { class: 'grid-2' },
      section('Lake size by table', chartBox('lake', '')),
      section(
        'Lake tables and partitions',
        table(
          ['Table', 'Partitions', 'Files', 'Size', 'Updated'],
          tables.tables.map((t) => [
            `${t.layer}.${t.name}`,
            h(
              'details',
              {},
              h('summary', {}, String(t.partitions.length)),
              h(
                'ul',
                { class: 'partitions' },
                ...t.partitions
                  .slice(0, 50)
                  .map((p) =>
                    h('li', {}, `${p.path || '(root)'} · ${p.files} files · ${formatBytes(p.sizeBytes)}`),
                  ),
              ),
            ),
            String(t.files),
            formatBytes(t.sizeBytes),
            formatAge(t.updatedAtMs),
          ]),
          'tables-table',
        ),
      ),
    ),
  );
  putChart(
    'lake',
    drawChart(
      'bar',
      tables.tables.map((t) => ({ x: `${t.layer}.${t.name}`, y: t.sizeBytes })),
      { label: 'Lake size by table', format: 'bytes', color: '#059669' },
    ),
  );
  if (status) applyStatus(status);
  live.on('status.tick', (data) => {
    if (generation === renderGeneration) applyStatus(data as Status);
  });
}

// ---- pipeline pages ---------------------------------------------------------------------------

function rowsOf(body: unknown, field: string | undefined): Record<string, unknown>[] {
  const value = field ? pick(body, field) : Array.isArray(body) ? body : pick(body, 'rows');
  return Array.isArray(value) ? (value as Record<string, unknown>[]) : [];
}

function toPoints(rows: Record<string, unknown>[], spec: ChartSpec): ChartPoint[] {
  return rows
    .map((r) => ({ x: (r[spec.x] as string | number) ?? '', y: Number(r[spec.y] ?? 0) }))
    .filter((p) => Number.isFinite(p.y));
}

/** A widget's route with the page's filter values (see filters.ts). */
type RouteOf = (route: string, widgetId: string) => string;

async function loadTile(spec: TileSpec, routeOf: RouteOf): Promise<void> {
  if (!spec.source.route) return;
  const body = await apiGet<unknown>(routeOf(spec.source.route, spec.id));
  setTile(spec.id, formatValue(pick(body, spec.source.field), spec.format));
}

async function loadChart(spec: ChartSpec, generation: number, routeOf: RouteOf): Promise<void> {
  let points: ChartPoint[] = [];
  const route = spec.route === undefined ? undefined : routeOf(spec.route, spec.id);
  if (route) points = toPoints(rowsOf(await apiGet<unknown>(route), spec.rowsField), spec);
  if (generation !== renderGeneration) return;
  const options = { label: spec.title, ...(spec.format ? { format: spec.format } : {}) };
  putChart(spec.id, drawChart(spec.kind, points, options));
  // Live events are unfiltered: a filtered chart shows its route's answer only.
  if (spec.event && route === spec.route) {
    live.on(spec.event, (data) => {
      if (generation !== renderGeneration) return;
      const incoming = Array.isArray(pick(data, 'rows'))
        ? rowsOf(data, 'rows')
        : [data as Record<string, unknown>];
      for (const point of toPoints(incoming, spec)) {
        const same = points.findIndex((p) => p.x === point.x);
        if (same >= 0) points[same] = point;
        else points.push(point);
      }
      points = points.slice(-(spec.maxPoints ?? 120));
      putChart(spec.id, drawChart(spec.kind, points, options));
    });
  }
}

async function renderPipelinePage(
  page: DashboardPage,
  generation: number,
  params: URLSearchParams,
): Promise<void> {
  const filters = page.filters ?? [];
  const routeOf: RouteOf = (route, widgetId) => filteredRoute(route, widgetId, filters, params);
  const bar =
    filters.length === 0
      ? null
      : await filterBar(filters, params, (next) => {
          window.location.hash = pageHash(page.id, next);
        });
  if (generation !== renderGeneration) return;
  const hrefOf = (next: URLSearchParams) => pageHash(page.id, next);
  // An open detail (a row of a table, by its key in the URL) is drawn above the widgets.
  // Tables sharing a detail (the same URL parameter) open one view.
  const detailSpecs = new Map(
    (page.tables ?? []).flatMap((t) => (t.detail ? [[t.detail.param, t.detail]] : [])),
  );
  const details = (
    await Promise.all([...detailSpecs.values()].map((spec) => renderDetail(spec, params, hrefOf)))
  ).filter((d): d is HTMLElement => d !== null);
  if (generation !== renderGeneration) return;
  let ask: HTMLElement | null = null;
  if (page.ask) {
    caller ??= apiGet<Caller>('/api/whoami').catch((error: unknown) => {
      caller = null;
      throw error;
    });
    ask = askBox(page.ask, await caller);
    if (generation !== renderGeneration) return;
  }
  main.replaceChildren(
    h('h1', {}, page.title),
    page.description ? h('p', { class: 'muted' }, page.description) : '',
    bar ?? '',
    ...details,
    h('div', { class: 'tiles' }, ...page.tiles.map((t) => tile(t.id, t.label, '—'))),
    ask ?? '',
    h('div', { class: 'grid-2' }, ...page.charts.map((c) => section(c.title, chartBox(c.id, '')))),
    ...(page.graphs ?? []).map((g) => section(g.title, chartBox(g.id, ''))),
    ...(page.tables ?? []).map((t) => section(t.title, h('div', { id: `table-${t.id}` }))),
  );
  for (const spec of page.tiles) {
    if (spec.source.event) {
      live.on(spec.source.event, (data) => {
        if (generation === renderGeneration)
          setTile(spec.id, formatValue(pick(data, spec.source.eventField), spec.format));
      });
    }
  }
  // One piece that cannot load (a table not written yet, a route that fails) shows its own note;
  // the rest of the page renders. A refused key still ends the page (the login form).
  const piece = (selector: string, load: Promise<void>) =>
    load.catch((error: unknown) => {
      if (error instanceof ApiError && error.status === 401) throw error;
      const message = error instanceof Error ? error.message : String(error);
      document
        .querySelector(selector)
        ?.replaceChildren(h('p', { class: 'muted unavailable' }, `Not available: ${message}`));
    });
  await Promise.all([
    ...page.tiles.map((t) => piece(`#tile-${CSS.escape(t.id)} .tile-value`, loadTile(t, routeOf))),
    ...page.charts.map((c) =>
      piece(`#chart-${CSS.escape(c.id)} .chart-slot`, loadChart(c, generation, routeOf)),
    ),
    ...(page.graphs ?? []).map(async (g) => {
      const graph = await apiGet<GraphData>(g.route);
      if (generation === renderGeneration) putChart(g.id, drawLineage(graph, g.title));
    }),
    ...(page.tables ?? []).map((t) =>
      piece(
        `#table-${CSS.escape(t.id)}`,
        (async () => {
          const body = await apiGet<{ rows: Record<string, unknown>[]; columns?: { name: string }[] }>(
            routeOf(t.route, t.id),
          );
          if (generation !== renderGeneration) return;
          const columns = t.columns ?? body.columns?.map((c) => c.name) ?? Object.keys(body.rows[0] ?? {});
          const detail = t.detail;
          document.getElementById(`table-${t.id}`)?.replaceChildren(
            table(
              columns,
              body.rows.map((r) =>
                columns.map((c, i) =>
                  // The first cell of a row opens its detail view.
                  detail && i === 0
                    ? detailLink(detail, r, formatCell(r[c]), hrefOf, params)
                    : formatCell(r[c]),
                ),
              ),
            ),
          );
        })(),
      ),
    ),
  ]);
}

// ---- navigation -------------------------------------------------------------------------------

function renderNav(current: string): void {
  const link = (href: string, label: string, id: string) =>
    h('a', { href, class: id === current ? 'active' : undefined, 'data-page': id }, label);
  nav.replaceChildren(
    link('#/', 'Platform', 'platform'),
    link('#/topics', 'Topics', 'topics'),
    ...pipelines
      .filter((p) => p.page)
      .map((p) => link(`#/p/${encodeURIComponent(p.page!.id)}`, p.title, p.page!.id)),
  );
}

async function route(): Promise<void> {
  renderGeneration += 1;
  const generation = renderGeneration;
  live.clear();
  const topicMatch = /^#\/topics(?:\/(.+))?$/.exec(window.location.hash);
  const parsed = parseHash(window.location.hash);
  const pageId = topicMatch ? 'topics' : parsed.pageId;
  const params = parsed.params;
  renderNav(pageId);
  try {
    if (topicMatch) {
      const topic = topicMatch[1] === undefined ? null : decodeURIComponent(topicMatch[1]);
      await renderTopics(main, topic, () => generation === renderGeneration);
    } else if (pageId === 'platform') {
      await renderPlatform(generation);
    } else {
      const page = pipelines.find((p) => p.page?.id === pageId)?.page;
      if (!page) {
        main.replaceChildren(
          h(
            'div',
            { class: 'card' },
            h('h2', {}, 'No such page'),
            h('p', {}, `No pipeline registered a page "${pageId}".`),
          ),
        );
        return;
      }
      await renderPipelinePage(page, generation, params);
    }
    document.body.dataset.ready = String(generation);
  } catch (error) {
    showError(error);
  }
}

async function boot(): Promise<void> {
  caller = null;
  if (!getKey()) {
    renderLogin();
    return;
  }
  try {
    pipelines = (await apiGet<{ pipelines: PipelineInfo[] }>('/api/pipelines')).pipelines;
  } catch (error) {
    showError(error);
    return;
  }
  void live.start();
  await route();
}

keyButton.addEventListener('click', () => {
  clearKey();
  renderLogin();
});
window.addEventListener('hashchange', () => void route());
void boot();
