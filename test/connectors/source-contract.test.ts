import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { serve } from '@hono/node-server';
import { ManualClock } from '../../src/core/index.js';
import { createHttpPoller, createIngestRoutes, createSpoolSource } from '../../src/connectors/index.js';
import { sourceContract } from './source-contract.case.js';

sourceContract('spool directory', async (log, topic) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'contract-spool-'));
  const source = createSpoolSource(
    { dir, topic, stableMs: 0, batchRecords: 7 },
    { log, clock: new ManualClock(0) },
  );
  let file = 0;
  return {
    offer: (records) =>
      writeFile(path.join(dir, `batch-${file++}.ndjson`), records.map((r) => JSON.stringify(r)).join('\n')),
    runOnce: async () => {
      await source.poll();
    },
    close: () => rm(dir, { recursive: true, force: true }),
  };
});

sourceContract('HTTP API poller (incremental, cursor pages)', async (log, topic) => {
  const rows: Record<string, unknown>[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const since = Number(url.searchParams.get('since') ?? '-1');
    const offset = Number(url.searchParams.get('cursor') ?? '0');
    const fresh = rows.filter((r) => Number(r.id) > since);
    const page = fresh.slice(offset, offset + 10);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ items: page, next: offset + 10 < fresh.length ? String(offset + 10) : null }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const poller = createHttpPoller(
    {
      url: `http://127.0.0.1:${port}/items`,
      topic,
      recordsPath: 'items',
      pagination: { type: 'cursor', nextCursorPath: 'next' },
      incremental: { field: 'id', param: 'since' },
      ratePerSecond: 1000,
      allowAddresses: ['127.0.0.1/32'],
    },
    { log },
  );
  return {
    offer: (records) => {
      rows.push(...records);
      return Promise.resolve();
    },
    runOnce: async () => {
      await poller.poll();
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
});

sourceContract('HTTP ingest endpoint (client retries with the same Idempotency-Key)', async (log, topic) => {
  const app = createIngestRoutes({ log, topicsAllowed: [topic] });
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const { port } = server.address() as AddressInfo;
  const posted: { body: string; key: string }[] = [];
  return {
    offer: (records) => {
      posted.push({ body: records.map((r) => JSON.stringify(r)).join('\n'), key: `batch-${posted.length}` });
      return Promise.resolve();
    },
    // A client that re-sends everything it ever sent (e.g. after losing responses).
    runOnce: async () => {
      for (const { body, key } of posted) {
        const res = await fetch(`http://127.0.0.1:${port}/topics/${topic}/records`, {
          method: 'POST',
          body,
          headers: { 'content-type': 'application/x-ndjson', 'idempotency-key': key },
        });
        if (res.status !== 200) throw new Error(`ingest answered ${res.status}`);
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
});
