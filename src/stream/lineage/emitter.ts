/**
 * Delivers lineage events without ever slowing or failing the job that emits them.
 *
 * `emit` is synchronous and cheap: it queues the event and returns. A background worker attaches
 * dataset schema facets (resolved off the hot path, cached for `limits.lineageSchemaTtlMs`),
 * encodes the line once and hands it to every transport. Each transport has its own bounded queue
 * (`limits.lineageQueueEventsMax`); an event that does not fit is dropped and counted
 * (`tributary_lineage_events_total{transport,result="dropped"}`), an event a transport gives up on
 * after its retries is counted as `failed`. Transports:
 * - file (always, when a data dir is known): JSON Lines under `<dataDir>/lineage/` (event.ts);
 * - http (when `openLineageUrl` / `OPENLINEAGE_URL` is set): `POST <url>/api/v1/lineage`, one
 *   event per request (what Marquez and DataHub accept), retried on network errors, timeouts,
 *   429 and 5xx with doubling backoff.
 *
 * Emitters are per data dir and process-wide (`lineageFor`), so every batch run and stream job of a
 * process gets lineage without being handed anything; the platform (`acquirePlatform`) calls
 * `configureLineage` once with the URL and the lake/log schema resolver.
 */
import { appendFile, mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import {
  childLogger,
  counter,
  dataDirPaths,
  limits,
  systemClock,
  toTributaryError,
  type Clock,
} from '../../core/index.js';
import type { Lake } from '../../lake/index.js';
import type { Log } from '../../log/index.js';
import { randomUUID } from 'node:crypto';
import {
  datasetOf,
  datasetUri,
  encodeLineageEvent,
  runEvent,
  inferFields,
  lakeNamespace,
  schemaFacet,
  topicNamespace,
  type DatasetRef,
  type LineageEventType,
  type LineageRunEvent,
  type SchemaField,
} from './event.js';

/** Fields of a dataset, or null when unknown (no facet is attached then). */
export type SchemaResolver = (dataset: DatasetRef) => Promise<SchemaField[] | null>;

export interface LineageTransport {
  readonly name: string;
  /** Delivers one encoded line (with its trailing newline); throws when it gave up. */
  send(line: string): Promise<void>;
  /** Delivers several lines at once (the queue hands over what piled up); all or nothing. */
  sendMany?(lines: string[]): Promise<void>;
}

const eventsTotal = counter(
  'tributary_lineage_events_total',
  'Lineage events per transport: sent, dropped (queue full) or failed (gave up after retries)',
  ['transport', 'result'],
);
const logger = childLogger('lineage');

/** Lineage directory of a data dir. */
export function lineageDir(dataDir: string): string {
  return path.join(dataDirPaths(dataDir).root, 'lineage');
}

/** Appends lines to this process's lineage file (format: `encodeLineageEvent`, event.ts). */
export class FileLineageTransport implements LineageTransport {
  readonly name = 'file';
  readonly #dir: string;
  readonly #stem: string;
  readonly #fileBytesMax: number;
  readonly #filesMax: number;
  #seq = 0;
  #bytes = 0;
  #ready = false;

  constructor(dir: string, options: { fileBytesMax?: number; filesMax?: number; nowMs?: number } = {}) {
    this.#dir = dir;
    this.#stem = `events-${String(options.nowMs ?? Date.now()).padStart(13, '0')}-${process.pid}`;
    this.#fileBytesMax = options.fileBytesMax ?? limits.lineageFileBytesMax;
    this.#filesMax = options.filesMax ?? limits.lineageFilesMax;
  }

  get currentFile(): string {
    return path.join(this.#dir, `${this.#stem}-${String(this.#seq).padStart(4, '0')}.ndjson`);
  }

  send(line: string): Promise<void> {
    return this.sendMany([line]);
  }

  async sendMany(lines: string[]): Promise<void> {
    if (!this.#ready) {
      await mkdir(this.#dir, { recursive: true });
      this.#ready = true;
    }
    let chunk = '';
    let chunkBytes = 0;
    for (const line of lines) {
      const size = Buffer.byteLength(line);
      if (this.#bytes + chunkBytes > 0 && this.#bytes + chunkBytes + size > this.#fileBytesMax) {
        if (chunk !== '') await appendFile(this.currentFile, chunk);
        chunk = '';
        chunkBytes = 0;
        this.#seq += 1;
        this.#bytes = 0;
        await this.#removeOldest();
      }
      chunk += line;
      chunkBytes += size;
    }
    // One write of whole lines with O_APPEND: lines never interleave, and a crash can only tear
    // the last one (readers skip it).
    if (chunk !== '') await appendFile(this.currentFile, chunk);
    this.#bytes += chunkBytes;
  }

  async #removeOldest(): Promise<void> {
    const names = (await readdir(this.#dir)).filter((n) => n.endsWith('.ndjson')).sort();
    for (const name of names.slice(0, Math.max(0, names.length + 1 - this.#filesMax)))
      await rm(path.join(this.#dir, name), { force: true });
  }
}

export interface HttpLineageTransportOptions {
  clock?: Clock;
  attemptsMax?: number;
  timeoutMs?: number;
  backoffMs?: number;
  /** Extra request headers (e.g. `Authorization: Bearer …` for a secured DataHub). */
  headers?: Record<string, string>;
}

/** POSTs each event to `<url>/api/v1/lineage` (the OpenLineage HTTP API). */
export class HttpLineageTransport implements LineageTransport {
  readonly name = 'http';
  readonly endpoint: string;
  readonly #clock: Clock;
  readonly #attemptsMax: number;
  readonly #timeoutMs: number;
  readonly #backoffMs: number;
  readonly #headers: Record<string, string>;

  constructor(url: string, options: HttpLineageTransportOptions = {}) {
    this.endpoint = `${url.replace(/\/+$/, '')}/api/v1/lineage`;
    this.#clock = options.clock ?? systemClock;
    this.#attemptsMax = options.attemptsMax ?? limits.lineageHttpAttemptsMax;
    this.#timeoutMs = options.timeoutMs ?? limits.lineageHttpTimeoutMs;
    this.#backoffMs = options.backoffMs ?? 250;
    this.#headers = { 'content-type': 'application/json', ...options.headers };
  }

  async send(line: string): Promise<void> {
    let lastError = '';
    for (let attempt = 1; attempt <= this.#attemptsMax; attempt++) {
      try {
        const response = await fetch(this.endpoint, {
          method: 'POST',
          headers: this.#headers,
          body: line,
          signal: AbortSignal.timeout(this.#timeoutMs),
        });
        await response.arrayBuffer().catch(() => undefined);
        if (response.ok) return;
        lastError = `HTTP ${response.status}`;
        // A refused event (400, 401, 422...) is refused again: only overload and outages retry.
        if (response.status !== 429 && response.status < 500) break;
      } catch (error) {
        lastError = toTributaryError(error, 'UNAVAILABLE').message;
      }
      if (attempt < this.#attemptsMax)
        await this.#clock.sleep(Math.min(this.#backoffMs * 2 ** (attempt - 1), limits.retryBackoffMsMax));
    }
    throw new Error(`POST ${this.endpoint} failed: ${lastError}`);
  }
}

/** A bounded queue in front of one transport, drained by one worker. */
class TransportQueue {
  readonly #transport: LineageTransport;
  readonly #max: number;
  readonly #lines: string[] = [];
  #draining: Promise<void> | null = null;

  constructor(transport: LineageTransport, max: number) {
    this.#transport = transport;
    this.#max = max;
  }

  get transport(): LineageTransport {
    return this.#transport;
  }

  push(line: string): void {
    if (this.#lines.length >= this.#max) {
      eventsTotal.inc({ transport: this.#transport.name, result: 'dropped' });
      return;
    }
    this.#lines.push(line);
    this.#draining ??= this.#drain().finally(() => {
      this.#draining = null;
    });
  }

  async #drain(): Promise<void> {
    const transport = this.#transport;
    while (this.#lines.length > 0) {
      // A transport that takes batches gets what piled up (one file append for many events).
      const batch = transport.sendMany === undefined ? this.#lines.splice(0, 1) : this.#lines.splice(0, 1000);
      try {
        if (transport.sendMany === undefined) await transport.send(batch[0]);
        else await transport.sendMany(batch);
        eventsTotal.inc({ transport: transport.name, result: 'sent' }, batch.length);
      } catch (error) {
        eventsTotal.inc({ transport: transport.name, result: 'failed' }, batch.length);
        logger.warn({ err: error, transport: transport.name }, 'lineage event not delivered');
      }
    }
  }

  async idle(): Promise<void> {
    while (this.#draining !== null) await this.#draining;
  }
}

export interface LineageEmitterOptions {
  /** File transport under `<dataDir>/lineage/`. */
  dataDir?: string;
  /** HTTP transport to `<url>/api/v1/lineage`. */
  url?: string;
  http?: HttpLineageTransportOptions;
  /** More transports (tests, other sinks). */
  transports?: LineageTransport[];
  /** Resolves dataset fields for schema facets (e.g. `lakeAndLogSchemas`). */
  schemas?: SchemaResolver;
  /** Namespace of the jobs (default `tributary`). */
  namespace?: string;
  clock?: Clock;
}

export interface LineageRunOptions {
  /** Job name (the batch or stream job, or a source such as `spool.invoices`). */
  job: string;
  processingType: 'BATCH' | 'STREAMING';
  /** Datasets read and written, as strings (`datasetOf`: `gold.x`, `topic:x`, `postgres://h:5432/db.s.t`). */
  inputs: readonly string[];
  outputs: readonly string[];
  /** OpenLineage run id (a UUID); default a fresh random one. */
  runId?: string;
  /** Resolves this run's dataset schemas besides the emitter's resolver (e.g. over its own log). */
  schemas?: SchemaResolver;
}

/**
 * One run of a job: every event it reports carries the same run id, job and datasets.
 *
 * @example
 * const run = lineageFor(dataDir).run({ job: 'spool.invoices', processingType: 'STREAMING',
 *   inputs: ['file:///srv/spool/invoices'], outputs: ['topic:invoices.raw'] });
 * run.emit('START');  …  run.emit('COMPLETE', { files: 12 });   // or run.emit('FAIL', {}, error.message)
 */
export class LineageRun {
  readonly runId: string;
  readonly #emitter: LineageEmitter;
  readonly #options: LineageRunOptions;
  readonly #clock: Clock;

  constructor(emitter: LineageEmitter, options: LineageRunOptions, clock: Clock) {
    this.#emitter = emitter;
    this.#options = options;
    this.#clock = clock;
    this.runId = options.runId ?? randomUUID();
  }

  /** Queues one event of this run (never throws, never waits); `details` go to the `tributary` run facet. */
  emit(eventType: LineageEventType, details: Record<string, unknown> = {}, error?: string): void {
    const o = this.#options;
    this.#emitter.emit(
      runEvent({
        eventType,
        eventTimeMs: this.#clock.now(),
        runId: this.runId,
        job: o.job,
        jobNamespace: this.#emitter.namespace,
        processingType: o.processingType,
        inputs: o.inputs.map(datasetOf),
        outputs: o.outputs.map(datasetOf),
        details,
        ...(error === undefined ? {} : { error }),
      }),
      o.schemas === undefined ? {} : { schemas: o.schemas },
    );
  }
}

interface Pending {
  event: LineageRunEvent;
  schemas: SchemaResolver | undefined;
}

export class LineageEmitter {
  readonly namespace: string;
  readonly #queues: TransportQueue[];
  readonly #schemas: SchemaResolver | undefined;
  readonly #clock: Clock;
  readonly #pending: Pending[] = [];
  readonly #schemaCache = new Map<string, { fields: SchemaField[]; atMs: number }>();
  #working: Promise<void> | null = null;

  constructor(options: LineageEmitterOptions = {}) {
    this.namespace = options.namespace ?? 'tributary';
    this.#clock = options.clock ?? systemClock;
    this.#schemas = options.schemas;
    const transports: LineageTransport[] = [...(options.transports ?? [])];
    if (options.dataDir !== undefined)
      transports.push(new FileLineageTransport(lineageDir(options.dataDir), { nowMs: this.#clock.now() }));
    if (options.url !== undefined)
      transports.push(new HttpLineageTransport(options.url, { clock: this.#clock, ...options.http }));
    this.#queues = transports.map((t) => new TransportQueue(t, limits.lineageQueueEventsMax));
  }

  /** A run of a job, whose events share run id, job and datasets (see `LineageRun`). */
  run(options: LineageRunOptions): LineageRun {
    return new LineageRun(this, options, this.#clock);
  }

  get transports(): LineageTransport[] {
    return this.#queues.map((q) => q.transport);
  }

  /**
   * Queues an event and returns at once; never throws. `schemas` adds a resolver for this event's
   * datasets (a stream job passes one over its own log).
   */
  emit(event: LineageRunEvent, options: { schemas?: SchemaResolver } = {}): void {
    if (this.#pending.length >= limits.lineageQueueEventsMax) {
      for (const queue of this.#queues)
        eventsTotal.inc({ transport: queue.transport.name, result: 'dropped' });
      return;
    }
    this.#pending.push({ event, schemas: options.schemas });
    this.#working ??= this.#work().finally(() => {
      this.#working = null;
    });
  }

  async #work(): Promise<void> {
    for (let item = this.#pending.shift(); item !== undefined; item = this.#pending.shift()) {
      try {
        for (const dataset of [...item.event.inputs, ...item.event.outputs]) {
          const fields = await this.#fieldsOf(dataset, item.schemas);
          if (fields !== null) dataset.facets = { ...dataset.facets, schema: schemaFacet(fields) };
        }
      } catch (error) {
        // A schema that cannot be read leaves the facet out; the event itself still goes out.
        logger.debug({ err: error }, 'lineage schema not resolved');
      }
      const line = encodeLineageEvent(item.event);
      for (const queue of this.#queues) queue.push(line);
    }
  }

  async #fieldsOf(dataset: DatasetRef, extra: SchemaResolver | undefined): Promise<SchemaField[] | null> {
    const uri = datasetUri(dataset);
    const nowMs = this.#clock.now();
    const cached = this.#schemaCache.get(uri);
    if (cached !== undefined && nowMs - cached.atMs < limits.lineageSchemaTtlMs) return cached.fields;
    let fields: SchemaField[] | null = null;
    for (const resolve of [this.#schemas, extra]) {
      if (resolve === undefined || fields !== null) continue;
      fields = await resolve(dataset).catch(() => null);
    }
    if (fields !== null) {
      if (this.#schemaCache.size >= 1000) this.#schemaCache.clear();
      this.#schemaCache.set(uri, { fields, atMs: nowMs });
    }
    return fields;
  }

  /** Resolves when every event emitted so far was delivered or given up on (or after `timeoutMs`). */
  async flush(timeoutMs = 5000): Promise<void> {
    const drained = (async () => {
      while (this.#working !== null) await this.#working;
      for (const queue of this.#queues) await queue.idle();
    })();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([drained, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }
}

/**
 * Dataset fields from the lake (a table's committed schema, DuckDB types) and the log (the JSON
 * fields of a topic's newest record). Either may be left out.
 */
export function lakeAndLogSchemas(sources: { lake?: Lake; log?: Log }): SchemaResolver {
  return async (dataset) => {
    if (dataset.namespace === lakeNamespace && sources.lake !== undefined) {
      const manifest = await sources.lake.table(dataset.name).snapshot();
      return manifest === null ? null : manifest.schema.map((c) => ({ name: c.name, type: c.type }));
    }
    if (dataset.namespace === topicNamespace && sources.log !== undefined)
      return topicFields(sources.log, dataset.name);
    return null;
  };
}

async function topicFields(log: Log, topic: string): Promise<SchemaField[] | null> {
  if (!(await log.listTopics()).includes(topic)) return null;
  const { partitions } = await log.describeTopic(topic);
  for (const p of partitions) {
    if (p.endOffset <= p.startOffset) continue;
    const [record] = await log.fetch(topic, p.partition, p.endOffset - 1, { maxRecords: 1 });
    if (record?.value == null) continue;
    try {
      return inferFields(JSON.parse(Buffer.from(record.value).toString('utf8')));
    } catch {
      return null; // not JSON (text, bytes, Avro): no field list to show
    }
  }
  return null;
}

const emitters = new Map<string, LineageEmitter>();
/** Every emitter made here, replaced ones included, so `flushLineage` drains them all. */
const made = new Set<LineageEmitter>();

/**
 * Sets the emitter of a data dir for this process (the platform does so once, with the
 * `openLineageUrl` config key and a schema resolver over its lake and log).
 */
export function configureLineage(
  dataDir: string,
  options: Omit<LineageEmitterOptions, 'dataDir'> = {},
): LineageEmitter {
  const emitter = new LineageEmitter({ ...options, dataDir });
  emitters.set(path.resolve(dataDir), emitter);
  made.add(emitter);
  return emitter;
}

/** The emitter of a data dir: the configured one, else a file-only one made on first use. */
export function lineageFor(dataDir: string): LineageEmitter {
  const key = path.resolve(dataDir);
  let emitter = emitters.get(key);
  if (emitter === undefined) {
    emitter = new LineageEmitter({ dataDir });
    emitters.set(key, emitter);
    made.add(emitter);
  }
  return emitter;
}

/** Flushes every emitter of the process (before exit). */
export async function flushLineage(timeoutMs = 5000): Promise<void> {
  await Promise.all([...made].map((e) => e.flush(timeoutMs)));
  // Replaced emitters are done once drained.
  const current = new Set(emitters.values());
  for (const e of made) if (!current.has(e)) made.delete(e);
}
