import {
  childLogger,
  counter,
  parseRetryAfter,
  retry,
  systemClock,
  Throttle,
  TributaryError,
  type Clock,
  type Logger,
} from '../../core/index.js';
import type { Log, ProducerRecord } from '../../log/index.js';
import { createMemoryStateStore, type ConnectorStateStore } from '../state.js';
import { guardedFetch, type LookupFn, type NetPolicy } from './netguard.js';
import { httpPollerOptionsSchema, type HttpPollerOptions, type HttpPollerOptionsInput } from './options.js';
import { checkConnectorOptions } from '../options-check.js';

const requestsCounter = counter('tributary_http_poller_requests_total', 'HTTP poller requests by outcome', [
  'outcome',
]);

export interface HttpPollerDeps {
  /** Needed by `poll()`/`run()` (append to the topic); `pages()` works without it. */
  log?: Log;
  state?: ConnectorStateStore;
  clock?: Clock;
  logger?: Logger;
  /** Injected for tests of jitter; defaults to Math.random. */
  random?: () => number;
  lookup?: LookupFn;
  fetch?: typeof fetch;
  /**
   * A shared throttle (a named rate budget, core's `RateBudgets`) for pollers of one API; default
   * a throttle of this poller's own from `ratePerSecond` / `burst` / `rateMode`.
   */
  throttle?: Throttle;
}

export interface HttpPage {
  /** 0-based page count within this poll. */
  index: number;
  url: string;
  records: unknown[];
  body: unknown;
}

export interface HttpPollReport {
  pages: number;
  records: number;
  /** Incremental cursor saved after this poll (undefined without `incremental`). */
  cursor: string | undefined;
}

/** Reads `a.b.c` from a parsed JSON body; '' is the body itself. */
export function getPath(value: unknown, dotPath: string): unknown {
  if (dotPath === '') return value;
  let current = value;
  for (const part of dotPath.split('.')) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

/** The `rel="next"` target of an RFC 8288 Link header, or null. */
export function nextLink(header: string | null): string | null {
  if (!header) return null;
  for (const part of header.split(/,(?=\s*<)/)) {
    const match = /^\s*<([^>]*)>\s*(.*)$/.exec(part);
    if (!match) continue;
    const params = match[2];
    if (/(^|;)\s*rel\s*=\s*"?([^";]*\s)?next(\s[^";]*)?"?\s*(;|$)/i.test(params)) return match[1];
  }
  return null;
}

/** Compares incremental cursor values: numerically when both are numbers, else as strings. */
function cursorGreater(a: string, b: string | undefined): boolean {
  if (b === undefined) return true;
  const na = Number(a);
  const nb = Number(b);
  if (a.trim() !== '' && b.trim() !== '' && Number.isFinite(na) && Number.isFinite(nb)) return na > nb;
  return a > b;
}

/**
 * Polls a JSON HTTP API politely and safely: a throttle (core's `Throttle`, own or a shared rate
 * budget) that never exceeds `ratePerSecond` (retries included), Retry-After honoured and shared
 * with every poller on the same budget, exponential backoff with jitter on 429/5xx/timeouts,
 * pagination (page number, cursor, Link header), an incremental cursor kept in the state store,
 * per-request timeouts, and an SSRF guard on every request and redirect hop.
 *
 * Delivery is at-least-once: the cursor is saved after the poll's records are appended, so a
 * crash mid-poll repeats that poll.
 *
 * @example
 * const poller = createHttpPoller(
 *   { url: 'https://api.themoviedb.org/3/movie/popular', topic: 'movies', recordsPath: 'results',
 *     pagination: { type: 'page', totalPagesPath: 'total_pages' }, ratePerSecond: 4,
 *     headers: { authorization: `Bearer ${token}` } },
 *   { log, state: createFileStateStore('/data/state/tmdb.json') },
 * );
 * await poller.poll();
 */
export class HttpPoller {
  readonly options: HttpPollerOptions;
  readonly #deps: HttpPollerDeps;
  readonly #clock: Clock;
  readonly #throttle: Throttle;
  readonly #state: ConnectorStateStore;
  readonly #policy: NetPolicy;
  readonly #logger: Logger;

  constructor(options: HttpPollerOptionsInput, deps: HttpPollerDeps = {}) {
    this.options = checkConnectorOptions('http poller', httpPollerOptionsSchema, options);
    this.#deps = deps;
    this.#clock = deps.clock ?? systemClock;
    this.#throttle =
      deps.throttle ??
      new Throttle(
        this.options.rateMode === 'sliding-window'
          ? { mode: 'sliding-window', requestsMax: Math.max(1, Math.floor(this.options.ratePerSecond)) }
          : { ratePerSecond: this.options.ratePerSecond, burst: this.options.burst },
        this.#clock,
      );
    this.#state = deps.state ?? createMemoryStateStore();
    this.#policy = {
      allowHosts: this.options.allowHosts ?? [new URL(this.options.url).hostname],
      allowPrivateNetworks: this.options.allowPrivateNetworks,
      allowAddresses: this.options.allowAddresses,
    };
    this.#logger = deps.logger ?? childLogger('http-poller', { url: this.options.url });
  }

  get #stateKey(): string {
    return `http-poller:${this.options.stateKey ?? this.options.url}`;
  }

  /** The saved incremental cursor (undefined before the first successful poll). */
  async cursor(): Promise<string | undefined> {
    const saved = await this.#state.get<{ cursor?: string }>(this.#stateKey);
    return saved?.cursor ?? this.options.incremental?.initial;
  }

  /** One request with rate limit, timeout, retries and SSRF guard; resolves to the parsed JSON. */
  async request(url: URL, signal?: AbortSignal): Promise<{ body: unknown; response: Response }> {
    const o = this.options;
    // Failures worth another attempt: 429, 5xx, 408, timeouts, network errors. Policy refusals,
    // redirect loops, DNS failures and other statuses fail the same way again.
    const transient = new WeakSet<TributaryError>();
    return retry(
      async (attempt) => {
        const attemptText = `attempt ${attempt} of ${o.attemptsMax}`;
        // The timeout starts when the request is sent (not while it waits for the throttle).
        const timeout = new AbortController();
        let timer: NodeJS.Timeout | undefined;
        const requestSignal = signal ? AbortSignal.any([signal, timeout.signal]) : timeout.signal;
        let response: Response;
        let text = '';
        try {
          response = await guardedFetch(
            url,
            { headers: { accept: 'application/json', ...o.headers }, signal: requestSignal },
            {
              policy: this.#policy,
              redirectsMax: o.redirectsMax,
              ...(this.#deps.lookup ? { lookup: this.#deps.lookup } : {}),
              ...(this.#deps.fetch ? { fetch: this.#deps.fetch } : {}),
              beforeRequest: () => this.#throttle.take(signal),
              onSend: () => {
                this.#throttle.noteSent();
                clearTimeout(timer);
                timer = setTimeout(
                  () =>
                    timeout.abort(new DOMException(`no response within ${o.timeoutMs} ms`, 'TimeoutError')),
                  o.timeoutMs,
                );
              },
            },
          );
          if (response.ok) text = await response.text();
          else await response.body?.cancel();
          clearTimeout(timer);
        } catch (error) {
          clearTimeout(timer);
          if (error instanceof TributaryError) throw error;
          if (signal?.aborted) throw signal.reason as Error;
          const timedOut = timeout.signal.aborted;
          requestsCounter.inc({ outcome: timedOut ? 'timeout' : 'network' });
          const failure = new TributaryError(
            timedOut ? 'TIMEOUT' : 'EXTERNAL',
            `${url.href}: ${timedOut ? `no response within ${o.timeoutMs} ms` : (error as Error).message} (${attemptText})`,
            { cause: error, details: { url: url.href } },
          );
          transient.add(failure);
          throw failure;
        }
        if (response.ok) {
          requestsCounter.inc({ outcome: 'ok' });
          try {
            return { body: text.length === 0 ? null : (JSON.parse(text) as unknown), response };
          } catch (error) {
            throw new TributaryError('DECODE_FAILED', `${url.href}: response is not valid JSON`, {
              cause: error,
              details: { url: url.href },
            });
          }
        }
        requestsCounter.inc({ outcome: String(response.status) });
        const retryable = response.status === 429 || response.status >= 500 || response.status === 408;
        if (!retryable) {
          throw new TributaryError('EXTERNAL', `${url.href} answered HTTP ${response.status}`, {
            details: { url: url.href, status: response.status },
            domain:
              response.status === 401 || response.status === 403 || response.status === 404
                ? 'user'
                : 'external',
          });
        }
        const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), this.#clock.now());
        // Every source sharing this throttle (one rate budget per API) holds back, not just this one.
        if (retryAfterMs !== null) this.#throttle.pause(retryAfterMs);
        const failure = new TributaryError(
          response.status === 429 ? 'RATE_LIMITED' : 'EXTERNAL',
          `${url.href} answered HTTP ${response.status} (${attemptText})`,
          {
            details: { url: url.href, status: response.status },
            ...(retryAfterMs !== null ? { retryAfterMs } : {}),
          },
        );
        transient.add(failure);
        throw failure;
      },
      {
        attemptsMax: o.attemptsMax,
        baseMs: o.backoffBaseMs,
        maxMs: o.backoffMaxMs,
        clock: this.#clock,
        ...(this.#deps.random ? { random: this.#deps.random } : {}),
        ...(signal ? { signal } : {}),
        retryable: (error) => error instanceof TributaryError && transient.has(error),
        onRetry: ({ attempt, waitMs }) =>
          this.#logger.debug({ url: url.href, waitMs, attempt }, 'retrying request'),
      },
    );
  }

  /** Every page of one poll, in order (records extracted by `recordsPath`). */
  async *pages(signal?: AbortSignal): AsyncGenerator<HttpPage> {
    const o = this.options;
    const first = new URL(o.url);
    const cursor = await this.cursor();
    if (o.incremental && cursor !== undefined) first.searchParams.set(o.incremental.param, cursor);
    const pagination = o.pagination;
    let url: URL | null = first;
    let pageNumber = pagination.type === 'page' ? pagination.start : 0;
    if (pagination.type === 'page') first.searchParams.set(pagination.param, String(pageNumber));
    for (let index = 0; url !== null && index < o.pagesMax; index++) {
      const { body, response } = await this.request(url, signal);
      const extracted = getPath(body, o.recordsPath);
      const records = Array.isArray(extracted)
        ? (extracted as unknown[])
        : extracted === undefined || extracted === null
          ? []
          : [extracted];
      yield { index, url: url.href, records, body };
      let next: URL | null = null;
      if (pagination.type === 'page') {
        const total =
          pagination.totalPagesPath === undefined
            ? undefined
            : Number(getPath(body, pagination.totalPagesPath));
        const more = records.length > 0 && (total === undefined || Number.isNaN(total) || pageNumber < total);
        if (more) {
          pageNumber++;
          next = new URL(url);
          next.searchParams.set(pagination.param, String(pageNumber));
        }
      } else if (pagination.type === 'cursor') {
        const value = getPath(body, pagination.nextCursorPath);
        if (value !== undefined && value !== null && value !== '') {
          next = new URL(url);
          next.searchParams.set(pagination.param, typeof value === 'string' ? value : JSON.stringify(value));
        }
      } else if (pagination.type === 'link') {
        const link = nextLink(response.headers.get('link'));
        if (link !== null) next = new URL(link, url);
      }
      url = next;
    }
  }

  /** One poll: every page appended to the topic (one append per page), then the cursor saved. */
  async poll(signal?: AbortSignal): Promise<HttpPollReport> {
    const log = this.#deps.log;
    if (!log) throw new TributaryError('USAGE', 'HttpPoller.poll() needs deps.log');
    const o = this.options;
    await log.ensureTopic(o.topic, { partitions: 1 });
    let cursor = await this.cursor();
    let pages = 0;
    let total = 0;
    for await (const page of this.pages(signal)) {
      pages++;
      const batch: ProducerRecord[] = [];
      for (const record of page.records) {
        let key: string | null = null;
        if (o.keyField !== undefined) {
          const value = getPath(record, o.keyField);
          if (value !== undefined && value !== null)
            key = typeof value === 'string' ? value : JSON.stringify(value);
        }
        if (o.incremental) {
          const value = getPath(record, o.incremental.field);
          if (value !== undefined && value !== null) {
            const text = typeof value === 'string' ? value : JSON.stringify(value);
            if (cursorGreater(text, cursor)) cursor = text;
          }
        }
        batch.push({ topic: o.topic, key, value: JSON.stringify(record) });
      }
      if (batch.length > 0) await log.append(batch);
      total += batch.length;
    }
    if (o.incremental && cursor !== undefined) await this.#state.set(this.#stateKey, { cursor });
    return { pages, records: total, cursor: o.incremental ? cursor : undefined };
  }

  /** Polls every `pollIntervalMs` until `signal` aborts; a failed poll is logged and retried. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.poll(signal);
      } catch (error) {
        if (signal.aborted) return;
        this.#logger.error({ err: error }, 'http poll failed; retrying next interval');
      }
      try {
        await this.#clock.sleep(this.options.pollIntervalMs, signal);
      } catch {
        return;
      }
    }
  }
}

export function createHttpPoller(options: HttpPollerOptionsInput, deps: HttpPollerDeps = {}): HttpPoller {
  return new HttpPoller(options, deps);
}
