/**
 * OpenLineage run events (spec 2-0-2, https://openlineage.io/spec/2-0-2/OpenLineage.json): what a
 * batch run or a stream job read and wrote, in the format Marquez, DataHub and other OpenLineage
 * consumers accept.
 *
 * Dataset naming (OpenLineage splits a dataset into a namespace and a name; the URI is
 * `<namespace>/<name>`):
 *   topic  `ventes-temps-reel`         namespace `tributary://topic`, name `ventes-temps-reel`
 *   table  `gold.kpi_summary`          namespace `tributary://lake`,  name `gold.kpi_summary`
 *   other  `postgres://host:5432/db.public.orders`   namespace `postgres://host:5432`,
 *                                      name `db.public.orders` (a source outside Tributary)
 * A job is namespace `tributary` (or the emitter's), name = the batch or stream job name.
 *
 * How a string names a dataset (`datasetOf`), as in `BatchJob.inputs/outputs` and `Sink.datasets`:
 *   `bronze.x` / `silver.x` / `gold.x`        a lake table
 *   `topic:<name>` (a topic sink's name)      a topic; `lake:<layer>.<table>` (a lake sink's) a table
 *   `<scheme>://<authority>/<name>`           as written (Tributary's own URIs included)
 *   any other plain name                      a topic
 */
import { createHash } from 'node:crypto';

export const openLineageSchemaUrl = 'https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent';
/** A URI naming the producer; Tributary has no public repository URL, so a URN. */
export const lineageProducer = 'urn:tributary:0.1.0';
export const topicNamespace = 'tributary://topic';
export const lakeNamespace = 'tributary://lake';
export const defaultJobNamespace = 'tributary';

const facetUrls = {
  schema: 'https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet',
  errorMessage:
    'https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet',
  jobType: 'https://openlineage.io/spec/facets/2-0-3/JobTypeJobFacet.json#/$defs/JobTypeJobFacet',
  tributaryRun: 'urn:tributary:facet:TributaryRunFacet:1',
} as const;

export type LineageEventType = 'START' | 'RUNNING' | 'COMPLETE' | 'ABORT' | 'FAIL' | 'OTHER';

export interface SchemaField {
  name: string;
  type: string;
}

/** A dataset reference before facets are attached. */
export interface DatasetRef {
  namespace: string;
  name: string;
}

export interface LineageDataset extends DatasetRef {
  facets?: {
    schema?: { _producer: string; _schemaURL: string; fields: SchemaField[] };
    [facet: string]: unknown;
  };
}

export interface LineageRunEvent {
  eventType: LineageEventType;
  /** ISO-8601 with milliseconds, UTC. */
  eventTime: string;
  run: { runId: string; facets?: Record<string, unknown> };
  job: { namespace: string; name: string; facets?: Record<string, unknown> };
  inputs: LineageDataset[];
  outputs: LineageDataset[];
  producer: string;
  schemaURL: string;
}

const lakeTablePattern = /^(bronze|silver|gold)\.[A-Za-z0-9_]+$/;
const uriPattern = /^([a-z][a-z0-9+.-]*:\/\/[^/]*)\/(.+)$/i;

/** The dataset a job input/output string or sink name names (see the table above). */
export function datasetOf(ref: string): DatasetRef {
  if (ref.startsWith('topic:')) return { namespace: topicNamespace, name: ref.slice('topic:'.length) };
  if (ref.startsWith('lake:')) return { namespace: lakeNamespace, name: ref.slice('lake:'.length) };
  if (lakeTablePattern.test(ref)) return { namespace: lakeNamespace, name: ref };
  const uri = uriPattern.exec(ref);
  if (uri) return { namespace: uri[1], name: uri[2] };
  return { namespace: topicNamespace, name: ref };
}

/** `<namespace>/<name>`: the dataset's URI, e.g. `tributary://lake/gold.kpi_summary`. */
export function datasetUri(dataset: DatasetRef): string {
  return `${dataset.namespace}/${dataset.name}`;
}

/**
 * The schema facet for a dataset: OpenLineage's `SchemaDatasetFacet` (fields with name and type;
 * lake tables carry their DuckDB types, topics the JSON types of a sampled record).
 */
export function schemaFacet(fields: SchemaField[]): NonNullable<LineageDataset['facets']>['schema'] {
  return { _producer: lineageProducer, _schemaURL: facetUrls.schema, fields };
}

/** JSON types of a sampled record's top-level fields (a topic has no declared schema). */
export function inferFields(value: unknown): SchemaField[] | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
  return Object.entries(value as Record<string, unknown>).map(([name, v]) => ({ name, type: jsonType(v) }));
}

function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

/** A stable UUID (v5 layout, SHA-1 of the text) for ids that are not UUIDs, e.g. a batch run id. */
export function uuidOf(text: string): string {
  const hash = createHash('sha1').update(`tributary.lineage:${text}`).digest();
  hash[6] = (hash[6] & 0x0f) | 0x50;
  hash[8] = (hash[8] & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export interface RunEventInput {
  eventType: LineageEventType;
  eventTimeMs: number;
  runId: string;
  job: string;
  jobNamespace?: string;
  processingType: 'BATCH' | 'STREAMING';
  inputs: DatasetRef[];
  outputs: DatasetRef[];
  /** Tributary's own run facts (run id, partition, checkpoint id, counters...). */
  details?: Record<string, unknown>;
  /** FAIL: the error message. */
  error?: string;
}

/**
 * Builds one run event. The job carries OpenLineage's `jobType` facet (`processingType` BATCH or
 * STREAMING, `integration` TRIBUTARY); the run a `tributary` facet with `details`, and on FAIL
 * the standard `errorMessage` facet. Dataset schema facets are attached later (the emitter
 * resolves them off the hot path).
 */
export function runEvent(input: RunEventInput): LineageRunEvent {
  const runFacets: Record<string, unknown> = {};
  if (input.details !== undefined)
    runFacets.tributary = {
      _producer: lineageProducer,
      _schemaURL: facetUrls.tributaryRun,
      ...input.details,
    };
  if (input.error !== undefined)
    runFacets.errorMessage = {
      _producer: lineageProducer,
      _schemaURL: facetUrls.errorMessage,
      message: input.error,
      programmingLanguage: 'TypeScript',
    };
  return {
    eventType: input.eventType,
    eventTime: new Date(input.eventTimeMs).toISOString(),
    run: { runId: input.runId, ...(Object.keys(runFacets).length > 0 ? { facets: runFacets } : {}) },
    job: {
      namespace: input.jobNamespace ?? defaultJobNamespace,
      name: input.job,
      facets: {
        jobType: {
          _producer: lineageProducer,
          _schemaURL: facetUrls.jobType,
          processingType: input.processingType,
          integration: 'TRIBUTARY',
          jobType: 'JOB',
        },
      },
    },
    inputs: input.inputs.map((d) => ({ namespace: d.namespace, name: d.name })),
    outputs: input.outputs.map((d) => ({ namespace: d.namespace, name: d.name })),
    producer: lineageProducer,
    schemaURL: openLineageSchemaUrl,
  };
}

/**
 * Lineage file format: JSON Lines, one OpenLineage `RunEvent` (as above) per line, UTF-8, under
 * `<dataDir>/lineage/`. Each process appends to its own file
 *   `events-<startedAtMs, 13 digits>-<pid>-<seq, 4 digits>.ndjson`
 * (so concurrent processes never interleave), one `appendFile` (O_APPEND, a single write) per line;
 * a file is closed at `limits.lineageFileBytesMax` and the next `seq` begun, and the oldest files
 * beyond `limits.lineageFilesMax` are deleted. Names sort by time. A torn last line (a crash
 * mid-write) is skipped by readers. Example line:
 *   {"eventType":"COMPLETE","eventTime":"2026-12-03T09:00:00.000Z","run":{"runId":"0c7…","facets":{…}},
 *    "job":{"namespace":"tributary","name":"gold.daily","facets":{"jobType":{…}}},
 *    "inputs":[{"namespace":"tributary://lake","name":"bronze.embeddings_ready","facets":{"schema":{…,"fields":[{"name":"company_id","type":"VARCHAR"}]}}}],
 *    "outputs":[…],"producer":"urn:tributary:0.1.0",
 *    "schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"}
 */
export function encodeLineageEvent(event: LineageRunEvent): string {
  return `${JSON.stringify(event)}\n`;
}

/** Parses one line of a lineage file; null for a torn or foreign line. */
export function decodeLineageLine(line: string): LineageRunEvent | null {
  if (line.trim() === '') return null;
  try {
    const value = JSON.parse(line) as LineageRunEvent;
    if (
      typeof value?.eventType !== 'string' ||
      typeof value.run?.runId !== 'string' ||
      typeof value.job?.name !== 'string'
    )
      return null;
    return value;
  } catch {
    return null;
  }
}
