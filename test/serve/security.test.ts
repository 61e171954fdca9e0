import http from 'node:http';
import fc from 'fast-check';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/serve/index.js';
import { getJson, startFixture, type Fixture } from './fixture.js';

/**
 * Security properties over the whole route table, generated from the OpenAPI document so a new
 * route is covered the day it is added: authentication, scopes, tenant isolation, body limits,
 * and hostile input never producing a 5xx.
 */
interface Operation {
  path: string;
  method: string;
  scope: string;
  parameters: { name: string; in: string; schema?: { enum?: string[] } }[];
  hasBody: boolean;
}

let f: Fixture;
let operations: Operation[];
const bodyLimitBytes = 64 * 1024;
/** Requests the ingest sub-app actually handled (the tenant check must stop them before). */
let ingestHandled = 0;

beforeAll(async () => {
  const ingest = new Hono();
  ingest.post('/events', async (c) => {
    ingestHandled += 1;
    const body: unknown = await c.req.json();
    return c.json({ accepted: Array.isArray(body) ? body.length : 0 });
  });
  f = await startFixture({
    bodyLimitBytes,
    ask: (question, options) =>
      Promise.resolve({ answer: `echo ${question.length}`, company: options.company }),
    ingest: {
      app: ingest,
      openapiPaths: {
        '/events': {
          post: {
            summary: 'ingest events',
            'x-tributary-scope': 'ingest',
            requestBody: { content: { 'application/json': {} } },
            responses: { 200: { description: 'ok' } },
          },
        },
      },
    },
  });
  const doc = (await getJson(`${f.url}/openapi.json`)).body;
  operations = [];
  for (const [path, item] of Object.entries(
    doc.paths as Record<string, Record<string, Record<string, unknown>>>,
  )) {
    for (const [method, op] of Object.entries(item)) {
      operations.push({
        path,
        method,
        scope: (op['x-tributary-scope'] as string | undefined) ?? 'read',
        parameters: (op.parameters as Operation['parameters'] | undefined) ?? [],
        hasBody: op.requestBody !== undefined,
      });
    }
  }
});

afterAll(async () => {
  await f.close();
});

/** A concrete, valid request for an operation (table routes point at a tenant table). */
function concretePath(op: Operation): string {
  return op.path.replace('{layer}', 'gold').replace('{name}', 'sales_by_minute');
}

async function call(
  op: Operation,
  key: string | undefined,
  path = concretePath(op),
  body?: string,
): Promise<{ status: number; text: string }> {
  const init: RequestInit = {
    method: op.method.toUpperCase(),
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), 'content-type': 'application/json' },
  };
  if (op.hasBody)
    init.body = body ?? (op.path === '/api/ask' ? JSON.stringify({ question: 'q', company: 'acme' }) : '[]');
  const response = await fetch(`${f.url}${path}`, init);
  if (op.path === '/api/events' && response.ok) {
    await response.body?.cancel();
    return { status: response.status, text: '' };
  }
  const text = await response.text();
  return { status: response.status, text };
}

describe('route matrix', () => {
  it('covers the routes we expect', () => {
    const names = operations.map((o) => `${o.method} ${o.path}`);
    expect(names).toEqual(
      expect.arrayContaining([
        'get /api/tables',
        'get /api/tables/{layer}/{name}',
        'get /api/status',
        'get /api/events',
        'post /api/ask',
        'post /api/ingest/events',
        'get /api/keys',
        'get /api/sales/summary',
      ]),
    );
  });

  it('every non-public route refuses a missing, malformed or revoked key with 401 and no data', async () => {
    for (const op of operations.filter((o) => o.scope !== 'public')) {
      for (const key of [undefined, 'trb_bad', f.keys.revoked, `${f.keys.read}x`]) {
        const { status, text } = await call(op, key);
        expect(status, `${op.method} ${op.path} with ${key ?? 'no key'}`).toBe(401);
        expect(Object.keys(JSON.parse(text) as object)).toEqual(['error']);
      }
    }
  });

  it('every non-public route refuses a key without its scope with 403 and no data', async () => {
    const wrongKey: Record<string, string> = { read: f.keys.ingest, ingest: f.keys.read, admin: f.keys.read };
    for (const op of operations.filter((o) => o.scope !== 'public')) {
      const { status, text } = await call(op, wrongKey[op.scope]);
      expect(status, `${op.method} ${op.path}`).toBe(403);
      expect(Object.keys(JSON.parse(text) as object)).toEqual(['error']);
      // And the right scope (admin implies all) gets through.
      expect((await call(op, f.keys.admin)).status, `${op.method} ${op.path} as admin`).toBeLessThan(300);
    }
  });

  it('a tenant key never sees another tenant’s data on any route', async () => {
    for (const op of operations.filter((o) => o.scope === 'read')) {
      for (const path of [
        concretePath(op),
        `${concretePath(op)}?company=acme`,
        op.path.replace('{layer}', 'gold').replace('{name}', 'platform_totals'),
      ]) {
        const { status, text } = await call(op, f.keys.globex, path);
        expect(status, `${op.method} ${path}`).toBeLessThan(500);
        expect(text, `${op.method} ${path}`).not.toContain('acme');
      }
    }
    // Platform tables (no tenant column) are 404 for tenant keys, exactly like missing tables.
    expect((await getJson(`${f.url}/api/tables/gold/platform_totals`, f.keys.globex)).status).toBe(404);
    expect((await getJson(`${f.url}/api/tables/gold/platform_totals`, f.keys.read)).status).toBe(200);
    // The tenant of a key cannot be overridden by a parameter.
    expect((await getJson(`${f.url}/api/sales/summary?company=acme`, f.keys.globex)).body.company).toBe(
      'globex',
    );
    expect(
      (
        await getJson(`${f.url}/api/ask`, f.keys.globex, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ question: 'q', company: 'acme' }),
        })
      ).body.company,
    ).toBe('globex');
  });

  it('oversized bodies are refused with 413 on every route that takes one', async () => {
    const big = JSON.stringify({ question: 'x'.repeat(bodyLimitBytes + 10) });
    for (const op of operations.filter((o) => o.hasBody)) {
      const { status, text } = await call(op, f.keys.admin, concretePath(op), big);
      expect(status, `${op.method} ${op.path}`).toBe(413);
      expect(JSON.parse(text)).toMatchObject({ error: { code: 'PAYLOAD_TOO_LARGE' } });
    }
    // Also when the client streams without a Content-Length (own connection: the server closes it).
    const status = await new Promise<number>((resolve, reject) => {
      const request = http.request(`${f.url}/api/ingest/events`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${f.keys.ingest}`,
          'content-type': 'application/json',
          'transfer-encoding': 'chunked',
        },
        agent: false,
      });
      request.on('response', (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      });
      request.on('error', reject);
      for (let i = 0; i < 20; i += 1) request.write('x'.repeat(8192));
      request.end();
    });
    expect(status).toBe(413);
  });

  it('tenant-bound keys cannot post to /api/ingest unless the mount handles tenants', async () => {
    const post = (key: string) =>
      getJson(`${f.url}/api/ingest/events`, key, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify([{ company: 'acme', amount: 1 }]),
      });
    const before = ingestHandled;
    // globex holds the ingest scope but is bound to a tenant: topics are not tenant-scoped.
    const denied = await post(f.keys.globex);
    expect(denied.status).toBe(403);
    expect(denied.body).toMatchObject({ error: { code: 'FORBIDDEN' } });
    expect(denied.body.error.message).toContain('tenant');
    expect(denied.headers.get('x-content-type-options')).toBe('nosniff');
    expect(ingestHandled).toBe(before);
    // Unbound keys still get through.
    const accepted = await post(f.keys.ingest);
    expect(accepted.status).toBe(200);
    expect(accepted.body).toEqual({ accepted: 1 });
    expect(ingestHandled).toBe(before + 1);

    // A mount that declares itself tenant-aware receives the tenant-bound caller (and its tenant).
    const aware = new Hono();
    aware.post('/events', (c) => {
      const auth = c.get('auth' as never) as { tenant?: string } | undefined;
      return c.json({ tenant: auth?.tenant ?? null });
    });
    const built = createApp({
      keys: f.store,
      ui: false,
      statusTickMs: 0,
      ingest: { app: aware, tenantAware: true },
    });
    try {
      const response = await built.app.request('/api/ingest/events', {
        method: 'POST',
        headers: { authorization: `Bearer ${f.keys.globex}`, 'content-type': 'application/json' },
        body: '[]',
      });
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ tenant: 'globex' });
    } finally {
      await built.close();
    }
  });

  it('cached reads answer with the same headers as uncached ones', async () => {
    const url = `${f.url}/api/tables/gold/sales_by_minute?sort=-window_start&limit=7&columns=window_start,orders`;
    const miss = await fetch(url, { headers: { authorization: `Bearer ${f.keys.read}` } });
    const missBody = await miss.text();
    const hit = await fetch(url, { headers: { authorization: `Bearer ${f.keys.read}` } });
    expect(miss.headers.get('x-cache')).toBe('miss');
    expect(hit.headers.get('x-cache')).toBe('hit');
    expect(await hit.text()).toBe(missBody);
    for (const name of [
      'x-content-type-options',
      'content-security-policy',
      'cache-control',
      'content-type',
    ]) {
      expect(hit.headers.get(name), name).not.toBeNull();
      expect(hit.headers.get(name), name).toBe(miss.headers.get(name));
    }
    const remainingMiss = Number(miss.headers.get('x-ratelimit-remaining'));
    const remainingHit = Number(hit.headers.get('x-ratelimit-remaining'));
    expect(remainingMiss).toBeGreaterThan(0);
    expect(remainingHit).toBeGreaterThan(0);
    expect(remainingHit).toBeLessThanOrEqual(remainingMiss);
  });

  it('static files refuse path traversal', async () => {
    for (const path of [
      '/ui/..%2f..%2fpackage.json',
      '/ui/%2e%2e/%2e%2e/package.json',
      '/ui/../../package.json',
      '/ui/style.css%00.js',
      '/ui/.env',
    ]) {
      const response = await fetch(`${f.url}${path}`);
      const text = await response.text();
      expect(response.status, path).toBe(404);
      expect(text, path).not.toContain('"devDependencies"');
    }
  });
});

const hostile = [
  "' OR '1'='1",
  '1; DROP TABLE gold.sales_by_minute; --',
  "\") UNION SELECT * FROM read_csv('/etc/passwd') --",
  '../../../../etc/passwd',
  '..%2f..%2fetc%2fpasswd',
  '/etc/passwd',
  'C:\\Windows\\win.ini',
  '\u0000',
  'a\u0000b',
  '😀🔥',
  '\u202eevil',
  'ǅ̴̡͚̈́',
  '9'.repeat(400),
  '-99999999999999999999999',
  '1e999',
  'NaN',
  '-1',
  '0x7fffffff',
  '${jndi:ldap://x}',
  '<script>alert(1)</script>',
  '%',
  '%%32%65',
  '[]',
  '{"$gt":""}',
  'x'.repeat(5000),
  'eq:',
  'in:' + ','.repeat(300),
  'like:%',
  'gt:2026-13-45T99:99',
];

describe('hostile input generated from the OpenAPI document', () => {
  it('no parameter value from the hostile list produces a 5xx', async () => {
    const failures: string[] = [];
    for (const op of operations) {
      if (op.path === '/api/events') continue;
      for (const value of hostile) {
        const encoded = encodeURIComponent(value);
        const requests: string[] = [];
        for (const parameter of op.parameters) {
          if (parameter.in === 'path')
            requests.push(
              concretePath(op).replace(
                parameter.name === 'layer' ? '/gold/' : '/sales_by_minute',
                parameter.name === 'layer' ? `/${encoded}/` : `/${encoded}`,
              ),
            );
          if (parameter.in === 'query') {
            const name = parameter.name === 'filter' ? 'filter[orders]' : parameter.name;
            requests.push(`${concretePath(op)}?${encodeURIComponent(name)}=${encoded}`);
          }
        }
        requests.push(
          `${concretePath(op)}?${encoded}=${encoded}`,
          `${concretePath(op)}?filter[${encoded}]=1`,
          `${concretePath(op)}?company=${encoded}&sort=${encoded}`,
        );
        for (const path of requests) {
          const body = op.hasBody
            ? JSON.stringify(op.path === '/api/ask' ? { question: value, company: value } : [value])
            : undefined;
          const { status } = await call(op, f.keys.admin, path, body);
          if (status >= 500) failures.push(`${op.method} ${path} → ${status}`);
        }
      }
    }
    expect(failures).toEqual([]);
  });

  it('random strings in filters, sorts and pagination never produce a 5xx (fixed seed)', async () => {
    const columns = ['window_start', 'orders', 'revenue', 'top_product', 'company', 'nope'];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...columns),
        fc.constantFrom('', 'eq:', 'ne:', 'lt:', 'gte:', 'like:', 'in:', 'zz:'),
        fc.string({ unit: 'binary', maxLength: 40 }),
        fc.oneof(
          fc.constant(undefined),
          fc.string({ maxLength: 12 }),
          fc.integer({ min: -5, max: 2_000_000_000 }).map(String),
        ),
        async (column, op, value, limit) => {
          const query = new URLSearchParams({
            [`filter[${column}]`]: `${op}${value}`,
            ...(limit !== undefined ? { limit, offset: limit, sort: `-${value}` } : {}),
          });
          const { status } = await call(
            operations.find((o) => o.path === '/api/tables/{layer}/{name}')!,
            f.keys.read,
            `/api/tables/gold/sales_by_minute?${query.toString()}`,
          );
          expect(status).toBeLessThan(500);
        },
      ),
      { seed: 42, numRuns: 150 },
    );
  });
});
