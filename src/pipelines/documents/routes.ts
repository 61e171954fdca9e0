import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { z } from 'zod';
import { TributaryError, limits, parseJsonBounded, requestHeader } from '../../core/index.js';
import type { Log } from '../../log/index.js';
import { handleError, type ApiRouter } from '../../serve/index.js';
import { ingestDocument, type IngestDeps } from './ingest.js';
import { companyIdPattern, isCompanyId } from './payloads.js';
import { chunksPerMinute, documentCounters, uploadsPerMinute } from './stats.js';
import { documentLimits } from './limits.js';

/** Who is calling, as the serving layer's auth resolved it from the API key (its `AuthInfo` fits). */
export interface CallerIdentity {
  scopes: readonly string[];
  /** Company the key is bound to; undefined for an unbound (platform) key. */
  tenant?: string | undefined;
}

/**
 * How the standalone routes learn the caller. The serving layer authenticates the key and hands
 * over scopes and tenant; these routes then decide per company.
 */
export type ResolveCaller = (c: Context) => CallerIdentity | undefined | Promise<CallerIdentity | undefined>;

/** The documents RAG answer, searched only within `companyId`'s chunks. */
export type AskDocuments = (question: string, companyId: string, signal?: AbortSignal) => Promise<unknown>;

export interface DocumentRoutesOptions {
  ingest: IngestDeps;
  ask?: AskDocuments;
  /** Largest accepted file; default the ingest limit or the platform's upload limit. */
  uploadBytesMax?: number;
  /** Read-only SQL over the lake, for the daily report route. */
  query?: (sql: string, params?: unknown[]) => Promise<Record<string, unknown>[]>;
}

const dailyReportQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(20),
});

const questionSchema = z.object({
  question: z.string().trim().min(1).max(4000).describe('The question, in natural language'),
  company_id: z.string().regex(companyIdPattern).describe('Company whose documents are searched'),
});

/** 401 without a caller and 403 without the scope, before the body is even read. */
function requireScope(caller: CallerIdentity | undefined, scope: 'ingest' | 'read'): CallerIdentity {
  if (caller === undefined)
    throw new TributaryError('UNAUTHENTICATED', 'an API key is required (Authorization: Bearer <key>)');
  if (!caller.scopes.includes(scope) && !caller.scopes.includes('admin')) {
    throw new TributaryError('FORBIDDEN', `this API key lacks the "${scope}" scope`);
  }
  return caller;
}

/** A key bound to a company may only act for that company. */
function requireCompany(caller: CallerIdentity, companyId: string): void {
  if (caller.tenant !== undefined && caller.tenant !== companyId) {
    throw new TributaryError(
      'FORBIDDEN',
      `this API key is bound to another company and may not use company_id ${JSON.stringify(companyId)}`,
    );
  }
}

function textField(body: Record<string, unknown>, name: string): string | undefined {
  const value = body[name];
  return typeof value === 'string' ? value : undefined;
}

function uploadLimit(options: DocumentRoutesOptions): number {
  return options.uploadBytesMax ?? options.ingest.uploadBytesMax ?? limits.uploadBytesMax;
}

/**
 * `POST /upload` body handling (api-gateway + ingest-service of seed 004): multipart fields
 * `file`, `company_id`, optional `metadata` (a JSON object). Answers `201 {document_id}` once the
 * original is stored and the `documents.raw` record is durable.
 */
export async function handleUpload(
  c: Context,
  caller: CallerIdentity | undefined,
  options: DocumentRoutesOptions,
): Promise<Response> {
  const allowed = requireScope(caller, 'ingest');
  const contentType = requestHeader(c, 'content-type') ?? '';
  if (!contentType.toLowerCase().startsWith('multipart/form-data')) {
    throw new TributaryError(
      'UNSUPPORTED_MEDIA_TYPE',
      'POST /upload expects multipart/form-data with fields file, company_id[, metadata]',
    );
  }
  let body: Record<string, unknown>;
  try {
    body = await c.req.parseBody();
  } catch (error) {
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `multipart body could not be parsed: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const companyId = textField(body, 'company_id');
  if (companyId === undefined || !isCompanyId(companyId)) {
    throw new TributaryError(
      'INVALID_ARGUMENT',
      'field company_id is missing or not a valid company id (1-64 of A-Z a-z 0-9 _ . -)',
    );
  }
  requireCompany(allowed, companyId);
  const file = body.file;
  if (!(file instanceof File))
    throw new TributaryError('INVALID_ARGUMENT', 'field file is missing or is not a file part');
  let metadata: Record<string, unknown> | undefined;
  const metadataText = textField(body, 'metadata');
  if (metadataText !== undefined && metadataText !== '') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(metadataText);
    } catch (error) {
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `field metadata is not JSON: ${(error as Error).message}`,
        { cause: error },
      );
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new TributaryError('INVALID_ARGUMENT', 'field metadata must be a JSON object');
    metadata = parsed as Record<string, unknown>;
  }
  const limit = uploadLimit(options);
  if (file.size > limit)
    throw new TributaryError(
      'PAYLOAD_TOO_LARGE',
      `file ${JSON.stringify(file.name)} is ${file.size} bytes; the limit is ${limit}`,
    );
  const bytes = new Uint8Array(await file.arrayBuffer());
  const result = await ingestDocument(
    { ...options.ingest, uploadBytesMax: limit },
    { companyId, filename: file.name, bytes, ...(metadata ? { metadata } : {}) },
  );
  return c.json({ document_id: result.document_id }, 201);
}

/** `POST /ask` (JSON `{question, company_id}`): the RAG answer with citations for that company only. */
export async function handleAsk(
  body: unknown,
  caller: CallerIdentity | undefined,
  ask: AskDocuments | undefined,
  signal?: AbortSignal,
): Promise<unknown> {
  const allowed = requireScope(caller, 'read');
  const parsed = questionSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `body.${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`,
    );
  }
  requireCompany(allowed, parsed.data.company_id);
  if (ask === undefined)
    throw new TributaryError(
      'UNAVAILABLE',
      'question answering is not configured for the documents pipeline',
    );
  return ask(parsed.data.question, parsed.data.company_id, signal);
}

/**
 * The documents routes as a standalone Hono app (seed-compatible paths `POST /upload` and
 * `POST /ask`), for embedding in another server; `resolveCaller` supplies the authenticated key.
 * Inside `tributary up`, `registerDocumentRoutes` mounts the same handlers on the platform router.
 *
 * @example
 * app.route('/', createDocumentRoutes({ ingest: { log, storage } }, (c) => c.get('auth')));
 */
export function createDocumentRoutes(options: DocumentRoutesOptions, resolveCaller: ResolveCaller): Hono {
  const app = new Hono();
  app.onError((error, c) => handleError(error, c));
  const limit = uploadLimit(options);
  app.post(
    '/upload',
    bodyLimit({
      maxSize: limit + documentLimits.multipartFramingBytesMax,
      onError: () => {
        throw new TributaryError('PAYLOAD_TOO_LARGE', `upload is larger than ${limit} bytes`);
      },
    }),
    async (c) => handleUpload(c, await resolveCaller(c), options),
  );
  app.post('/ask', async (c) => {
    const caller = requireScope(await resolveCaller(c), 'read');
    const body = parseJsonBounded(await c.req.text(), 'request body');
    return c.json((await handleAsk(body, caller, options.ask)) as Record<string, unknown>);
  });
  return app;
}

const minutesQuery = z.object({
  minutes: z.coerce
    .number()
    .int()
    .min(1)
    .max(7 * 24 * 60)
    .default(60)
    .describe('How far back to look'),
});

/**
 * Registers the documents routes on the platform router (auth, scopes, rate limits and OpenAPI
 * come from the serving layer): `POST /upload`, `POST /ask`, and the dashboard's reads
 * `GET /api/documents/uploads`, `/api/documents/chunks-per-minute`, `/api/documents/counters`.
 * Tenant-bound keys only ever see their own company's data.
 */
export function registerDocumentRoutes(
  api: ApiRouter,
  options: DocumentRoutesOptions & { log: Log; now?: () => number },
): void {
  const now = options.now ?? Date.now;
  api.route({
    method: 'post',
    path: '/upload',
    summary:
      'Upload a document (multipart: file, company_id, optional metadata JSON) into the documents pipeline',
    tags: ['documents'],
    scope: 'ingest',
    // The file limit plus multipart framing, instead of the platform's smaller JSON body limit.
    bodyLimitBytes: uploadLimit(options) + documentLimits.multipartFramingBytesMax,
    responses: {
      201: { description: 'stored and queued', schema: z.object({ document_id: z.string() }) },
      413: { description: 'file too large' },
      415: { description: 'unsupported document type' },
    },
    handler: async ({ c, auth }) => handleUpload(c, auth, options),
  });
  api.route({
    method: 'post',
    path: '/ask',
    summary: "Ask a question over one company's documents; answer with citations (document, page, chunk)",
    tags: ['documents'],
    scope: 'read',
    body: questionSchema,
    responses: { 200: { description: 'answer with citations' } },
    handler: async ({ body, auth, signal }) => (await handleAsk(body, auth, options.ask, signal)) as object,
  });
  api.route({
    method: 'get',
    path: '/api/documents/uploads',
    summary: 'Uploads per minute (by upload time)',
    tags: ['documents'],
    scope: 'read',
    query: minutesQuery,
    responses: { 200: { description: 'uploads per minute' } },
    handler: async ({ query, auth }) => ({
      rows: await uploadsPerMinute(options.log, now() - query.minutes * 60_000, auth?.tenant),
    }),
  });
  api.route({
    method: 'get',
    path: '/api/documents/chunks-per-minute',
    summary: 'Chunks per company per 1-minute window (the analytics job results)',
    tags: ['documents'],
    scope: 'read',
    query: minutesQuery,
    responses: { 200: { description: 'window results' } },
    handler: async ({ query, auth }) => ({
      rows: await chunksPerMinute(options.log, now() - query.minutes * 60_000, auth?.tenant),
    }),
  });
  const query = options.query;
  if (query) {
    api.route({
      method: 'get',
      path: '/api/documents/daily-report',
      summary:
        'The daily chunk report (gold.daily_chunk_count), newest days first; empty before its first run',
      tags: ['documents'],
      scope: 'read',
      query: dailyReportQuery,
      responses: { 200: { description: 'report rows' } },
      handler: async ({ query: q, auth }) => {
        // The table appears with the report's first run (the day after data lands); until then the
        // route answers no rows instead of 404, so the dashboard shows "nothing yet".
        try {
          const tenant = auth?.tenant;
          const rows = await query(
            `SELECT date, company_id, document_id, total_chunks FROM gold.daily_chunk_count
             ${tenant ? 'WHERE company_id = $1' : ''} ORDER BY date DESC, company_id, document_id LIMIT ${q.limit}`,
            tenant ? [tenant] : [],
          );
          return { rows };
        } catch (error) {
          if (error instanceof TributaryError && error.code === 'NOT_FOUND') return { rows: [] };
          throw error;
        }
      },
    });
  }
  api.route({
    method: 'get',
    path: '/api/documents/counters',
    summary: 'Uploads, chunks, embeddings, window results, dead-lettered documents and late records',
    tags: ['documents'],
    scope: 'read',
    responses: { 200: { description: 'counters' } },
    handler: async ({ auth }) => documentCounters(options.log, auth?.tenant),
  });
}
