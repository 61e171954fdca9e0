/**
 * Detail views (`DetailSpec`): a table row's first cell links to its detail, which is drawn above
 * the page's widgets. The open row is a parameter of the page's URL hash, like a filter value, so
 * opening and closing go through the normal navigation, and a shared or reloaded URL shows it.
 */
import type { DetailSpec } from '../page-types.js';
import { apiGet } from './api.js';
import { h, pick } from './dom.js';
import { formatCell, formatValue } from './format.js';

/** `route` with `{<key>}` replaced by the row's key value (URL-encoded). */
export function detailRoute(route: string, spec: DetailSpec, keyValue: string): string {
  return route.split(`{${spec.key}}`).join(encodeURIComponent(keyValue));
}

/** The first cell of a row of a table with a detail: a link that opens it. */
export function detailLink(
  spec: DetailSpec,
  row: Record<string, unknown>,
  text: string,
  hrefOf: (params: URLSearchParams) => string,
  params: URLSearchParams,
): Node {
  const value = row[spec.key];
  if (typeof value !== 'string' && typeof value !== 'number') return document.createTextNode(text);
  const next = new URLSearchParams(params);
  next.set(spec.param, String(value));
  return h('a', { href: hrefOf(next), class: 'detail-link', 'data-key': String(value) }, text);
}

function valueText(value: unknown, format: DetailSpec['fields'][number]['format']): string {
  if (Array.isArray(value)) return value.length === 0 ? '—' : value.map((v) => formatCell(v)).join(', ');
  return format === undefined ? formatCell(value) : formatValue(value, format);
}

function listTable(columns: string[], rows: Record<string, unknown>[]): HTMLElement {
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      {},
      h('thead', {}, h('tr', {}, ...columns.map((c) => h('th', {}, c)))),
      h(
        'tbody',
        {},
        ...(rows.length > 0
          ? rows.map((r) => h('tr', {}, ...columns.map((c) => h('td', {}, formatCell(r[c])))))
          : [h('tr', {}, h('td', { colspan: columns.length, class: 'muted' }, 'none'))]),
      ),
    ),
  );
}

/**
 * The open detail of `spec` (its key in `params`), or null when none is open. A detail that
 * cannot load (a 404 naming what was not found) says so in place.
 */
export async function renderDetail(
  spec: DetailSpec,
  params: URLSearchParams,
  hrefOf: (params: URLSearchParams) => string,
): Promise<HTMLElement | null> {
  const keyValue = params.get(spec.param);
  if (keyValue === null || keyValue === '') return null;
  const closed = new URLSearchParams(params);
  closed.delete(spec.param);
  const close = h('a', { href: hrefOf(closed), class: 'detail-close' }, 'Close');
  const box = (...children: (Node | string)[]) =>
    h('section', { class: 'card detail', id: `detail-${spec.param}`, 'data-key': keyValue }, ...children);
  let body: unknown;
  try {
    body = await apiGet<unknown>(detailRoute(spec.route, spec, keyValue));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return box(close, h('p', { class: 'muted unavailable' }, `Not available: ${message}`));
  }
  const lists = await Promise.all(
    (spec.lists ?? []).map(async (list) => {
      let rows: unknown;
      try {
        rows =
          list.route === undefined
            ? pick(body, list.field)
            : pick(await apiGet<unknown>(detailRoute(list.route, spec, keyValue)), list.rowsField ?? 'rows');
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        return h('div', {}, h('h3', {}, list.title), h('p', { class: 'muted unavailable' }, message));
      }
      const slug = list.title.toLowerCase().replace(/[^a-z0-9]+/g, '-');
      return h(
        'div',
        { class: 'detail-list', 'data-list': slug },
        h('h3', {}, list.title),
        listTable(list.columns, Array.isArray(rows) ? (rows as Record<string, unknown>[]) : []),
      );
    }),
  );
  return box(
    close,
    h('h2', {}, formatCell(pick(body, spec.titleField))),
    h(
      'dl',
      { class: 'detail-fields' },
      ...spec.fields.flatMap((f) => [
        h('dt', {}, f.label),
        h('dd', { 'data-field': f.field }, valueText(pick(body, f.field), f.format)),
      ]),
    ),
    ...lists,
  );
}
