import { TributaryError, type ErrorCode } from '../../core/index.js';

/**
 * Compatibility levels of the Confluent Schema Registry. BACKWARD: the new schema reads data written
 * with the latest one (consumers upgrade first); FORWARD: the latest reads data written with the
 * new one (producers upgrade first); FULL: both. `_TRANSITIVE`: against every live version, not only
 * the latest. NONE: no check.
 */
export const compatibilityLevels = [
  'BACKWARD',
  'BACKWARD_TRANSITIVE',
  'FORWARD',
  'FORWARD_TRANSITIVE',
  'FULL',
  'FULL_TRANSITIVE',
  'NONE',
] as const;
export type CompatibilityLevel = (typeof compatibilityLevels)[number];

/** The registry's default level, as in Confluent's. */
export const defaultCompatibility: CompatibilityLevel = 'BACKWARD';

export function isCompatibilityLevel(value: unknown): value is CompatibilityLevel {
  return typeof value === 'string' && (compatibilityLevels as readonly string[]).includes(value);
}

/** One version of a subject: what `GET /subjects/{s}/versions/{v}` answers. */
export interface RegisteredSchema {
  subject: string;
  version: number;
  /** Global schema id (the one in the wire format); the same schema has one id in every subject. */
  id: number;
  /** The schema as registered (Avro JSON text). */
  schema: string;
}

export interface CompatibilityResult {
  compatible: boolean;
  /** Why not, one line per violated version (empty when compatible). */
  messages: string[];
}

/** `latest`, or a positive version number. */
export type VersionRef = number | 'latest';

/**
 * The Confluent Schema Registry, as one interface over the embedded store (`LocalSchemaRegistry`,
 * the data dir) and a remote registry (`HttpSchemaRegistry`: Confluent's, or another Tributary's
 * `/schema-registry`). Only Avro schemas. Failures are TributaryErrors whose
 * `details.registryErrorCode` is the registry's code (see `registryErrorCodes`).
 *
 * @example
 * const registry = await openSchemaRegistry(config);
 * const { id } = await registry.register('movies-value', JSON.stringify(movieSchema)); // 409 if not BACKWARD compatible
 */
export interface SchemaRegistry {
  /** Subject names (with `deleted`, soft-deleted ones too), sorted. */
  subjects(options?: { deleted?: boolean }): Promise<string[]>;
  /** Live version numbers of a subject, ascending; 40401 when it has none. */
  versions(subject: string): Promise<number[]>;
  /** One version (`latest` = highest live); 40401 / 40402. */
  version(subject: string, version: VersionRef): Promise<RegisteredSchema>;
  /** The schema text of a global id; 40403. */
  schemaById(id: number): Promise<string>;
  /**
   * Registers `schema` under `subject`: the same schema again returns its existing version and id;
   * a new one is checked against the subject's compatibility level first (409 with the reasons when
   * it is not compatible; 42201 when it is not a valid Avro schema).
   */
  register(subject: string, schema: string): Promise<RegisteredSchema>;
  /** The live version of `subject` holding `schema`; 40401 / 40403. */
  lookup(subject: string, schema: string): Promise<RegisteredSchema>;
  /** Whether `schema` could be registered against `version` under the subject's level. */
  testCompatibility(subject: string, schema: string, version?: VersionRef): Promise<CompatibilityResult>;
  /** The level in force for `subject` (its own, else the global one); without a subject, the global one. */
  compatibility(subject?: string): Promise<CompatibilityLevel>;
  /** The subject's own level, or null when it has none. */
  subjectCompatibility(subject: string): Promise<CompatibilityLevel | null>;
  /** Sets the global level, or the subject's own with `subject`. */
  setCompatibility(level: CompatibilityLevel, subject?: string): Promise<void>;
  /** Removes the subject's own level (the global one applies again); returns the removed level. */
  deleteSubjectCompatibility(subject: string): Promise<CompatibilityLevel>;
  /**
   * Soft-deletes every version of a subject (ids stay readable, the subject stops being listed);
   * `permanent` then removes it (40405 unless soft-deleted first). Returns the versions.
   */
  deleteSubject(subject: string, options?: { permanent?: boolean }): Promise<number[]>;
  /** The same for one version. */
  deleteVersion(subject: string, version: VersionRef, options?: { permanent?: boolean }): Promise<number>;
  close(): Promise<void>;
}

/**
 * The registry's own error codes (Confluent's REST API): the HTTP status is the first three digits
 * (`40401` → 404). Kept on errors as `details.registryErrorCode`, so the REST routes answer with the
 * code a Confluent client expects and the HTTP client turns an answer back into the same error.
 */
export const registryErrorCodes = {
  subjectNotFound: 40401,
  versionNotFound: 40402,
  schemaNotFound: 40403,
  subjectSoftDeleted: 40404,
  subjectNotSoftDeleted: 40405,
  versionSoftDeleted: 40406,
  versionNotSoftDeleted: 40407,
  subjectCompatibilityNotFound: 40408,
  incompatible: 409,
  invalidSchema: 42201,
  invalidVersion: 42202,
  invalidCompatibility: 42203,
  storeError: 50001,
} as const;

const errorCodeOfRegistryCode = (registryCode: number): ErrorCode => {
  if (registryCode === 409) return 'SCHEMA_MISMATCH';
  const status = registryCode >= 1000 ? Math.floor(registryCode / 100) : registryCode;
  if (status === 401) return 'UNAUTHENTICATED';
  if (status === 403) return 'FORBIDDEN';
  if (status === 404) return 'NOT_FOUND';
  if (status === 422 || status === 400) return 'INVALID_ARGUMENT';
  if (status === 429) return 'RATE_LIMITED';
  return status >= 500 ? 'UNAVAILABLE' : 'EXTERNAL';
};

/** A registry failure carrying its Confluent code. */
export function registryError(registryErrorCode: number, message: string, cause?: unknown): TributaryError {
  return new TributaryError(errorCodeOfRegistryCode(registryErrorCode), message, {
    cause,
    details: { registryErrorCode },
  });
}

/** The Confluent code of an error, when it has one. */
export function registryErrorCodeOf(error: unknown): number | undefined {
  if (!(error instanceof TributaryError)) return undefined;
  const code = error.details.registryErrorCode;
  return typeof code === 'number' ? code : undefined;
}
