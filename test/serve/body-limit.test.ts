import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { limits } from '../../src/core/index.js';
import { ApiRouter, KeyStore } from '../../src/serve/index.js';
import { form, startPlatform, type Platform } from '../pipelines/documents/helpers.js';
import { routesApp } from './fixture.js';

/**
 * Routes may declare their own body limit (`bodyLimitBytes`), used instead of the app's default
 * for that route only: the documents upload accepts files up to the upload limit while every other
 * route keeps the platform's JSON body limit (10 MiB).
 */
describe('per-route body limits', () => {
  let platform: Platform;
  const twelveMiB = 12 * 1024 * 1024;

  beforeAll(async () => {
    platform = await startPlatform();
  });
  afterAll(async () => platform.close());

  it('the app default is below 12 MiB and the upload limit above it', () => {
    expect(limits.httpBodyBytesMax).toBeLessThan(twelveMiB);
    expect(limits.uploadBytesMax).toBeGreaterThan(twelveMiB);
  });

  it('a 12 MiB upload passes the documents upload route', async () => {
    const response = await fetch(`${platform.url}/upload`, {
      method: 'POST',
      headers: { authorization: `Bearer ${platform.keys.acmeIngest}` },
      body: form({
        company_id: 'acme',
        file: { name: 'big.txt', bytes: Buffer.alloc(twelveMiB, 'word ') },
      }),
    });
    const body = (await response.json()) as Record<string, unknown>;
    expect(response.status, JSON.stringify(body)).toBe(201);
    expect(typeof body.document_id).toBe('string');
  });

  it('a 12 MiB body to another route is refused with 413 by the app limit', async () => {
    const response = await fetch(`${platform.url}/ask`, {
      method: 'POST',
      headers: { authorization: `Bearer ${platform.keys.acmeRead}`, 'content-type': 'application/json' },
      body: JSON.stringify({ question: 'x'.repeat(twelveMiB), company_id: 'acme' }),
    });
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ error: { code: 'PAYLOAD_TOO_LARGE' } });
  });

  it('a route limit below the default applies to that route only', async () => {
    const dir = platform.dir;
    const keys = KeyStore.open(`${dir}/small-limit-keys.json`);
    const { key } = await keys.create({ scopes: ['admin'] });
    const echo = (path: string, bodyLimitBytes?: number) => (api: ApiRouter) =>
      api.route({
        method: 'post',
        path,
        summary: 'echo the length',
        scope: 'ingest',
        body: z.object({ text: z.string() }),
        ...(bodyLimitBytes !== undefined ? { bodyLimitBytes } : {}),
        responses: { 200: { description: 'length' } },
        handler: ({ body }) => Promise.resolve({ length: body.text.length }),
      });
    const built = routesApp(keys, (api) => {
      echo('/api/echo/small', 1024)(api);
      echo('/api/echo/default')(api);
    });
    try {
      const post = (path: string, length: number) =>
        built.app.request(path, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ text: 'y'.repeat(length) }),
        });
      expect((await post('/api/echo/small', 2000)).status).toBe(413);
      expect((await post('/api/echo/small', 500)).status).toBe(200);
      expect((await post('/api/echo/default', 2000)).status).toBe(200);
      expect((await post('/api/echo/default', 5000)).status).toBe(413);
      // The OpenAPI document states a route's own limit.
      const paths = built.openapi().paths as Record<string, Record<string, Record<string, unknown>>>;
      expect(paths['/api/echo/small'].post['x-tributary-body-limit-bytes']).toBe(1024);
      expect(paths['/api/echo/default'].post['x-tributary-body-limit-bytes']).toBeUndefined();
    } finally {
      await built.close();
    }
    expect(() =>
      new ApiRouter().route({
        method: 'post',
        path: '/x',
        summary: 'x',
        scope: 'ingest',
        bodyLimitBytes: -1,
        responses: {},
        handler: () => Promise.resolve({}),
      }),
    ).toThrow(/bodyLimitBytes/);
  });
});
