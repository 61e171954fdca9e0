import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { openEmbeddedLog } from '../../src/log/index.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-group-commit-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());
let n = 0;
const freshDir = () => path.join(root, `log-${++n}`);

/** A window far longer than the test timeout: an append that waited for it would fail the test. */
const hourMs = 3_600_000;

type SyncCallback = (error: NodeJS.ErrnoException | null) => void;

/**
 * Holds every `fs.fdatasync` of the log until `release` is called, recording the order of events,
 * so a test sees exactly when records become durable and when appends are acknowledged.
 */
function holdSyncs(events: string[]) {
  const held: (() => void)[] = [];
  const real = fs.fdatasync.bind(fs);
  let started = 0;
  let waiting: (() => void) | undefined;
  vi.spyOn(fs, 'fdatasync').mockImplementation((fd: number, callback: SyncCallback) => {
    started++;
    events.push(`sync ${started} started`);
    const id = started;
    held.push(() =>
      real(fd, (error) => {
        events.push(`sync ${id} done`);
        callback(error);
      }),
    );
    waiting?.();
  });
  return {
    get started() {
      return started;
    },
    /** Resolves once `count` syncs have started. */
    async untilStarted(count: number): Promise<void> {
      while (started < count) await new Promise<void>((resolve) => (waiting = resolve));
    },
    releaseAll(): void {
      for (const release of held.splice(0)) release();
    },
  };
}

/** A group-commit log whose window (one hour) could only end a test by timing out, with topic `t`. */
async function openIdleLog() {
  const log = await openEmbeddedLog({
    dir: freshDir(),
    fsync: 'group',
    groupCommitMs: hourMs,
    retentionCheckMs: 0,
  });
  await log.createTopic('t', { partitions: 1 });
  return log;
}

describe('adaptive group commit (fsync=group)', () => {
  it('commits an append on an idle log at once, without waiting for the window', async () => {
    const log = await openIdleLog();
    // With a one-hour window this only returns (within the test timeout) if the commit did not wait.
    const [result] = await log.append([{ topic: 't', value: 'alone' }]);
    expect(result.offset).toBe(0);
    expect((await log.fetch('t', 0, 0)).map((r) => Buffer.from(r.value!).toString())).toEqual(['alone']);
    await log.close();
  });

  it('acknowledges only after the fsync, and appends made during an fsync share the next one when it ends', async () => {
    const log = await openIdleLog();
    const events: string[] = [];
    const syncs = holdSyncs(events);
    const first = log.append([{ topic: 't', value: 'a' }]).then(() => events.push('a acked'));
    await syncs.untilStarted(1);
    // The log is under load now (an fsync runs): these two gather and wait for it.
    const second = log.append([{ topic: 't', value: 'b' }]).then(() => events.push('b acked'));
    const third = log.append([{ topic: 't', value: 'c' }]).then(() => events.push('c acked'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(events).toEqual(['sync 1 started']);
    // Readers do not see records before they are durable either.
    expect(await log.fetch('t', 0, 0)).toEqual([]);
    syncs.releaseAll();
    await first;
    await syncs.untilStarted(2);
    expect(events).toEqual(['sync 1 started', 'sync 1 done', 'a acked', 'sync 2 started']);
    syncs.releaseAll();
    await Promise.all([second, third]);
    expect(events).toEqual([
      'sync 1 started',
      'sync 1 done',
      'a acked',
      'sync 2 started',
      'sync 2 done',
      'b acked',
      'c acked',
    ]);
    expect(syncs.started).toBe(2);
    vi.restoreAllMocks();
    expect((await log.fetch('t', 0, 0)).map((r) => Buffer.from(r.value!).toString())).toEqual([
      'a',
      'b',
      'c',
    ]);
    await log.close();
  });

  it('appends issued in one event-loop turn share one fsync', async () => {
    const log = await openIdleLog();
    const events: string[] = [];
    const syncs = holdSyncs(events);
    const acks = Array.from({ length: 10 }, (_, i) => log.append([{ topic: 't', value: `v${i}` }]));
    await syncs.untilStarted(1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    syncs.releaseAll();
    await Promise.all(acks);
    expect(syncs.started).toBe(1);
    vi.restoreAllMocks();
    await log.close();
  });
});

describe('tail reads of the embedded log', () => {
  it('a caught-up reader gets newly published records from memory, not by reading the file back', async () => {
    const dir = freshDir();
    const log = await openEmbeddedLog({ dir, fsync: 'group', retentionCheckMs: 0 });
    await log.createTopic('t', { partitions: 1 });
    await log.append([{ topic: 't', value: 'first' }]);
    let offset = 0;
    for (const r of await log.fetch('t', 0, offset)) offset = r.offset + 1;
    const reads = vi.spyOn(fs, 'read');
    const seen: string[] = [];
    for (let round = 0; round < 50; round++) {
      // The long poll parks first, then the append wakes it (as a tailing consumer sees it).
      const fetched = log.fetch('t', 0, offset, { waitMs: 5_000 });
      await log.append([
        { topic: 't', value: `a${round}` },
        { topic: 't', value: `b${round}` },
      ]);
      for (const r of await fetched) {
        seen.push(Buffer.from(r.value!).toString());
        offset = r.offset + 1;
      }
    }
    expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => [`a${i}`, `b${i}`]).flat());
    expect(reads).not.toHaveBeenCalled();
    vi.restoreAllMocks();
    // What the file holds is what was served from memory.
    await log.close();
    const again = await openEmbeddedLog({ dir, retentionCheckMs: 0 });
    const stored = (await again.fetch('t', 0, 1, { maxRecords: 1000 })).map((r) =>
      Buffer.from(r.value!).toString(),
    );
    expect(stored).toEqual(seen);
    await again.close();
  });
});
