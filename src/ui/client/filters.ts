/**
 * Page filters (`FilterSpec`): a bar of selects, date ranges and number ranges whose values live in the page's
 * URL hash (`#/p/<page>?country=France&from=1997-01-01`) and go into the query strings of the
 * routes they apply to. Changing a filter changes the hash, so the page re-renders through the
 * normal navigation, the view can be shared, and a reload keeps it.
 */
import type { FilterSpec } from '../page-types.js';
import { apiGet } from './api.js';
import { h, pick } from './dom.js';

export interface PageLocation {
  pageId: string;
  params: URLSearchParams;
}

/** `#/p/<id>?a=b` → page id and its filter values; anything else is the platform page. */
export function parseHash(hash: string): PageLocation {
  const match = /^#\/p\/([^?]+)(?:\?(.*))?$/.exec(hash);
  if (!match) return { pageId: 'platform', params: new URLSearchParams() };
  return { pageId: decodeURIComponent(match[1]), params: new URLSearchParams(match[2] ?? '') };
}

export function pageHash(pageId: string, params: URLSearchParams): string {
  const query = params.toString();
  return `#/p/${encodeURIComponent(pageId)}${query === '' ? '' : `?${query}`}`;
}

function parameterNames(filter: FilterSpec): string[] {
  if (filter.kind === 'select') return [filter.id];
  return [filter.params?.from ?? 'from', filter.params?.to ?? 'to'];
}

/** The route with the values of every filter that applies to widget `widgetId`. */
export function filteredRoute(
  route: string,
  widgetId: string,
  filters: readonly FilterSpec[],
  params: URLSearchParams,
): string {
  const extra = new URLSearchParams();
  for (const filter of filters) {
    if (filter.appliesTo !== undefined && !filter.appliesTo.includes(widgetId)) continue;
    for (const name of parameterNames(filter)) {
      const value = params.get(name);
      if (value !== null && value !== '') extra.set(name, value);
    }
  }
  const query = extra.toString();
  if (query === '') return route;
  return `${route}${route.includes('?') ? '&' : '?'}${query}`;
}

async function optionsOf(filter: FilterSpec): Promise<string[]> {
  const spec = filter.options;
  if (spec === undefined) return [];
  if (Array.isArray(spec)) return spec;
  const body = await apiGet<unknown>(spec.route);
  const rows = pick(body, spec.rowsField ?? 'rows');
  const values = new Set<string>();
  if (Array.isArray(rows))
    for (const row of rows as Record<string, unknown>[]) {
      const value = row?.[spec.field];
      if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')
        if (value !== '') values.add(String(value));
    }
  return [...values].sort((a, b) => a.localeCompare(b));
}

/** The filter bar; `onChange` gets the page's new filter values. */
export async function filterBar(
  filters: readonly FilterSpec[],
  params: URLSearchParams,
  onChange: (params: URLSearchParams) => void,
): Promise<HTMLElement> {
  const update = (name: string, value: string) => {
    const next = new URLSearchParams(params);
    if (value === '') next.delete(name);
    else next.set(name, value);
    onChange(next);
  };
  const controls = await Promise.all(
    filters.map(async (filter) => {
      if (filter.kind === 'dateRange' || filter.kind === 'numberRange') {
        const [from, to] = parameterNames(filter);
        const numeric = filter.kind === 'numberRange';
        const input = (name: string, suffix: string, label: string) =>
          h(
            'label',
            {},
            label,
            h('input', {
              type: numeric ? 'number' : 'date',
              id: `filter-${filter.id}-${suffix}`,
              value: params.get(name) ?? '',
              min: numeric ? filter.min : undefined,
              max: numeric ? filter.max : undefined,
              step: numeric ? (filter.step ?? 1) : undefined,
              onchange: (event) => update(name, (event.target as HTMLInputElement).value),
            }),
          );
        return h(
          'fieldset',
          { class: 'filter', 'data-filter': filter.id },
          h('legend', {}, filter.label),
          input(from, 'from', 'from'),
          input(to, 'to', 'to'),
        );
      }
      const current = params.get(filter.id) ?? '';
      const options = await optionsOf(filter);
      // A shared URL may name a value the options route no longer lists: keep it selectable.
      if (current !== '' && !options.includes(current)) options.unshift(current);
      const select = h(
        'select',
        {
          id: `filter-${filter.id}`,
          onchange: (event) => update(filter.id, (event.target as HTMLSelectElement).value),
        },
        h('option', { value: '' }, 'All'),
        ...options.map((value) => h('option', { value, selected: value === current }, value)),
      );
      return h('label', { class: 'filter', 'data-filter': filter.id }, filter.label, select);
    }),
  );
  return h('div', { class: 'filters', role: 'search' }, ...controls);
}
