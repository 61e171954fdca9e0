/**
 * Issue 17 §2: a full disk is survived. On a real 20 MiB tmpfs filled to the last byte, the log
 * refuses writes (507 at the API, never an acknowledgement), `/ready` turns 503, `/health` keeps
 * answering, and writes resume by themselves once space is freed; what the log holds afterwards is
 * exactly what it acknowledged, also after a reopen. Checkpoints, state files and the lake refuse
 * the same way and leave no half-written file behind.
 */
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createIngestRoutes } from '../../src/connectors/index.js';
import { dataDirPaths, isTributaryError, writeFileAtomic } from '../../src/core/index.js';
import { openEmbeddedNorthwind } from '../../src/pipelines/northwind/source.js';
import { BatchDag } from '../../src/stream/index.js';
import { LocalStorage, openLake } from '../../src/lake/index.js';
import { openEmbeddedLog, type EmbeddedLog, type LogRecord } from '../../src/log/index.js';
import { createApp, KeyStore, type TributaryApp } from '../../src/serve/index.js';
import { skipWithout } from '../fixtures/prerequisite.js';
import { mountSmallDisk, smallDiskUnavailable, type SmallDisk } from '../fixtures/small-disk.js';
import { listen } from '../pipelines/documents/helpers.js';
import { watchHealth } from './hostile.js';

const skip = skipWithout(smallDiskUnavailable() === undefined, smallDiskUnavailable() ?? '');

/** Everything in `topic`, read straight from the log. */
async function readTopic(log: EmbeddedLog, topic: string): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  const { partitions } = await log.describeTopic(topic);
  for (const p of partitions) {
    for (let offset = p.startOffset; offset < p.endOffset;) {
      const records = await log.fetch(topic, p.partition, offset, { maxRecords: 10_000 });
      if (records.length === 0) break;
      out.push(...records);
      offset = records[records.length - 1].offset + 1;
    }
  }
  return out;
}

/** Files under `dir` whose names say they are temporary or half-created. */
function leftovers(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((name) => /\.tmp$|\.creating-|\.write-probe/.test(name));
}

describe.skipIf(skip)('a full disk (20 MiB tmpfs)', () => {
  let disk: SmallDisk;
  let work: string;

  beforeAll(async () => {
    disk = mountSmallDisk(20);
    work = await mkdtemp(path.join(os.tmpdir(), 'fault-disk-'));
  });
  afterAll(async () => {
    disk?.unmount();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('refuses log writes with 507, turns /ready 503, stays up, resumes once space is freed, loses nothing acknowledged', async () => {
    const logDir = path.join(disk.dir, 'log');
    let log = await openEmbeddedLog({ dir: logDir, segmentBytes: 256 * 1024, writeProbeMs: 100 });
    const keys = KeyStore.open(path.join(work, 'keys.json'));
    const key = (await keys.create({ scopes: ['ingest'] })).key;
    let api: TributaryApp | undefined;
    let server: { url: string; close(): Promise<void> } | undefined;
    try {
      api = createApp({
        keys,
        ui: false,
        statusTickMs: 0,
        // ~125 requests in well under a second from one key: the default per-key limit would answer
        // 429 before the disk-full answers this test is about.
        rateLimit: { ratePerSecond: 10_000, burst: 10_000 },
        ingest: {
          app: createIngestRoutes({ log, topicsAllowed: ['events'], partitions: 3 }),
          tenantAware: false,
        },
        readiness: [{ name: 'log', check: () => Promise.resolve(log.assertWritable()) }],
      });
      server = await listen(api.app);
      const url = server.url;
      const acked = new Set<string>();
      const refused: { status: number; body: string }[] = [];
      let next = 0;
      /** One request of 40 records of ~1 KiB; remembers the ids when the answer is 200. */
      const post = async (): Promise<number> => {
        const ids = Array.from({ length: 40 }, () => `r${next++}`);
        const response = await fetch(`${url}/api/ingest/topics/events/records`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify(ids.map((id) => ({ id, pad: 'x'.repeat(1000) }))),
        });
        const body = await response.text();
        if (response.status === 200) for (const id of ids) acked.add(id);
        else refused.push({ status: response.status, body });
        return response.status;
      };
      const ready = async () => (await fetch(`${url}/ready`)).status;

      const health = watchHealth(url);
      // Writes flow, then the disk fills up under them.
      for (let i = 0; i < 20; i++) expect(await post()).toBe(200);
      expect(await ready()).toBe(200);
      const producers = Array.from({ length: 4 }, async () => {
        for (let i = 0; i < 25; i++) await post();
      });
      disk.fill();
      await Promise.all(producers);
      // Nothing more fits: every write is refused, the process stays up, the log stays readable.
      for (let i = 0; i < 5; i++) expect(await post()).toBe(507);
      expect(refused.length).toBeGreaterThanOrEqual(5);
      for (const answer of refused) {
        expect(answer.status).toBe(507);
        const error = (JSON.parse(answer.body) as { error: { code: string; message: string } }).error;
        expect(error.code).toBe('STORAGE_FULL');
        expect(error.message).toMatch(/no space left on the data directory's disk/);
        expect(error.message).not.toMatch(/ENOSPC|\/tmp\/|small-disk/);
      }
      expect(await ready()).toBe(503);
      const readyBody = (await (await fetch(`${url}/ready`)).json()) as { checks: { code?: string }[] };
      expect(readyBody.checks[0].code).toBe('STORAGE_FULL');
      expect((await readTopic(log, 'events')).length).toBe(acked.size);

      // Space is freed: writes resume by themselves (the log probes the disk), /ready turns 200.
      disk.free();
      const freedAt = Date.now();
      let status = 0;
      while (Date.now() - freedAt < 10_000 && (status = await post()) !== 200)
        await new Promise((resolve) => setTimeout(resolve, 50));
      expect(status).toBe(200);
      expect(await ready()).toBe(200);
      for (let i = 0; i < 10; i++) expect(await post()).toBe(200);

      const watched = await health.stop();
      expect(watched.failures).toEqual([]);
      expect(watched.slowestMs).toBeLessThan(1000);

      // Exactly the acknowledged records, each once: none lost, none of the refused ones.
      const held = (await readTopic(log, 'events')).map(
        (r) => (JSON.parse(Buffer.from(r.value!).toString()) as { id: string }).id,
      );
      expect(new Set(held).size).toBe(held.length);
      expect(new Set(held)).toEqual(acked);
      expect(leftovers(logDir)).toEqual([]);
      // And after a reopen (the files themselves hold exactly that).
      await api.close();
      api = undefined;
      await log.close();
      log = await openEmbeddedLog({ dir: logDir, segmentBytes: 256 * 1024 });
      const reopened = (await readTopic(log, 'events')).map(
        (r) => (JSON.parse(Buffer.from(r.value!).toString()) as { id: string }).id,
      );
      expect(new Set(reopened)).toEqual(acked);
      expect(reopened.length).toBe(acked.size);
      process.stdout.write(
        `disk full: ${acked.size} records acknowledged, ${refused.length} requests refused with 507, ` +
          `writes resumed ${Date.now() - freedAt} ms after space was freed; /health slowest ${watched.slowestMs.toFixed(0)} ms\n`,
      );
    } finally {
      await api?.close();
      await server?.close();
      await log.close();
      fs.rmSync(logDir, { recursive: true, force: true });
      disk.free();
    }
  });

  it('refuses checkpoint / state files and lake commits on a full disk without leaving a half-written file', async () => {
    const stateDir = path.join(disk.dir, 'state');
    const lakeDir = path.join(disk.dir, 'lake');
    const lake = await openLake({ storage: new LocalStorage(lakeDir) });
    try {
      const table = lake.table('bronze', 'events');
      const count = async () => ((await table.snapshot())?.files ?? []).reduce((n, f) => n + f.rows, 0);
      await table.append([{ id: 1, text: 'before' }]);
      await writeFileAtomic(path.join(stateDir, 'checkpoint.json'), JSON.stringify({ n: 1 }));
      disk.fill();

      const stateError = await writeFileAtomic(
        path.join(stateDir, 'checkpoint.json'),
        JSON.stringify({ n: 2, pad: 'y'.repeat(64 * 1024) }),
      ).catch((error: unknown) => error);
      expect(isTributaryError(stateError, 'STORAGE_FULL')).toBe(true);
      expect(JSON.parse(fs.readFileSync(path.join(stateDir, 'checkpoint.json'), 'utf8'))).toEqual({ n: 1 });

      const rows = Array.from({ length: 20_000 }, (_, i) => ({
        id: i + 2,
        text: `row ${i} ${'z'.repeat(200)}`,
      }));
      const lakeError = await table.append(rows).catch((error: unknown) => error);
      expect(isTributaryError(lakeError, 'STORAGE_FULL'), String(lakeError)).toBe(true);
      // The table still reads as before: the failed commit left nothing visible.
      expect(await count()).toBe(1);
      expect(leftovers(disk.dir)).toEqual([]);
      expect(fs.readdirSync(path.join(lakeDir, '_tmp'))).toEqual([]);

      disk.free();
      await table.append([{ id: 99, text: 'after' }]);
      expect(await count()).toBe(2);
      await writeFileAtomic(path.join(stateDir, 'checkpoint.json'), JSON.stringify({ n: 3 }));
    } finally {
      await lake.close();
      disk.free();
    }
  });
});

describe.skipIf(skip)('batch runs on a full disk', () => {
  it('are recorded as run even when their history line cannot be written (this used to crash `up`)', async () => {
    const disk = mountSmallDisk(5);
    try {
      const dag = new BatchDag(
        [{ name: 'gold.refresh', partitionFor: () => null, run: () => Promise.resolve({ rowsOut: 1 }) }],
        { historyFile: path.join(disk.dir, 'jobs', 'history.jsonl') },
      );
      disk.fill();
      const record = await dag.run('gold.refresh');
      expect(record.status).toBe('succeeded');
    } finally {
      disk.unmount();
    }
  });
});

describe('an I/O error on fsync', () => {
  it('refuses the writes it covered with 503, then resumes once the disk takes a probe write', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'fault-eio-'));
    const log = await openEmbeddedLog({ dir, writeProbeMs: 50 });
    const original = fs.fdatasync;
    try {
      await log.ensureTopic('events', { partitions: 2 });
      await log.append([{ topic: 'events', key: 'a', value: 'acked-1' }]);
      // The next segment fsync fails as a dying disk reports it (Linux: EIO, pages dropped).
      let failures = 1;
      const spy = vi
        .spyOn(fs, 'fdatasync')
        .mockImplementation((fd: number, callback: (error: Error | null) => void) => {
          if (failures-- > 0)
            return callback(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
          return original(fd, callback);
        });
      const refused = await log
        .append([{ topic: 'events', key: 'b', value: 'refused' }])
        .catch((error: unknown) => error);
      expect(isTributaryError(refused, 'UNAVAILABLE'), String(refused)).toBe(true);
      expect((refused as Error).message).toMatch(/I\/O error.*Nothing was acknowledged/);
      expect(() => log.assertWritable()).toThrow(/I\/O error/);
      // Reads go on while writes are refused.
      expect((await readTopic(log, 'events')).map((r) => Buffer.from(r.value!).toString())).toEqual([
        'acked-1',
      ]);
      const startedMs = Date.now();
      for (;;) {
        try {
          log.assertWritable();
          break;
        } catch {
          expect(Date.now() - startedMs).toBeLessThan(5000);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
      spy.mockRestore();
      await log.append([{ topic: 'events', key: 'c', value: 'acked-2' }]);
      const values = (await readTopic(log, 'events')).map((r) => Buffer.from(r.value!).toString()).sort();
      expect(values).toEqual(['acked-1', 'acked-2']);
    } finally {
      vi.restoreAllMocks();
      await log.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(skip)('seeding on a 20 MiB disk', () => {
  it('reports the real cause (no space), not another process, and leaves no half-created database', async () => {
    const disk = mountSmallDisk(20);
    try {
      const error = await openEmbeddedNorthwind(disk.dir).catch((e: unknown) => e);
      expect(isTributaryError(error, 'STORAGE_FULL'), String(error)).toBe(true);
      expect((error as Error).message).toMatch(
        /no space left on its disk \(\d+ MiB free; a new database needs about 64 MiB\)/,
      );
      expect((error as Error).message).not.toMatch(/another tributary process/);
      expect(fs.existsSync(dataDirPaths(disk.dir).pglite)).toBe(false);
    } finally {
      disk.unmount();
    }
  });
});
