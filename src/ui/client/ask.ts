/**
 * The question box of a pipeline page (`DashboardPage.ask`): asks `POST <route> {question,
 * company}` with the user's key and shows the answer with its citations. Every retrieved text
 * (answer, filenames, snippets) goes into the page through `textContent` only: documents are
 * user uploads and may contain markup.
 */
import type { AskSpec } from '../page-types.js';
import { ApiError, apiGet } from './api.js';
import { h, pick } from './dom.js';
import { textOf } from './format.js';

interface Citation {
  document_id?: unknown;
  filename?: unknown;
  page?: unknown;
  chunk_id?: unknown;
  score?: unknown;
  text?: unknown;
}

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

/** Longest snippet shown per citation; the full chunk is in the element's title. */
const snippetCharsMax = 320;
/** Company suggestions kept in the datalist. */
const companiesMax = 200;
const companyPattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** The same rule for the input's `pattern` attribute (anchored, and compiled with the `v` flag). */
const companyPatternAttribute = '[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}';

function snippet(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > snippetCharsMax ? `${flat.slice(0, snippetCharsMax - 1)}…` : flat;
}

function citationItem(citation: Citation, index: number): HTMLElement {
  const filename = textOf(citation.filename ?? citation.document_id);
  const score = typeof citation.score === 'number' ? citation.score.toFixed(3) : textOf(citation.score);
  const text = typeof citation.text === 'string' ? citation.text : '';
  return h(
    'li',
    { class: 'citation', 'data-chunk': textOf(citation.chunk_id) },
    h(
      'div',
      { class: 'citation-head' },
      h('span', { class: 'citation-n' }, `[${index + 1}]`),
      h('strong', { class: 'citation-file' }, filename),
      h('span', { class: 'citation-page' }, `page ${textOf(citation.page)}`),
      h('code', { class: 'citation-chunk' }, textOf(citation.chunk_id)),
      h('span', { class: 'citation-score', title: 'retrieval score' }, `score ${score}`),
    ),
    citation.document_id !== undefined && citation.document_id !== citation.filename
      ? h('div', { class: 'citation-doc muted' }, `document ${textOf(citation.document_id)}`)
      : null,
    h('blockquote', { class: 'citation-text', title: text }, snippet(text)),
  );
}

/** Renders an answer (or an error) into `target`. */
function showAnswer(target: HTMLElement, body: AskAnswer): void {
  const citations = Array.isArray(body.citations) ? (body.citations as Citation[]) : [];
  target.replaceChildren(
    h('p', { class: 'ask-answer' }, textOf(body.answer)),
    citations.length > 0
      ? h(
          'div',
          {},
          h('h3', {}, `Sources (${citations.length})`),
          h('ol', { class: 'citations' }, ...citations.map((c, i) => citationItem(c, i))),
        )
      : h('p', { class: 'muted' }, 'No sources: nothing relevant was found in the documents.'),
  );
}

async function loadCompanies(spec: NonNullable<AskSpec['companies']>, list: HTMLDataListElement) {
  try {
    const body = await apiGet<unknown>(spec.route);
    const rows = pick(body, spec.rowsField ?? 'rows');
    const seen = new Set<string>();
    for (const row of Array.isArray(rows) ? (rows as unknown[]) : []) {
      const value = pick(row, spec.field);
      if (typeof value === 'string' && companyPattern.test(value)) seen.add(value);
      if (seen.size >= companiesMax) break;
    }
    list.replaceChildren(...[...seen].sort().map((value) => h('option', { value })));
  } catch {
    // Suggestions only: the company can still be typed.
  }
}

/**
 * The question box as a card. `caller` decides whether a company field is shown: tenant-bound
 * keys always ask within their tenant (the server enforces it too).
 */
export function askBox(spec: AskSpec, caller: Caller): HTMLElement {
  const questionInput = h('input', {
    type: 'text',
    id: `ask-${spec.id}-question`,
    name: 'question',
    class: 'ask-question',
    placeholder: spec.placeholder ?? 'Ask a question about the documents',
    maxlength: 2000,
    required: true,
    autocomplete: 'off',
  });
  const companyList = h('datalist', { id: `ask-${spec.id}-companies` });
  const companyInput =
    caller.tenant === null
      ? h('input', {
          type: 'text',
          id: `ask-${spec.id}-company`,
          name: 'company',
          class: 'ask-company',
          placeholder: 'company',
          list: companyList.id,
          pattern: companyPatternAttribute,
          maxlength: 64,
          required: true,
          autocomplete: 'off',
        })
      : null;
  const submit = h('button', { type: 'submit' }, 'Ask');
  const result = h('div', { class: 'ask-result', id: `ask-${spec.id}-result`, 'aria-live': 'polite' });
  const form = h(
    'form',
    { class: 'ask-form', id: `ask-${spec.id}` },
    h('label', { for: questionInput.id, class: 'visually-hidden' }, 'Question'),
    questionInput,
    companyInput
      ? h('label', { for: companyInput.id, class: 'visually-hidden' }, 'Company')
      : h('span', { class: 'ask-tenant muted' }, `company: ${caller.tenant}`),
    companyInput,
    companyInput ? companyList : null,
    submit,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const question = questionInput.value.trim();
    if (question === '') return;
    const body: Record<string, string> = { question };
    if (companyInput) body.company = companyInput.value.trim();
    submit.disabled = true;
    result.dataset.state = 'asking';
    result.replaceChildren(h('p', { class: 'muted' }, 'Searching the documents…'));
    void apiGet<AskAnswer>(spec.route, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
      .then((answer) => {
        showAnswer(result, answer);
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
  if (companyInput && spec.companies) void loadCompanies(spec.companies, companyList);
  return h('section', { class: 'card ask' }, h('h2', {}, spec.title), form, result);
}
