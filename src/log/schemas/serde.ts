import { systemClock, TributaryError, type Clock } from '../../core/index.js';
import { parseAvroSchema, type AvroType } from './avro.js';
import {
  registryErrorCodeOf,
  registryErrorCodes,
  type CompatibilityLevel,
  type SchemaRegistry,
} from './types.js';
import { confluentBody, confluentSchemaId, encodeConfluentWire, isConfluentWire } from './wire.js';

/** A subject's schema ready to encode values with (see `AvroSerde.writer`). */
export interface AvroWriter {
  readonly subject: string;
  readonly id: number;
  readonly version: number;
  readonly type: AvroType;
  /** The value in the Confluent wire format; VALIDATION_FAILED naming the fields that do not fit. */
  encode(value: unknown): Buffer;
}

/**
 * Decodes Confluent-framed Avro synchronously once `prepare` has fetched the schemas the values
 * name: a stream task prepares a batch (one await), then decodes record by record.
 */
export interface AvroReader {
  prepare(values: Iterable<Uint8Array | null>): Promise<void>;
  /** DECODE_FAILED with the reason (not framed, unknown schema id, bad body, not resolvable). */
  decode(bytes: Uint8Array): unknown;
}

export interface AvroSerdeOptions {
  /** An id the registry did not know is asked again after this long. Default 10 s. */
  missingRetryMs?: number;
  clock?: Clock;
}

interface Missing {
  atMs: number;
  reason: string;
}

/**
 * Avro values in the Confluent wire format over a `SchemaRegistry`: writer schemas are fetched by
 * id once and kept parsed (ids never change), so encode and decode cost no request after the first.
 *
 * @example
 * const serde = new AvroSerde(registry);
 * const writer = await serde.writer('movies-value', movieSchema);   // registers (409 if incompatible)
 * const bytes = writer.encode({ id: 1, title: 'Alien' });
 * const movie = await serde.decodeAsync(bytes);
 */
export class AvroSerde {
  readonly registry: SchemaRegistry;
  readonly #types = new Map<number, AvroType>();
  readonly #missing = new Map<number, Missing>();
  readonly #missingRetryMs: number;
  readonly #clock: Clock;

  constructor(registry: SchemaRegistry, options: AvroSerdeOptions = {}) {
    this.registry = registry;
    this.#missingRetryMs = options.missingRetryMs ?? 10_000;
    this.#clock = options.clock ?? systemClock;
  }

  /** The parsed writer schema of `id` (fetched once). */
  async type(id: number): Promise<AvroType> {
    const known = this.#types.get(id);
    if (known !== undefined) return known;
    const type = parseAvroSchema(await this.registry.schemaById(id), `schema id ${id}`);
    this.#types.set(id, type);
    this.#missing.delete(id);
    return type;
  }

  /** The parsed schema of `id` if it was fetched before, without a request. */
  knownType(id: number): AvroType | undefined {
    return this.#types.get(id);
  }

  /**
   * Fetches the schemas named by framed values that are not known yet. An id the registry does not
   * have is remembered as missing (its records fail to decode, with the reason); any other failure
   * (registry down) is thrown, so records are retried rather than dead-lettered.
   */
  async prepare(values: Iterable<Uint8Array | null>): Promise<void> {
    let wanted: Set<number> | undefined;
    for (const value of values) {
      if (!isConfluentWire(value)) continue;
      const id = confluentSchemaId(value);
      if (this.#types.has(id)) continue;
      const missing = this.#missing.get(id);
      if (missing !== undefined && this.#clock.now() - missing.atMs < this.#missingRetryMs) continue;
      (wanted ??= new Set()).add(id);
    }
    if (wanted === undefined) return;
    await Promise.all(
      [...wanted].map(async (id) => {
        try {
          await this.type(id);
        } catch (error) {
          const code = registryErrorCodeOf(error);
          if (code !== registryErrorCodes.schemaNotFound && code !== registryErrorCodes.invalidSchema)
            throw error;
          this.#missing.set(id, { atMs: this.#clock.now(), reason: (error as Error).message });
        }
      }),
    );
  }

  /** The schema id and writer type of a framed value, synchronously (after `prepare`). */
  writerOf(bytes: Uint8Array): { id: number; type: AvroType } {
    const id = confluentSchemaId(bytes);
    const type = this.#types.get(id);
    if (type !== undefined) return { id, type };
    const missing = this.#missing.get(id);
    throw new TributaryError(
      'DECODE_FAILED',
      missing !== undefined
        ? `value names schema id ${id}, which the schema registry cannot give: ${missing.reason}`
        : `value names schema id ${id}, which was not fetched (call prepare first)`,
      { details: { schemaId: id } },
    );
  }

  /** Decodes with the writer's own schema (after `prepare`). */
  decode(bytes: Uint8Array): unknown {
    const { id, type } = this.writerOf(bytes);
    return decodeBody(type, bytes, id);
  }

  /**
   * For people (`topics tail`, the API's topic records): the value as JSON text when it is framed
   * Avro with a schema `prepare` found, else null (show it as UTF-8 text instead).
   */
  jsonText(bytes: Uint8Array | null): string | null {
    if (!isConfluentWire(bytes) || !this.#types.has(confluentSchemaId(bytes))) return null;
    try {
      return avroValueToJson(this.decode(bytes));
    } catch {
      return null;
    }
  }

  async decodeAsync(bytes: Uint8Array): Promise<unknown> {
    await this.type(confluentSchemaId(bytes));
    return this.decode(bytes);
  }

  /**
   * A reader: with `subject`, values are resolved into that subject's latest schema (Avro schema
   * resolution), so a job sees one shape whatever compatible version wrote them; without, each value
   * is decoded with the schema it was written with.
   */
  reader(options: { subject?: string } = {}): AvroReader {
    const subject = options.subject;
    if (subject === undefined)
      return { prepare: (values) => this.prepare(values), decode: (bytes) => this.decode(bytes) };
    let readerSchema: { id: number; version: number; type: AvroType } | undefined;
    const resolvers = new Map<number, ReturnType<AvroType['createResolver']> | string>();
    return {
      prepare: async (values) => {
        if (readerSchema === undefined) {
          const latest = await this.registry.version(subject, 'latest');
          readerSchema = { id: latest.id, version: latest.version, type: await this.type(latest.id) };
        }
        await this.prepare(values);
      },
      decode: (bytes) => {
        if (readerSchema === undefined)
          throw new TributaryError('INTERNAL', `Avro reader of ${subject} used before prepare`);
        const { id, type } = this.writerOf(bytes);
        if (id === readerSchema.id) return decodeBody(type, bytes, id);
        let resolver = resolvers.get(id);
        if (resolver === undefined) {
          try {
            resolver = readerSchema.type.createResolver(type);
          } catch (error) {
            resolver = `written with schema id ${id}, which ${subject} version ${readerSchema.version} (id ${readerSchema.id}) cannot read: ${(error as Error).message}`;
          }
          resolvers.set(id, resolver);
        }
        if (typeof resolver === 'string')
          throw new TributaryError('DECODE_FAILED', resolver, { details: { schemaId: id } });
        return decodeBody(readerSchema.type, bytes, id, resolver);
      },
    };
  }

  /**
   * A writer for `subject`: with `schema` it is registered first (the same schema again is a
   * lookup; a change the subject's compatibility level refuses throws the registry's 409 with the
   * reasons), without it the subject's latest version is used.
   */
  async writer(subject: string, schema?: string | object): Promise<AvroWriter> {
    const registered =
      schema === undefined
        ? await this.registry.version(subject, 'latest')
        : await this.registry.register(subject, typeof schema === 'string' ? schema : JSON.stringify(schema));
    const type = await this.type(registered.id);
    const { id, version } = registered;
    return {
      subject,
      id,
      version,
      type,
      encode: (value) => encodeValue(type, id, value, subject),
    };
  }
}

/** Confluent's TopicNameStrategy: the subject holding the schema of a topic's values. */
export function topicValueSubject(topic: string): string {
  return `${topic}-value`;
}

/**
 * Registers the value schema of each topic under `<topic>-value` (what a pipeline does at start),
 * optionally pinning each subject's compatibility level first, and returns a writer per topic. A
 * schema the level refuses throws the registry's 409, whose message names the subject and why.
 *
 * @example
 * const writers = await registerTopicSchemas(services.schemaRegistry, { movies: movieSchema }, { compatibility: 'BACKWARD' });
 * await log.append([{ topic: 'movies', value: writers.movies.encode(movie) }]);
 */
export async function registerTopicSchemas(
  registry: SchemaRegistry,
  schemas: Readonly<Record<string, string | object>>,
  options: { compatibility?: CompatibilityLevel } = {},
): Promise<Record<string, AvroWriter>> {
  const serde = new AvroSerde(registry);
  const writers: Record<string, AvroWriter> = {};
  for (const [topic, schema] of Object.entries(schemas)) {
    const subject = topicValueSubject(topic);
    if (
      options.compatibility !== undefined &&
      (await registry.subjectCompatibility(subject)) !== options.compatibility
    )
      await registry.setCompatibility(options.compatibility, subject);
    writers[topic] = await serde.writer(subject, schema);
  }
  return writers;
}

function decodeBody(
  type: AvroType,
  bytes: Uint8Array,
  id: number,
  resolver?: ReturnType<AvroType['createResolver']>,
): unknown {
  try {
    return type.fromBuffer(confluentBody(bytes), resolver);
  } catch (error) {
    throw new TributaryError(
      'DECODE_FAILED',
      `Avro body does not decode with schema id ${id}: ${(error as Error).message}`,
      { cause: error, details: { schemaId: id } },
    );
  }
}

/** `value` framed for schema `id`; VALIDATION_FAILED naming the paths that do not fit. */
export function encodeValue(type: AvroType, id: number, value: unknown, subject: string): Buffer {
  let body: Buffer;
  try {
    body = type.toBuffer(value);
  } catch (error) {
    const paths: string[] = [];
    type.isValid(value, {
      errorHook: (path: string[], got: unknown) =>
        paths.push(`${path.length === 0 ? '(value)' : path.join('.')} = ${preview(got)}`),
    });
    throw new TributaryError(
      'VALIDATION_FAILED',
      `value does not match the schema of ${subject} (id ${id}): ${paths.length > 0 ? paths.slice(0, 5).join(', ') : (error as Error).message}`,
      { cause: error, details: { schemaId: id, subject } },
    );
  }
  return encodeConfluentWire(id, body);
}

function preview(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

/**
 * JSON text of a decoded Avro value, for people (`topics tail`, the API's topic records): bytes
 * and fixed as base64 strings rather than Buffer objects.
 */
export function avroValueToJson(value: unknown): string {
  return JSON.stringify(value, function (this: Record<string, unknown>, key: string, v: unknown) {
    const original = this[key];
    return original instanceof Uint8Array ? Buffer.from(original).toString('base64') : v;
  });
}
