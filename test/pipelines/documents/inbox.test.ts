import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { SourceRunner } from '../../../src/connectors/index.js';
import { loadConfig } from '../../../src/core/index.js';
import { LocalStorage, openLake, type Lake } from '../../../src/lake/index.js';
import { createMemoryLog, type Log } from '../../../src/log/index.js';
import { documentsInboxDir, documentsPipeline, topics } from '../../../src/pipelines/documents/index.js';
import type { PipelineServices } from '../../../src/pipelines/index.js';

let dir: string;
let lake: Lake;
let log: Log;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tributary-documents-inbox-'));
  lake = await openLake({ storage: new LocalStorage(path.join(dir, 'lake')) });
  log = createMemoryLog();
});
afterEach(async () => {
  await lake.close();
  await log.close();
  await rm(dir, { recursive: true, force: true });
});

it('uploads each dropped <company>__<file> like POST /upload and refuses the rest to failed/', async () => {
  const config = loadConfig({ env: {}, cwd: dir, dotenv: false, overrides: { dataDir: dir } });
  const services: PipelineServices = { config, log, lake, query: () => Promise.resolve([]) };
  const inbox = documentsInboxDir(dir);
  await mkdir(inbox, { recursive: true });
  await writeFile(path.join(inbox, 'acme__refunds.txt'), 'Refunds are paid within 14 days.\n');
  await writeFile(path.join(inbox, 'no-company.txt'), 'Whose is this?\n');
  await writeFile(path.join(inbox, 'globex__empty.md'), '');

  const runner = new SourceRunner(
    [{ pipeline: 'documents', sources: documentsPipeline.sources!(services) }],
    {
      log,
      lake,
      dataDir: dir,
    },
  );
  const [report] = await runner.drain();
  expect(report).toMatchObject({ name: 'documents/inbox', outcome: 'drained', records: 1, refused: 2 });

  const records = await log.fetch(topics.raw, 0, 0, { maxRecords: 10 });
  expect(records).toHaveLength(1);
  const raw = JSON.parse(Buffer.from(records[0].value!).toString()) as {
    company_id: string;
    s3_path: string;
  };
  expect(raw.company_id).toBe('acme');
  expect(raw.s3_path).toMatch(/originals\/documents\/acme\/.+\/refunds\.txt$/);
  expect(existsSync(path.join(inbox, 'completed', 'acme__refunds.txt'))).toBe(true);
  expect(await readFile(path.join(inbox, 'failed', 'no-company.txt.reason'), 'utf8')).toMatch(
    /reason: no-company\.txt: name a dropped document <company>__<file name>/,
  );
  expect(existsSync(path.join(inbox, 'failed', 'globex__empty.md.reason'))).toBe(true);
});
