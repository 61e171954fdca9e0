import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SourceRunner, type SourceDeclaration } from '../../src/connectors/index.js';
import { loadConfig, RateBudgets } from '../../src/core/index.js';
import { LocalStorage, openLake, type Lake } from '../../src/lake/index.js';
import { createMemoryLog, openLog, type Log } from '../../src/log/index.js';
import { runCli } from '../cli/in-process.js';

let dir: string;
let lake: Lake;
let log: Log;
const servers: Server[] = [];
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tributary-sources-'));
  lake = await openLake({ storage: new LocalStorage(path.join(dir, 'lake')) });
  log = createMemoryLog();
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  await lake.close();
  await log.close();
  await rm(dir, { recursive: true, force: true });
});

/** A paged JSON API on 127.0.0.1:0: `pages` pages of two records; records when each request came. */
async function pagedApi(pages: number) {
  const arrivals: { atMs: number; path: string }[] = [];
  const server = createServer((req, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    arrivals.push({ atMs: performance.now(), path: url.pathname });
    const page = Number(url.searchParams.get('page') ?? '1');
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        total_pages: pages,
        results: [{ id: `${url.pathname}-${page}-a` }, { id: `${url.pathname}-${page}-b` }],
      }),
    );
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, arrivals };
}

async function topicCount(topic: string): Promise<number> {
  const description = await log.describeTopic(topic);
  return description.partitions.reduce((n, p) => n + p.endOffset - p.startOffset, 0);
}

describe('SourceRunner', () => {
  it('drains every kind once: spool past a poison file, paged HTTP, a file import; skips demo sources', async () => {
    const inbox = path.join(dir, 'inbox');
    await mkdir(inbox);
    await writeFile(path.join(inbox, 'a.jsonl.gz'), 'not gzip at all');
    await writeFile(path.join(inbox, 'b.jsonl'), '{"n":1}\n{"n":2}\n{"n":3}\n');
    const csv = path.join(dir, 'customers.csv');
    await writeFile(csv, 'id,name\n1,Ann\n2,Bob\n');
    const api = await pagedApi(3);
    const sources: SourceDeclaration[] = [
      { name: 'inbox', kind: 'spool', options: { dir: inbox, topic: 'in.files' } },
      {
        name: 'api',
        kind: 'http',
        options: {
          url: `${api.base}/items`,
          topic: 'in.api',
          recordsPath: 'results',
          pagination: { type: 'page', totalPagesPath: 'total_pages' },
          ratePerSecond: 1000,
          allowAddresses: ['127.0.0.1/32'],
        },
      },
      { name: 'customers', kind: 'file-import', options: { path: csv, table: 'bronze.customers' } },
      { name: 'simulator', kind: 'custom', run: () => Promise.reject(new Error('never run by drain')) },
    ];
    const runner = new SourceRunner([{ pipeline: 'demo', sources }], { log, lake, dataDir: dir });
    const reports = await runner.drain();
    expect(reports).toEqual([
      {
        name: 'demo/inbox',
        kind: 'spool',
        outcome: 'drained',
        records: 3,
        refused: 1,
        position: 'b.jsonl',
      },
      {
        name: 'demo/api',
        kind: 'http',
        outcome: 'drained',
        records: 6,
        refused: 0,
        position: expect.any(String),
      },
      {
        name: 'demo/customers',
        kind: 'file-import',
        outcome: 'drained',
        records: 2,
        refused: 0,
        position: 'customers.csv',
      },
      { name: 'demo/simulator', kind: 'custom', outcome: 'skipped', records: 0, refused: 0, position: null },
    ]);
    expect(await topicCount('in.files')).toBe(3);
    expect(await topicCount('in.api')).toBe(6);
    expect(await readFile(path.join(inbox, 'failed', 'a.jsonl.gz.reason'), 'utf8')).toMatch(/^reason: /);
    expect(runner.status().find((s) => s.name === 'demo/inbox')?.lastError).toMatch(/^a\.jsonl\.gz: /);

    // A second drain finds nothing new: the file import is not repeated, the spool is empty.
    const again = await new SourceRunner([{ pipeline: 'demo', sources }], {
      log,
      lake,
      dataDir: dir,
    }).drain();
    expect(again.map((r) => [r.name, r.records])).toEqual([
      ['demo/inbox', 0],
      ['demo/api', 6],
      ['demo/customers', 0],
      ['demo/simulator', 0],
    ]);
    expect((await lake.table('bronze.customers').snapshot())?.files.reduce((n, f) => n + f.rows, 0)).toBe(2);
  });

  it('makes sources of one API share one rate budget, and refuses an undeclared one', async () => {
    const api = await pagedApi(3);
    const budgets = new RateBudgets();
    budgets.declare('api', { mode: 'sliding-window', requestsMax: 1, windowMs: 100 });
    const poller = (name: string): Extract<SourceDeclaration, { kind: 'http' }> => ({
      name,
      kind: 'http',
      rateBudget: 'api',
      options: {
        url: `${api.base}/${name}`,
        topic: `in.${name}`,
        recordsPath: 'results',
        pagination: { type: 'page', totalPagesPath: 'total_pages' },
        ratePerSecond: 1000,
        allowAddresses: ['127.0.0.1/32'],
      },
    });
    const runner = new SourceRunner([{ pipeline: 'p', sources: [poller('one'), poller('two')] }], {
      log,
      lake,
      dataDir: dir,
      budgets,
    });
    // Both at once: each alone may go at 1000/s, together they stay within the budget's 1 per 100 ms.
    runner.start();
    for (;;) {
      if (api.arrivals.length >= 6) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await runner.stop();
    const times = api.arrivals.map((a) => a.atMs).sort((a, b) => a - b);
    expect(new Set(api.arrivals.map((a) => a.path))).toEqual(new Set(['/one', '/two']));
    // Starts are 100 ms apart at the sender; arrival times carry the loopback's jitter, so allow
    // half a window. Without the shared budget the two pollers would arrive together, ~1 ms apart.
    for (let i = 1; i < times.length; i++) expect(times[i] - times[i - 1]).toBeGreaterThan(50);

    expect(
      () =>
        new SourceRunner([{ pipeline: 'p', sources: [{ ...poller('three'), rateBudget: 'other' }] }], {
          log,
          lake,
          dataDir: dir,
          budgets,
        }),
    ).toThrow(/no rate budget named other; declared: api/);
  });
});

describe('tributary ingest http', () => {
  it('polls every page of an API into a topic once and prints the report', async () => {
    const api = await pagedApi(2);
    const config = loadConfig({ env: {}, cwd: dir, dotenv: false, overrides: { dataDir: dir } });
    const printed = await runCli([
      '--data-dir',
      dir,
      'ingest',
      'http',
      `${api.base}/movies`,
      '--topic',
      'movies.raw',
      '--records-path',
      'results',
      '--pagination',
      'page',
      '--total-pages-path',
      'total_pages',
      '--rate',
      '4',
      '--rate-mode',
      'sliding-window',
      '--allow-private',
      '--once',
    ]);
    expect(JSON.parse(printed)).toEqual({ pages: 2, records: 4 });
    const embedded = await openLog(config);
    try {
      const records = await embedded.fetch('movies.raw', 0, 0, { maxRecords: 100 });
      expect(records.map((r) => (JSON.parse(Buffer.from(r.value!).toString()) as { id: string }).id)).toEqual(
        ['/movies-1-a', '/movies-1-b', '/movies-2-a', '/movies-2-b'],
      );
    } finally {
      await embedded.close();
    }
  });
});
