import {
  counter,
  parseRetryAfter,
  retry,
  systemClock,
  Throttle,
  TributaryError,
  type Clock,
} from '../../core/index.js';

/**
 * TMDB v3 client: every call goes through one sliding-window `Throttle` (never more than
 * `requestsMax` requests started in any `windowMs`; shared by every client of the pipeline's
 * `tmdb` budget) and, per client, waits until its request `requestsMax` back was answered
 * `windowMs` ago, so the server, which counts arrivals, never sees more either; 429s pause that throttle for the server's
 * `Retry-After` (no request to the API starts before it has passed), 5xx / timeouts / network
 * failures are retried with core's capped, jittered backoff, a 404 answers null (the caller
 * records and skips it), and a 401 stops at once with the variable to set.
 *
 * @example
 * const tmdb = new TmdbClient({ baseUrl: 'https://api.themoviedb.org/3', apiKey: process.env.TMDB_API_KEY });
 * const page = await tmdb.get('/movie/popular', { page: 1 }); // { page, results, total_pages, total_results }
 */
export interface TmdbClientOptions {
  /** Default `https://api.themoviedb.org/3` (`TMDB_API_URL`). */
  baseUrl?: string;
  /** v3 key, sent as the `api_key` query parameter (`TMDB_API_KEY`). */
  apiKey?: string;
  /** v4 read access token, sent as `Authorization: Bearer` (`TMDB_READ_ACCESS_TOKEN`). */
  readAccessToken?: string;
  /**
   * The rate budget to draw from (the pipeline's shared `tmdb` budget under `up` and `run`): every
   * client on it shares its window and its 429 pauses. Without one the client has its own,
   * built from `requestsMax` and `windowMs`.
   */
  throttle?: Throttle;
  /** Requests started in any window (default 4). */
  requestsMax?: number;
  /**
   * The window (default 1050 ms: TMDB's second plus a 5 % margin, because the server counts
   * arrivals and two requests started 1000 ms apart may arrive closer together).
   */
  windowMs?: number;
  /** Per request (default 10 s): a timeout is retried like a 5xx. */
  timeoutMs?: number;
  /** Attempts per call, the first included (default 6). */
  attemptsMax?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  clock?: Clock;
}

/** What one extraction did (printed at the end of `run movies --once`, on /api/status). */
export interface TmdbRequestStats {
  requests: number;
  retries: number;
  rateLimited: number;
  serverErrors: number;
  notFound: number;
}

export const defaultTmdbUrl = 'https://api.themoviedb.org/3';

const requestsTotal = counter('tributary_tmdb_requests_total', 'TMDB requests by outcome', ['outcome']);

interface TmdbErrorBody {
  status_code?: number;
  status_message?: string;
}

export class TmdbClient {
  readonly baseUrl: string;
  readonly stats: TmdbRequestStats = {
    requests: 0,
    retries: 0,
    rateLimited: 0,
    serverErrors: 0,
    notFound: 0,
  };
  readonly #throttle: Throttle;
  readonly #options: TmdbClientOptions;
  readonly #clock: Clock;
  readonly #requestsMax: number;
  readonly #windowMs: number;
  /** When the answers to this client's last `requestsMax` requests came back, oldest first. */
  readonly #answeredAtMs: number[] = [];

  constructor(options: TmdbClientOptions) {
    if (!options.apiKey && !options.readAccessToken) {
      throw new TributaryError(
        'CONFIG_INVALID',
        'TMDB needs a key: set TMDB_API_KEY (v3 api_key) or TMDB_READ_ACCESS_TOKEN (Bearer)',
      );
    }
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.baseUrl = (options.baseUrl ?? defaultTmdbUrl).replace(/\/+$/, '');
    this.#throttle =
      options.throttle ??
      new Throttle(
        { mode: 'sliding-window', requestsMax: options.requestsMax ?? 4, windowMs: options.windowMs ?? 1050 },
        this.#clock,
      );
    const limits = this.#throttle.options;
    this.#requestsMax = limits.mode === 'sliding-window' ? limits.requestsMax : 1;
    this.#windowMs =
      limits.mode === 'sliding-window' ? (limits.windowMs ?? 1000) : 1000 / limits.ratePerSecond;
  }

  /**
   * Waits until the request `requestsMax` back was answered at least `windowMs` ago. The server
   * counts arrivals, and a request arrives after it starts, by a delay nobody controls (a busy
   * event loop, a new connection): a window counted from starts alone lets two requests started
   * a window apart arrive closer. Counted from answers, which come after arrivals, it cannot.
   */
  async #afterAnswers(signal: AbortSignal | undefined): Promise<void> {
    const answered = this.#answeredAtMs;
    if (answered.length < this.#requestsMax) return;
    const waitMs = answered[answered.length - this.#requestsMax] + this.#windowMs - this.#clock.now();
    if (waitMs > 0) await this.#clock.sleep(waitMs, signal);
  }

  #answered(): void {
    this.#answeredAtMs.push(this.#clock.now());
    if (this.#answeredAtMs.length > this.#requestsMax) this.#answeredAtMs.shift();
  }

  /** GET `path` (e.g. `/movie/550/credits`) → parsed JSON, or null on 404. */
  async get(
    path: string,
    query: Record<string, string | number> = {},
    signal?: AbortSignal,
  ): Promise<unknown> {
    const url = new URL(this.baseUrl + path);
    for (const [name, value] of Object.entries(query)) url.searchParams.set(name, String(value));
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.#options.apiKey) url.searchParams.set('api_key', this.#options.apiKey);
    else headers.authorization = `Bearer ${this.#options.readAccessToken}`;
    return retry((attempt) => this.#attempt(url, path, headers, attempt, signal), {
      attemptsMax: this.#options.attemptsMax ?? 6,
      baseMs: this.#options.retryBaseMs ?? 500,
      maxMs: this.#options.retryMaxMs ?? 30_000,
      // A 429 pauses the throttle itself; the retry waits at most that long too.
      retryAfterMaxMs: 120_000,
      clock: this.#clock,
      ...(signal === undefined ? {} : { signal }),
      onRetry: () => {
        this.stats.retries++;
      },
    });
  }

  async #attempt(
    url: URL,
    path: string,
    headers: Record<string, string>,
    attempt: number,
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    await this.#afterAnswers(signal);
    await this.#throttle.take(signal);
    this.#throttle.noteSent();
    this.stats.requests++;
    const timeout = AbortSignal.timeout(this.#options.timeoutMs ?? 10_000);
    let response: Response;
    let text: string;
    try {
      response = await fetch(url, {
        headers,
        signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
      });
      text = await response.text();
    } catch (error) {
      signal?.throwIfAborted();
      requestsTotal.inc({ outcome: 'network' });
      throw new TributaryError(
        'UNAVAILABLE',
        `TMDB ${path}: ${(error as Error).message} (attempt ${attempt})`,
        {
          cause: error,
        },
      );
    } finally {
      this.#answered();
    }
    const errorOf = (): string => {
      try {
        const body = JSON.parse(text) as TmdbErrorBody;
        return `${response.status} status_code ${body.status_code}: ${body.status_message}`;
      } catch {
        return `${response.status} ${text.slice(0, 200)}`;
      }
    };
    if (response.ok) {
      requestsTotal.inc({ outcome: 'ok' });
      try {
        return JSON.parse(text) as unknown;
      } catch (error) {
        throw new TributaryError('DECODE_FAILED', `TMDB ${path}: the body is not JSON`, { cause: error });
      }
    }
    if (response.status === 404) {
      requestsTotal.inc({ outcome: 'not_found' });
      this.stats.notFound++;
      return null;
    }
    if (response.status === 401) {
      requestsTotal.inc({ outcome: 'unauthorized' });
      throw new TributaryError(
        'UNAUTHENTICATED',
        `TMDB refused the credentials (${errorOf()}): set TMDB_API_KEY (v3 api_key) or TMDB_READ_ACCESS_TOKEN (Bearer) to a valid one`,
      );
    }
    if (response.status === 429) {
      requestsTotal.inc({ outcome: 'rate_limited' });
      this.stats.rateLimited++;
      const waitMs = parseRetryAfter(response.headers.get('retry-after'), this.#clock.now()) ?? 1000;
      this.#throttle.pause(waitMs);
      throw new TributaryError('RATE_LIMITED', `TMDB ${path}: ${errorOf()}`, { retryAfterMs: waitMs });
    }
    if (response.status >= 500) {
      requestsTotal.inc({ outcome: 'server_error' });
      this.stats.serverErrors++;
      throw new TributaryError('UNAVAILABLE', `TMDB ${path}: ${errorOf()} (attempt ${attempt})`);
    }
    requestsTotal.inc({ outcome: 'refused' });
    throw new TributaryError('EXTERNAL', `TMDB ${path}: ${errorOf()}`, { domain: 'user' });
  }
}
