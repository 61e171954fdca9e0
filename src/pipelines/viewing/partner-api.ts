import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateViewing, liveEvents, type RawEvent } from './generate.js';

/**
 * `tributary simulate viewing-api`: a partner's viewing-events API for demos and tests, cursor
 * paged as such APIs are: `GET /events?cursor=<c>&limit=<n>` answers
 * `{ "events": [...], "next_cursor": "<c'>" }`, oldest first; `next_cursor` is null when the caller
 * has everything there is right now. Every event carries `seq`, its position; a later poll asks
 * for what came after with `?after=<highest seq seen>`. It starts with a
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

export async function startPartnerApi(options: PartnerApiOptions = {}): Promise<PartnerApi> {
  const seed = options.seed ?? 3;
  const events: RawEvent[] = generateViewing({
    users: options.users ?? 50,
    days: options.days ?? 3,
    seed,
  }).records;
  const pageMax = options.pageSizeMax ?? 1000;
  const live = liveEvents(`live-${seed}`, seed + 1);
  const timer =
    options.liveEventsPerSecond === undefined || options.liveEventsPerSecond <= 0
      ? undefined
      : setInterval(() => {
          for (let i = 0; i < options.liveEventsPerSecond!; i++) events.push(live(Date.now()));
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
