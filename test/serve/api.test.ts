import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisRateLimiter } from '../../src/serve/index.js';
import { getJson, startFixture, type Fixture } from './fixture.js';

let f: Fixture;
beforeAll(async () => {
  f = await startFixture();
});
afterAll(async () => {
  await f.close();
});

describe('platform routes', () => {
  it('health, ready, metrics and openapi are public', async () => {
    expect((await getJson(`${f.url}/health`)).body).toEqual({ status: 'ok' });
    const ready = await getJson(`${f.url}/ready`);
    expect(ready.status).toBe(200);
    expect(ready.body.checks).toEqual([expect.objectContaining({ name: 'lake', ok: true })]);
    const metrics = await getJson(`${f.url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain('tributary_http_request_duration_seconds');
    const doc = await getJson(`${f.url}/openapi.json`);
    expect(doc.body.openapi).toBe('3.1.0');
    expect(Object.keys(doc.body.paths)).toEqual(
      expect.arrayContaining([
        '/api/tables/{layer}/{name}',
        '/api/status',
        '/api/events',
        '/api/sales/summary',
      ]),
    );
    expect(
      doc.body.paths['/api/tables/{layer}/{name}'].get.parameters.map((p: { name: string }) => p.name),
    ).toEqual(expect.arrayContaining(['layer', 'name', 'sort', 'limit', 'offset', 'filter']));
  });

  it('sends security headers', async () => {
    const api = await fetch(`${f.url}/health`);
    expect(api.headers.get('content-security-policy')).toBe("default-src 'none'; frame-ancestors 'none'");
    expect(api.headers.get('x-content-type-options')).toBe('nosniff');
    expect(api.headers.get('cache-control')).toBe('no-store');
    const denied = await fetch(`${f.url}/api/tables`);
    expect(denied.status).toBe(401);
    expect(denied.headers.get('x-content-type-options')).toBe('nosniff');
    const page = await fetch(`${f.url}/`);
    await page.text();
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('readiness reports a failing dependency with 503 and no internals', async () => {
    const g = await startFixture({
      readiness: [{ name: 'log', check: () => Promise.reject(new Error('/secret/path exploded')) }],
    });
    try {
      const ready = await getJson(`${g.url}/ready`);
      expect(ready.status).toBe(503);
      expect(ready.body.checks).toContainEqual(
        expect.objectContaining({ name: 'log', ok: false, code: 'INTERNAL' }),
      );
      expect(JSON.stringify(ready.body)).not.toContain('secret');
    } finally {
      await g.close();
    }
  });

  it('metrics can require a key', async () => {
    const g = await startFixture({ metricsPublic: false });
    try {
      expect((await getJson(`${g.url}/metrics`)).status).toBe(401);
      expect((await getJson(`${g.url}/metrics`, g.keys.read)).status).toBe(200);
    } finally {
      await g.close();
    }
  });
});

describe('tables', () => {
  it('lists tables with partitions and sizes', async () => {
    const { status, body } = await getJson(`${f.url}/api/tables`, f.keys.read);
    expect(status).toBe(200);
    const names = body.tables.map((t: { layer: string; name: string }) => `${t.layer}.${t.name}`);
    // The lake lists its tables by qualified name.
    expect(names).toEqual(['gold.platform_totals', 'gold.sales_by_minute', 'silver.orders']);
    const sales = body.tables.find((t: { name: string }) => t.name === 'sales_by_minute');
    expect(sales.partitions.map((p: { path: string }) => p.path)).toEqual(['company=acme', 'company=globex']);
    expect(sales.sizeBytes).toBeGreaterThan(0);
    expect(sales.tenantColumn).toBe('company');
  });

  it('reads rows with filters, sorting and pagination', async () => {
    const { status, body } = await getJson(
      `${f.url}/api/tables/gold/sales_by_minute?filter[company]=acme&sort=-window_start&limit=5&offset=2`,
      f.keys.read,
    );
    expect(status).toBe(200);
    expect(body.total).toBe(30);
    expect(body.rows).toHaveLength(5);
    expect(body.rows[0].window_start).toBe('2026-11-22T10:27:00.000Z');
    expect(body.rows.every((r: { company: string }) => r.company === 'acme')).toBe(true);
    const numeric = await getJson(
      `${f.url}/api/tables/gold/sales_by_minute?orders=gte:15&sort=orders,window_start&columns=orders,company`,
      f.keys.read,
    );
    expect(numeric.status).toBe(200);
    expect(numeric.body.rows.length).toBeGreaterThan(0);
    expect(numeric.body.rows.every((r: { orders: number }) => r.orders >= 15)).toBe(true);
    expect(Object.keys(numeric.body.rows[0])).toEqual(['orders', 'company']);
    const listed = await getJson(
      `${f.url}/api/tables/silver/orders?status=in:shipped,cancelled&company=globex&limit=100`,
      f.keys.read,
    );
    expect(listed.body.total).toBe(17);
  });

  it('refuses unknown columns, bad values and hostile input with 400, never SQL', async () => {
    const cases = [
      'filter[nope]=1',
      'sort=window_start;DROP TABLE x',
      'orders=abc',
      'orders=gt:1 OR 1=1',
      'columns=*',
      'limit=100000',
      'limit=-1',
      'revenue=1e999',
      'orders=99999999999999999999',
      `filter[company]=${encodeURIComponent("acme' OR '1'='1")}`,
    ];
    for (const query of cases) {
      const { status, body } = await getJson(
        `${f.url}/api/tables/gold/sales_by_minute?${query}`,
        f.keys.read,
      );
      if (query.startsWith('filter[company]')) {
        // A hostile string is just a value that matches nothing.
        expect(status, query).toBe(200);
        expect(body.rows, query).toEqual([]);
      } else {
        expect(status, query).toBe(400);
        expect(body.error.code, query).toBe('INVALID_ARGUMENT');
      }
    }
    expect((await getJson(`${f.url}/api/tables/bronze/sales_by_minute`, f.keys.read)).status).toBe(400);
    expect((await getJson(`${f.url}/api/tables/gold/missing`, f.keys.read)).status).toBe(404);
  });

  it('caches gold reads until the table commits', async () => {
    const url = `${f.url}/api/tables/gold/platform_totals?sort=day&limit=3`;
    const first = await fetch(url, { headers: { authorization: `Bearer ${f.keys.read}` } });
    expect(first.headers.get('x-cache')).toBe('miss');
    const second = await fetch(url, { headers: { authorization: `Bearer ${f.keys.read}` } });
    expect(second.headers.get('x-cache')).toBe('hit');
    expect(await second.json()).toEqual(await first.json());
    await f.recommit('platform_totals');
    const third = await fetch(url, { headers: { authorization: `Bearer ${f.keys.read}` } });
    expect(third.headers.get('x-cache')).toBe('miss');
    await third.text();
    const silver = await fetch(`${f.url}/api/tables/silver/orders?limit=1`, {
      headers: { authorization: `Bearer ${f.keys.read}` },
    });
    expect(silver.headers.get('x-cache')).toBe('off');
    await silver.text();
  });
});

describe('tenants', () => {
  it('tenant keys see only their rows, partitions and tables', async () => {
    const list = await getJson(`${f.url}/api/tables`, f.keys.acme);
    expect(list.body.tables.map((t: { name: string }) => t.name)).toEqual(['sales_by_minute', 'orders']);
    for (const table of list.body.tables)
      expect(table.partitions.map((p: { path: string }) => p.path)).toEqual(['company=acme']);
    const rows = await getJson(`${f.url}/api/tables/gold/sales_by_minute?limit=1000`, f.keys.acme);
    expect(rows.body.total).toBe(30);
    expect(new Set(rows.body.rows.map((r: { company: string }) => r.company))).toEqual(new Set(['acme']));
    const other = await getJson(`${f.url}/api/tables/gold/sales_by_minute?company=globex`, f.keys.acme);
    expect(other.body.rows).toEqual([]);
    const platform = await getJson(`${f.url}/api/tables/gold/platform_totals`, f.keys.acme);
    expect(platform.status).toBe(404);
    expect(platform.body.error.message).toBe(
      (await getJson(`${f.url}/api/tables/gold/nothing_here`, f.keys.acme)).body.error.message.replace(
        'nothing_here',
        'platform_totals',
      ),
    );
  });

  it('status and pipelines are filtered by tenant', async () => {
    const all = await getJson(`${f.url}/api/status`, f.keys.read);
    expect(all.body.jobs.map((j: { name: string }) => j.name)).toEqual(['sales-per-minute', 'compaction']);
    expect(all.body.sources.map((s: { name: string }) => s.name)).toEqual(['sales/inbox']);
    const acme = await getJson(`${f.url}/api/status`, f.keys.acme);
    expect(acme.body.jobs.map((j: { name: string }) => j.name)).toEqual(['sales-per-minute']);
    // Sources are platform parts: a tenant-bound key does not see them.
    expect(acme.body.sources).toEqual([]);
    const globex = await getJson(`${f.url}/api/status`, f.keys.globex);
    expect(globex.body.jobs).toEqual([]);
    expect(globex.body.pipelines).toEqual([]);
    const pipelines = await getJson(`${f.url}/api/pipelines`, f.keys.globex);
    expect(pipelines.body.pipelines.map((p: { name: string }) => p.name)).toEqual(['sales']);
    expect((await getJson(`${f.url}/api/sales/summary`, f.keys.globex)).body).toEqual({
      company: 'globex',
      orders: 7,
    });
  });
});

describe('auth', () => {
  it('needs a valid key with the right scope', async () => {
    expect((await getJson(`${f.url}/api/tables`)).status).toBe(401);
    expect(
      (await getJson(`${f.url}/api/tables`, 'trb_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'))
        .status,
    ).toBe(401);
    expect((await getJson(`${f.url}/api/tables`, f.keys.revoked)).status).toBe(401);
    expect((await getJson(`${f.url}/api/tables`, f.keys.ingest)).status).toBe(403);
    expect((await getJson(`${f.url}/api/keys`, f.keys.read)).status).toBe(403);
    const keys = await getJson(`${f.url}/api/keys`, f.keys.admin);
    expect(keys.status).toBe(200);
    expect(JSON.stringify(keys.body)).not.toMatch(/hash|salt/i);
    expect(
      (await getJson(`${f.url}/api/tables`, undefined, { headers: { 'x-api-key': f.keys.read } })).status,
    ).toBe(200);
  });

  it('sees keys created by another process (the CLI) without a restart', async () => {
    const { KeyStore } = await import('../../src/serve/index.js');
    const other = KeyStore.open(f.store.file);
    const { key, record } = await other.create({ scopes: ['read'], name: 'late' });
    expect((await getJson(`${f.url}/api/pipelines`, key)).status).toBe(200);
    await other.revoke(record.id);
    expect((await getJson(`${f.url}/api/pipelines`, key)).status).toBe(401);
  });
});

describe('limits', () => {
  it('answers 429 with Retry-After once the bucket is empty', async () => {
    const g = await startFixture({ rateLimit: { ratePerSecond: 1, burst: 3 } });
    try {
      const statuses: number[] = [];
      let retryAfter: string | null = null;
      for (let i = 0; i < 5; i += 1) {
        const response = await fetch(`${g.url}/api/pipelines`, {
          headers: { authorization: `Bearer ${g.keys.read}` },
        });
        statuses.push(response.status);
        if (response.status === 429) retryAfter = response.headers.get('retry-after');
        await response.text();
      }
      expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
      expect(statuses[4]).toBe(429);
      expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
      // Another key has its own bucket.
      expect((await getJson(`${g.url}/api/pipelines`, g.keys.admin)).status).toBe(200);
    } finally {
      await g.close();
    }
  });

  it('shares the limit through Redis when configured', async () => {
    const prefix = `tributary:test:${Date.now()}:${Math.random().toString(16).slice(2)}:`;
    const g = await startFixture({
      rateLimiter: new RedisRateLimiter('redis://127.0.0.1:6379', { ratePerSecond: 1, burst: 2, prefix }),
    });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 3; i += 1)
        statuses.push((await getJson(`${g.url}/api/pipelines`, g.keys.read)).status);
      expect(statuses).toEqual([200, 200, 429]);
      const ready = await getJson(`${g.url}/ready`);
      expect(ready.body.checks).toContainEqual(expect.objectContaining({ name: 'redis', ok: true }));
    } finally {
      await g.close();
    }
  });

  it('answers 413 for oversized bodies and 504 when a route times out', async () => {
    const g = await startFixture({
      bodyLimitBytes: 1024,
      requestTimeoutMs: 100,
      ask: (question) => new Promise((resolve) => setTimeout(() => resolve({ answer: question }), 1000)),
    });
    try {
      const big = await getJson(`${g.url}/api/ask`, g.keys.read, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ question: 'x'.repeat(5000) }),
      });
      expect(big.status).toBe(413);
      expect(big.body.error.code).toBe('PAYLOAD_TOO_LARGE');
      const slow = await getJson(`${g.url}/api/ask`, g.keys.read, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ question: 'why?', company: 'acme' }),
      });
      expect(slow.status).toBe(504);
      expect(slow.body.error.code).toBe('TIMEOUT');
      const noCompany = await getJson(`${g.url}/api/ask`, g.keys.read, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ question: 'q' }),
      });
      expect(noCompany.status).toBe(400);
      const wrongType = await getJson(`${g.url}/api/ask`, g.keys.read, {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: 'hi',
      });
      expect(wrongType.status).toBe(415);
      const badJson = await getJson(`${g.url}/api/ask`, g.keys.read, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{',
      });
      expect(badJson.status).toBe(400);
    } finally {
      await g.close();
    }
  });

  it('maps unknown errors to a generic 500 that leaks nothing', async () => {
    const g = await startFixture({ ask: () => Promise.reject(new Error('db password is hunter2')) });
    try {
      const response = await getJson(`${g.url}/api/ask`, g.keys.read, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ question: 'q', company: 'acme' }),
      });
      expect(response.status).toBe(500);
      expect(response.body.error.code).toBe('INTERNAL');
      expect(JSON.stringify(response.body)).not.toContain('hunter2');
    } finally {
      await g.close();
    }
  });
});
