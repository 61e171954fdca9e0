import { TributaryError } from '../../core/index.js';
import {
  isCompatibilityLevel,
  registryError,
  registryErrorCodeOf,
  registryErrorCodes,
  type CompatibilityLevel,
  type CompatibilityResult,
  type RegisteredSchema,
  type SchemaRegistry,
  type VersionRef,
} from './types.js';

export const schemaRegistryContentType = 'application/vnd.schemaregistry.v1+json';

export interface HttpSchemaRegistryOptions {
  /** Base URL, e.g. `http://127.0.0.1:3000/schema-registry` or `https://psrc-x.confluent.cloud`. */
  url: string;
  /**
   * Credentials: `user:secret` is sent as HTTP Basic (Confluent Cloud's API key and secret), anything
   * else as a Bearer token (a Tributary API key). Credentials in the URL (`https://key:secret@host`)
   * are used as Basic when this is not given.
   */
  credentials?: string;
  timeoutMs?: number;
  /** Attempts per request on network errors, 5xx and 429 (every registry call is idempotent). */
  attemptsMax?: number;
  fetch?: typeof fetch;
}

/**
 * The Confluent Schema Registry REST API as a `SchemaRegistry`: for an external registry
 * (`SCHEMA_REGISTRY_URL`) or another Tributary's `/schema-registry`. Answers with an `error_code`
 * become the same TributaryErrors the embedded store throws.
 */
export class HttpSchemaRegistry implements SchemaRegistry {
  readonly url: string;
  readonly #authorization: string | undefined;
  readonly #timeoutMs: number;
  readonly #attemptsMax: number;
  readonly #fetch: typeof fetch;

  constructor(options: HttpSchemaRegistryOptions) {
    let parsed: URL;
    try {
      parsed = new URL(options.url);
    } catch (error) {
      throw new TributaryError(
        'CONFIG_INVALID',
        `schema registry URL ${JSON.stringify(options.url)} is not a URL`,
        {
          cause: error,
        },
      );
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
      throw new TributaryError('CONFIG_INVALID', `schema registry URL ${options.url} must be http or https`);
    let credentials = options.credentials;
    if (credentials === undefined && parsed.username !== '')
      credentials = `${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`;
    parsed.username = '';
    parsed.password = '';
    this.url = parsed.toString().replace(/\/+$/, '');
    this.#authorization =
      credentials === undefined
        ? undefined
        : credentials.includes(':')
          ? `Basic ${Buffer.from(credentials).toString('base64')}`
          : `Bearer ${credentials}`;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#attemptsMax = options.attemptsMax ?? 3;
    this.#fetch = options.fetch ?? fetch;
  }

  async subjects(options: { deleted?: boolean } = {}): Promise<string[]> {
    const names = await this.#call<string[]>(
      'GET',
      `/subjects${options.deleted === true ? '?deleted=true' : ''}`,
    );
    return [...names].sort();
  }

  versions(subject: string): Promise<number[]> {
    return this.#call('GET', `/subjects/${enc(subject)}/versions`);
  }

  async version(subject: string, version: VersionRef): Promise<RegisteredSchema> {
    const answer = await this.#call<RegisteredSchema>('GET', `/subjects/${enc(subject)}/versions/${version}`);
    return { subject: answer.subject, version: answer.version, id: answer.id, schema: answer.schema };
  }

  async schemaById(id: number): Promise<string> {
    const answer = await this.#call<{ schema: string; schemaType?: string }>('GET', `/schemas/ids/${id}`);
    if (answer.schemaType !== undefined && answer.schemaType !== 'AVRO')
      throw registryError(
        registryErrorCodes.invalidSchema,
        `schema id ${id} is a ${answer.schemaType} schema; only Avro is supported`,
      );
    return answer.schema;
  }

  async register(subject: string, schema: string): Promise<RegisteredSchema> {
    await this.#call('POST', `/subjects/${enc(subject)}/versions`, { schema });
    // The register answer carries only the id; the lookup adds the version.
    return this.lookup(subject, schema);
  }

  async lookup(subject: string, schema: string): Promise<RegisteredSchema> {
    const answer = await this.#call<RegisteredSchema>('POST', `/subjects/${enc(subject)}`, { schema });
    return { subject: answer.subject, version: answer.version, id: answer.id, schema: answer.schema };
  }

  async testCompatibility(
    subject: string,
    schema: string,
    version: VersionRef = 'latest',
  ): Promise<CompatibilityResult> {
    const answer = await this.#call<{ is_compatible: boolean; messages?: string[] }>(
      'POST',
      `/compatibility/subjects/${enc(subject)}/versions/${version}?verbose=true`,
      { schema },
    );
    return { compatible: answer.is_compatible, messages: answer.messages ?? [] };
  }

  async compatibility(subject?: string): Promise<CompatibilityLevel> {
    const answer = await this.#call<{ compatibilityLevel: string }>(
      'GET',
      subject === undefined ? '/config' : `/config/${enc(subject)}?defaultToGlobal=true`,
    );
    return level(answer.compatibilityLevel);
  }

  async subjectCompatibility(subject: string): Promise<CompatibilityLevel | null> {
    try {
      const answer = await this.#call<{ compatibilityLevel: string }>('GET', `/config/${enc(subject)}`);
      return level(answer.compatibilityLevel);
    } catch (error) {
      const code = registryErrorCodeOf(error);
      if (
        code === registryErrorCodes.subjectCompatibilityNotFound ||
        code === registryErrorCodes.subjectNotFound
      )
        return null;
      throw error;
    }
  }

  async setCompatibility(compatibility: CompatibilityLevel, subject?: string): Promise<void> {
    await this.#call('PUT', subject === undefined ? '/config' : `/config/${enc(subject)}`, { compatibility });
  }

  async deleteSubjectCompatibility(subject: string): Promise<CompatibilityLevel> {
    const answer = await this.#call<{ compatibilityLevel: string }>('DELETE', `/config/${enc(subject)}`);
    return level(answer.compatibilityLevel);
  }

  deleteSubject(subject: string, options: { permanent?: boolean } = {}): Promise<number[]> {
    return this.#call(
      'DELETE',
      `/subjects/${enc(subject)}${options.permanent === true ? '?permanent=true' : ''}`,
    );
  }

  deleteVersion(
    subject: string,
    version: VersionRef,
    options: { permanent?: boolean } = {},
  ): Promise<number> {
    return this.#call(
      'DELETE',
      `/subjects/${enc(subject)}/versions/${version}${options.permanent === true ? '?permanent=true' : ''}`,
    );
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  async #call<T>(method: string, pathAndQuery: string, body?: unknown): Promise<T> {
    const url = `${this.url}${pathAndQuery}`;
    const headers: Record<string, string> = { accept: `${schemaRegistryContentType}, application/json` };
    if (body !== undefined) headers['content-type'] = schemaRegistryContentType;
    if (this.#authorization !== undefined) headers.authorization = this.#authorization;
    let lastError: TributaryError | undefined;
    for (let attempt = 1; attempt <= this.#attemptsMax; attempt++) {
      if (attempt > 1) await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** (attempt - 2)));
      let response: Response;
      try {
        response = await this.#fetch(url, {
          method,
          headers,
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          signal: AbortSignal.timeout(this.#timeoutMs),
        });
      } catch (error) {
        lastError = new TributaryError(
          'UNAVAILABLE',
          `schema registry ${method} ${url}: ${(error as Error).message}`,
          { cause: error, retryAfterMs: 1000 },
        );
        continue;
      }
      const text = await response.text();
      let parsed: unknown = undefined;
      try {
        parsed = text === '' ? undefined : JSON.parse(text);
      } catch {
        // A proxy's HTML error page: reported below with the status.
      }
      if (response.ok) {
        if (parsed === undefined)
          throw new TributaryError(
            'EXTERNAL',
            `schema registry ${method} ${url} answered ${response.status} without JSON`,
          );
        return parsed as T;
      }
      const answer = (parsed ?? {}) as { error_code?: unknown; message?: unknown };
      const registryCode = typeof answer.error_code === 'number' ? answer.error_code : response.status;
      const message = typeof answer.message === 'string' ? answer.message : text.slice(0, 200);
      lastError = registryError(registryCode, `schema registry ${method} ${pathAndQuery}: ${message}`);
      if (response.status < 500 && response.status !== 429) throw lastError;
    }
    throw lastError!;
  }
}

function enc(subject: string): string {
  return encodeURIComponent(subject);
}

function level(value: string): CompatibilityLevel {
  const upper = value.toUpperCase();
  if (!isCompatibilityLevel(upper))
    throw new TributaryError(
      'EXTERNAL',
      `schema registry answered an unknown compatibility level ${JSON.stringify(value)}`,
    );
  return upper;
}
