import { randomUUID } from 'node:crypto';
import { TributaryError, childLogger, counter, limits, systemClock, type Clock } from '../../core/index.js';
import type { Log } from '../../log/index.js';
import type { Storage } from '../../lake/index.js';
import { contentTypeOfKind, detectDocumentKind, safeFileName, type DocumentKind } from './filetype.js';
import { defaultTopicPartitions, encodePayload, isCompanyId, topics, type RawDocument } from './payloads.js';
import { documentLimits } from './limits.js';

const logger = childLogger('pipelines.documents.ingest');
const uploadsTotal = counter(
  'tributary_documents_uploads_total',
  'Documents accepted by the documents pipeline',
  ['company_id'],
);

/** Prefix of stored originals in the lake storage backend. */
export const originalsPrefix = 'originals/documents';
/** PDF, TXT, Markdown, HTML and DOCX: what the ML layer's extraction reads. */
export const defaultAcceptedKinds: readonly DocumentKind[] = ['pdf', 'txt', 'md', 'html', 'docx'];

export interface IngestDeps {
  log: Pick<Log, 'append' | 'ensureTopic'>;
  storage: Pick<Storage, 'root' | 'put'>;
  clock?: Clock;
  /** Document kinds accepted (default PDF, TXT, Markdown, HTML, DOCX). */
  acceptedKinds?: readonly DocumentKind[];
  uploadBytesMax?: number;
  /** Partitions for topics this pipeline creates; existing topics are used as they are. */
  topicPartitions?: number;
}

export interface IngestRequest {
  companyId: string;
  filename: string;
  bytes: Uint8Array;
  metadata?: Record<string, unknown>;
  /** Override of the upload time (epoch ms), e.g. for replays; default the clock's now. */
  uploadedAtMs?: number;
}

export interface IngestResult {
  document_id: string;
  company_id: string;
  s3_path: string;
  kind: DocumentKind;
  uploadedAtMs: number;
}

/**
 * `s3_path` of a stored original: the storage root joined with its key, e.g.
 * `s3://bucket/lake/originals/documents/acme/<document_id>/report.pdf` or
 * `/data/.tributary/lake/originals/documents/acme/<document_id>/report.pdf`.
 */
export function originalPath(storageRoot: string, key: string): string {
  return `${storageRoot.replace(/\/+$/, '')}/${key}`;
}

/** The storage key of an `s3_path`, refusing paths outside the storage root or the originals prefix. */
export function originalKey(storageRoot: string, s3Path: string): string {
  const root = `${storageRoot.replace(/\/+$/, '')}/`;
  const key = s3Path.startsWith(root) ? s3Path.slice(root.length) : s3Path;
  if (
    !key.startsWith(`${originalsPrefix}/`) ||
    key.split('/').some((segment) => segment === '..' || segment === '.' || segment === '')
  ) {
    throw new TributaryError(
      'PATH_REFUSED',
      `s3_path ${JSON.stringify(s3Path)} is not a stored original under ${root}${originalsPrefix}/`,
    );
  }
  return key;
}

/** Topic creation happens once per log object, not on every upload. */
const topicsReady = new WeakMap<object, Promise<void>>();

/** Creates the pipeline's topics when missing (an existing topic keeps its partition count). */
export async function ensureDocumentTopics(
  log: Pick<Log, 'ensureTopic'>,
  partitions = defaultTopicPartitions,
): Promise<void> {
  for (const name of [topics.raw, topics.chunks, topics.embeddings, topics.analytics, topics.rawDlq]) {
    await log.ensureTopic(name, { partitions });
  }
}

/**
 * The ingest service: validates a document, stores the original durably in the lake storage backend
 * (under `originals/documents/<company_id>/<document_id>/<safe file name>`), then appends
 * `{document_id, company_id, s3_path}` to `documents.raw` keyed by document_id with the upload
 * time as record timestamp. Resolves only when both are durable. The user-supplied file name never
 * decides the directory: only its sanitised base name is used as the last path segment.
 *
 * @example
 * const { document_id } = await ingestDocument({ log, storage }, { companyId: 'acme', filename: 'q3.pdf', bytes });
 */
export async function ingestDocument(deps: IngestDeps, request: IngestRequest): Promise<IngestResult> {
  const clock = deps.clock ?? systemClock;
  const bytesMax = deps.uploadBytesMax ?? limits.uploadBytesMax;
  if (!isCompanyId(request.companyId)) {
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `company_id ${JSON.stringify(request.companyId)} is not a valid company id (1-64 of A-Z a-z 0-9 _ . -)`,
      {
        details: { field: 'company_id' },
      },
    );
  }
  if (request.bytes.byteLength > bytesMax) {
    throw new TributaryError(
      'PAYLOAD_TOO_LARGE',
      `file ${JSON.stringify(request.filename)} is ${request.bytes.byteLength} bytes; the limit is ${bytesMax}`,
      {
        details: { file: request.filename },
      },
    );
  }
  if (request.bytes.byteLength === 0) {
    throw new TributaryError('INVALID_ARGUMENT', `file ${JSON.stringify(request.filename)} is empty`, {
      details: { file: request.filename },
    });
  }
  const kind = detectDocumentKind(
    request.filename,
    request.bytes,
    deps.acceptedKinds ?? defaultAcceptedKinds,
  );
  let metadataText: string | undefined;
  if (request.metadata !== undefined) {
    metadataText = JSON.stringify(request.metadata);
    if (Buffer.byteLength(metadataText) > documentLimits.metadataBytesMax) {
      throw new TributaryError(
        'PAYLOAD_TOO_LARGE',
        `metadata of ${JSON.stringify(request.filename)} is larger than ${documentLimits.metadataBytesMax} bytes`,
        {
          details: { field: 'metadata' },
        },
      );
    }
  }

  let ready = topicsReady.get(deps.log);
  if (ready === undefined) {
    ready = ensureDocumentTopics(deps.log, deps.topicPartitions);
    topicsReady.set(deps.log, ready);
    ready.catch(() => topicsReady.delete(deps.log));
  }
  await ready;

  const documentId = randomUUID();
  const key = `${originalsPrefix}/${request.companyId}/${documentId}/${safeFileName(request.filename, kind)}`;
  const uploadedAtMs = request.uploadedAtMs ?? clock.now();
  // Original first, record second: a record never points at a missing file. If the append fails
  // the stored original is unreferenced, and the caller gets an error and no document_id.
  await deps.storage.put(key, request.bytes);
  const s3Path = originalPath(deps.storage.root, key);
  const payload: RawDocument = { document_id: documentId, company_id: request.companyId, s3_path: s3Path };
  const headers: Record<string, string> = {
    'content-type': contentTypeOfKind(kind),
    filename: request.filename.split(/[\\/]/).pop() ?? '',
  };
  if (metadataText !== undefined) headers.metadata = metadataText;
  await deps.log.append([
    { topic: topics.raw, key: documentId, value: encodePayload(payload), timestamp: uploadedAtMs, headers },
  ]);
  uploadsTotal.inc({ company_id: request.companyId });
  logger.debug(
    { document_id: documentId, company_id: request.companyId, bytes: request.bytes.byteLength },
    'document ingested',
  );
  return { ...payload, kind, uploadedAtMs };
}
