import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, startFixture, type Fixture } from './fixture.js';

let f: Fixture;
beforeAll(async () => {
  f = await startFixture({ statusTickMs: 100 });
});
afterAll(async () => {
  await f.close();
});

interface SseMessage {
  event: string;
  data: string;
}

/**
 * Reads SSE frames from a streaming response, across calls: `until(stop)` reads until `stop` says
 * so (or the time runs out) and returns every frame read so far.
 */
function sseReader(response: Response) {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  const messages: SseMessage[] = [];
  let comments = 0;
  let buffer = '';
  return {
    async until(
      stop: (messages: SseMessage[], comments: number) => boolean,
      timeoutMs = 5000,
    ): Promise<{ messages: SseMessage[]; comments: number }> {
      const deadline = Date.now() + timeoutMs;
      while (!stop(messages, comments) && Date.now() < deadline) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (frame.startsWith(':')) comments += 1;
          const event = /^event: ?(.*)$/m.exec(frame)?.[1];
          const data = /^data: ?(.*)$/m.exec(frame)?.[1];
          if (event !== undefined && data !== undefined) messages.push({ event, data });
        }
      }
      return { messages, comments };
    },
    cancel: () => reader.cancel(),
  };
}

/** Reads SSE frames from a streaming response until `until` says stop (or the time runs out). */
async function readEvents(
  response: Response,
  until: (messages: SseMessage[], comments: number) => boolean,
  timeoutMs = 5000,
): Promise<{ messages: SseMessage[]; comments: number }> {
  const events = sseReader(response);
  try {
    return await events.until(until, timeoutMs);
  } finally {
    await events.cancel();
  }
}

/** The server subscribes a stream before it sends `ready`: after it, a publish reaches the client. */
const isReady = (messages: SseMessage[]) => messages.some((m) => m.event === 'ready');

describe('live events', () => {
  it('streams events to a header-authenticated client with tenant filtering', async () => {
    const acme = await fetch(`${f.url}/api/events?types=window.*`, {
      headers: { authorization: `Bearer ${f.keys.acme}` },
    });
    const admin = await fetch(`${f.url}/api/events?types=window.*`, {
      headers: { authorization: `Bearer ${f.keys.admin}` },
    });
    expect(acme.headers.get('content-type')).toContain('text/event-stream');
    // Both streams have subscribed once they sent `ready`.
    const acmeEvents = sseReader(acme);
    const adminEvents = sseReader(admin);
    await acmeEvents.until(isReady);
    await adminEvents.until(isReady);
    f.api.events.publish({ type: 'window.sales', data: { orders: 1 }, tenant: 'globex' });
    f.api.events.publish({ type: 'window.sales', data: { orders: 2 }, tenant: 'acme' });
    f.api.events.publish({ type: 'metrics.tick', data: { x: 1 } });
    f.api.events.publish({ type: 'window.platform', data: { orders: 3 } });
    const seenByAcme = await acmeEvents.until((m) => m.some((e) => e.event === 'window.sales'), 2000);
    const seenByAdmin = await adminEvents.until(
      (m) => m.filter((e) => e.event.startsWith('window.')).length >= 3,
    );
    await acmeEvents.cancel();
    await adminEvents.cancel();
    expect(
      seenByAcme.messages.filter((m) => m.event.startsWith('window.')).map((m) => JSON.parse(m.data)),
    ).toEqual([{ orders: 2 }]);
    expect(
      seenByAdmin.messages.filter((m) => m.event.startsWith('window.')).map((m) => JSON.parse(m.data)),
    ).toEqual([{ orders: 1 }, { orders: 2 }, { orders: 3 }]);
  });

  it('accepts a short-lived token minted with a key, and sends keepalives and status ticks', async () => {
    expect((await getJson(`${f.url}/api/events/token`, undefined, { method: 'POST' })).status).toBe(401);
    const minted = await getJson(`${f.url}/api/events/token`, f.keys.read, { method: 'POST' });
    expect(minted.status).toBe(200);
    const response = await fetch(`${f.url}/api/events?token=${encodeURIComponent(minted.body.token)}`);
    expect(response.status).toBe(200);
    const { messages } = await readEvents(response, (m) => m.some((e) => e.event === 'status.tick'));
    const quiet = await fetch(`${f.url}/api/events?types=none.such`, {
      headers: { authorization: `Bearer ${f.keys.read}` },
    });
    const { comments } = await readEvents(quiet, (_, c) => c >= 1);
    expect(comments).toBeGreaterThanOrEqual(1);
    const tick = JSON.parse(messages.find((m) => m.event === 'status.tick')!.data);
    expect(tick.jobs.map((j: { name: string }) => j.name)).toContain('sales-per-minute');
    expect(tick.api.requestsPerSecond).toBeGreaterThanOrEqual(0);
  });

  it('refuses forged or foreign tokens and tokens on other routes', async () => {
    const minted = await getJson(`${f.url}/api/events/token`, f.keys.read, { method: 'POST' });
    const [payload, signature] = (minted.body.token as string).split('.');
    const forgedPayload = Buffer.from(JSON.stringify({ k: 'aaaaaaaaaaaa', e: Date.now() + 60_000 })).toString(
      'base64url',
    );
    expect((await fetch(`${f.url}/api/events?token=${forgedPayload}.${signature}`)).status).toBe(401);
    expect((await fetch(`${f.url}/api/events?token=${payload}.x${signature}`)).status).toBe(401);
    expect((await getJson(`${f.url}/api/tables?token=${encodeURIComponent(minted.body.token)}`)).status).toBe(
      401,
    );
  });

  it('publishes lake commits as events', async () => {
    const response = await fetch(`${f.url}/api/events?types=lake.commit`, {
      headers: { authorization: `Bearer ${f.keys.read}` },
    });
    const events = sseReader(response);
    await events.until(isReady);
    await f.recommit('sales_by_minute');
    const { messages } = await events.until((m) => m.some((e) => e.event === 'lake.commit'));
    await events.cancel();
    expect(JSON.parse(messages.find((m) => m.event === 'lake.commit')!.data)).toEqual({
      layer: 'gold',
      name: 'sales_by_minute',
    });
  });
});
