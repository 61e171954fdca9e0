import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStorage, openLake, type Lake } from '../../../src/lake/index.js';
import { createMemoryLog, type MemoryLog } from '../../../src/log/index.js';
import { lakeSinkSettings, sinkJobs, topics } from '../../../src/pipelines/documents/index.js';
import { ManualClock } from '../../../src/core/index.js';
import { runJob, startJob } from '../../../src/stream/index.js';

/** The seed's HDFS sink settings: year=/month=/day=/hour= by record time, flush.size 1000, rotate.interval 10 min. */
describe('lake sink (Kafka Connect HDFS sink settings)', () => {
  let dir: string;
  let log: MemoryLog;
  let lake: Lake;
  const hour10 = Date.UTC(2026, 0, 5, 10, 0, 0);
  const hour11 = Date.UTC(2026, 0, 5, 11, 0, 0);

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'documents-sink-'));
    log = createMemoryLog();
    lake = await openLake({ storage: new LocalStorage(path.join(dir, 'lake')) });
    await log.createTopic(topics.embeddings, { partitions: 1 });
    const record = (i: number, ts: number) => ({
      topic: topics.embeddings,
      key: `doc-${i % 10}`,
      value: JSON.stringify({
        chunk_id: `c${i}`,
        document_id: `doc-${i % 10}`,
        company_id: 'acme',
        vector: [0.1, 0.2],
      }),
      timestamp: ts,
    });
    // 2,500 records within one minute of hour 10, then one record per minute through minutes 0-29 of hour 11.
    await log.append(Array.from({ length: 2_500 }, (_, i) => record(i, hour10 + 5 * 60_000 + i * 10)));
    await log.append(Array.from({ length: 30 }, (_, i) => record(10_000 + i, hour11 + i * 60_000)));
    // The lake sink commits with checkpoints, so the run needs a data dir for them.
    for (const job of sinkJobs({ log, bronzeTable: (name) => lake.table('bronze', name) }))
      await runJob(job, { once: true, dataDir: path.join(dir, 'data') });
  });
  afterAll(async () => {
    await lake.close();
    await log.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('uses the seed connector settings', () => {
    expect(lakeSinkSettings).toMatchObject({ flushSize: 1000, rotateIntervalMs: 600_000 });
  });

  it('partitions by record hour and rolls at flush.size records', async () => {
    const files = (await lake.table('bronze', 'embeddings_ready').snapshot())!.files;
    const hour10Files = files.filter((f) => f.partition === 'year=2026/month=01/day=05/hour=10');
    expect(hour10Files.map((f) => f.rows).sort((a, b) => b - a)).toEqual([1000, 1000, 500]);
    for (const file of files)
      expect(file.path).toMatch(/^year=2026\/month=01\/day=05\/hour=1[01]\/[^/]+\.parquet$/);
    const onDisk = await readdir(
      path.join(lake.storage.root, 'bronze', 'embeddings_ready', 'year=2026', 'month=01', 'day=05'),
    );
    expect(onDisk.filter((n) => n.startsWith('hour=')).sort()).toEqual(['hour=10', 'hour=11']);
  });

  it('rolls a partition once its records span rotate.interval of record time', async () => {
    const files = (await lake.table('bronze', 'embeddings_ready').snapshot())!.files;
    const hour11Files = files.filter((f) => f.partition === 'year=2026/month=01/day=05/hour=11');
    // Minutes 0-10 (the record 10 minutes after the first closes the file), 11-21, 22-29 (end of input).
    expect(hour11Files.map((f) => f.rows).sort((a, b) => b - a)).toEqual([11, 11, 8]);
    expect(hour11Files.every((f) => f.rows <= lakeSinkSettings.flushSize)).toBe(true);
  });

  it('rolls a quiet partition after the idle time (unbounded run) and commits it with the next checkpoint', async () => {
    const quietLog = createMemoryLog();
    const quietLake = await openLake({ storage: new LocalStorage(path.join(dir, 'quiet-lake')) });
    const clock = new ManualClock(Date.UTC(2026, 0, 6, 8, 0, 0));
    try {
      await quietLog.createTopic(topics.chunks, { partitions: 1 });
      await quietLog.append(
        Array.from({ length: 10 }, (_, i) => ({
          topic: topics.chunks,
          key: 'doc-1',
          value: JSON.stringify({
            chunk_id: `c${i}`,
            document_id: 'doc-1',
            company_id: 'acme',
            text: `chunk ${i}`,
            page: 1,
          }),
          timestamp: Date.UTC(2026, 0, 6, 7, 59, 0) + i,
        })),
      );
      const job = sinkJobs({ log: quietLog, bronzeTable: (name) => quietLake.table('bronze', name) }).find(
        (j) => j.name === 'documents.sink.chunks_processed',
      )!;
      const handle = startJob(job, { dataDir: path.join(dir, 'quiet-data'), clock, tickMs: 20 });
      const waitFor = async (condition: () => boolean) => {
        for (let i = 0; i < 500 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
        expect(condition()).toBe(true);
      };
      await waitFor(() => handle.status().counters.in === 10);
      await handle.checkpoint();
      // Fewer than flush.size rows and no rotate.interval span: nothing rolled yet.
      expect(await quietLake.table('bronze', 'chunks_processed').snapshot()).toBeNull();
      clock.advance(lakeSinkSettings.idleMs + 1_000);
      await new Promise((resolve) => setTimeout(resolve, 200));
      await handle.checkpoint();
      const files = (await quietLake.table('bronze', 'chunks_processed').snapshot())!.files;
      expect(files.map((f) => [f.partition, f.rows])).toEqual([['year=2026/month=01/day=06/hour=07', 10]]);
      await handle.stop();
    } finally {
      await quietLake.close();
      await quietLog.close();
    }
  });
});
