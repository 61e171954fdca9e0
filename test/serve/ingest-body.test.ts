import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIngestRoutes } from '../../src/connectors/index.js';
import { createMemoryLog, type MemoryLog } from '../../src/log/index.js';
import { createApp, KeyStore } from '../../src/serve/index.js';
import { listen, readAll } from '../pipelines/documents/helpers.js';

/**
 * HTTP ingest reads Node's request stream directly when nothing has read it yet (a body with
 * Content-Length), and the WHATWG stream otherwise (a chunked body, which the body limit counts
 * first). Both must store the same records, and both must keep the limits.
 */
describe('HTTP ingest request bodies over a real HTTP server', () => {
  let dir: string;
  let log: MemoryLog;
  let server: { url: string; close(): Promise<void> };
  let key: string;
  const routeBodyBytesMax = 64 * 1024;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ingest-body-'));
    log = createMemoryLog();
    const keys = KeyStore.open(path.join(dir, 'keys.json'));
    key = (await keys.create({ scopes: ['ingest'] })).key;
    const { app } = createApp({
      keys,
      ui: false,
      statusTickMs: 0,
      bodyLimitBytes: 1024 * 1024,
      ingest: {
        app: createIngestRoutes({
          log,
          topicsAllowed: ['*'],
          limits: { bodyBytesMax: routeBodyBytesMax },
        }),
        tenantAware: false,
      },
    });
    server = await listen(app);
  });
  afterAll(async () => {
    await server.close();
    await log.close();
    await rm(dir, { recursive: true, force: true });
  });

  const post = (topic: string, body: BodyInit, extra: RequestInit = {}) =>
    fetch(`${server.url}/api/ingest/topics/${topic}/records`, {
      method: 'POST',
      body,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      ...extra,
    });

  /** A body sent in pieces without Content-Length (Transfer-Encoding: chunked). */
  const chunked = (text: string, pieces: number): RequestInit & { duplex: 'half' } => {
    const bytes = Buffer.from(text);
    const size = Math.ceil(bytes.length / pieces);
    let at = 0;
    return {
      body: new ReadableStream<Uint8Array>({
        pull(controller) {
          if (at >= bytes.length) return controller.close();
          controller.enqueue(bytes.subarray(at, (at += size)));
        },
      }),
      duplex: 'half',
    };
  };

  it('stores every element byte for byte, with and without Content-Length', async () => {
    const elements = ['{"a": 1}', '"x"', '[1, 2.50]', '12345678901234567890'];
    const text = `[${elements.join(', ')}]`;
    const sized = await post('plain', text);
    expect(sized.status).toBe(200);
    const streamed = await post('streamed', '', chunked(text, 3));
    expect(streamed.status).toBe(200);
    for (const topic of ['plain', 'streamed']) {
      const values = (await readAll(log, topic)).map((r) => Buffer.from(r.value!).toString());
      expect(values, topic).toEqual(elements);
    }
  });

  it("answers 413 for a body over the route's limit, declared or streamed", async () => {
    const big = JSON.stringify(Array.from({ length: 2000 }, (_, i) => ({ i, pad: 'x'.repeat(40) })));
    expect(big.length).toBeGreaterThan(routeBodyBytesMax);
    const declared = await post('too-big', big);
    expect(declared.status).toBe(413);
    const streamed = await post('too-big', '', chunked(big, 8));
    expect(streamed.status).toBe(413);
    expect(((await streamed.json()) as { error: { code: string } }).error.code).toBe('PAYLOAD_TOO_LARGE');
    expect(await readAll(log, 'too-big')).toEqual([]);
  });

  it("answers with the API's headers and the caller's rate-limit state, accepted or refused", async () => {
    const accepted = await post('plain', '[1]');
    const refused = await post('refused', '[1,]');
    expect(accepted.status).toBe(200);
    expect(refused.status).toBe(400);
    for (const response of [accepted, refused]) {
      expect(response.headers.get('content-type')).toBe('application/json');
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('content-security-policy')).toBe(
        "default-src 'none'; frame-ancestors 'none'",
      );
      expect(response.headers.get('cache-control')).toBe('no-store');
      expect(Number(response.headers.get('x-ratelimit-remaining'))).toBeGreaterThan(0);
    }
    expect(await accepted.json()).toMatchObject({ topic: 'plain', records: 1 });
    expect(await refused.json()).toMatchObject({ error: { code: 'INVALID_ARGUMENT' } });
  });
});
