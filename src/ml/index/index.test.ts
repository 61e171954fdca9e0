import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTributaryError } from '../../core/index.js';
import { HashedEmbedder } from '../embed/embedder.js';
import { Bm25Index, reciprocalRankFusion } from './bm25.js';
import { Hnsw, VectorStore, exactSearch } from './hnsw.js';
import type { MetadataFilter } from './filter.js';
import { HybridIndex, type IndexRecord } from './hybrid.js';

function randomUnitVectors(count: number, dim: number, seed: number): Float32Array[] {
  let s = seed;
  const rand = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296 - 0.5;
  };
  return Array.from({ length: count }, () => {
    const v = new Float32Array(dim).map(() => rand());
    const n = Math.hypot(...v);
    return v.map((x) => x / n);
  });
}

describe('HNSW', () => {
  it('reaches recall@10 >= 0.95 against exact search on random data', () => {
    const dim = 32;
    const vectors = randomUnitVectors(3000, dim, 1);
    const store = new VectorStore(dim, 16);
    for (const v of vectors) store.add(v);
    const graph = new Hnsw(store, { m: 16, efConstruction: 100 });
    graph.build();
    const queries = randomUnitVectors(100, dim, 2);
    let hits = 0;
    for (const q of queries) {
      const truth = new Set(exactSearch(store, q, 10).map((r) => r.id));
      const approx = graph.search(q, 10, 128);
      expect(approx).toHaveLength(10);
      for (let i = 1; i < approx.length; i++)
        expect(approx[i].score).toBeLessThanOrEqual(approx[i - 1].score);
      for (const r of approx) if (truth.has(r.id)) hits++;
    }
    expect(hits / 1000).toBeGreaterThanOrEqual(0.95);
  });

  it('round-trips its binary encoding', () => {
    const dim = 8;
    const store = new VectorStore(dim);
    for (const v of randomUnitVectors(500, dim, 3)) store.add(v);
    const graph = new Hnsw(store);
    graph.build();
    const copy = Hnsw.decode(store, graph.encode(), 'test');
    const q = randomUnitVectors(1, dim, 4)[0];
    expect(copy.search(q, 5, 50)).toEqual(graph.search(q, 5, 50));
    const truncated = graph.encode().subarray(0, 100);
    expect(() => Hnsw.decode(store, truncated, 'x.bin')).toThrow(/x.bin/);
  });

  it('honours an accept filter', () => {
    const dim = 16;
    const store = new VectorStore(dim);
    for (const v of randomUnitVectors(2000, dim, 5)) store.add(v);
    const graph = new Hnsw(store);
    graph.build();
    const results = graph.search(randomUnitVectors(1, dim, 6)[0], 10, 200, (id) => id % 7 === 0);
    expect(results.length).toBe(10);
    for (const r of results) expect(r.id % 7).toBe(0);
  });
});

describe('BM25 and fusion', () => {
  it('ranks documents with rarer matching terms higher and skips deleted ones', () => {
    const bm25 = new Bm25Index();
    bm25.add(0, 'the refund policy covers refunds');
    bm25.add(1, 'shipping policy for pallets');
    bm25.add(2, 'refund refund refund');
    const top = bm25.search('refund', 3);
    expect(top.map((h) => h.id)).toEqual([2, 0]);
    bm25.delete(2);
    expect(bm25.search('refund', 3).map((h) => h.id)).toEqual([0]);
    expect(bm25.search('the and of', 3)).toEqual([]);
  });

  it('fuses ranked lists by reciprocal rank', () => {
    const fused = reciprocalRankFusion([
      [{ id: 1 }, { id: 2 }],
      [{ id: 2 }, { id: 3 }],
    ]);
    expect(fused[0].id).toBe(2);
    expect(fused.map((f) => f.id).sort()).toEqual([1, 2, 3]);
  });
});

const companies = ['acme', 'globex', 'initech'];
const topics = [
  'refund policy',
  'warranty terms',
  'shipping times',
  'battery life',
  'password reset',
  'invoice dates',
];

function corpus(): IndexRecord[] {
  const records: IndexRecord[] = [];
  for (let i = 0; i < 240; i++) {
    const company = companies[i % 3];
    const topic = topics[i % topics.length];
    records.push({
      id: `c${i}`,
      text: `${company} ${topic} note ${i}: details about ${topic} for customers.`,
      metadata: {
        company_id: company,
        document_id: `${company}-doc${i % 10}`,
        filename: `doc${i % 10}.md`,
        page: 1 + (i % 4),
        product: i % 2 === 0 ? 'router' : 'phone',
        date: `2024-0${1 + (i % 9)}-15`,
      },
    });
  }
  return records;
}

/** The documents pipeline's schema: every query within one company. */
const schema = { tenantField: 'company_id' };

describe('HybridIndex', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tributary-ml-index-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('requires a company on every query', async () => {
    const index = await HybridIndex.fromRecords(corpus(), { embedder: new HashedEmbedder(), schema });
    for (const company of ['', '   ', undefined]) {
      const error = await index
        .search({ text: 'refund', filters: company === undefined ? {} : { company_id: company } })
        .catch((e: unknown) => e);
      expect(isTributaryError(error, 'INVALID_ARGUMENT')).toBe(true);
    }
  });

  it('never returns another company’s chunk (property, exact and HNSW paths)', async () => {
    const records = corpus();
    // hnswThreshold 50 + exactCandidatesMax 10 forces the graph path with a tenant filter.
    const graphIndex = await HybridIndex.fromRecords(records, {
      embedder: new HashedEmbedder(),
      hnswThreshold: 50,
      exactCandidatesMax: 10,
      schema,
    });
    const exactIndex = await HybridIndex.fromRecords(records, { embedder: new HashedEmbedder(), schema });
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...companies, 'umbrella'),
        fc.constantFrom(...topics, 'acme globex initech', 'note 7'),
        fc.integer({ min: 1, max: 30 }),
        fc.option(fc.constantFrom('router', 'phone'), { nil: undefined }),
        async (company, text, k, product) => {
          for (const index of [graphIndex, exactIndex]) {
            const filters: MetadataFilter = product
              ? { company_id: company, product }
              : { company_id: company };
            const hits = await index.search({ text, filters, k });
            for (const h of hits) {
              expect(h.metadata.company_id).toBe(company);
              if (product) expect(h.metadata.product).toBe(product);
            }
            if (company === 'umbrella') expect(hits).toEqual([]);
            else expect(hits.length).toBe(Math.min(k, product ? 40 : 80));
          }
        },
      ),
      { seed: 42, numRuns: 60 },
    );
  });

  it('filters by document and date and finds the matching topic', async () => {
    const index = await HybridIndex.fromRecords(corpus(), { embedder: new HashedEmbedder(), schema });
    const hits = await index.search({ text: 'warranty terms', filters: { company_id: 'globex' }, k: 3 });
    expect(hits[0].text).toContain('warranty terms');
    const byDoc = await index.search({
      text: 'details',
      filters: { company_id: 'acme', document_id: 'acme-doc3' },
      k: 50,
    });
    expect(byDoc.length).toBeGreaterThan(0);
    for (const h of byDoc) expect(h.metadata.document_id).toBe('acme-doc3');
    const byDate = await index.search({
      text: 'details',
      filters: { company_id: 'acme', date: { from: '2024-03', to: '2024-04-30' } },
      k: 50,
    });
    expect(byDate.length).toBeGreaterThan(0);
    for (const h of byDate) {
      const date = String(h.metadata.date);
      expect(date >= '2024-03' && date <= '2024-04-30').toBe(true);
    }
    // Numbers compare numerically, also when the bound arrives as text (a CLI argument).
    const byPage = await index.search({
      text: 'details',
      filters: { company_id: 'acme', page: { from: '2', to: 3 } },
      k: 80,
    });
    expect(new Set(byPage.map((h) => h.metadata.page))).toEqual(new Set([2, 3]));
  });

  it('adds, replaces and deletes incrementally, and persists atomically', async () => {
    const embedder = new HashedEmbedder();
    const index = await HybridIndex.fromRecords(corpus(), { embedder, hnswThreshold: 100, dir, schema });
    expect(index.count).toBe(240);
    await index.add([
      {
        id: 'c0',
        text: 'zebra crossing rules',
        metadata: { company_id: 'acme', document_id: 'acme-doc0', filename: 'doc0.md', page: 1 },
      },
    ]);
    expect(index.count).toBe(240);
    expect((await index.search({ text: 'zebra', filters: { company_id: 'acme' }, k: 1 }))[0].id).toBe('c0');
    expect(() => index.deleteMatching({ document_id: 'acme-doc3' })).toThrow(/tenant/);
    expect(index.deleteMatching({ company_id: 'acme', document_id: 'acme-doc3' })).toBeGreaterThan(0);
    expect(index.deleteIds(['c1', 'missing'])).toBe(1);
    await index.save();
    await index.save();
    await index.save();
    const files = (await readdir(dir)).sort();
    // Current generation 3 plus the previous one for readers that opened the old manifest.
    expect(files).toEqual([
      'MANIFEST.json',
      'hnsw-2.bin',
      'hnsw-3.bin',
      'records-2.jsonl',
      'records-3.jsonl',
      'vectors-2.f32',
      'vectors-3.f32',
    ]);
    const manifest = JSON.parse(await readFile(path.join(dir, 'MANIFEST.json'), 'utf8'));
    expect(manifest).toMatchObject({
      format: 'tributary-hybrid-index',
      version: 2,
      generation: 3,
      schema: { tenantField: 'company_id' },
      embedder: 'hashed-384',
      dimensions: 384,
    });
    const vectors = await readFile(path.join(dir, 'vectors-3.f32'));
    expect(vectors.subarray(0, 8).toString('latin1')).toBe('TRBVEC01');
    expect(vectors.readUInt32LE(8)).toBe(384);
    expect(vectors.length).toBe(16 + vectors.readUInt32LE(12) * 384 * 4);

    const reopened = await HybridIndex.open(dir, { embedder, readOnly: true });
    expect(reopened.count).toBe(index.count);
    const q = { text: 'zebra crossing', filters: { company_id: 'acme' }, k: 5 };
    expect(await reopened.search(q)).toEqual(await index.search(q));
    expect(
      (await reopened.search({ text: 'details', filters: { company_id: 'acme', document_id: 'acme-doc3' } }))
        .length,
    ).toBe(0);
    await expect(reopened.add(corpus().slice(0, 1))).rejects.toThrow(/read-only/);
    await expect(HybridIndex.open(dir, { embedder: new HashedEmbedder({ dimensions: 64 }) })).rejects.toThrow(
      /built with embedder hashed-384/,
    );
    await expect(HybridIndex.open(path.join(dir, 'nope'), { embedder })).rejects.toThrow(/no index/);

    // The saved schema comes back with the index: its tenant filter cannot be skipped by a reader.
    await expect(reopened.search({ text: 'zebra' })).rejects.toThrow(/company_id/);
    await expect(HybridIndex.open(dir, { embedder, schema: {} })).rejects.toThrow(/tenant field company_id/);
    const rebuilt = await HybridIndex.fromRecords(reopened.records(), { embedder, schema });
    expect(await rebuilt.search(q)).toEqual(await index.search(q));
  });
});
