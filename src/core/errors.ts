/**
 * One error type for the whole platform, with a closed list of stable codes.
 *
 * Codes are part of the public contract: the CLI prints them, the API maps them to HTTP statuses,
 * dead-letter records carry them in headers. Add codes; never rename or reuse one.
 */
export const errorCodes = [
  // configuration and usage
  'CONFIG_INVALID',
  'USAGE',
  // generic resource errors
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'INVALID_ARGUMENT',
  'CONFLICT',
  // input data
  'BAD_RECORD',
  'DECODE_FAILED',
  'SCHEMA_MISMATCH',
  'VALIDATION_FAILED',
  'LATE_RECORD',
  // storage and durability
  'CORRUPT_DATA',
  'FORMAT_VERSION',
  'IO',
  'CLOSED',
  'BACKPRESSURE',
  'TIMEOUT',
  // the file system has no room left (disk full, quota): refused, retried once space is freed
  'STORAGE_FULL',
  // a newer owner holds the lease of a scaled-out task: this writer's generation is stale
  'FENCED',
  // security
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'SQL_REFUSED',
  'SSRF_REFUSED',
  'PATH_REFUSED',
  'RATE_LIMITED',
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  // dependencies
  'EXTERNAL',
  'UNAVAILABLE',
  'MODEL_MISSING',
  'INTERNAL',
  // data quality: a rule with action `fail` refused a batch
  'QUALITY_FAILED',
] as const;

export type ErrorCode = (typeof errorCodes)[number];

/** Who has to act: the user (fix input or config), an external system (retry), or us (a bug). */
export type ErrorDomain = 'user' | 'external' | 'internal';

export interface TributaryErrorOptions {
  cause?: unknown;
  domain?: ErrorDomain;
  /** When set, the operation may succeed if retried after this many milliseconds. */
  retryAfterMs?: number;
  /** Structured context (file, record, field, offset...) kept for logs and DLQ headers. */
  details?: Record<string, unknown>;
}

const defaultDomain: Partial<Record<ErrorCode, ErrorDomain>> = {
  IO: 'external',
  EXTERNAL: 'external',
  UNAVAILABLE: 'external',
  TIMEOUT: 'external',
  BACKPRESSURE: 'external',
  FENCED: 'external',
  INTERNAL: 'internal',
  CORRUPT_DATA: 'internal',
  STORAGE_FULL: 'external',
};

/**
 * @example
 * throw new TributaryError('NOT_FOUND', `table silver.sales does not exist; tables: ${names}`);
 */
export class TributaryError extends Error {
  readonly code: ErrorCode;
  readonly domain: ErrorDomain;
  readonly retryAfterMs: number | undefined;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: TributaryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TributaryError';
    this.code = code;
    this.domain = options.domain ?? defaultDomain[code] ?? 'user';
    this.retryAfterMs = options.retryAfterMs;
    this.details = options.details ?? {};
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, domain: this.domain, ...this.details };
  }
}

export function isTributaryError(error: unknown, code?: ErrorCode): error is TributaryError {
  return error instanceof TributaryError && (code === undefined || error.code === code);
}

/** Wraps anything thrown into a TributaryError, keeping the original as `cause`. */
export function toTributaryError(error: unknown, fallbackCode: ErrorCode = 'INTERNAL'): TributaryError {
  if (error instanceof TributaryError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new TributaryError(fallbackCode, message, { cause: error });
}

/** Invariant check: a failed assertion is always our bug, never the user's. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new TributaryError('INTERNAL', `assertion failed: ${message}`);
}
