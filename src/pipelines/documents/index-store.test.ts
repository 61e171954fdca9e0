import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../core/index.js';
import { HashedEmbedder } from '../../ml/index.js';
import { DocumentIndex } from './index-store.js';
import type { IndexedChunk } from './stages.js';

describe('DocumentIndex across processes (embedding worker writes, API reads)', () => {
  let dir: string;
  const embedder = new HashedEmbedder({ dimensions: 64 });
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'documents-index-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  const chunk = async (id: string, company: string, text: string): Promise<IndexedChunk> => ({
    chunk_id: id,
    document_id: `doc-${id}`,
    company_id: company,
    text,
    page: 1,
    vector: Array.from((await embedder.embed([text]))[0]),
    filename: `${id}.md`,
    timestamp: 0,
  });

  it('reloads a saved index when it changed, and answers per company', async () => {
    const clock = new ManualClock(0);
    const writer = new DocumentIndex({ dir, embedder });
    const reader = new DocumentIndex({ dir, embedder, clock, reloadCheckMs: 1_000 });
    expect(await reader.count()).toBe(0);
    await writer.upsert([await chunk('a', 'acme', 'Refunds take five business days.')]);
    await writer.save();
    clock.advance(1_000);
    expect(await reader.count()).toBe(1);
    await writer.upsert([
      await chunk('b', 'globex', 'Globex refunds take ten business days.'),
      await chunk('a', 'acme', 'Refunds take five business days.'),
    ]);
    await writer.save();
    // Within the check interval the reader keeps its loaded copy; after it, it sees the new save.
    expect(await reader.count()).toBe(1);
    clock.advance(1_000);
    expect(await reader.count()).toBe(2);
    const acme = await reader.ask('How long do refunds take?', 'acme');
    expect(acme.citations.map((c) => c.chunk_id)).toEqual(['a']);
    const globex = await reader.ask('How long do refunds take?', 'globex');
    expect(globex.citations.map((c) => c.chunk_id)).toEqual(['b']);
  });
});
