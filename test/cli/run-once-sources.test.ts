/**
 * `tributary run documents --once` drains the pipeline's declared sources first: a document
 * dropped into the inbox (and a poison file beside it) before the run is processed through every
 * stage by that same run.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/index.js';
import { openLog } from '../../src/log/index.js';
import { documentsInboxDir, sampleDocumentsDir, topics } from '../../src/pipelines/documents/index.js';
import { runCli } from './in-process.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tributary-run-once-sources-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

it('drains the documents inbox, then runs every stage over what it read', async () => {
  const inbox = documentsInboxDir(dir);
  await mkdir(inbox, { recursive: true });
  await writeFile(
    path.join(inbox, 'acme__returns-and-refunds.md'),
    await readFile(path.join(sampleDocumentsDir()!, 'returns-and-refunds.md')),
  );
  await writeFile(path.join(inbox, 'unlabelled.md'), '# Whose document is this?\n');

  const printed = await runCli(['--data-dir', dir, 'run', 'documents', '--once', '--json']);
  const result = JSON.parse(printed) as {
    sources: { name: string; outcome: string; records: number; refused: number }[];
    streams: { job: string; state: string }[];
    ok: boolean;
  };
  expect(result.sources).toEqual([
    expect.objectContaining({ name: 'documents/inbox', outcome: 'drained', records: 1, refused: 1 }),
  ]);
  expect(result.ok).toBe(true);
  expect(result.streams.every((s) => s.state === 'finished')).toBe(true);

  const log = await openLog(loadConfig({ env: {}, cwd: dir, dotenv: false, overrides: { dataDir: dir } }));
  try {
    const chunks = await log.fetch(topics.chunks, 0, 0, { maxRecords: 1000 });
    expect(chunks.length).toBeGreaterThan(0);
    const companies = new Set(
      chunks.map((r) => (JSON.parse(Buffer.from(r.value!).toString()) as { company_id: string }).company_id),
    );
    expect([...companies]).toEqual(['acme']);
  } finally {
    await log.close();
  }
}, 120_000);
