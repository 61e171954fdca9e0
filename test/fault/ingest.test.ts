/**
 * Issue 17 §1 and §6: the decompressing ingest path stops reading at its limits, and CSV / NDJSON
 * records are capped while they are read (an unclosed quote or a file without newlines is never
 * held whole, and the carry between chunks costs linear time).
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gzipSync } from 'node:zlib';
import { isTributaryError, ManualClock, rootLogger } from '../../src/core/index.js';
import {
  createIngestRoutes,
  createSpoolSource,
  decodeBytes,
  decodeStream,
} from '../../src/connectors/index.js';
import { createMemoryLog, type MemoryLog } from '../../src/log/index.js';
import { createApp, KeyStore } from '../../src/serve/index.js';
import { form, listen, readAll } from '../pipelines/documents/helpers.js';
import { gzipLineBomb, watchHealth } from './hostile.js';

const MiB = 1024 * 1024;

/** `total` bytes of `fill` in 1 MiB chunks, generated on demand; `consumed` counts what was read. */
function lazyStream(head: string, fill: string, total: number) {
  const counter = { consumed: 0 };
  // Generated lazily (a synchronous generator is async-iterable too), never held whole.
  function* chunks(): Generator<Buffer> {
    yield Buffer.from(head);
    counter.consumed += head.length;
    const block = Buffer.alloc(MiB, fill);
    for (let sent = 0; sent < total; sent += MiB) {
      counter.consumed += MiB;
      yield block;
    }
  }
  return { stream: Readable.from(chunks(), { objectMode: false }), counter };
}

async function drain(records: AsyncIterable<unknown>): Promise<unknown> {
  try {
    for await (const _ of records);
    return null;
  } catch (error) {
    return error;
  }
}

describe('bounded decoding', () => {
  it('refuses an NDJSON record without a newline once it passes recordBytesMax, reading no further', async () => {
    const { stream, counter } = lazyStream('{"a":1}\n', 'x', 64 * MiB);
    const error = await drain(
      decodeStream(stream, { format: 'jsonl', gzip: false, name: 'one-line.ndjson', recordBytesMax: MiB }),
    );
    expect(isTributaryError(error) && error.code).toBe('PAYLOAD_TOO_LARGE');
    expect((error as Error).message).toMatch(/one-line\.ndjson line 2: record is longer than 1048576 bytes/);
    expect(counter.consumed).toBeLessThan(4 * MiB);
  });

  it('refuses a CSV row with an unclosed quote once it passes recordBytesMax', async () => {
    const { stream, counter } = lazyStream('id,text\n1,"never closed', 'y', 64 * MiB);
    const error = await drain(
      decodeStream(stream, { format: 'csv', gzip: false, name: 'quote.csv', recordBytesMax: MiB }),
    );
    expect(isTributaryError(error) && error.code).toBe('PAYLOAD_TOO_LARGE');
    expect((error as Error).message).toMatch(
      /quote\.csv: CSV line 2: record is longer than 1048576 characters/,
    );
    expect(counter.consumed).toBeLessThan(4 * MiB);
  });

  it('keeps long lines whole and in order when they fit (the carry joins pieces once)', async () => {
    const lines = ['a'.repeat(3 * MiB + 7), 'b', 'c'.repeat(MiB)];
    const body = Buffer.from(lines.join('\n'));
    // Split into odd-sized chunks so every line crosses chunk boundaries.
    function* chunks() {
      for (let i = 0; i < body.length; i += 65_537) yield body.subarray(i, i + 65_537);
    }
    const out: string[] = [];
    for await (const record of decodeStream(Readable.from(chunks()), {
      format: 'txt',
      gzip: false,
      name: 'long.txt',
      recordBytesMax: 4 * MiB,
    }))
      out.push(record.value);
    expect(out).toEqual(lines);
  });

  it('stops inflating a gzip body at decodedBytesMax', async () => {
    const lines = Buffer.alloc(32 * MiB, '{"k":1}\n');
    const error = await drain(
      decodeBytes(gzipSync(lines), {
        format: 'jsonl',
        gzip: true,
        name: 'many.ndjson.gz',
        decodedBytesMax: 4 * MiB,
      }),
    );
    expect(isTributaryError(error) && error.code).toBe('PAYLOAD_TOO_LARGE');
    expect((error as Error).message).toMatch(/many\.ndjson\.gz: more than 4194304 bytes after decompression/);
  });
});

describe('spool source with an over-long record', () => {
  it('moves the file to failed/ with the line and the limit, and keeps flowing', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'fault-spool-'));
    const log = createMemoryLog();
    try {
      // One line past the log's largest record (limits.recordBytesMax, 16 MiB).
      await writeFile(path.join(dir, 'huge.txt'), `first\n${'z'.repeat(17 * MiB)}\nlast\n`);
      await writeFile(path.join(dir, 'good.txt'), 'fine\n');
      const clock = new ManualClock(1_000_000);
      const logger = rootLogger.child({}, { level: 'silent' });
      const source = createSpoolSource({ dir, topic: 'in', stableMs: 1000 }, { log, clock, logger });
      await source.poll();
      clock.advance(1001);
      await source.poll();
      const failed = await readdir(path.join(dir, 'failed'));
      expect(failed.sort()).toEqual(['huge.txt', 'huge.txt.reason']);
      expect(await readFile(path.join(dir, 'failed', 'huge.txt.reason'), 'utf8')).toMatch(
        /huge\.txt line 2: record is longer than 16777216 bytes/,
      );
      const delivered = (await readAll(log, 'in')).map((r) => Buffer.from(r.value!).toString());
      expect(delivered).toContain('fine');
    } finally {
      await log.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('ingest endpoint under a gzip line bomb', () => {
  let dir: string;
  let log: MemoryLog;
  let server: { url: string; close(): Promise<void> };
  let key: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'fault-ingest-'));
    log = createMemoryLog();
    const keys = KeyStore.open(path.join(dir, 'keys.json'));
    key = (await keys.create({ scopes: ['ingest'] })).key;
    const { app } = createApp({
      keys,
      ui: false,
      ingest: { app: createIngestRoutes({ log, topicsAllowed: ['*'] }), tenantAware: false },
    });
    server = await listen(app);
  });
  afterAll(async () => {
    await server.close();
    await log.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers 413 naming the line and the limit while /health keeps answering', async () => {
    const bomb = gzipLineBomb(48 * MiB);
    expect(bomb.length).toBeLessThan(100 * 1024);
    const rssBefore = process.memoryUsage.rss();
    const health = watchHealth(server.url);
    const response = await fetch(`${server.url}/api/ingest/topics/events/records`, {
      method: 'POST',
      body: form({ file: { name: 'bomb.ndjson.gz', bytes: bomb } }),
      headers: { authorization: `Bearer ${key}` },
    });
    const watched = await health.stop();
    expect(response.status).toBe(413);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('PAYLOAD_TOO_LARGE');
    expect(body.error.message).toMatch(/bomb\.ndjson\.gz line 1: record is longer than 1048576 bytes/);
    expect(watched.failures).toEqual([]);
    expect(watched.slowestMs).toBeLessThan(1000);
    expect(watched.rssMaxBytes - rssBefore).toBeLessThan(200 * MiB);
    expect(await readAll(log, 'events')).toEqual([]);
  }, 120_000);
});
