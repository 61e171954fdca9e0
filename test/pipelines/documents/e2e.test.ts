import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  documentsAsk,
  documentsPipeline,
  topics,
  windowEventType,
} from '../../../src/pipelines/documents/index.js';
import { lineageFor, readLineageGraph, runPipelineOnce } from '../../../src/stream/index.js';
import { form, json, makeDocx, makePdf, readAll, startPlatform, type Platform } from './helpers.js';

describe('upload → searchable → answered, per company', () => {
  let platform: Platform;
  const documents: Record<string, string> = {};

  const upload = async (key: string, company: string, name: string, bytes: Uint8Array) => {
    const response = await fetch(`${platform.url}/upload`, {
      method: 'POST',
      body: form({ company_id: company, file: { name, bytes } }),
      headers: { authorization: `Bearer ${key}` },
    });
    expect(response.status).toBe(201);
    documents[name] = ((await response.json()) as { document_id: string }).document_id;
  };
  const ask = (key: string, body: unknown) =>
    fetch(`${platform.url}/ask`, {
      method: 'POST',
      body: JSON.stringify(body),
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    });
  const get = (key: string, route: string) =>
    fetch(`${platform.url}${route}`, { headers: { authorization: `Bearer ${key}` } });

  beforeAll(async () => {
    platform = await startPlatform();
    await upload(
      platform.keys.acmeIngest,
      'acme',
      'refunds.pdf',
      await makePdf(['Acme refund policy.', 'Refunds are paid back within 14 days to the original card.']),
    );
    await upload(
      platform.keys.globexIngest,
      'globex',
      'travel.md',
      Buffer.from('# Travel\n\nGlobex employees book refunds for travel through the portal within 30 days.'),
    );
    await upload(
      platform.keys.acmeIngest,
      'acme',
      'warranty.docx',
      makeDocx(['Warranty terms.', 'Warranty claims are answered within three weeks by the service team.']),
    );
    const built = await documentsPipeline.jobs(platform.services);
    const result = await runPipelineOnce(
      { streams: built.stream ?? [], batch: built.batch ?? [] },
      { dataDir: platform.services.config.dataDir },
    );
    expect(result.streams.every((s) => s.state === 'finished')).toBe(true);
    expect(result.ok).toBe(true);
    await built.close?.();
  });
  afterAll(async () => platform.close());

  it('answers from the uploaded PDF with a citation to its page', async () => {
    const response = await ask(platform.keys.acmeRead, {
      question: 'How long until refunds are paid back?',
      company_id: 'acme',
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as {
      answer: string;
      citations: { document_id: string; filename: string; page: number; chunk_id: string }[];
    };
    expect(body.answer).toMatch(/14 days/);
    expect(body.citations).toContainEqual(
      expect.objectContaining({ document_id: documents['refunds.pdf'], filename: 'refunds.pdf', page: 2 }),
    );
  });

  it('answers from an uploaded DOCX', async () => {
    const response = await ask(platform.keys.acmeRead, {
      question: 'When are warranty claims answered?',
      company_id: 'acme',
    });
    const body = (await response.json()) as { answer: string; citations: { filename: string }[] };
    expect(body.answer).toMatch(/three weeks/);
    expect(body.citations.map((c) => c.filename)).toContain('warranty.docx');
  });

  it('never shows one company the chunks of another', async () => {
    expect(
      (await ask(platform.keys.globexRead, { question: 'refund policy', company_id: 'acme' })).status,
    ).toBe(403);
    const response = await ask(platform.keys.globexRead, {
      question: 'How long until refunds are paid back to the card?',
      company_id: 'globex',
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { answer: string; citations: { document_id: string }[] };
    expect(body.answer).not.toMatch(/14 days/);
    expect(body.citations.every((c) => c.document_id === documents['travel.md'])).toBe(true);
    // Unbound read keys choose the company; the answer still only cites that company.
    const admin = (await (
      await ask(platform.keys.readOnly, { question: 'travel refunds portal', company_id: 'acme' })
    ).json()) as { citations: { document_id: string }[] };
    expect(admin.citations.every((c) => c.document_id === documents['refunds.pdf'])).toBe(true);
    // Dashboard reads are confined too.
    const windows = (await (
      await get(platform.keys.globexRead, '/api/documents/chunks-per-minute?minutes=60')
    ).json()) as { rows: { company_id: string }[] };
    expect(windows.rows.length).toBeGreaterThan(0);
    expect(windows.rows.every((r) => r.company_id === 'globex')).toBe(true);
    const counters = (await (await get(platform.keys.globexRead, '/api/documents/counters')).json()) as {
      uploads: number;
    };
    expect(counters.uploads).toBe(1);
    expect(
      platform.events
        .filter((e) => e.type === windowEventType)
        .map((e) => e.tenant)
        .sort(),
    ).toEqual(['acme', 'globex']);
  });

  it('fills the dashboard routes from the topics', async () => {
    const counters = (await (await get(platform.keys.readOnly, '/api/documents/counters')).json()) as Record<
      string,
      number
    >;
    const embeddings = await readAll(platform.log, topics.embeddings);
    expect(counters).toMatchObject({
      uploads: 3,
      embeddings: embeddings.length,
      dlq: 0,
      late: 0,
      windowResults: 2,
    });
    const uploads = (await (
      await get(platform.keys.readOnly, '/api/documents/uploads?minutes=60')
    ).json()) as { rows: { uploads: number }[] };
    expect(uploads.rows.reduce((sum, r) => sum + r.uploads, 0)).toBe(3);
    const windows = (await readAll(platform.log, topics.analytics)).map(json);
    expect(windows.reduce((sum, w) => sum + (w.chunk_count as number), 0)).toBe(embeddings.length);
  });

  it('reports lineage: upload topic → stages → topics and bronze tables → daily report', async () => {
    const dataDir = platform.services.config.dataDir;
    await lineageFor(dataDir).flush();
    const graph = await readLineageGraph(dataDir);
    const edges = new Set(graph.edges.map((e) => `${e.from} -> ${e.to}`));
    for (const edge of [
      'tributary://topic/documents.raw -> job:tributary/documents.docproc',
      'job:tributary/documents.docproc -> tributary://topic/chunks.processed',
      'tributary://topic/chunks.processed -> job:tributary/documents.embedding',
      'job:tributary/documents.embedding -> tributary://topic/embeddings.ready',
      'tributary://topic/embeddings.ready -> job:tributary/documents.analytics',
      'job:tributary/documents.analytics -> tributary://topic/analytics.flink',
      'tributary://topic/documents.raw -> job:tributary/documents.sink.documents_raw',
      'job:tributary/documents.sink.documents_raw -> tributary://lake/bronze.documents_raw',
      'job:tributary/documents.sink.embeddings_ready -> tributary://lake/bronze.embeddings_ready',
      'tributary://lake/bronze.embeddings_ready -> job:tributary/documents.daily_chunk_count',
      'job:tributary/documents.daily_chunk_count -> tributary://lake/gold.daily_chunk_count',
    ])
      expect(edges).toContain(edge);
    const chunks = graph.nodes.find((n) => n.id === 'tributary://topic/chunks.processed');
    expect(chunks?.fields?.map((f) => f.name)).toContain('company_id');
  });

  it('reruns stages without duplicating outputs', async () => {
    const before = (await readAll(platform.log, topics.embeddings)).length;
    const built = await documentsPipeline.jobs(platform.services);
    await runPipelineOnce({ streams: built.stream ?? [] }, { dataDir: platform.services.config.dataDir });
    expect((await readAll(platform.log, topics.embeddings)).length).toBe(before);
  });

  it("answers the platform's /api/ask within the resolved company", async () => {
    const askFn = documentsAsk(platform.services);
    const acme = (await askFn('How long until refunds are paid back?', { company: 'acme' })) as {
      citations: { document_id: string }[];
    };
    expect(acme.citations.length).toBeGreaterThan(0);
    expect(acme.citations.every((c) => c.document_id === documents['refunds.pdf'])).toBe(true);
    const globex = (await askFn('How long until refunds are paid back?', { company: 'globex' })) as {
      citations: { document_id: string }[];
    };
    expect(globex.citations.every((c) => c.document_id === documents['travel.md'])).toBe(true);
  });
});
