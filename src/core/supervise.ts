import { systemClock, type Clock } from './clock.js';
import { toTributaryError, TributaryError } from './errors.js';
import { limits } from './limits.js';
import { childLogger, type Logger } from './logger.js';
import { backoffMs } from './retry.js';

/**
 * `running` → `backoff` (failed, waiting to restart) → `running` …; `finished` when the work
 * ended by itself, `stopped` after `stop()`, `failed` when `restartsMax` failures in a row used up
 * the restarts.
 */
export type SupervisedState = 'starting' | 'running' | 'backoff' | 'finished' | 'stopped' | 'failed';

export interface SupervisedStatus {
  name: string;
  state: SupervisedState;
  /** Restarts after failures since start. */
  restarts: number;
  lastError: string | null;
  lastErrorAtMs: number | null;
  /** While in `backoff`: when the next start is due. */
  nextStartAtMs: number | null;
  startedAtMs: number | null;
}

export interface SuperviseOptions {
  name: string;
  /** The work: resolves when it is done, rejects when it failed; stops soon after `signal` aborts. */
  run(signal: AbortSignal): Promise<void>;
  clock?: Clock;
  random?: () => number;
  /** Restart backoff: first wait and cap (default limits.restartBackoffMs{Min,Max}: 1 s, 60 s), doubled per failure in a row, jittered. */
  backoff?: { baseMs: number; maxMs: number };
  /** A run that lasted this long was healthy: the next failure starts the backoff over. Default the cap. */
  healthyAfterMs?: number;
  /** Failures in a row before giving up (`failed`). Default unlimited: a source comes back when its API does. */
  restartsMax?: number;
  /** Start again also when the work resolves (a loop that should never end). Default false. */
  restartOnExit?: boolean;
  logger?: Logger;
}

export interface Supervised {
  readonly name: string;
  status(): SupervisedStatus;
  /** Aborts the work and waits for it to end (its own graceful stop). */
  stop(): Promise<void>;
  /** Resolves when supervision ends (finished, stopped or failed); never rejects. */
  readonly done: Promise<void>;
}

/**
 * Runs `run` and keeps it running: a failure is logged, kept in the status (error, time, restart
 * count) and retried after a capped, jittered backoff; nothing it throws reaches the caller, so one
 * failing source, job or demo loop never takes the process down. `tributary up` supervises every
 * stream job, declared source and batch schedule with it.
 *
 * @example
 * const poller = supervise({ name: 'tmdb', run: (signal) => pollForever(signal) });
 * poller.status(); // { state: 'backoff', restarts: 2, lastError: 'api.themoviedb.org answered 503', ... }
 * await poller.stop();
 */
export function supervise(options: SuperviseOptions): Supervised {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? childLogger('supervisor', { name: options.name });
  const baseMs = options.backoff?.baseMs ?? limits.restartBackoffMsMin;
  const maxMs = options.backoff?.maxMs ?? limits.restartBackoffMsMax;
  const healthyAfterMs = options.healthyAfterMs ?? maxMs;
  const restartsMax = options.restartsMax ?? Number.POSITIVE_INFINITY;
  const controller = new AbortController();
  const aborted = new Promise<void>((resolve) =>
    controller.signal.addEventListener('abort', () => resolve(), { once: true }),
  );
  const status: SupervisedStatus = {
    name: options.name,
    state: 'starting',
    restarts: 0,
    lastError: null,
    lastErrorAtMs: null,
    nextStartAtMs: null,
    startedAtMs: null,
  };
  const loop = async () => {
    let failuresInRow = 0;
    while (!controller.signal.aborted) {
      status.state = 'running';
      status.nextStartAtMs = null;
      const startedAtMs = clock.now();
      status.startedAtMs = startedAtMs;
      try {
        await options.run(controller.signal);
        if (controller.signal.aborted) break;
        if (options.restartOnExit !== true) {
          status.state = 'finished';
          return;
        }
        failuresInRow = 0;
        continue;
      } catch (error) {
        if (controller.signal.aborted) break;
        if (clock.now() - startedAtMs >= healthyAfterMs) failuresInRow = 0;
        failuresInRow++;
        status.lastError = toTributaryError(error).message;
        status.lastErrorAtMs = clock.now();
        if (failuresInRow > restartsMax) {
          status.state = 'failed';
          logger.error({ err: error, failuresInRow }, `${options.name} failed; giving up`);
          return;
        }
        // A failure that says when to come back (a 429's Retry-After) is not retried sooner.
        const askedMs = error instanceof TributaryError ? (error.retryAfterMs ?? 0) : 0;
        const waitMs = Math.max(askedMs, backoffMs(failuresInRow - 1, baseMs, maxMs, options.random));
        status.state = 'backoff';
        status.nextStartAtMs = clock.now() + waitMs;
        logger.error({ err: error, restartInMs: waitMs }, `${options.name} failed; restarting`);
        // The manual clock ignores abort signals: race the wait against stop() ourselves.
        await Promise.race([clock.sleep(waitMs, controller.signal).catch(() => undefined), aborted]);
        if (controller.signal.aborted) break;
        status.restarts++;
      }
    }
    status.state = 'stopped';
    status.nextStartAtMs = null;
  };
  const done = loop().catch((error: unknown) => {
    // Only a bug in the loop itself lands here; keep the process up all the same.
    status.state = 'failed';
    status.lastError = toTributaryError(error).message;
    logger.error({ err: error }, `${options.name}: supervisor failed`);
  });
  return {
    name: options.name,
    status: () => ({ ...status }),
    async stop() {
      controller.abort();
      await done;
    },
    done,
  };
}
