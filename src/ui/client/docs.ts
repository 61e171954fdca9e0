/**
 * `/docs`: renders `/openapi.json` as a readable reference (no third-party viewer, no CDN).
 */
import { h } from './dom.js';

interface Parameter {
  name: string;
  in: string;
  required?: boolean;
  description?: string;
  schema?: Record<string, unknown>;
}
interface Operation {
  summary?: string;
  description?: string;
  tags?: string[];
  parameters?: Parameter[];
  requestBody?: { content?: Record<string, { schema?: unknown }> };
  responses?: Record<string, { description?: string; $ref?: string }>;
  'x-tributary-scope'?: string;
}
interface Document {
  info: { title: string; version: string; description?: string };
  paths: Record<string, Record<string, Operation>>;
}

function schemaText(schema: unknown): string {
  return JSON.stringify(schema ?? {}, null, 2);
}

function renderOperation(path: string, method: string, op: Operation): HTMLElement {
  const scope = op['x-tributary-scope'] ?? 'read';
  return h(
    'details',
    { class: 'operation', id: `${method}-${path}` },
    h(
      'summary',
      {},
      h('span', { class: `method method-${method}` }, method.toUpperCase()),
      h('code', {}, path),
      h('span', { class: 'op-summary' }, op.summary ?? ''),
      h('span', { class: `badge scope-${scope}` }, scope),
    ),
    op.description ? h('p', { class: 'description' }, op.description) : null,
    op.parameters && op.parameters.length > 0
      ? h(
          'table',
          {},
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', {}, 'Parameter'),
              h('th', {}, 'In'),
              h('th', {}, 'Type'),
              h('th', {}, 'Description'),
            ),
          ),
          h(
            'tbody',
            {},
            ...op.parameters.map((p) =>
              h(
                'tr',
                {},
                h('td', {}, h('code', {}, p.name), p.required ? ' *' : ''),
                h('td', {}, p.in),
                h(
                  'td',
                  {},
                  typeof p.schema?.type === 'string' ? p.schema.type : p.schema?.enum ? 'enum' : 'any',
                ),
                h('td', {}, p.description ?? ''),
              ),
            ),
          ),
        )
      : null,
    op.requestBody
      ? h(
          'div',
          {},
          h('h4', {}, 'Request body'),
          h('pre', {}, schemaText(Object.values(op.requestBody.content ?? {})[0]?.schema)),
        )
      : null,
    h('h4', {}, 'Responses'),
    h(
      'ul',
      {},
      ...Object.entries(op.responses ?? {}).map(([status, r]) =>
        h('li', {}, h('code', {}, status), ` ${r.description ?? r.$ref?.split('/').pop() ?? ''}`),
      ),
    ),
  );
}

async function main(): Promise<void> {
  const root = document.getElementById('docs')!;
  const response = await fetch('/openapi.json');
  const doc = (await response.json()) as Document;
  document.title = `${doc.info.title} reference`;
  const byTag = new Map<string, HTMLElement[]>();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const tag = op.tags?.[0] ?? 'other';
      const list = byTag.get(tag) ?? [];
      list.push(renderOperation(path, method, op));
      byTag.set(tag, list);
    }
  }
  root.replaceChildren(
    h('h1', {}, `${doc.info.title} `, h('small', {}, doc.info.version)),
    h('p', {}, doc.info.description ?? ''),
    h(
      'p',
      {},
      'Send keys as ',
      h('code', {}, 'Authorization: Bearer trb_…'),
      '. Machine-readable document: ',
      h('a', { href: '/openapi.json' }, '/openapi.json'),
      '.',
    ),
    ...[...byTag.entries()].map(([tag, operations]) =>
      h('section', { class: 'card' }, h('h2', {}, tag), ...operations),
    ),
  );
}

void main();
