/**
 * Issue 17 §3 (a job that throws): `tributary up` (its real plan: platform, pipelines, API) with a pipeline built to fail: a stream
 * job that throws, a spool source fed a poison file, and a custom source that throws twice. The
 * API must keep answering, status must show each failure, the spool source must go on with the
 * next file, and the throwing source must be restarted.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { createUpPlan } from '../../src/cli/up-plan.js';
import { loadConfig, TributaryError } from '../../src/core/index.js';
import type { PipelineDefinition } from '../../src/pipelines/index.js';
import { fetchStatus, formatStatus, runUp } from '../../src/serve/index.js';
import { stream, type Sink } from '../../src/stream/index.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tributary-up-supervision-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A sink that cannot open: the job fails at every start. */
function brokenSink(): Sink<unknown> {
  return {
    name: 'broken',
    open: () => Promise.reject(new TributaryError('UNAVAILABLE', 'the warehouse is down')),
    write: () => undefined,
    flush: () => Promise.resolve(),
    preCommit: () => Promise.resolve(null),
    commit: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
}

/** Polls until `probe` returns a value; bounded by the test's timeout, never a timed assertion. */
async function waitFor<T>(probe: () => Promise<T | undefined>): Promise<T> {
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

it('keeps up, the API and the other sources running when a job throws, a file is poison and a source throws', async () => {
  const inbox = path.join(dir, 'inbox');
  await mkdir(inbox, { recursive: true });
  let flakyRuns = 0;
  const pipeline: PipelineDefinition = {
    name: 'faults',
    title: 'Faults',
    description: 'a pipeline built to fail',
    async jobs(services) {
      await services.log.ensureTopic('faults.in', { partitions: 1 });
      const broken = stream('faults.broken', { checkpointIntervalMs: 50 })
        .from<unknown>(services.log, { topics: ['faults.in'], decode: 'json' })
        .to(brokenSink());
      return { stream: [broken] };
    },
    serve: () => ({ name: 'faults', title: 'Faults' }),
    sources: () => [
      {
        name: 'inbox',
        kind: 'spool',
        options: { dir: inbox, topic: 'faults.in', stableMs: 0, pollIntervalMs: 20 },
      },
      { name: 'endpoint', kind: 'ingest', topics: ['faults.in'] },
      {
        name: 'flaky',
        kind: 'custom',
        restart: { baseMs: 10, maxMs: 20 },
        async run(context) {
          flakyRuns++;
          if (flakyRuns <= 2) throw new TributaryError('EXTERNAL', `flaky run ${flakyRuns} failed`);
          context.report({ records: 5, position: `run ${flakyRuns}` });
          await new Promise<void>((resolve) => context.signal.addEventListener('abort', () => resolve()));
        },
      },
    ],
  };
  // A second pipeline that cannot even start (as northwind's seeding on a disk too small): shown
  // as failed with the cause, while `up`, the API and the first pipeline go on.
  const unstartable: PipelineDefinition = {
    name: 'unstartable',
    title: 'Unstartable',
    description: 'a pipeline whose start fails',
    seedDemo: () =>
      Promise.reject(new TributaryError('STORAGE_FULL', 'seed database: no space left on its disk')),
    jobs: () => Promise.resolve({}),
    serve: () => ({ name: 'unstartable', title: 'Unstartable' }),
  };
  const config = loadConfig({
    env: {},
    cwd: dir,
    dotenv: false,
    overrides: { dataDir: dir, port: 0, kafkaListener: '127.0.0.1:0' },
  });
  const plan = createUpPlan(config, [pipeline, unstartable]);
  const lines: string[] = [];
  const handle = await runUp({
    config,
    services: plan.services,
    app: plan.app,
    out: { write: (text: string) => lines.push(text) },
    handleSignals: false,
  });
  try {
    const key = handle.createdAdminKey ?? (await readFile(path.join(dir, 'local-admin.key'), 'utf8')).trim();
    // A poison file (not JSON at all) first, then a good one: the source goes on past the poison.
    await writeFile(path.join(inbox, 'a-poison.json'), '{"this is": not json');
    const status = await waitFor(async () => {
      if (!existsSync(path.join(inbox, 'b-good.jsonl')) && existsSync(path.join(inbox, 'failed')))
        await writeFile(path.join(inbox, 'b-good.jsonl'), '{"n":1}\n{"n":2}\n');
      const { status } = await fetchStatus(handle.url, key);
      const inboxSource = status.sources?.find((s) => s.name === 'faults/inbox');
      const flaky = status.sources?.find((s) => s.name === 'faults/flaky');
      const job = status.jobs.find((j) => j.name === 'faults.broken');
      return inboxSource?.records === 2 && flaky?.state === 'running' && job?.state === 'failed'
        ? status
        : undefined;
    });

    const inboxSource = status.sources!.find((s) => s.name === 'faults/inbox')!;
    expect(inboxSource).toMatchObject({
      kind: 'spool',
      state: 'running',
      refused: 1,
      position: 'b-good.jsonl',
    });
    expect(inboxSource.lastError).toMatch(/a-poison\.json: undecodable/);
    const reason = await readFile(path.join(inbox, 'failed', 'a-poison.json.reason'), 'utf8');
    expect(reason).toMatch(/^reason: undecodable/);

    const flaky = status.sources!.find((s) => s.name === 'faults/flaky')!;
    expect(flaky).toMatchObject({ state: 'running', restarts: 2, records: 5, position: 'run 3' });
    expect(flaky.lastError).toBe('flaky run 2 failed');

    const job = status.jobs.find((j) => j.name === 'faults.broken')!;
    expect(job.error).toMatch(/the warehouse is down/);
    expect(status.pipelines.find((p) => p.name === 'faults')?.state).toBe('failed');
    expect(status.pipelines.find((p) => p.name === 'unstartable')?.state).toBe('failed');
    expect(status.jobs.find((j) => j.name === 'unstartable start')?.error).toMatch(/no space left/);
    expect(lines.join('')).toMatch(/failed to start: seed database: no space left/);

    // The declared ingest endpoint counts what clients post to its topic.
    const posted = await fetch(`${handle.url}/api/ingest/topics/faults.in/records`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify([{ n: 3 }, { n: 4 }]),
    });
    expect(posted.status).toBe(200);
    const after = await fetchStatus(handle.url, key);
    expect(after.status.sources?.find((s) => s.name === 'faults/endpoint')).toMatchObject({
      kind: 'ingest',
      state: 'running',
      records: 2,
      position: 'faults.in p0@3',
    });

    // The API still answers, and the CLI's status text names every failure.
    expect((await fetch(`${handle.url}/health`)).status).toBe(200);
    const text = formatStatus(status);
    expect(text).toMatch(/faults\/inbox\s+spool\s+running/);
    expect(text).toMatch(/faults\.broken: .*the warehouse is down/);
    expect(text).toMatch(/faults\/inbox: a-poison\.json: undecodable/);
  } finally {
    await handle.stop('test');
  }
  expect(lines.join('')).toMatch(/✓ stopped pipeline faults/);
}, 60_000);
