import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTributaryError } from '../../core/index.js';
import { HashedEmbedder } from '../embed/embedder.js';
import { parseFilterArguments, validateFilter, type MetadataFilter } from './filter.js';
import { HybridIndex, type IndexRecord } from './hybrid.js';

const products = ['router', 'phone', 'laptop', 'camera'];
const subjects = ['battery life', 'screen glare', 'delivery time', 'customer support', 'price'];

/** A review-like index without tenants: product (text), stars (number), date (ISO text). */
function reviews(): IndexRecord[] {
  return Array.from({ length: 300 }, (_, i) => {
    const product = products[i % products.length];
    const subject = subjects[(i * 7) % subjects.length];
    return {
      id: `r${i}`,
      text: `Review ${i} of the ${product}: the ${subject} is ${i % 3 === 0 ? 'great' : 'poor'}.`,
      metadata: {
        product,
        stars: 1 + (i % 5),
        date: `2024-${String(1 + (i % 12)).padStart(2, '0')}-${String(1 + (i % 28)).padStart(2, '0')}`,
      },
    };
  });
}

interface Drawn {
  products: string[] | undefined;
  starsFrom: number | undefined;
  starsTo: number | undefined;
  starsAsText: boolean;
  month: string | undefined;
}

/** The filter under test, built from the drawn conditions. */
function filterOf(d: Drawn): MetadataFilter {
  const filter: Record<string, MetadataFilter[string]> = {};
  if (d.products !== undefined) filter.product = d.products.length === 1 ? d.products[0] : d.products;
  if (d.starsFrom !== undefined || d.starsTo !== undefined) {
    const bound = (n: number | undefined) => (n === undefined ? undefined : d.starsAsText ? String(n) : n);
    filter.stars = { from: bound(d.starsFrom), to: bound(d.starsTo) };
  }
  if (d.month !== undefined) filter.date = { from: d.month, to: d.month };
  return filter;
}

/** An oracle written apart from the index's own matcher: what the drawn conditions mean. */
function oracle(d: Drawn, record: IndexRecord): boolean {
  const { product, stars, date } = record.metadata as { product: string; stars: number; date: string };
  if (d.products !== undefined && !d.products.includes(product)) return false;
  if (d.starsFrom !== undefined && stars < d.starsFrom) return false;
  if (d.starsTo !== undefined && stars > d.starsTo) return false;
  if (d.month !== undefined && !date.startsWith(d.month)) return false;
  return true;
}

describe('metadata filters inside retrieval', () => {
  it('never return a hit from outside the filter, and never fewer than k when k match (exact and HNSW paths)', async () => {
    const records = reviews();
    const embedder = new HashedEmbedder({ dimensions: 64 });
    const exactIndex = await HybridIndex.fromRecords(records, { embedder });
    // hnswThreshold 50 + exactCandidatesMax 10 forces the filtered graph walk.
    const graphIndex = await HybridIndex.fromRecords(records, {
      embedder,
      hnswThreshold: 50,
      exactCandidatesMax: 10,
    });
    const drawn: fc.Arbitrary<Drawn> = fc.record({
      products: fc.option(
        fc.uniqueArray(fc.constantFrom(...products, 'tablet'), { minLength: 1, maxLength: 3 }),
        {
          nil: undefined,
        },
      ),
      starsFrom: fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined }),
      starsTo: fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined }),
      starsAsText: fc.boolean(),
      month: fc.option(
        fc.integer({ min: 1, max: 12 }).map((m) => `2024-${String(m).padStart(2, '0')}`),
        { nil: undefined },
      ),
    });
    await fc.assert(
      fc.asyncProperty(
        drawn,
        fc.constantFrom(...subjects, 'great router', 'nothing like this'),
        fc.integer({ min: 1, max: 40 }),
        async (d, text, k) => {
          const filters = filterOf(d);
          const matching = records.filter((r) => oracle(d, r));
          const allowed = new Set(matching.map((r) => r.id));
          for (const index of [exactIndex, graphIndex]) {
            const hits = await index.search({ text, filters, k });
            for (const hit of hits)
              expect(allowed.has(hit.id), `${hit.id} outside ${JSON.stringify(filters)}`).toBe(true);
            expect(hits.length).toBe(Math.min(k, matching.length));
          }
        },
      ),
      { seed: 1207, numRuns: 80 },
    );
  });

  it('narrows a tenant index to one tenant and refuses a query that names none or several', async () => {
    const records = reviews().map((r, i) => ({
      ...r,
      metadata: { ...r.metadata, shop: i % 2 === 0 ? 'north' : 'south' },
    }));
    const index = await HybridIndex.fromRecords(records, {
      embedder: new HashedEmbedder({ dimensions: 64 }),
      schema: { tenantField: 'shop' },
    });
    const hits = await index.search({
      text: 'battery',
      filters: { shop: 'north', product: 'router' },
      k: 50,
    });
    expect(hits.length).toBeGreaterThan(0);
    for (const hit of hits) expect(hit.metadata).toMatchObject({ shop: 'north', product: 'router' });
    const refused: MetadataFilter[] = [
      {},
      { product: 'phone' },
      { shop: ['north', 'south'] },
      { shop: { from: 'a' } },
      { shop: ' ' },
    ];
    for (const filters of refused) {
      const error = await index.search({ text: 'battery', filters }).catch((e: unknown) => e);
      expect(isTributaryError(error, 'INVALID_ARGUMENT'), JSON.stringify(filters)).toBe(true);
    }
    await expect(index.add([{ id: 'r1', text: 'taken over', metadata: { shop: 'north' } }])).rejects.toThrow(
      /id "r1"\): the id belongs to another tenant's record/,
    );
    expect(
      (await index.search({ text: 'Review 1', filters: { shop: 'south' }, k: 300 })).map((h) => h.id),
    ).toContain('r1');
    await expect(index.add([{ id: 'x', text: 'no shop', metadata: { product: 'phone' } }])).rejects.toThrow(
      /record 0 \(id "x"\): metadata field "shop" \(the tenant\) is required/,
    );
  });
});

describe('filter parsing and validation', () => {
  it('parses CLI conditions: equality, any-of by repetition, inclusive bounds', () => {
    expect(
      parseFilterArguments([
        'product=router',
        'product=phone',
        'stars>=4',
        'date<=2024-03',
        'date>=2024-01',
        'title=a=b',
      ]),
    ).toEqual({
      product: ['router', 'phone'],
      stars: { from: '4' },
      date: { from: '2024-01', to: '2024-03' },
      title: 'a=b',
    });
    for (const bad of ['product', '=x', '>=3', 'bad field=1']) {
      expect(() => parseFilterArguments([bad])).toThrow(/--filter/);
    }
    expect(() => parseFilterArguments(['stars=4', 'stars>=2'])).toThrow(/cannot combine/);
  });

  it('names the field of a bad API filter', () => {
    expect(() => validateFilter({ product: { from: 1, upto: 2 } })).toThrow(
      /filters.product: unknown key upto/,
    );
    expect(() => validateFilter({ product: [] })).toThrow(/filters.product/);
    expect(() => validateFilter({ product: null })).toThrow(/filters.product/);
    expect(() => validateFilter({ 'a b': 1 })).toThrow(/filters.a b: not a valid field name/);
    expect(validateFilter(undefined)).toEqual({});
  });
});
