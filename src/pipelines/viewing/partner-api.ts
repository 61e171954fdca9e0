import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { seededRandom } from '../../core/index.js';
import { generateViewing, type RawEvent } from './generate.js';

/**
 * `tributary simulate viewing-api`: a partner's viewing-events API for demos and tests, cursor
 * paged as such APIs are: `GET /events?cursor=<c>&limit=<n>` answers
 * `{ "events": [...], "next_cursor": "<c'>" }`, oldest first; `next_cursor` is null when the caller
 * has everything there is right now (poll again later with the last cursor). It starts with a
 * generated history (bad records and repeats included) and, with `liveEventsPerSecond`, keeps
 * appending fresh events stamped now. With a `token`, requests need `Authorization: Bearer <token>`.
 */
export interface PartnerApiOptions {
  port?: number;
  host?: string;
  seed?: number;
  users?: number;
  days?: number;
  liveEventsPerSecond?: number;
  token?: string;
  pageSizeMax?: number;
}

export interface PartnerApi {
  url: string;
  /** Events served so far (history + live). */
  events(): readonly RawEvent[];
  close(): Promise<void>;
}

const showsLive = [
  ['show-001', 'The Lighthouse Keepers', 'series', 2400],
  ['show-011', 'Midnight Express Train', 'movie', 6600],
  ['show-019', 'Oceans Unseen', 'documentary', 3000],
  ['show-004', 'Orbit Station', 'series', 1800],
] as const;

export async function startPartnerApi(options: PartnerApiOptions = {}): Promise<PartnerApi> {
  const seed = options.seed ?? 3;
  const events: RawEvent[] = generateViewing({
    users: options.users ?? 50,
    days: options.days ?? 3,
    seed,
  }).records;
  const pageMax = options.pageSizeMax ?? 1000;
  const random = seededRandom(seed + 1);
  let liveSequence = 0;
  const timer =
    options.liveEventsPerSecond === undefined || options.liveEventsPerSecond <= 0
      ? undefined
      : setInterval(() => {
          for (let i = 0; i < options.liveEventsPerSecond!; i++) {
            const [showId, title, type, duration] = showsLive[Math.floor(random() * showsLive.length)];
            const watched = Math.floor(random() * 300);
            events.push({
              event_id: `live-${seed}-${liveSequence++}`,
              user_id: `user-${String(1 + Math.floor(random() * 500)).padStart(5, '0')}`,
              show_id: showId,
              show_title: title,
              show_type: type,
              season: type === 'series' ? 1 : null,
              episode: type === 'series' ? 1 + Math.floor(random() * 8) : null,
              event_type: random() < 0.5 ? 'play' : 'stop',
              event_ts: new Date().toISOString(),
              watch_seconds: watched,
              position_seconds: Math.min(duration, watched),
              duration_seconds: duration,
              device: (['tv', 'mobile', 'web', 'tablet', 'console'] as const)[Math.floor(random() * 5)],
              country: (['US', 'GB', 'DE', 'BR', 'IN'] as const)[Math.floor(random() * 5)],
              rating: null,
              session_id: null,
            });
          }
        }, 1000);
  timer?.unref();

  const send = (response: ServerResponse, status: number, body: unknown) => {
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(JSON.stringify(body));
  };
  const handle = (request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? '/', 'http://partner');
    if (request.method !== 'GET' || url.pathname !== '/events') {
      send(response, 404, { error: 'not found', path: url.pathname });
      return;
    }
    if (options.token !== undefined && request.headers.authorization !== `Bearer ${options.token}`) {
      send(response, 401, { error: 'missing or wrong bearer token' });
      return;
    }
    const cursorText = url.searchParams.get('cursor') ?? '0';
    const limitText = url.searchParams.get('limit') ?? String(pageMax);
    if (!/^\d+$/.test(cursorText) || !/^\d+$/.test(limitText)) {
      send(response, 400, { error: 'cursor and limit are whole numbers' });
      return;
    }
    const from = Math.min(Number(cursorText), events.length);
    const to = Math.min(events.length, from + Math.max(1, Math.min(pageMax, Number(limitText))));
    send(response, 200, {
      events: events.slice(from, to),
      next_cursor: to < events.length ? String(to) : null,
      cursor: String(to),
    });
  };
  const server: Server = createServer(handle);
  await new Promise<void>((resolve) =>
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve),
  );
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    events: () => events,
    close: () =>
      new Promise<void>((resolve, reject) => {
        if (timer) clearInterval(timer);
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
