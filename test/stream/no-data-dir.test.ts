import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalStorage, openLake, type Lake } from '../../src/lake/index.js';
import { createMemoryLog, type Log } from '../../src/log/index.js';
import {
  lakeSink,
  lakeTableTarget,
  runJob,
  startJob,
  stream,
  type StreamJob,
} from '../../src/stream/index.js';

// Without a data dir checkpoints live in memory: the lake sink's staged files must still be
// committed (at each in-memory checkpoint and at the end), not left staged and invisible.
interface Event {
  id: number;
  ts: number;
}

let dir: string;
let lake: Lake;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tributary-nodatadir-'));
  lake = await openLake({ storage: new LocalStorage(path.join(dir, 'lake')) });
});
afterEach(async () => {
  await lake.close();
  await rm(dir, { recursive: true, force: true });
});

const t0 = Date.UTC(2026, 10, 22, 0, 0, 0);

async function eventsLog(count: number, firstId = 0): Promise<Log> {
  const log = createMemoryLog();
  await log.createTopic('events', { partitions: 1 });
  await log.append(
    Array.from({ length: count }, (_, i) => ({
      topic: 'events',
      value: JSON.stringify({ id: firstId + i, ts: t0 + (firstId + i) * 1000 }),
    })),
  );
  return log;
}

function lakeJob(log: Log, checkpointIntervalMs = 60_000): StreamJob {
  return stream('events-no-data-dir', { checkpointIntervalMs })
    .from<Event>(log, { topics: ['events'], timestamp: (e) => e.ts })
    .to(
      lakeSink(lakeTableTarget(lake.table('bronze', 'events_nd')), { flushSize: 40, compactAfterFiles: 0 }),
    );
}

/** Rows in the table's current snapshot (committed files only; staged ones are not in it). */
async function committedRows(): Promise<number> {
  const snapshot = await lake.table('bronze', 'events_nd').snapshot();
  return (snapshot?.files ?? []).reduce((n, f) => n + f.rows, 0);
}

describe('lake sink without a data dir', () => {
  it('a bounded run commits every row at its end', async () => {
    const status = await runJob(lakeJob(await eventsLog(100)), { once: true, pollMaxRecords: 30 });
    expect(status.state).toBe('finished');
    expect(status.lastCheckpoint?.checkpointId).toBeGreaterThan(0);
    expect(await committedRows()).toBe(100);
  });

  it('two runs do not take each other for a retry (their commit ids differ)', async () => {
    await runJob(lakeJob(await eventsLog(50)), { once: true });
    await runJob(lakeJob(await eventsLog(30, 50)), { once: true });
    expect(await committedRows()).toBe(80);
  });

  it('an unbounded run makes rolled files visible at its checkpoints, before it stops', async () => {
    const log = await eventsLog(120);
    const handle = startJob(lakeJob(log, 3_600_000), { tickMs: 10 });
    const deadline = Date.now() + 5_000;
    while (handle.status().counters.in < 120 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 5));
    expect(await committedRows()).toBe(0);
    // Three full 40-row files are rolled (staged); the requested checkpoint commits them.
    await expect(handle.checkpoint()).resolves.not.toBeNull();
    expect(await committedRows()).toBe(120);
    await handle.stop();
  });
});
