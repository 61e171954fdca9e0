import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock, TributaryError } from '../../src/core/index.js';
import { LocalStorage, S3Storage, type Storage } from '../../src/lake/index.js';
import { JobCheckpoints, type CheckpointState, type TaskStore } from '../../src/stream/index.js';
import { startConditionalS3rver } from './scale-s3rver.js';
import { startNode, until as waitUntil } from '../fixtures/processes.js';

// Task leases with liveness and fencing (src/stream/task-store.ts): with a fake clock on local disk
// and on an S3-compatible server (s3rver, with If-None-Match as S3 has it), then with a real process
// stopped by SIGSTOP and woken by SIGCONT after another process took its task over.
let root: string;
let s3: { endpoint: string; close(): Promise<void> };
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'tributary-lease-'));
  s3 = await startConditionalS3rver('leases');
});
afterAll(async () => {
  await s3.close();
  await rm(root, { recursive: true, force: true });
});

const state = (checkpointId: number, writer: string): CheckpointState => ({
  format: 'tributary.stream.state',
  version: 1,
  job: 'sales',
  checkpointId,
  offsets: { 'sales/0': checkpointId * 100 },
  task: { writer } as never,
  sinks: [],
});

async function fenced(action: Promise<unknown>): Promise<TributaryError> {
  const error = await action.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TributaryError);
  expect((error as TributaryError).code).toBe('FENCED');
  return error as TributaryError;
}

/** A storage whose next exclusive create of a manifest waits until `open()` (a hung writer). */
function gatedStorage(inner: Storage): Storage & { hold(): Promise<void>; open(): void } {
  let gate: { reached: () => void; released: Promise<void> } | null = null;
  let release = () => undefined as void;
  let reached: Promise<void> = Promise.resolve();
  return Object.assign(Object.create(inner) as Storage, {
    kind: inner.kind,
    root: inner.root,
    put: inner.put.bind(inner),
    get: inner.get.bind(inner),
    stat: inner.stat.bind(inner),
    list: inner.list.bind(inner),
    delete: inner.delete.bind(inner),
    putFile: inner.putFile.bind(inner),
    localPath: inner.localPath.bind(inner),
    async putIfAbsent(key: string, data: Uint8Array): Promise<boolean> {
      if (gate !== null && key.includes('/manifest/')) {
        const g = gate;
        gate = null;
        g.reached();
        await g.released;
      }
      return inner.putIfAbsent(key, data);
    },
    hold(): Promise<void> {
      let reachedResolve = () => undefined as void;
      reached = new Promise<void>((r) => (reachedResolve = r));
      const released = new Promise<void>((r) => (release = r));
      gate = { reached: reachedResolve, released };
      return reached;
    },
    open(): void {
      release();
    },
  });
}

const backends: [string, () => Promise<Storage>][] = [
  ['local disk', async () => new LocalStorage(await mkdtemp(path.join(root, 'local-')))],
  [
    's3rver',
    async () => {
      const storage = new S3Storage({
        bucket: 'leases',
        prefix: `run-${Math.random().toString(16).slice(2)}`,
        endpoint: s3.endpoint,
        forcePathStyle: true,
        accessKeyId: 'S3RVER',
        secretAccessKey: 'S3RVER',
      });
      // Exclusive creates as on AWS S3 and MinIO: If-None-Match (added to s3rver by scale-s3rver.ts).
      expect(await storage.conditionalWritesSupported()).toBe(true);
      return storage;
    },
  ],
];

describe.each(backends)('task lease with a fake clock (%s)', (_name, open) => {
  const ttlMs = 10_000;
  let storage: Storage;
  let clockA: ManualClock;
  let clockB: ManualClock;
  let a: TaskStore;
  let b: TaskStore;
  beforeAll(async () => {
    storage = await open();
  });

  function stores(task: string, store = storage): void {
    // Two workers on different machines: each has its own clock.
    clockA = new ManualClock(1_000_000);
    clockB = new ManualClock(5_000_000);
    a = new JobCheckpoints(store, 'sales', { clock: clockA, leaseTtlMs: ttlMs, sameHost: false }).task(task);
    b = new JobCheckpoints(store, 'sales', { clock: clockB, leaseTtlMs: ttlMs, sameHost: false }).task(task);
  }

  it('a renewing owner keeps its task; a silent one loses it after the TTL and its writes are refused', async () => {
    stores('t-expiry');
    expect(await a.tryAcquire()).toBe(true);
    expect(a.generation).toBe(1);
    await a.write(state(1, 'a'), clockA.now());
    // B waits while A renews, however long it waits.
    for (let i = 0; i < 8; i++) {
      expect(await b.tryAcquire()).toBe(false);
      clockA.advance(ttlMs / 4);
      clockB.advance(ttlMs / 4);
      await a.renew();
    }
    expect(a.held()).toBe(true);
    // A hangs: no renewal. Just short of the TTL on B's clock the task is still A's.
    expect(await b.tryAcquire()).toBe(false);
    clockB.advance(ttlMs - 1);
    expect(await b.tryAcquire()).toBe(false);
    clockB.advance(1);
    expect(await b.tryAcquire()).toBe(true);
    expect(b.generation).toBe(2);
    // B restores A's checkpoint and continues its history.
    const restored = await b.read();
    expect(restored?.state.checkpointId).toBe(1);
    await b.write(state(2, 'b'), clockB.now());
    // A wakes up (its own clock has not moved: it does not know it hung) and tries to write.
    expect(a.held()).toBe(true);
    const error = await fenced(a.write(state(2, 'a-stale'), clockA.now()));
    expect(error.details).toMatchObject({ generation: 1, newerGeneration: 2 });
    expect(a.held()).toBe(false);
    await fenced(a.renew());
    const last = await b.read();
    expect(last?.state.task).toEqual({ writer: 'b' });
    expect(last?.manifest.generation).toBe(2);
  });

  it('an owner whose own clock passed the TTL since its last renewal stops writing by itself', async () => {
    stores('t-lapse');
    expect(await a.tryAcquire()).toBe(true);
    clockA.advance(ttlMs);
    expect(a.held()).toBe(false);
    await fenced(a.write(state(1, 'a'), clockA.now()));
    // Nothing was written; nobody took the task over.
    expect(await a.read()).toBeNull();
  });

  it('an owner that hung between its generation check and its manifest loses the race for the id', async () => {
    const gated = gatedStorage(storage);
    clockA = new ManualClock(0);
    clockB = new ManualClock(0);
    const stale = new JobCheckpoints(gated, 'sales', {
      clock: clockA,
      leaseTtlMs: ttlMs,
      sameHost: false,
    }).task('t-race');
    const next = new JobCheckpoints(storage, 'sales', {
      clock: clockB,
      leaseTtlMs: ttlMs,
      sameHost: false,
    }).task('t-race');
    expect(await stale.tryAcquire()).toBe(true);
    await stale.write(state(1, 'stale'), 0);
    const reached = gated.hold();
    const staleWrite = stale.write(state(2, 'stale'), 0);
    await reached; // checked its generation (still 1), wrote its state file, now hangs
    expect(await next.tryAcquire()).toBe(false);
    clockB.advance(ttlMs);
    expect(await next.tryAcquire()).toBe(true);
    expect((await next.read())?.state.checkpointId).toBe(1);
    await next.write(state(2, 'next'), 0);
    gated.open();
    await fenced(staleWrite);
    const last = await next.read();
    expect(last?.state.task).toEqual({ writer: 'next' });
    expect(last?.manifest.generation).toBe(2);
    // The loser's state file is gone; the winner's history continues.
    await next.write(state(3, 'next'), 0);
    expect((await next.read())?.state.checkpointId).toBe(3);
  });

  it('a released lease is taken at once; the stale view of an old generation backs off', async () => {
    stores('t-release');
    expect(await a.tryAcquire()).toBe(true);
    await a.write(state(1, 'a'), clockA.now());
    await a.release();
    expect(await b.tryAcquire()).toBe(true);
    expect(b.generation).toBe(2);
    // A writer holding generation 1 in memory after release cannot write.
    await fenced(a.write(state(2, 'a'), clockA.now()));
    await b.release();
    // Two candidates racing for generation 3: exactly one wins.
    const c = new JobCheckpoints(storage, 'sales', { clock: clockA, sameHost: false }).task('t-release');
    const d = new JobCheckpoints(storage, 'sales', { clock: clockB, sameHost: false }).task('t-release');
    const won = await Promise.all([c.tryAcquire(), d.tryAcquire()]);
    expect(won.filter(Boolean)).toHaveLength(1);
    expect([c.generation, d.generation].sort()).toEqual([0, 3]);
  });
});

describe('task lease on local disk: a dead owner on this host', () => {
  it('is taken over without waiting for the TTL', async () => {
    const storage = new LocalStorage(await mkdtemp(path.join(root, 'dead-')));
    const dead = spawn(process.execPath, ['-e', '']);
    const pid = dead.pid!;
    await new Promise((resolve) => dead.on('exit', resolve));
    const clock = new ManualClock(0);
    const owner = new JobCheckpoints(storage, 'sales', { clock }).task('t0');
    expect(await owner.tryAcquire()).toBe(true);
    // Rewrite the record as if a process now gone had taken it.
    const key = 'sales/t0/lease/0000000001.json';
    const record = JSON.parse(Buffer.from(await storage.get(key)).toString('utf8')) as { pid: number };
    await storage.put(key, Buffer.from(JSON.stringify({ ...record, pid })));
    const next = new JobCheckpoints(storage, 'sales', { clock }).task('t0');
    expect(await next.tryAcquire()).toBe(true);
    expect(next.generation).toBe(2);
  });
});

describe('a real owner stopped with SIGSTOP and woken with SIGCONT', () => {
  const holder = path.resolve('dist/src/stream/testing/lease-holder.js');

  /** A lease holder; it exits 3 when fenced (a normal end here). */
  const start = (dir: string, ttlMs: number) =>
    startNode([holder, dir, `--ttl-ms=${ttlMs}`], { env: process.env, exitCodes: [0, 3] });

  const until = (what: string, check: () => boolean, timeoutMs = 30_000) => waitUntil(what, check, timeoutMs);

  it('its successor takes the task after the TTL; the woken owner is refused and the history stays one chain', async () => {
    expect(existsSync(holder), 'run `npm run build` first').toBe(true);
    const dir = await mkdtemp(path.join(root, 'sigstop-'));
    const ttlMs = 3_000;
    const first = start(dir, ttlMs);
    const checkpoints = (p: { lines: string[] }) => p.lines.filter((l) => l.startsWith('checkpoint '));
    await until('the first owner to checkpoint', () => checkpoints(first).length >= 5);
    first.child.kill('SIGSTOP');
    const stoppedAtMs = Date.now();
    const second = start(dir, ttlMs);
    try {
      await until('the second owner to take the task', () =>
        second.lines.some((l) => l.startsWith('acquired ')),
      );
      const tookAfterMs = Date.now() - stoppedAtMs;
      // Liveness: not before the TTL (the stopped process is alive), and not much after it.
      expect(tookAfterMs).toBeGreaterThanOrEqual(ttlMs);
      expect(tookAfterMs).toBeLessThan(ttlMs + 10_000);
      expect(second.lines.find((l) => l.startsWith('acquired '))).toMatch(/^acquired 2 restored \d+$/);
      await until('the second owner to checkpoint', () => checkpoints(second).length >= 3);
      first.child.kill('SIGCONT');
      expect((await first.exited).code).toBe(3);
      expect(first.lines.at(-1)).toBe('fenced FENCED');
      await until('more checkpoints of the second owner', () => checkpoints(second).length >= 8);
    } finally {
      first.child.kill('SIGCONT');
      second.child.kill('SIGTERM');
      await second.exited.catch(() => undefined);
    }
    // One history: the second owner continued from the first one's last checkpoint, and no
    // checkpoint of the first owner was accepted after the second took over.
    const restoredFrom = Number(
      /restored (\d+)/.exec(second.lines.find((l) => l.startsWith('acquired '))!)![1],
    );
    const firstIds = checkpoints(first).map((l) => Number(l.split(' ')[1]));
    const secondIds = checkpoints(second).map((l) => Number(l.split(' ')[1]));
    expect(Math.max(...firstIds)).toBe(restoredFrom);
    expect(secondIds[0]).toBe(restoredFrom + 1);
    expect(secondIds).toEqual(secondIds.map((_, i) => restoredFrom + 1 + i));
    const store = new JobCheckpoints(new LocalStorage(dir), 'lease').task('t0');
    const last = await store.read();
    expect(last?.manifest.generation).toBe(2);
    expect(last?.state.checkpointId).toBeGreaterThanOrEqual(secondIds.at(-1)!);
  }, 60_000);
});
