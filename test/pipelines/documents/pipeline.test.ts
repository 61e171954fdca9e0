import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/core/index.js';
import { LocalStorage, openLake, type Lake } from '../../../src/lake/index.js';
import { createMemoryLog, type LogRecord, type MemoryLog } from '../../../src/log/index.js';
import { HashedEmbedder } from '../../../src/ml/index.js';
import { DocumentIndex, documentIndexDir } from '../../../src/pipelines/documents/index-store.js';
import { ingestDocument } from '../../../src/pipelines/documents/ingest.js';
import { documentJobs } from '../../../src/pipelines/documents/jobs.js';
import { mlExtractAndChunk } from '../../../src/pipelines/documents/ml.js';
import { topics } from '../../../src/pipelines/documents/payloads.js';
import { runDailyReport } from '../../../src/pipelines/documents/report.js';
import { runStagesOnce } from '../../../src/pipelines/documents/run.js';
import { openSqlEngine } from '../../../src/sql/index.js';
import type { IndexedChunk } from '../../../src/pipelines/documents/stages.js';
import { makePdf } from './helpers.js';

async function readAll(log: MemoryLog, topic: string): Promise<LogRecord[]> {
  if (!(await log.listTopics()).includes(topic)) return [];
  const out: LogRecord[] = [];
  for (const p of (await log.describeTopic(topic)).partitions)
    out.push(...(await log.fetch(topic, p.partition, p.startOffset, { maxRecords: 100_000 })));
  return out;
}
const json = (r: LogRecord) => JSON.parse(Buffer.from(r.value!).toString()) as Record<string, unknown>;

describe('documents pipeline, all stages once', () => {
  let dir: string;
  let log: MemoryLog;
  let storage: LocalStorage;
  let lake: Lake;
  const indexed: IndexedChunk[] = [];
  const embedder = new HashedEmbedder({ dimensions: 64 });
  let index: DocumentIndex;
  const uploadMs = Date.UTC(2026, 10, 21, 9, 30, 15);

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'documents-pipeline-'));
    log = createMemoryLog();
    storage = new LocalStorage(path.join(dir, 'lake'));
    lake = await openLake({ storage });
    const clock = new ManualClock(uploadMs);
    const pdf = await makePdf([
      'Refunds are issued within 14 days of purchase.',
      'Shipping takes three business days.',
    ]);
    await ingestDocument({ log, storage, clock }, { companyId: 'acme', filename: 'policy.pdf', bytes: pdf });
    await ingestDocument(
      { log, storage, clock },
      {
        companyId: 'globex',
        filename: 'notes.md',
        bytes: Buffer.from('# Notes\n\nThe launch is planned for March.'),
      },
    );
    // Passes the upload checks (magic bytes) but cannot be parsed.
    await ingestDocument(
      { log, storage, clock },
      { companyId: 'acme', filename: 'broken.pdf', bytes: Buffer.from('%PDF-1.7\nthis is not a pdf body') },
    );
    index = new DocumentIndex({ dir: documentIndexDir(path.join(dir, 'data')), embedder });
    const jobs = documentJobs({
      log,
      storage,
      extractAndChunk: mlExtractAndChunk(),
      embedder,
      index: {
        upsert: async (chunks) => {
          indexed.push(...chunks);
          await index.upsert(chunks);
        },
        save: () => index.save(),
      },
      bronzeTable: (name) => lake.table('bronze', name),
    });
    await runStagesOnce(jobs, { dataDir: path.join(dir, 'data') });
  });
  afterAll(async () => {
    await lake.close();
    await log.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('writes chunks.processed and embeddings.ready with the seed payloads and the upload time', async () => {
    const chunks = await readAll(log, topics.chunks);
    expect(chunks.length).toBeGreaterThanOrEqual(3);
    for (const record of chunks) {
      expect(Object.keys(json(record))).toEqual(['chunk_id', 'document_id', 'company_id', 'text', 'page']);
      expect(Buffer.from(record.key!).toString()).toBe(json(record).document_id);
      expect(record.timestamp).toBe(uploadMs);
    }
    expect(chunks.filter((r) => json(r).company_id === 'acme').map((r) => json(r).page)).toEqual([1, 2]);
    const embeddings = await readAll(log, topics.embeddings);
    expect(embeddings).toHaveLength(chunks.length);
    for (const record of embeddings) {
      const value = json(record);
      expect(Object.keys(value)).toEqual(['chunk_id', 'document_id', 'company_id', 'vector']);
      expect(value.vector).toHaveLength(64);
      expect(record.timestamp).toBe(uploadMs);
    }
    expect(indexed.map((c) => c.chunk_id).sort()).toEqual(embeddings.map((r) => json(r).chunk_id).sort());
    expect(indexed.find((c) => c.company_id === 'acme')?.filename).toBe('policy.pdf');
  });

  it('sends the unparseable document to documents.raw.dlq with the reason', async () => {
    const dlq = await readAll(log, topics.rawDlq);
    expect(dlq).toHaveLength(1);
    const headers = Object.fromEntries(
      Object.entries(dlq[0].headers).map(([k, v]) => [k, Buffer.from(v).toString()]),
    );
    expect(JSON.stringify(headers)).toMatch(/broken\.pdf/);
    expect(Object.values(headers)).toContain('DECODE_FAILED');
  });

  it('counts chunks per company per minute into analytics.flink', async () => {
    const windows = (await readAll(log, topics.analytics)).map(json);
    const chunks = (await readAll(log, topics.embeddings)).map(json);
    const expected = ['acme', 'globex'].map((company) => ({
      window_start: '2026-11-21T09:30:00.000Z',
      window_end: '2026-11-21T09:31:00.000Z',
      company_id: company,
      chunk_count: chunks.filter((c) => c.company_id === company).length,
    }));
    expect(windows.sort((a, b) => String(a.company_id).localeCompare(String(b.company_id)))).toEqual(
      expected,
    );
  });

  it('lands all three topics in bronze tables partitioned by upload hour', async () => {
    for (const [table, topic] of [
      ['documents_raw', topics.raw],
      ['chunks_processed', topics.chunks],
      ['embeddings_ready', topics.embeddings],
    ] as const) {
      const snapshot = await lake.table('bronze', table).snapshot();
      expect(snapshot, table).not.toBeNull();
      const rows = snapshot!.files.reduce((sum, f) => sum + f.rows, 0);
      expect(rows, table).toBe((await readAll(log, topic)).length);
      for (const file of snapshot!.files)
        expect(file.path.startsWith('year=2026/month=11/day=21/hour=09/'), file.path).toBe(true);
    }
  });

  it('writes the daily report to gold.daily_chunk_count, idempotently, and refuses a missing day', async () => {
    const chunks = (await readAll(log, topics.embeddings)).map(json);
    for (let run = 0; run < 2; run++) {
      const result = await runDailyReport(lake, { date: '2026-11-21' });
      expect(result.rows).toBe(2);
      const sql = await openSqlEngine(lake);
      try {
        const rows = await sql.query(
          'select cast(date as varchar) as date, company_id, document_id, total_chunks from gold.daily_chunk_count order by company_id',
        );
        expect(rows).toEqual(
          ['acme', 'globex'].map((company) => ({
            date: '2026-11-21',
            company_id: company,
            document_id: chunks.find((c) => c.company_id === company)!.document_id,
            total_chunks: chunks.filter((c) => c.company_id === company).length,
          })),
        );
      } finally {
        sql.close();
      }
    }
    await expect(runDailyReport(lake, { date: '2026-11-20' })).rejects.toThrow(
      /no data in bronze.embeddings_ready for 2026-11-20: days present: 2026-11-21/,
    );
    await expect(runDailyReport(lake, { date: '2026-02-30' })).rejects.toThrow(/not a calendar date/);
    // Default: yesterday in UTC.
    await expect(
      runDailyReport(lake, { clock: new ManualClock(Date.UTC(2026, 10, 22, 0, 30)) }),
    ).resolves.toMatchObject({ date: '2026-11-21', rows: 2 });
  });

  it('the daily report is a data-quality run: its rules and counts land in gold.quality_results', async () => {
    await runDailyReport(lake, { date: '2026-11-21', commitId: 'report-quality-check' });
    const sql = await openSqlEngine(lake);
    try {
      const results = await sql.query(
        `SELECT rule, action, passed, failed, rows_in, rows_passed, rows_quarantined FROM gold.quality_results
         WHERE table_name = 'gold.daily_chunk_count' AND run_id = 'report-quality-check' ORDER BY rule`,
      );
      expect(results.map((r) => [r.rule, r.action, r.failed])).toEqual([
        ['empty_day', 'fail', 0],
        ['missing_company', 'quarantine', 0],
        ['missing_document', 'quarantine', 0],
        ['no_chunks', 'quarantine', 0],
      ]);
      for (const r of results) expect([r.rows_in, r.rows_passed, r.rows_quarantined]).toEqual([2, 2, 0]);
    } finally {
      sql.close();
    }
  });

  it('answers a question from the uploaded document with a citation, within the company only', async () => {
    const answer = await index.ask('How long do refunds take?', 'acme');
    expect(answer.answer).toMatch(/14 days/);
    expect(answer.citations).toContainEqual(expect.objectContaining({ filename: 'policy.pdf', page: 1 }));
    const other = await index.ask('How long do refunds take?', 'globex');
    expect(other.citations.every((c) => c.filename !== 'policy.pdf')).toBe(true);
    // The saved index (what `tributary ask --pipeline documents` opens) answers the same.
    const reopened = new DocumentIndex({ dir: index.dir, embedder });
    expect((await reopened.ask('How long do refunds take?', 'acme')).citations[0]?.chunk_id).toBe(
      answer.citations[0]?.chunk_id,
    );
  });
});
