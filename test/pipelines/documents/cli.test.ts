import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/core/index.js';
import { openLakeFromConfig } from '../../../src/lake/index.js';
import { openLog } from '../../../src/log/index.js';
import { sampleDocumentsDir, topics } from '../../../src/pipelines/documents/index.js';

/**
 * The "done when", through the compiled CLI on a fresh data dir: `tributary ingest
 * documents` → `tributary worker documents --stage all --once` → the document is in all three
 * topics, in the lake and in analytics.flink, and `tributary ask` answers with a citation.
 */
const bin = path.resolve('bin/tributary.js');

function cli(dataDir: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [bin, ...args], {
    env: { ...process.env, TRIBUTARY_DATA_DIR: dataDir, TRIBUTARY_LOG_LEVEL: 'error' },
    encoding: 'utf8',
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('tributary ingest documents → worker --once → ask', () => {
  let dir: string;
  let dataDir: string;
  let documentId: string;
  /** UTC day of the upload (taken before it, so a run across midnight still names the right day). */
  let uploadDay: string;
  beforeAll(async () => {
    uploadDay = new Date().toISOString().slice(0, 10);
    dir = await mkdtemp(path.join(os.tmpdir(), 'documents-cli-'));
    dataDir = path.join(dir, 'data');
    const ingest = cli(dataDir, [
      'ingest',
      'documents',
      path.join(sampleDocumentsDir()!, 'returns-and-refunds.md'),
      '--company',
      'acme',
    ]);
    expect(ingest.status, ingest.stderr).toBe(0);
    documentId = (JSON.parse(ingest.stdout.trim()) as { document_id: string }).document_id;
    const run = cli(dataDir, ['worker', 'documents', '--stage', 'all', '--once']);
    expect(run.status, run.stderr).toBe(0);
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('lands the document in every topic and in the lake', async () => {
    const config = loadConfig({ env: {}, dotenv: false, overrides: { dataDir } });
    const log = await openLog(config);
    const lake = await openLakeFromConfig(config);
    try {
      for (const topic of [topics.raw, topics.chunks, topics.embeddings]) {
        const records = await log.fetch(topic, 0, 0, { maxRecords: 1_000 });
        expect(records.length, topic).toBeGreaterThan(0);
        expect(records.every((r) => Buffer.from(r.key!).toString() === documentId)).toBe(true);
      }
      const windows = await log.fetch(topics.analytics, 0, 0);
      expect(
        windows.map(
          (r) => (JSON.parse(Buffer.from(r.value!).toString()) as { company_id: string }).company_id,
        ),
      ).toEqual(['acme']);
      for (const table of ['documents_raw', 'chunks_processed', 'embeddings_ready']) {
        expect((await lake.table('bronze', table).snapshot())?.files.length, table).toBeGreaterThan(0);
      }
    } finally {
      await lake.close();
      await log.close();
    }
  });

  it('answers with a citation, and only within the company', () => {
    const answer = cli(dataDir, [
      'ask',
      'How long does a refund take?',
      '--pipeline',
      'documents',
      '--company',
      'acme',
      '--format',
      'json',
    ]);
    expect(answer.status, answer.stderr).toBe(0);
    const body = JSON.parse(answer.stdout) as {
      answer: string;
      citations: { document_id: string; filename: string }[];
    };
    expect(body.answer).toMatch(/5 business days/);
    expect(body.citations[0]).toMatchObject({ document_id: documentId, filename: 'returns-and-refunds.md' });
    const other = cli(dataDir, [
      'ask',
      'How long does a refund take?',
      '--pipeline',
      'documents',
      '--company',
      'globex',
      '--format',
      'json',
    ]);
    expect((JSON.parse(other.stdout) as { citations: unknown[] }).citations).toEqual([]);
  });

  it('runs the daily report for a day with data and refuses a day without', () => {
    const report = cli(dataDir, ['documents', 'report', '--date', uploadDay]);
    expect(report.status, report.stderr).toBe(0);
    expect(JSON.parse(report.stdout)).toMatchObject({
      date: uploadDay,
      table: 'gold.daily_chunk_count',
      rows: 1,
    });
    const missing = cli(dataDir, ['documents', 'report', '--date', '2001-01-01']);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(
      /NOT_FOUND: no data in bronze.embeddings_ready for 2001-01-01: days present: /,
    );
  });
});
