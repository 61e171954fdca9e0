import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMemoryLog, type Log } from '../../src/log/index.js';
import { checkpointDir, runJob, stream, topicSink, type StreamJob } from '../../src/stream/index.js';

interface Event {
  id: string;
  ts: number;
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tributary-changelog-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const t0 = Date.UTC(2026, 11, 3);
const jobName = 'dedup';

/** Drops repeated ids (kept for `ttlMs` of event time): the seen-set is the keyed state. */
function dedupJob(log: Log, ttlMs?: number): StreamJob {
  return stream(jobName, { checkpointIntervalMs: 0 })
    .from<Event>(log, { topics: ['in'], timestamp: (e) => e.ts })
    .keyBy((e) => e.id)
    .process<Event>(
      (e, ctx) => {
        const seen = ctx.valueState<1>('seen');
        if (seen.get() === 1) return;
        seen.set(1);
        ctx.emit(e);
      },
      ttlMs === undefined ? {} : { ttlMs },
    )
    .to(topicSink('out'));
}

async function append(log: Log, ids: string[], at = (i: number) => t0 + i * 1000): Promise<void> {
  await log.append(ids.map((id, i) => ({ topic: 'in', value: JSON.stringify({ id, ts: at(i) }) })));
}

async function outputs(log: Log): Promise<string[]> {
  const records = await log.fetch('out', 0, 0, { maxRecords: 100_000 });
  return records.map((r) => (JSON.parse(Buffer.from(r.value!).toString('utf8')) as Event).id);
}

async function checkpointFiles(dataDir: string) {
  const checkpoints = checkpointDir(dataDir, jobName);
  const manifest = JSON.parse(await readFile(path.join(checkpoints, 'CURRENT'), 'utf8')) as {
    stateFile: string;
  };
  const state = JSON.parse(await readFile(path.join(checkpoints, manifest.stateFile), 'utf8')) as {
    task: { processes: { keys: unknown[]; changelog?: { file: string; bytes: number; keys: number } }[] };
  };
  const changelogs = (await readdir(checkpoints)).filter((n) => n.endsWith('.changelog'));
  return { checkpoints, process: state.task.processes[0], changelogs };
}

describe('keyed state changelog (incremental checkpoints)', () => {
  it('writes each changed key once instead of the whole state every checkpoint, and a restart keeps it', async () => {
    const log = createMemoryLog();
    await log.createTopic('in', { partitions: 1 });
    const ids = Array.from({ length: 500 }, (_, i) => `id-${i}`);
    await append(log, ids);
    const dataDir = path.join(dir, 'data');
    // Ten batches, a checkpoint after each: a full snapshot every time would encode 2,750 keys.
    await runJob(dedupJob(log), { dataDir, once: true, pollMaxRecords: 50 });
    const first = await checkpointFiles(dataDir);
    expect(first.process.keys).toEqual([]);
    expect(first.process.changelog?.keys).toBe(500);
    expect(first.changelogs).toEqual([first.process.changelog!.file]);
    const lines = (await readFile(path.join(first.checkpoints, first.changelogs[0]), 'utf8')).split('\n');
    expect(lines.filter(Boolean)).toHaveLength(500);

    // A second run restores the seen-set from the changelog: repeats of old ids are dropped.
    await append(log, ['id-7', 'new-1', 'id-499', 'new-2']);
    await runJob(dedupJob(log), { dataDir, once: true, pollMaxRecords: 50 });
    const out = await outputs(log);
    expect(out).toHaveLength(502);
    expect(out.slice(500)).toEqual(['new-1', 'new-2']);
    expect((await checkpointFiles(dataDir)).process.changelog?.keys).toBe(502);
  });

  it('a crash after some checkpoints loses and repeats nothing; bytes a dead run appended are cut off', async () => {
    const log = createMemoryLog();
    await log.createTopic('in', { partitions: 1 });
    // Every id twice, the repeat 250 records seen: a lost key would let its repeat through.
    const ids = Array.from({ length: 500 }, (_, i) => `id-${i % 250}`);
    await append(log, ids);
    const dataDir = path.join(dir, 'data');
    let batches = 0;
    await expect(
      runJob(dedupJob(log), {
        dataDir,
        once: true,
        pollMaxRecords: 40,
        onBatch: () => {
          if (++batches === 4) throw new Error('simulated crash');
        },
      }),
    ).rejects.toThrow('simulated crash');
    // What a run that died between appending and its manifest leaves: lines the checkpoint does not cover.
    const { checkpoints, process } = await checkpointFiles(dataDir);
    await writeFile(path.join(checkpoints, process.changelog!.file), '"id-300"\t{"values":{}}\n', {
      flag: 'a',
    });
    await runJob(dedupJob(log), { dataDir, once: true, pollMaxRecords: 40 });
    const out = await outputs(log);
    expect(out.sort()).toEqual(Array.from({ length: 250 }, (_, i) => `id-${i}`).sort());
    expect((await checkpointFiles(dataDir)).process.changelog?.keys).toBe(250);
  });

  it('records keys expired by TTL as deleted and starts a new generation when dead lines dominate', async () => {
    const log = createMemoryLog();
    await log.createTopic('in', { partitions: 1 });
    // 30,000 distinct ids a second apart with a one-minute TTL: about 60 stay live, so the
    // changelog fills with dead lines (the keys and their deletions) and is rewritten.
    const ids = Array.from({ length: 30_000 }, (_, i) => `id-${i}`);
    await append(log, ids);
    const dataDir = path.join(dir, 'data');
    const seen: { files: string[]; live: number; deletions: boolean }[] = [];
    let batches = 0;
    await runJob(dedupJob(log, 60_000), {
      dataDir,
      once: true,
      pollMaxRecords: 2_000,
      onBatch: async () => {
        // A checkpoint follows every batch; the hook sees the one before (none at the first).
        if (++batches === 1) return;
        const { checkpoints, process, changelogs } = await checkpointFiles(dataDir);
        const text = await readFile(path.join(checkpoints, process.changelog!.file), 'utf8');
        seen.push({
          files: changelogs,
          live: process.changelog!.keys,
          deletions: text.split('\n').some((line) => line.endsWith('\t')),
        });
      },
    });
    expect(seen.length).toBeGreaterThan(10);
    for (const s of seen) expect(s.live).toBeLessThan(2_100);
    expect(seen.some((s) => s.deletions)).toBe(true);
    const generations = new Set(seen.flatMap((s) => s.files));
    expect(generations.size).toBeGreaterThan(2);
    // Old generations are deleted once a checkpoint names a newer one.
    for (const s of seen) expect(s.files.length).toBeLessThanOrEqual(2);
    // The end of a bounded input expires every key: nothing is left to keep.
    const end = await checkpointFiles(dataDir);
    expect(end.process).toEqual({ keys: [] });
    expect(end.changelogs).toEqual([]);
  });

  it('records a key that never held state as deleted when the TTL sweep drops it', async () => {
    const log = createMemoryLog();
    await log.createTopic('in', { partitions: 1 });
    await append(
      log,
      Array.from({ length: 3_000 }, (_, i) => `id-${i}`),
    );
    // Only even ids keep state; odd ones are reached and left empty, and swept with the rest.
    const job = () =>
      stream(jobName, { checkpointIntervalMs: 0 })
        .from<Event>(log, { topics: ['in'], timestamp: (e) => e.ts })
        .keyBy((e) => e.id)
        .process<Event>(
          (e, ctx) => {
            if (Number(e.id.slice(3)) % 2 === 0) ctx.valueState<1>('seen').set(1);
            ctx.emit(e);
          },
          { ttlMs: 60_000 },
        )
        .to(topicSink('out'));
    const dataDir = path.join(dir, 'data');
    let batches = 0;
    await expect(
      runJob(job(), {
        dataDir,
        once: true,
        pollMaxRecords: 200,
        onBatch: () => {
          if (++batches === 10) throw new Error('simulated crash');
        },
      }),
    ).rejects.toThrow('simulated crash');
    const { process } = await checkpointFiles(dataDir);
    expect(process.changelog!.keys).toBeLessThan(200);
    // The restart restores exactly the keys the checkpoint counts.
    const status = await runJob(job(), { dataDir, once: true, pollMaxRecords: 200 });
    expect(status.state).toBe('finished');
  });

  it('refuses a changelog that does not hold the keys its checkpoint counts', async () => {
    const log = createMemoryLog();
    await log.createTopic('in', { partitions: 1 });
    await append(log, ['a', 'b', 'c']);
    const dataDir = path.join(dir, 'data');
    await runJob(dedupJob(log), { dataDir, once: true });
    const { checkpoints, process } = await checkpointFiles(dataDir);
    const file = path.join(checkpoints, process.changelog!.file);
    const text = await readFile(file, 'utf8');
    // The format, byte for byte (state-changelog.ts): key, tab, the key's state, newline.
    expect(text).toBe(
      ['a', 'b', 'c']
        .map((id, i) => `"${id}"\t{"values":{"seen":[1,${t0 + i * 1000}]},"maps":{}}\n`)
        .join(''),
    );
    // Same length, one key fewer: the last line now writes the first key again.
    await writeFile(file, text.replace('"c"\t', '"a"\t'));
    await expect(runJob(dedupJob(log), { dataDir, once: true })).rejects.toThrow(
      'holds 2 keys; the checkpoint says 3',
    );
    // A line without its tab (same length again).
    await writeFile(file, text.replace('"c"\t', '"c" '));
    await expect(runJob(dedupJob(log), { dataDir, once: true })).rejects.toThrow(
      /keyed state changelog .*: line at byte \d+ has no tab after its head/,
    );
  });
});
