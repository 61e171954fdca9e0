import { z } from 'zod';
import { TributaryError } from '../core/index.js';
import {
  metadataFieldPattern,
  validateFilter,
  valueKey,
  type Answer,
  type IndexReader,
  type MetadataFilter,
} from '../ml/index.js';
import type { AuthInfo } from './keys.js';
import type { ApiRouter } from './router.js';
import type { AskFunction } from './types.js';

const valueSchema = z.union([z.string().max(1000), z.number()]);

/** `{question, filters, k}` of every pipeline's ask route. */
export const askBodySchema = z.object({
  question: z.string().trim().min(1).max(4000).describe('The question, in natural language'),
  filters: z
    .record(
      z.string().regex(metadataFieldPattern),
      z.union([
        valueSchema,
        z.array(valueSchema).min(1).max(100),
        z.object({ from: valueSchema.optional(), to: valueSchema.optional() }).strict(),
      ]),
    )
    .optional()
    .describe(
      'Conditions on metadata fields, all of which must hold: a value (equal), a list (any of) or {from, to} (inclusive). A tenant-scoped index needs its tenant field (set from a tenant-bound key).',
    ),
  k: z.number().int().min(1).max(50).optional().describe('Passages to retrieve (default 5)'),
});

export type AskBody = z.infer<typeof askBodySchema>;

const citationSchema = z
  .object({ score: z.number(), text: z.string() })
  .catchall(z.union([z.string(), z.number()]));
const answerSchema = z.object({
  answer: z.string(),
  citations: z.array(citationSchema),
  mode: z.enum(['extractive', 'llm', 'none']),
});

/**
 * One question within the caller's rights. Where the index declares a tenant field, a
 * tenant-bound key always asks within its own tenant (naming another is 403) and an unbound key
 * must name one; an index without tenants refuses tenant-bound keys, since its passages belong to
 * no tenant in particular. The index itself refuses a query without exactly one tenant, so this
 * is the second of two locks.
 */
export async function askWithinTenant(
  index: IndexReader,
  auth: Pick<AuthInfo, 'tenant'> | undefined,
  body: AskBody,
  pipeline: string,
  signal?: AbortSignal,
): Promise<Answer> {
  const { tenantField } = await index.schema();
  const filters: Record<string, MetadataFilter[string]> = { ...validateFilter(body.filters) };
  const tenant = auth?.tenant;
  if (tenantField === undefined) {
    if (tenant !== undefined) {
      throw new TributaryError(
        'FORBIDDEN',
        `this API key is bound to tenant "${tenant}", and the ${pipeline} index is not tenant-scoped; use a key without a tenant`,
      );
    }
  } else if (tenant !== undefined) {
    const asked = filters[tenantField];
    if (
      asked !== undefined &&
      !((typeof asked === 'string' || typeof asked === 'number') && valueKey(asked) === tenant)
    ) {
      throw new TributaryError(
        'FORBIDDEN',
        `this API key is bound to another tenant and may not use filters.${tenantField} ${JSON.stringify(asked)}`,
      );
    }
    filters[tenantField] = tenant;
  } else if (filters[tenantField] === undefined) {
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `filters.${tenantField} is required for keys not bound to a tenant: the ${pipeline} index answers within one tenant`,
    );
  }
  return index.ask(body.question, { filters, signal, ...(body.k === undefined ? {} : { k: body.k }) });
}

export interface AskRouteOptions {
  /** The pipeline; the route is `POST /api/<pipeline>/ask` unless `path` says otherwise. */
  pipeline: string;
  /** Its retrieval index (a `RetrievalIndex`). */
  index: IndexReader;
  path?: string;
  /** What the passages are, for the OpenAPI summary (default "passages"). */
  what?: string;
}

/**
 * The ask route every pipeline with a retrieval index mounts: `POST /api/<pipeline>/ask` with
 * `{question, filters, k}` → `{answer, citations, mode}`. Citations carry the fields the index's
 * schema chooses; "nothing relevant found" is answered as such (`mode: 'none'`, no citations);
 * retrieved text reaches an LLM only as escaped data (see the ML layer's `ask`).
 *
 * @example
 * routes: (api) => registerAskRoute(api, { pipeline: 'reviews', index: reviewsIndex, what: 'reviews' })
 */
export function registerAskRoute(api: ApiRouter, options: AskRouteOptions): void {
  api.route({
    method: 'post',
    path: options.path ?? `/api/${options.pipeline}/ask`,
    summary: `Ask a question over the ${options.pipeline} ${options.what ?? 'passages'}; answer with citations, filtered by any metadata field`,
    tags: [options.pipeline],
    scope: 'read',
    body: askBodySchema,
    responses: {
      200: {
        description: 'answer with citations ("mode": "none" when nothing relevant)',
        schema: answerSchema,
      },
      403: {
        description: 'the key is bound to another tenant (or to any tenant, on an index without tenants)',
      },
    },
    handler: async ({ body, auth, signal }) =>
      askWithinTenant(options.index, auth, body, options.pipeline, signal),
  });
}

/**
 * `POST /api/ask` over the platform's `AskFunction` (the documents pipeline's answers): the
 * company is the key's tenant for tenant-bound keys, else the body's `company`.
 */
export function registerPlatformAskRoute(api: ApiRouter, ask: AskFunction): void {
  api.route({
    method: 'post',
    path: '/api/ask',
    summary: 'Ask a question over ingested documents (retrieval-augmented answer with sources)',
    tags: ['ml'],
    scope: 'read',
    body: z.object({
      question: z.string().min(1).max(2000),
      company: z
        .string()
        .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/)
        .optional()
        .describe('Whose documents to search; fixed to the key’s tenant for tenant-bound keys'),
      topK: z.number().int().min(1).max(50).optional(),
    }),
    responses: { 200: { description: 'answer with sources' } },
    handler: async ({ body, auth, signal }) => {
      const company = auth?.tenant ?? body.company;
      if (company === undefined)
        throw new TributaryError(
          'INVALID_ARGUMENT',
          'body.company is required for keys not bound to a tenant',
        );
      return ask(body.question, { company, signal, ...(body.topK ? { topK: body.topK } : {}) });
    },
  });
}
