/**
 * The CLI's way to a running `tributary up`'s HTTP API, for commands that need the platform itself
 * (`ingest documents` uploads through the upload route, `simulate sales` through the topics API);
 * log commands use the log server through `openLog`.
 */
import { errorCodes, parseRetryAfter, retry, TributaryError, type ErrorCode, limits } from '../core/index.js';
import { readLocalAdminKey, readUpState } from '../serve/index.js';

export interface RunningPlatform {
  pid: number;
  url: string;
  /** Admin key: TRIBUTARY_ADMIN_KEY, else the local admin key `up` wrote into the data dir. */
  key: string;
}

const healthTimeoutMs = 2000;
const requestTimeoutMs = 60_000;

/**
 * The platform `tributary up` runs on `dataDir`, or null when none does: `up.json` exists, its pid
 * is alive and the API answers `/health`. A stale `up.json` (crashed `up`, reused pid) gives null,
 * so the caller opens the data dir itself and gets the lock's own error if something else holds it.
 */
export async function runningPlatform(dataDir: string): Promise<RunningPlatform | null> {
  const state = await readUpState(dataDir);
  if (!state) return null;
  try {
    const response = await fetch(new URL('/health', state.url), {
      signal: AbortSignal.timeout(healthTimeoutMs),
    });
    await response.body?.cancel();
    if (!response.ok) return null;
  } catch {
    return null;
  }
  const key = process.env.TRIBUTARY_ADMIN_KEY || (await readLocalAdminKey(dataDir));
  if (!key) {
    throw new TributaryError(
      'UNAUTHENTICATED',
      `tributary up is running (pid ${state.pid} at ${state.url}) but no admin key was found in the data dir; set TRIBUTARY_ADMIN_KEY`,
    );
  }
  return { pid: state.pid, url: state.url, key };
}

function asErrorCode(code: unknown, fallback: ErrorCode): ErrorCode {
  return typeof code === 'string' && (errorCodes as readonly string[]).includes(code)
    ? (code as ErrorCode)
    : fallback;
}

export type RemoteBody = { json: unknown } | { form: FormData };

/**
 * Calls the running platform with its admin key and returns the parsed JSON answer. API errors
 * come back as the TributaryError the server raised (same code and message), so the CLI prints
 * what it would have printed locally. 429 and 503 answers are retried after their Retry-After.
 */
export async function callPlatform<T>(
  platform: RunningPlatform,
  method: 'GET' | 'POST',
  pathAndQuery: string,
  body?: RemoteBody,
): Promise<T> {
  const url = new URL(pathAndQuery, platform.url);
  // Answers that say "retry" (429 rate limit, 503 back-pressure), waited out by core's retry.
  const busy = new WeakSet<TributaryError>();
  return retry(
    async () => {
      const headers: Record<string, string> = { authorization: `Bearer ${platform.key}` };
      let payload: string | FormData | undefined;
      if (body && 'json' in body) {
        headers['content-type'] = 'application/json';
        payload = JSON.stringify(body.json);
      } else if (body) {
        payload = body.form;
      }
      let response: Response;
      try {
        response = await fetch(url, {
          method,
          headers,
          ...(payload === undefined ? {} : { body: payload }),
          signal: AbortSignal.timeout(requestTimeoutMs),
        });
      } catch (error) {
        throw new TributaryError(
          'UNAVAILABLE',
          `${method} ${url.pathname} on the running platform (${platform.url}) failed: ${(error as Error).message}`,
          { cause: error },
        );
      }
      const text = await response.text();
      if (response.ok) {
        try {
          return JSON.parse(text) as T;
        } catch (error) {
          throw new TributaryError(
            'EXTERNAL',
            `${method} ${url.pathname}: the platform answered ${response.status} with a body that is not JSON`,
            { cause: error },
          );
        }
      }
      let code: unknown;
      let message = text.slice(0, 500);
      try {
        const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
        code = parsed.error?.code;
        if (typeof parsed.error?.message === 'string') message = parsed.error.message;
      } catch {
        // Not a JSON error body (a proxy in between?): the status and raw text say what happened.
      }
      const retryAfterMs =
        response.status === 429 || response.status === 503
          ? (parseRetryAfter(response.headers.get('retry-after'), Date.now()) ?? 1000)
          : undefined;
      const failure = new TributaryError(
        asErrorCode(code, response.status >= 500 ? 'EXTERNAL' : 'INVALID_ARGUMENT'),
        message || `${method} ${url.pathname}: HTTP ${response.status}`,
        {
          details: { status: response.status, url: platform.url },
          ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
        },
      );
      if (retryAfterMs !== undefined) busy.add(failure);
      throw failure;
    },
    {
      attemptsMax: limits.cliRemoteAttemptsMax,
      baseMs: 100,
      maxMs: limits.cliRetryAfterMsMax,
      retryAfterMaxMs: limits.cliRetryAfterMsMax,
      retryable: (error) => error instanceof TributaryError && busy.has(error),
    },
  );
}
