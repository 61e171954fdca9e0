import http from 'node:http';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { KeyStore, startServer, type RunningServer } from '../../src/serve/index.js';
import { routesApp } from './fixture.js';

/**
 * Routes served by Node read bodies, headers and the client-gone signal from Node's own request
 * and response (src/core/http.ts), not from a WHATWG Request built per request: the same answers,
 * limits and aborts as through Hono's API, checked here over a real socket.
 */
describe('routes over Node HTTP', () => {
  let server: RunningServer;
  let close: () => Promise<void>;
  let key: string;
  const aborted: unknown[] = [];
  let waiting: () => void = () => {};

  beforeAll(async () => {
    const keys = KeyStore.open(path.join(mkdtempSync(path.join(os.tmpdir(), 'node-request-')), 'keys.json'));
    key = (await keys.create({ scopes: ['admin'] })).key;
    const built = routesApp(keys, (api) => {
      api.route({
        method: 'post',
        path: '/api/echo',
        summary: 'echo the text',
        scope: 'ingest',
        body: z.object({ text: z.string() }),
        responses: { 200: { description: 'the text' } },
        handler: ({ body }) => Promise.resolve({ text: body.text }),
      });
      api.route({
        method: 'post',
        path: '/api/wait',
        summary: 'answers when its signal aborts',
        scope: 'ingest',
        body: z.object({}),
        responses: { 200: { description: 'never, the client leaves first' } },
        handler: ({ signal }) =>
          new Promise((resolve) => {
            signal.addEventListener('abort', () => {
              aborted.push(signal.reason);
              resolve({});
            });
            waiting();
          }),
      });
    });
    server = await startServer(built.app, { port: 0 });
    close = async () => {
      await server.close();
      await built.close();
    };
  });
  afterAll(async () => close());

  const post = (
    route: string,
    body: string | Uint8Array<ArrayBuffer>,
    headers: Record<string, string> = {},
  ) =>
    fetch(`${server.url}${route}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
      body,
    });

  it('reads JSON bodies (a leading BOM dropped) and refuses bodies over the limit', async () => {
    const ok = await post('/api/echo', JSON.stringify({ text: 'héllo' }));
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ text: 'héllo' });
    const bom = await post(
      '/api/echo',
      new Uint8Array(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`{"text":"b"}`)])),
    );
    expect(await bom.json()).toEqual({ text: 'b' });
    const declared = await post('/api/echo', JSON.stringify({ text: 'x'.repeat(5000) }));
    expect(declared.status).toBe(413);
    // Chunked (no Content-Length): counted as it arrives.
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 10; i++) controller.enqueue(Buffer.from('x'.repeat(1000)));
        controller.close();
      },
    });
    const chunked = await fetch(`${server.url}/api/echo`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);
    const bad = await post('/api/echo', '{"text": ');
    expect(bad.status).toBe(400);
  });

  it("aborts the handler's signal when the client goes away before the answer", async () => {
    const handlerWaits = new Promise<void>((resolve) => (waiting = resolve));
    const request = http.request(`${server.url}/api/wait`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    });
    request.on('error', () => {});
    request.end('{}');
    await handlerWaits;
    request.destroy();
    await expect.poll(() => aborted.length, { timeout: 5000 }).toBe(1);
    expect(aborted[0]).toBe('Client connection prematurely closed.');
  });
});
