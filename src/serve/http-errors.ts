import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { childLogger, isTributaryError, type ErrorCode, type TributaryError } from '../core/index.js';

const log = childLogger('serve');

/**
 * The only place errors become HTTP: known codes turn into 4xx/5xx with the error's own message;
 * anything else is logged in full and answered with a generic 500 that leaks nothing.
 */
export const httpStatusByCode: Partial<Record<ErrorCode, ContentfulStatusCode>> = {
  USAGE: 400,
  INVALID_ARGUMENT: 400,
  BAD_RECORD: 400,
  DECODE_FAILED: 400,
  SCHEMA_MISMATCH: 400,
  VALIDATION_FAILED: 400,
  LATE_RECORD: 400,
  SQL_REFUSED: 400,
  SSRF_REFUSED: 400,
  PATH_REFUSED: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  EXTERNAL: 502,
  UNAVAILABLE: 503,
  BACKPRESSURE: 503,
  CLOSED: 503,
  MODEL_MISSING: 503,
  TIMEOUT: 504,
  // The disk of the data dir is full: nothing was written or acknowledged (RFC 4918 §11.5).
  STORAGE_FULL: 507,
  // Damaged stored data (a fenced log partition): unavailable until an operator repairs it. Its
  // messages name the topic, partition and segment file, never an absolute path.
  CORRUPT_DATA: 503,
};

export interface ErrorBody {
  error: { code: string; message: string };
}

export function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}

/**
 * CORRUPT_DATA messages name the damaged file by its absolute path, for the operator reading the
 * server log; the API shows such a message only when it was written for clients
 * (`details.clientMessage`, e.g. a fenced log partition naming topic, partition and segment).
 */
function publicMessage(error: TributaryError): string {
  if (error.code === 'CORRUPT_DATA' && error.details.clientMessage !== true)
    return 'stored data needed for this request is damaged; the server log names the file, which an operator must repair or restore';
  return error.message;
}

export function handleError(error: unknown, c: Context): Response {
  if (isTributaryError(error)) {
    const status = httpStatusByCode[error.code];
    if (status !== undefined) {
      if (error.retryAfterMs !== undefined)
        c.header('Retry-After', String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))));
      if (status >= 500) log.warn({ err: error, path: c.req.path }, 'dependency error');
      return c.json(errorBody(error.code, publicMessage(error)), status);
    }
  }
  if (error instanceof HTTPException && error.status < 500) {
    return c.json(
      errorBody(
        error.status === 413 ? 'PAYLOAD_TOO_LARGE' : 'INVALID_ARGUMENT',
        error.message || 'bad request',
      ),
      error.status,
    );
  }
  log.error({ err: error, method: c.req.method, path: c.req.path }, 'unhandled error in request');
  return c.json(errorBody('INTERNAL', 'internal error; the server log has the details'), 500);
}
