import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HashedEmbedder, RetrievalIndex, notFoundAnswer, retrievalIndexDir } from '../../src/ml/index.js';
import {
  createApp,
  KeyStore,
  registerAskRoute,
  startServer,
  type PipelineModule,
  type RunningServer,
  type TributaryApp,
} from '../../src/serve/index.js';

/**
 * The platform's ask route factory and `tributary ask` over two real indexes on disk: `reviews`
 * (no tenants, filtered by product) and `support` (tenant field company_id, as documents has).
 */
let dir: string;
let dataDir: string;
let api: TributaryApp;
let server: RunningServer;
let keys: { admin: string; reader: string; acme: string };

const reviews = [
  { id: 'r1', product: 'aurora-router', stars: 2, text: 'The Aurora router fan hums loudly at night.' },
  {
    id: 'r2',
    product: 'aurora-router',
    stars: 5,
    text: 'Aurora router setup took ten minutes with the app.',
  },
  {
    id: 'r3',
    product: 'zephyr-phone',
    stars: 1,
    text: 'The Zephyr phone fan? No fan, but the battery dies by noon.',
  },
  { id: 'r4', product: 'zephyr-phone', stars: 4, text: 'Zephyr phone camera takes sharp night photos.' },
];

const support = [
  { id: 's1', company_id: 'acme', text: 'Acme refunds are paid within five business days.' },
  { id: 's2', company_id: 'globex', text: 'Globex refunds are paid as store credit within thirty days.' },
];

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tributary-ask-route-'));
  dataDir = path.join(dir, 'data');
  // The CLI's default embedder (`embeddingModel: hashed`), so both read the same vectors.
  const embedder = new HashedEmbedder();
  const reviewsIndex = new RetrievalIndex({
    dir: retrievalIndexDir(dataDir, 'reviews'),
    embedder,
    schema: { citationId: 'review_id', citationFields: ['product', 'stars'] },
  });
  await reviewsIndex.upsert(
    reviews.map((r) => ({ id: r.id, text: r.text, metadata: { product: r.product, stars: r.stars } })),
  );
  await reviewsIndex.save();
  const supportIndex = new RetrievalIndex({
    dir: retrievalIndexDir(dataDir, 'support'),
    embedder,
    schema: { tenantField: 'company_id' },
  });
  await supportIndex.upsert(
    support.map((s) => ({ id: s.id, text: s.text, metadata: { company_id: s.company_id } })),
  );
  await supportIndex.save();

  const module = (name: string, index: RetrievalIndex, tenantScoped: boolean): PipelineModule => ({
    name,
    title: name,
    tenantScoped,
    routes: (router) => registerAskRoute(router, { pipeline: name, index }),
  });
  const store = KeyStore.open(path.join(dir, 'keys.json'));
  keys = {
    admin: (await store.create({ scopes: ['admin'] })).key,
    reader: (await store.create({ scopes: ['read'] })).key,
    acme: (await store.create({ scopes: ['read'], tenant: 'acme' })).key,
  };
  api = createApp({
    keys: store,
    pipelines: [module('reviews', reviewsIndex, false), module('support', supportIndex, true)],
    ui: false,
    rateLimit: { ratePerSecond: 10_000, burst: 10_000 },
    statusTickMs: 0,
  });
  server = await startServer(api.app, { port: 0 });
}, 60_000);

afterAll(async () => {
  await api?.close();
  await server?.close(200);
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface AskResponse {
  status: number;
  body: {
    answer?: string;
    mode?: string;
    citations?: Record<string, unknown>[];
    error?: { code: string; message: string };
  };
}

async function ask(pipeline: string, key: string | undefined, body: unknown): Promise<AskResponse> {
  const response = await fetch(`${server.url}/api/${pipeline}/ask`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as AskResponse['body'] };
}

describe('POST /api/<pipeline>/ask on an index without tenants', () => {
  it('answers within the product filter, with the citation fields the pipeline chose', async () => {
    const router = await ask('reviews', keys.reader, {
      question: 'Does the fan hum at night?',
      filters: { product: 'aurora-router' },
    });
    expect(router.status).toBe(200);
    expect(router.body.mode).toBe('extractive');
    expect(router.body.answer).toMatch(/hums loudly/);
    expect(router.body.citations!.length).toBeGreaterThan(0);
    for (const citation of router.body.citations!) {
      expect(citation.product).toBe('aurora-router');
      expect(Object.keys(citation).sort()).toEqual(['product', 'review_id', 'score', 'stars', 'text']);
    }
    const phone = await ask('reviews', keys.reader, {
      question: 'What about the battery?',
      filters: { product: ['zephyr-phone'], stars: { to: 3 } },
      k: 3,
    });
    expect(phone.body.citations!.map((c) => c.review_id)).toEqual(['r3']);
  });

  it('says when nothing relevant is found instead of inventing', async () => {
    const none = await ask('reviews', keys.reader, {
      question: 'What is the capital of Mongolia?',
      filters: { product: 'zephyr-phone' },
    });
    expect(none.body).toEqual({ answer: notFoundAnswer, citations: [], mode: 'none' });
    const unknownProduct = await ask('reviews', keys.reader, {
      question: 'Does the fan hum?',
      filters: { product: 'no-such-product' },
    });
    expect(unknownProduct.body.mode).toBe('none');
  });

  it('refuses tenant-bound keys, missing keys and malformed filters', async () => {
    const bound = await ask('reviews', keys.acme, { question: 'fan noise' });
    expect(bound.status).toBe(403);
    expect(bound.body.error?.message).toMatch(/not tenant-scoped/);
    expect((await ask('reviews', undefined, { question: 'fan noise' })).status).toBe(401);
    const bad = await ask('reviews', keys.reader, { question: 'fan', filters: { product: { above: 3 } } });
    expect(bad.status).toBe(400);
    expect(bad.body.error?.message).toMatch(/filters/);
    expect((await ask('reviews', keys.reader, { question: '  ' })).status).toBe(400);
  });

  it('is described in the OpenAPI document', async () => {
    const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as {
      paths: Record<string, unknown>;
    };
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/reviews/ask', '/api/support/ask']));
  });
});

describe('POST /api/<pipeline>/ask on a tenant index', () => {
  it('confines a tenant-bound key to its tenant', async () => {
    const own = await ask('support', keys.acme, { question: 'How are refunds paid?' });
    expect(own.status).toBe(200);
    expect(own.body.citations!.map((c) => c.id)).toEqual(['s1']);
    expect(JSON.stringify(own.body)).not.toContain('Globex');
    const other = await ask('support', keys.acme, {
      question: 'How are refunds paid?',
      filters: { company_id: 'globex' },
    });
    expect(other.status).toBe(403);
    const several = await ask('support', keys.acme, {
      question: 'How are refunds paid?',
      filters: { company_id: ['acme', 'globex'] },
    });
    expect(several.status).toBe(403);
  });

  it('makes an unbound key name exactly one tenant', async () => {
    const missing = await ask('support', keys.reader, { question: 'How are refunds paid?' });
    expect(missing.status).toBe(400);
    expect(missing.body.error?.message).toMatch(/filters.company_id is required/);
    const several = await ask('support', keys.admin, {
      question: 'refunds',
      filters: { company_id: ['acme', 'globex'] },
    });
    expect(several.status).toBe(400);
    const globex = await ask('support', keys.reader, {
      question: 'How are refunds paid?',
      filters: { company_id: 'globex' },
    });
    expect(globex.body.citations!.map((c) => c.id)).toEqual(['s2']);
  });
});

// The CLI runs the compiled build (`npm test` builds dist/ first through `pretest`); it reads the
// index files directly, so a blocking spawn is fine.
function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const result = spawnSync(process.execPath, ['bin/tributary.js', '--data-dir', dataDir, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
    encoding: 'utf8',
  });
  return Promise.resolve({ code: result.status, stdout: result.stdout, stderr: result.stderr });
}

describe('tributary ask --pipeline <p> --filter key=value', () => {
  it('answers from a non-tenant index within the filter', async () => {
    const result = await run([
      'ask',
      'What about the battery?',
      '--pipeline',
      'reviews',
      '--filter',
      'product=zephyr-phone',
      '--filter',
      'stars<=3',
      '--format',
      'json',
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const body = JSON.parse(result.stdout) as { answer: string; citations: Record<string, unknown>[] };
    expect(body.answer).toMatch(/battery dies by noon/);
    expect(body.citations.map((c) => [c.review_id, c.product])).toEqual([['r3', 'zephyr-phone']]);
    const text = await run([
      'ask',
      'Does the fan hum at night?',
      '--pipeline',
      'reviews',
      '--filter',
      'product=aurora-router',
    ]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('Sources:');
    expect(text.stdout).toContain('review_id=r1, product=aurora-router, stars=2');
  });

  it('requires one tenant on a tenant index (--company or --filter) and refuses --company elsewhere', async () => {
    const missing = await run(['ask', 'refunds', '--pipeline', 'support']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('--company is required');
    const byFilter = await run([
      'ask',
      'How are refunds paid?',
      '--pipeline',
      'support',
      '--filter',
      'company_id=globex',
      '--format',
      'json',
    ]);
    expect(byFilter.code, byFilter.stderr).toBe(0);
    expect(
      (JSON.parse(byFilter.stdout) as { citations: { id: string }[] }).citations.map((c) => c.id),
    ).toEqual(['s2']);
    const byCompany = await run([
      'ask',
      'How are refunds paid?',
      '--pipeline',
      'support',
      '--company',
      'acme',
      '--format',
      'json',
    ]);
    expect(
      (JSON.parse(byCompany.stdout) as { citations: { id: string }[] }).citations.map((c) => c.id),
    ).toEqual(['s1']);
    const clash = await run([
      'ask',
      'refunds',
      '--pipeline',
      'support',
      '--company',
      'acme',
      '--filter',
      'company_id=globex',
    ]);
    expect(clash.stderr).toContain('name different tenants');
    const noTenants = await run(['ask', 'fan', '--pipeline', 'reviews', '--company', 'acme']);
    expect(noTenants.code).not.toBe(0);
    expect(noTenants.stderr).toContain('has no tenants');
    const badFilter = await run(['ask', 'fan', '--pipeline', 'reviews', '--filter', 'product']);
    expect(badFilter.stderr).toContain('expected field=value');
  });
});
