import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock, Throttle } from '../../src/core/index.js';
import { createMemoryLog, type Log } from '../../src/log/index.js';
import {
  assertUrlAllowed,
  createFileStateStore,
  createHttpPoller,
  isPrivateAddress,
  nextLink,
} from '../../src/connectors/index.js';

type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void;
const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A fake API on 127.0.0.1:0 that records when each request arrived. */
async function fakeApi(handler: Handler) {
  const requests: { atMs: number; path: string }[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    requests.push({ atMs: performance.now(), path: url.pathname + url.search });
    handler(req, res, url);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return { base: `http://127.0.0.1:${port}`, port, requests };
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};

async function topicValues(log: Log, topic: string): Promise<unknown[]> {
  const records = await log.fetch(topic, 0, 0, { maxRecords: 10_000 });
  return records.map((r) => JSON.parse(Buffer.from(r.value!).toString('utf8')));
}

const loopback = { allowAddresses: ['127.0.0.1/32'] };

describe('HTTP API poller', () => {
  it('never exceeds the rate, honours Retry-After, retries 500s and timeouts, and gets each page once', async () => {
    const failures = new Map<string, string>([
      ['2', '429'],
      ['3', '500'],
      ['4', 'timeout'],
    ]);
    const api = await fakeApi((_req, res, url) => {
      const page = url.searchParams.get('page')!;
      const failure = failures.get(page);
      failures.delete(page);
      if (failure === '429') return json(res, 429, { error: 'slow down' }, { 'retry-after': '1' });
      if (failure === '500') return json(res, 500, { error: 'boom' });
      if (failure === 'timeout') {
        setTimeout(() => json(res, 200, { results: [] }), 1500).unref();
        return;
      }
      const n = Number(page);
      json(res, 200, { page: n, total_pages: 6, results: [{ id: n * 10 + 1 }, { id: n * 10 + 2 }] });
    });
    const log = createMemoryLog();
    const started: number[] = [];
    const ratePerSecond = 10;
    const poller = createHttpPoller(
      {
        url: `${api.base}/movies?api=1`,
        topic: 'movies',
        recordsPath: 'results',
        pagination: { type: 'page', totalPagesPath: 'total_pages' },
        ratePerSecond,
        timeoutMs: 300,
        backoffBaseMs: 20,
        ...loopback,
      },
      {
        log,
        // Records when each request (attempt or redirect hop) leaves the client.
        fetch: (input, init) => {
          started.push(performance.now());
          return fetch(input, init);
        },
      },
    );
    const report = await poller.poll();
    expect(report).toMatchObject({ pages: 6, records: 12 });
    const ids = (await topicValues(log, 'movies')).map((r) => (r as { id: number }).id);
    expect(ids).toEqual([11, 12, 21, 22, 31, 32, 41, 42, 51, 52, 61, 62]);
    // Rate at the client: request starts at least 1000/rate ms apart (2 ms: Date.now vs performance.now rounding).
    expect(started).toHaveLength(api.requests.length);
    for (let i = 1; i < started.length; i++)
      expect(started[i] - started[i - 1]).toBeGreaterThanOrEqual(1000 / ratePerSecond - 2);
    // Rate as the server sees it: no one-second window holds more than `ratePerSecond` requests
    // (arrival gaps themselves jitter with network and scheduling delays on a loaded machine).
    const times = api.requests.map((r) => r.atMs);
    for (const t of times)
      expect(times.filter((u) => u >= t && u < t + 1000).length).toBeLessThanOrEqual(ratePerSecond);
    // Retry-After: 1 s between the 429 and the retry of page 2.
    const page2 = api.requests.map((r, i) => ({ ...r, i })).filter((r) => r.path.includes('page=2'));
    expect(page2).toHaveLength(2);
    expect(page2[1].atMs - page2[0].atMs).toBeGreaterThanOrEqual(990);
    expect(api.requests.filter((r) => r.path.includes('page=3'))).toHaveLength(2);
    expect(api.requests.filter((r) => r.path.includes('page=4'))).toHaveLength(2);
    expect(api.requests.every((r) => r.path.includes('api=1'))).toBe(true);
  });

  it('gives up after attemptsMax with a typed error', async () => {
    const api = await fakeApi((_req, res) => json(res, 503, {}));
    const poller = createHttpPoller(
      {
        url: `${api.base}/x`,
        topic: 't',
        attemptsMax: 3,
        backoffBaseMs: 5,
        ratePerSecond: 1000,
        ...loopback,
      },
      { log: createMemoryLog() },
    );
    await expect(poller.poll()).rejects.toMatchObject({
      code: 'EXTERNAL',
      message: expect.stringMatching(/503 \(attempt 3 of 3\)/),
    });
    expect(api.requests).toHaveLength(3);
  });

  it('follows cursor pagination and keeps the incremental cursor in the state file', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'poller-'));
    try {
      const rows = Array.from({ length: 7 }, (_, i) => ({ id: i + 1, updated: 100 + i }));
      let extra = false;
      const api = await fakeApi((_req, res, url) => {
        const since = Number(url.searchParams.get('since') ?? '0');
        const all = extra ? [...rows, { id: 8, updated: 200 }] : rows;
        const fresh = all.filter((r) => r.updated > since);
        const offset = Number(url.searchParams.get('cursor') ?? '0');
        const slice = fresh.slice(offset, offset + 3);
        json(res, 200, { data: slice, next: offset + 3 < fresh.length ? String(offset + 3) : null });
      });
      const options = {
        url: `${api.base}/items`,
        topic: 'items',
        recordsPath: 'data',
        pagination: { type: 'cursor' as const, nextCursorPath: 'next' },
        incremental: { field: 'updated', param: 'since' },
        ratePerSecond: 1000,
        ...loopback,
      };
      const log = createMemoryLog();
      const first = await createHttpPoller(options, {
        log,
        state: createFileStateStore(path.join(dir, 's.json')),
      }).poll();
      expect(first).toEqual({ pages: 3, records: 7, cursor: '106' });
      extra = true;
      // A new poller (new process) reads the cursor from the file and only gets the new row.
      const second = await createHttpPoller(options, {
        log,
        state: createFileStateStore(path.join(dir, 's.json')),
      }).poll();
      expect(second).toEqual({ pages: 1, records: 1, cursor: '200' });
      expect(api.requests.at(-1)!.path).toContain('since=106');
      expect((await topicValues(log, 'items')).map((r) => (r as { id: number }).id)).toEqual([
        1, 2, 3, 4, 5, 6, 7, 8,
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('follows Link rel="next" headers', async () => {
    const api = await fakeApi((_req, res, url) => {
      const page = Number(url.searchParams.get('p') ?? '1');
      const headers: Record<string, string> =
        page < 3 ? { link: `</list?p=${page + 1}>; rel="next", </list?p=1>; rel="first"` } : {};
      json(res, 200, [{ page }], headers);
    });
    const log = createMemoryLog();
    const report = await createHttpPoller(
      { url: `${api.base}/list`, topic: 'l', pagination: { type: 'link' }, ratePerSecond: 1000, ...loopback },
      { log },
    ).poll();
    expect(report.pages).toBe(3);
    expect(await topicValues(log, 'l')).toEqual([{ page: 1 }, { page: 2 }, { page: 3 }]);
  });
});

describe('SSRF guard', () => {
  it('classifies loopback, private, link-local, mapped and special addresses', () => {
    for (const ip of [
      '127.0.0.1',
      '10.1.2.3',
      '172.16.0.1',
      '192.168.1.1',
      '169.254.169.254',
      '0.0.0.0',
      '100.64.0.1',
      '::1',
      '::',
      'fe80::1',
      'fd00::1',
      '::ffff:127.0.0.1',
      '::ffff:a9fe:a9fe',
      '64:ff9b::7f00:1',
    ]) {
      expect(isPrivateAddress(ip), ip).toBe(true);
    }
    for (const ip of ['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'])
      expect(isPrivateAddress(ip), ip).toBe(false);
  });

  it('refuses IP literals in every spelling, hosts outside the allow-list and hosts resolving to private addresses', async () => {
    const any = { allowHosts: ['*'] };
    for (const url of [
      'http://127.0.0.1/',
      'http://0x7f000001/',
      'http://2130706433/',
      'http://0177.0.0.1/',
      'http://[::1]/',
      'http://[::ffff:127.0.0.1]/',
      'http://169.254.169.254/latest/meta-data',
      'http://[fe80::1]/',
      'http://0/',
    ]) {
      await expect(assertUrlAllowed(new URL(url), any), url).rejects.toMatchObject({ code: 'SSRF_REFUSED' });
    }
    await expect(
      assertUrlAllowed(new URL('http://evil.example/'), { allowHosts: ['api.example.com'] }),
    ).rejects.toThrow(/not in the allow-list/);
    await expect(assertUrlAllowed(new URL('file:///etc/passwd'), any)).rejects.toThrow(/scheme/);
    const rebinding = () =>
      Promise.resolve([
        { address: '93.184.216.34', family: 4 },
        { address: '10.0.0.7', family: 4 },
      ]);
    await expect(
      assertUrlAllowed(new URL('https://api.example.com/'), { allowHosts: ['*.example.com'] }, rebinding),
    ).rejects.toThrow(/10\.0\.0\.7/);
    const fine = () => Promise.resolve([{ address: '93.184.216.34', family: 4 }]);
    await expect(
      assertUrlAllowed(new URL('https://api.example.com/'), { allowHosts: ['*.example.com'] }, fine),
    ).resolves.toEqual(['93.184.216.34']);
  });

  it('refuses a loopback API unless explicitly allowed, and checks every redirect hop', async () => {
    const api = await fakeApi((_req, res, url) => {
      const to = url.searchParams.get('to');
      if (to) {
        res.writeHead(302, { location: to });
        return res.end();
      }
      json(res, 200, [{ ok: true }]);
    });
    const log = createMemoryLog();
    await expect(createHttpPoller({ url: `${api.base}/`, topic: 't' }, { log }).poll()).rejects.toMatchObject(
      { code: 'SSRF_REFUSED' },
    );
    const ok = await createHttpPoller({ url: `${api.base}/`, topic: 't', ...loopback }, { log }).poll();
    expect(ok.records).toBe(1);
    // localhost is not an allowed host; the others are allowed names on loopback/link-local
    // addresses other than the one allowed address, so the address check refuses them.
    for (const target of [
      `http://localhost:${api.port}/`,
      `http://[::1]:${api.port}/`,
      'http://169.254.169.254/latest/meta-data/',
      `http://127.0.0.2:${api.port}/`,
      `http://0x7f000002:${api.port}/`,
    ]) {
      const poller = createHttpPoller(
        {
          url: `${api.base}/r?to=${encodeURIComponent(target)}`,
          topic: 't',
          allowHosts: ['127.0.0.1', '127.0.0.2', '169.254.169.254', '::1'],
          ...loopback,
        },
        { log },
      );
      await expect(poller.poll(), target).rejects.toMatchObject({ code: 'SSRF_REFUSED' });
    }
    // A redirect to an allowed host on an allowed address is followed.
    const followed = await createHttpPoller(
      { url: `${api.base}/r?to=${encodeURIComponent(`${api.base}/final`)}`, topic: 't2', ...loopback },
      { log },
    ).poll();
    expect(followed.records).toBe(1);
  });
});

describe('rate-limit helpers', () => {
  it('the core throttle (token bucket) spaces starts by 1000/rate ms on the injected clock, burst included', async () => {
    const clock = new ManualClock(0);
    const bucket = new Throttle({ ratePerSecond: 4, burst: 2 }, clock);
    const starts: number[] = [];
    const takes = Array.from({ length: 6 }, () => bucket.take().then(() => starts.push(clock.now())));
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setImmediate(r));
      clock.advance(50);
    }
    await Promise.all(takes);
    expect(starts).toEqual([0, 0, 250, 500, 750, 1000]);
  });

  it('parses Link headers', () => {
    expect(nextLink('<https://a/x?p=2>; rel="next", <https://a/x?p=9>; rel="last"')).toBe('https://a/x?p=2');
    expect(nextLink('<https://a/x?p=1>; rel="prev"')).toBeNull();
    expect(nextLink(null)).toBeNull();
  });
});
