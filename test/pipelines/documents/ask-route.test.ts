import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { documentsPipeline } from '../../../src/pipelines/documents/index.js';
import { runPipelineOnce } from '../../../src/stream/index.js';
import { form, startPlatform, type Platform } from './helpers.js';

/** The documents pipeline on the platform's ask route: `POST /api/documents/ask {question, filters, k}`. */
describe('POST /api/documents/ask', () => {
  let platform: Platform;
  const documents: Record<string, string> = {};

  const upload = async (key: string, company: string, name: string, text: string) => {
    const response = await fetch(`${platform.url}/upload`, {
      method: 'POST',
      body: form({ company_id: company, file: { name, bytes: Buffer.from(text) } }),
      headers: { authorization: `Bearer ${key}` },
    });
    expect(response.status).toBe(201);
    documents[name] = ((await response.json()) as { document_id: string }).document_id;
  };
  const ask = async (key: string, body: unknown) => {
    const response = await fetch(`${platform.url}/api/documents/ask`, {
      method: 'POST',
      body: JSON.stringify(body),
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    });
    return {
      status: response.status,
      body: (await response.json()) as {
        answer?: string;
        citations?: { chunk_id: string; document_id: string; filename: string; page: number }[];
      },
    };
  };

  beforeAll(async () => {
    platform = await startPlatform();
    await upload(
      platform.keys.acmeIngest,
      'acme',
      'refunds.md',
      '# Refunds\n\nAcme refunds are paid within 14 days.',
    );
    await upload(
      platform.keys.acmeIngest,
      'acme',
      'returns.md',
      '# Returns\n\nAcme returns are accepted for 30 days.',
    );
    await upload(
      platform.keys.globexIngest,
      'globex',
      'globex.md',
      '# Refunds\n\nGlobex refunds are paid as store credit within 60 days.',
    );
    const built = await documentsPipeline.jobs(platform.services);
    const result = await runPipelineOnce(
      { streams: built.stream ?? [] },
      { dataDir: platform.services.config.dataDir },
    );
    expect(result.ok).toBe(true);
    await built.close?.();
  });
  afterAll(async () => platform.close());

  it('answers within the key’s company with document, page and chunk citations', async () => {
    const own = await ask(platform.keys.acmeRead, { question: 'When are refunds paid?' });
    expect(own.status).toBe(200);
    expect(own.body.answer).toMatch(/14 days/);
    expect(own.body.citations!.length).toBeGreaterThan(0);
    for (const citation of own.body.citations!) {
      expect([documents['refunds.md'], documents['returns.md']]).toContain(citation.document_id);
      expect(Object.keys(citation).sort()).toEqual([
        'chunk_id',
        'document_id',
        'filename',
        'page',
        'score',
        'text',
      ]);
    }
    expect(JSON.stringify(own.body)).not.toMatch(/Globex|store credit/);
  });

  it('never lets a tenant-bound key name another company', async () => {
    const other = await ask(platform.keys.acmeRead, {
      question: 'When are refunds paid?',
      filters: { company_id: 'globex' },
    });
    expect(other.status).toBe(403);
    const both = await ask(platform.keys.globexRead, {
      question: 'When are refunds paid?',
      filters: { company_id: ['globex', 'acme'] },
    });
    expect(both.status).toBe(403);
    const globex = await ask(platform.keys.globexRead, { question: 'When are refunds paid?', k: 10 });
    expect(globex.body.citations!.every((c) => c.document_id === documents['globex.md'])).toBe(true);
  });

  it('filters on any metadata field inside retrieval, with the company named by unbound keys', async () => {
    expect((await ask(platform.keys.readOnly, { question: 'refunds' })).status).toBe(400);
    const byDocument = await ask(platform.keys.readOnly, {
      question: 'How long are returns accepted and refunds paid?',
      filters: { company_id: 'acme', document_id: documents['returns.md'] },
    });
    expect(byDocument.status).toBe(200);
    expect(byDocument.body.citations!.map((c) => c.filename)).toEqual(['returns.md']);
  });
});
