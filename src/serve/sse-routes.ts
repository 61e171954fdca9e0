import { streamSSE } from 'hono/streaming';
import { z } from 'zod';
import { counter, type Clock, limits } from '../core/index.js';
import { visibleTo, type SseTokens } from './events.js';
import type { ApiRouter } from './router.js';
import type { EventBus, LiveEvent, StatusProvider } from './types.js';

const sseClients = counter('tributary_api_sse_connections_total', 'SSE connections opened');

export interface EventRoutesOptions {
  events: EventBus;
  sseTokens: SseTokens;
  clock: Clock;
  /** Comment line sent after this long without an event, so proxies keep the stream open. */
  keepAliveMs: number;
}

/**
 * The live event streams of one app: `POST /api/events/token` and `GET /api/events` (Server-Sent
 * Events, filtered by tenant and event type). Knows its open streams, so the app can end them on
 * close and tick status only while someone listens.
 */
export class LiveStreams {
  readonly #open = new Set<() => void>();

  /** Streams currently open. */
  get size(): number {
    return this.#open.size;
  }

  /** Ends every open stream (their handlers unsubscribe and return). */
  endAll(): void {
    for (const end of [...this.#open]) end();
  }

  register(router: ApiRouter, { events, sseTokens, clock, keepAliveMs }: EventRoutesOptions): void {
    const open = this.#open;
    router.route({
      method: 'post',
      path: '/api/events/token',
      summary: 'Mint a short-lived token for the SSE stream (EventSource cannot send headers)',
      tags: ['events'],
      scope: 'read',
      responses: {
        200: { description: 'token', schema: z.object({ token: z.string(), expiresAtMs: z.number() }) },
      },
      handler: ({ auth }) => Promise.resolve(sseTokens.mint(auth!.keyId, clock.now())),
    });

    router.route({
      method: 'get',
      path: '/api/events',
      summary: 'Server-Sent Events: window results, live views, lake commits, status ticks',
      description:
        'Authenticate with the header, or with `?token=` from POST /api/events/token. `types` filters event names (`window.*` matches a prefix).',
      tags: ['events'],
      scope: 'read',
      allowQueryToken: true,
      timeoutMs: null,
      query: z.object({
        token: z.string().max(512).optional().describe('SSE token from POST /api/events/token'),
        types: z
          .string()
          .max(1000)
          .optional()
          .describe('Comma-separated event names; name.* matches a prefix'),
      }),
      responses: { 200: { description: 'event stream', contentType: 'text/event-stream' } },
      handler: ({ c, auth, query }) => {
        const patterns = query.types ? query.types.split(',').filter(Boolean) : [];
        const wanted = (type: string) =>
          patterns.length === 0 ||
          patterns.some((p) => (p.endsWith('*') ? type.startsWith(p.slice(0, -1)) : type === p));
        sseClients.inc();
        return Promise.resolve(
          streamSSE(c, async (stream) => {
            const queue: LiveEvent[] = [];
            let closed = false;
            let wake: (() => void) | undefined;
            const unsubscribe = events.subscribe((event) => {
              if (!visibleTo(event.tenant, auth!.tenant) || !wanted(event.type)) return;
              if (queue.length >= limits.sseQueueEventsMax) queue.shift();
              queue.push(event);
              wake?.();
            });
            const end = () => {
              closed = true;
              wake?.();
            };
            open.add(end);
            stream.onAbort(end);
            try {
              await stream.writeSSE({
                event: 'ready',
                data: JSON.stringify({ keyId: auth!.keyId, tenant: auth!.tenant ?? null }),
                retry: 3000,
              });
              let sequence = 0;
              while (!closed) {
                if (queue.length === 0) {
                  let timer: NodeJS.Timeout | undefined;
                  await new Promise<void>((resolve) => {
                    wake = resolve;
                    timer = setTimeout(resolve, keepAliveMs);
                  });
                  clearTimeout(timer);
                  wake = undefined;
                  if (closed) break;
                  if (queue.length === 0) {
                    await stream.write(': keepalive\n\n');
                    continue;
                  }
                }
                const event = queue.shift()!;
                sequence += 1;
                await stream.writeSSE({
                  event: event.type,
                  data: JSON.stringify(event.data ?? null),
                  id: String(sequence),
                });
              }
            } finally {
              unsubscribe();
              open.delete(end);
            }
          }),
        );
      },
    });
  }
}

export interface StatusTicksOptions {
  events: EventBus;
  status: StatusProvider | undefined;
  streams: LiveStreams;
  clock: Clock;
  periodMs: number;
  /** Requests served so far (for the requests/s figure). */
  requestsTotal: () => number;
  onError(error: unknown): void;
}

/**
 * Publishes `status.tick` (the status snapshot with the API's requests/s and memory) every
 * `periodMs` while SSE clients are connected. Returns the function that stops it.
 */
export function startStatusTicks(options: StatusTicksOptions): () => void {
  const { events, status, streams, clock } = options;
  let lastRequests = 0;
  let lastMs = clock.now();
  let ticking = false;
  const timer = setInterval(() => {
    if (streams.size === 0 || ticking) return;
    ticking = true;
    const nowMs = clock.now();
    const requestsTotal = options.requestsTotal();
    const requestsPerSecond = ((requestsTotal - lastRequests) * 1000) / Math.max(1, nowMs - lastMs);
    lastRequests = requestsTotal;
    lastMs = nowMs;
    void (async () => {
      try {
        const snapshot = status
          ? await status.getStatus()
          : { generatedAtMs: nowMs, pipelines: [], jobs: [] };
        events.publish({
          type: 'status.tick',
          data: { ...snapshot, api: { requestsPerSecond, rssBytes: process.memoryUsage.rss() } },
        });
      } catch (error) {
        options.onError(error);
      } finally {
        ticking = false;
      }
    })();
  }, options.periodMs);
  timer.unref();
  return () => clearInterval(timer);
}
