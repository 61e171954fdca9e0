/**
 * The question box of a pipeline page (`DashboardPage.ask`): asks `POST <route> {question,
 * filters, k}` — the route every pipeline mounts with `registerAskRoute` — with the user's key,
 * and shows the answer with its citations. The page declares the filter fields (documents: the
 * company, the index's tenant field; reviews: the product) and which citation fields to show.
 * Every retrieved text (answer, field values, passages) goes into the page through
 * `textContent` only: documents are user uploads and reviews are anyone's text.
 */
import type { AskFilterField, AskSpec } from '../page-types.js';
import { ApiError, apiGet } from './api.js';
import { h, pick } from './dom.js';
import { textOf } from './format.js';

type Citation = Record<string, unknown>;

interface AskAnswer {
  answer?: unknown;
  citations?: unknown;
  mode?: unknown;
}

export interface Caller {
  keyId: string;
  scopes: string[];
  tenant: string | null;
}

/** Longest snippet shown per citation; the full passage is in the element's title. */
const snippetCharsMax = 320;
/** Suggestions kept per filter field's datalist. */
const suggestionsMax = 200;
/** The server's limit on a filter value (`askBodySchema`). */
const filterValueCharsMax = 1000;

function snippet(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > snippetCharsMax ? `${flat.slice(0, snippetCharsMax - 1)}…` : flat;
}

/** `product_id` → `product id`. */
function labelOf(field: string): string {
  return field.replace(/_/g, ' ');
}

function citationItem(citation: Citation, index: number, fields: readonly string[]): HTMLElement {
  const score = typeof citation.score === 'number' ? citation.score.toFixed(3) : textOf(citation.score);
  const text = typeof citation.text === 'string' ? citation.text : '';
  return h(
    'li',
    { class: 'citation' },
    h(
      'div',
      { class: 'citation-head' },
      h('span', { class: 'citation-n' }, `[${index + 1}]`),
      ...fields
        .filter((field) => citation[field] !== undefined)
        .map((field) =>
          h(
            'span',
            { class: 'citation-field', 'data-field': field },
            h('span', { class: 'citation-label muted' }, `${labelOf(field)} `),
            h('span', { class: 'citation-value' }, textOf(citation[field])),
          ),
        ),
      h('span', { class: 'citation-score', title: 'retrieval score' }, `score ${score}`),
    ),
    h('blockquote', { class: 'citation-text', title: text }, snippet(text)),
  );
}

/** The citation fields to show: the page's choice, else every field but score and text. */
function fieldsOf(spec: AskSpec, citations: readonly Citation[]): string[] {
  if (spec.citationFields) return spec.citationFields;
  const fields = new Set<string>();
  for (const citation of citations) {
    for (const field of Object.keys(citation)) if (field !== 'score' && field !== 'text') fields.add(field);
  }
  return [...fields];
}

/** Renders an answer into `target`. */
function showAnswer(target: HTMLElement, spec: AskSpec, body: AskAnswer): void {
  const citations = Array.isArray(body.citations)
    ? (body.citations as unknown[]).filter(
        (c): c is Citation => typeof c === 'object' && c !== null && !Array.isArray(c),
      )
    : [];
  const fields = fieldsOf(spec, citations);
  target.replaceChildren(
    h('p', { class: 'ask-answer' }, textOf(body.answer)),
    citations.length > 0
      ? h(
          'div',
          {},
          h('h3', {}, `Sources (${citations.length})`),
          h('ol', { class: 'citations' }, ...citations.map((c, i) => citationItem(c, i, fields))),
        )
      : h(
          'p',
          { class: 'muted' },
          `No sources: nothing relevant was found in the ${spec.what ?? 'passages'}.`,
        ),
  );
}

async function loadSuggestions(
  spec: NonNullable<AskFilterField['suggestions']>,
  list: HTMLDataListElement,
): Promise<void> {
  try {
    const body = await apiGet<unknown>(spec.route);
    const rows = pick(body, spec.rowsField ?? 'rows');
    const seen = new Set<string>();
    for (const row of Array.isArray(rows) ? (rows as unknown[]) : []) {
      const value = pick(row, spec.field);
      if ((typeof value === 'string' && value.length <= filterValueCharsMax) || typeof value === 'number') {
        seen.add(String(value));
      }
      if (seen.size >= suggestionsMax) break;
    }
    list.replaceChildren(...[...seen].sort().map((value) => h('option', { value })));
  } catch {
    // Suggestions only: the value can still be typed.
  }
}

interface FilterInput {
  field: AskFilterField;
  input: HTMLInputElement;
}

/**
 * The question box as a card. A filter field marked `tenant` is shown only to keys without a
 * tenant: tenant-bound keys always ask within their tenant (the server enforces it too).
 */
export function askBox(spec: AskSpec, caller: Caller): HTMLElement {
  const questionInput = h('input', {
    type: 'text',
    id: `ask-${spec.id}-question`,
    name: 'question',
    class: 'ask-question',
    placeholder: spec.placeholder ?? `Ask a question about the ${spec.what ?? 'passages'}`,
    maxlength: 2000,
    required: true,
    autocomplete: 'off',
  });
  const inputs: FilterInput[] = [];
  const filterParts: HTMLElement[] = [];
  for (const field of spec.filters ?? []) {
    if (field.tenant && caller.tenant !== null) {
      filterParts.push(
        h(
          'span',
          { class: 'ask-tenant muted', 'data-field': field.field },
          `${field.label.toLowerCase()}: ${caller.tenant}`,
        ),
      );
      continue;
    }
    const id = `ask-${spec.id}-${field.field}`;
    const list = field.suggestions ? h('datalist', { id: `${id}-options` }) : null;
    const input = h('input', {
      type: field.type === 'number' ? 'number' : 'text',
      id,
      name: field.field,
      class: 'ask-filter',
      placeholder: field.required ? field.label.toLowerCase() : `${field.label.toLowerCase()} (any)`,
      list: list?.id,
      maxlength: field.type === 'number' ? undefined : filterValueCharsMax,
      required: field.required === true || (field.tenant === true && caller.tenant === null),
      autocomplete: 'off',
    });
    inputs.push({ field, input });
    filterParts.push(h('label', { for: id, class: 'visually-hidden' }, field.label), input);
    if (list) {
      filterParts.push(list);
      void loadSuggestions(field.suggestions!, list);
    }
  }
  const submit = h('button', { type: 'submit' }, 'Ask');
  const result = h('div', { class: 'ask-result', id: `ask-${spec.id}-result`, 'aria-live': 'polite' });
  const form = h(
    'form',
    { class: 'ask-form', id: `ask-${spec.id}` },
    h('label', { for: questionInput.id, class: 'visually-hidden' }, 'Question'),
    questionInput,
    ...filterParts,
    submit,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const question = questionInput.value.trim();
    if (question === '') return;
    const filters: Record<string, string | number> = {};
    for (const { field, input } of inputs) {
      const value = input.value.trim();
      if (value === '') continue;
      filters[field.field] = field.type === 'number' ? Number(value) : value;
    }
    const body: { question: string; filters?: Record<string, string | number>; k?: number } = {
      question,
    };
    if (Object.keys(filters).length > 0) body.filters = filters;
    if (spec.k !== undefined) body.k = spec.k;
    submit.disabled = true;
    result.dataset.state = 'asking';
    result.replaceChildren(h('p', { class: 'muted' }, `Searching the ${spec.what ?? 'passages'}…`));
    void apiGet<AskAnswer>(spec.route, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
      .then((answer) => {
        showAnswer(result, spec, answer);
        result.dataset.state = 'answered';
      })
      .catch((error: unknown) => {
        const message =
          error instanceof ApiError ? `${error.message} (${error.code})` : (error as Error).message;
        result.replaceChildren(h('p', { class: 'error-text' }, message));
        result.dataset.state = 'failed';
      })
      .finally(() => {
        submit.disabled = false;
      });
  });
  return h('section', { class: 'card ask' }, h('h2', {}, spec.title), form, result);
}
