import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { isTributaryError } from '../../core/index.js';
import { setTransformersImporterForTests } from '../transformers.js';
import { HashedEmbedder, HfEmbedder, OpenAiEmbedder, createEmbedder } from './embedder.js';

function cosine(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

describe('HashedEmbedder', () => {
  it('is deterministic, fixed-size and L2-normalised', async () => {
    const e = new HashedEmbedder();
    const [a, b] = await e.embed([
      'Refunds are processed within five days',
      'Refunds are processed within five days',
    ]);
    expect(a.length).toBe(384);
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(cosine(a, a)).toBeCloseTo(1, 5);
    const [empty] = await e.embed(['']);
    expect(empty.every((x) => x === 0)).toBe(true);
  });

  it('puts related texts closer than unrelated ones', () => {
    const e = new HashedEmbedder();
    const q = e.embedSync('how long does a refund take');
    const related = e.embedSync('Refunds take five business days to process.');
    const unrelated = e.embedSync('The warehouse ships pallets on Tuesdays.');
    expect(cosine(q, related)).toBeGreaterThan(cosine(q, unrelated) + 0.1);
  });
});

interface FakeServer {
  url: string;
  requests: { body: { model: string; input: string[] }; auth: string | undefined }[];
  close(): Promise<void>;
}

/** A local OpenAI-compatible /v1/embeddings server; `script` decides each response. */
async function fakeEmbeddingServer(
  script: (n: number, res: ServerResponse, input: string[]) => boolean,
): Promise<FakeServer> {
  const requests: FakeServer['requests'] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      const body = JSON.parse(raw) as { model: string; input: string[] };
      requests.push({ body, auth: req.headers.authorization });
      if (req.url !== '/v1/embeddings') {
        res.writeHead(404).end();
        return;
      }
      if (script(requests.length, res, body.input)) return;
      // Vector i encodes its text's length so order can be checked; returned in reverse order.
      const data = body.input.map((text, index) => ({ index, embedding: [text.length, 1, 0, 0] })).reverse();
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ data, model: body.model }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

describe('OpenAiEmbedder', () => {
  let server: FakeServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
    setTransformersImporterForTests(undefined);
  });

  it('batches, keeps order, sends the key and normalises', async () => {
    server = await fakeEmbeddingServer(() => false);
    const e = new OpenAiEmbedder({
      baseUrl: server.url,
      model: 'm',
      apiKey: 'sk-test',
      batchSize: 2,
      requestsPerSecond: 1000,
      burst: 10,
    });
    const texts = ['a', 'bbb', 'cc', 'dddd', 'e'];
    const vectors = await e.embed(texts);
    expect(server.requests.map((r) => r.body.input)).toEqual([['a', 'bbb'], ['cc', 'dddd'], ['e']]);
    expect(server.requests[0].auth).toBe('Bearer sk-test');
    expect(e.dimensions).toBe(4);
    vectors.forEach((v, i) => {
      const expected = texts[i].length / Math.sqrt(texts[i].length ** 2 + 1);
      expect(v[0]).toBeCloseTo(expected, 5);
    });
  });

  it('retries 429 and 5xx with backoff, honouring Retry-After', async () => {
    server = await fakeEmbeddingServer((n, res) => {
      if (n === 1) {
        res.writeHead(429, { 'retry-after': '0' }).end('slow down');
        return true;
      }
      if (n === 2) {
        res.writeHead(503).end('busy');
        return true;
      }
      return false;
    });
    const sleeps: number[] = [];
    const clock = {
      now: () => 0,
      sleep: (ms: number) => {
        sleeps.push(ms);
        return Promise.resolve();
      },
    };
    const e = new OpenAiEmbedder({ baseUrl: server.url, model: 'm', backoffMs: 10, clock, random: () => 1 });
    const vectors = await e.embed(['hello']);
    expect(vectors).toHaveLength(1);
    expect(server.requests).toHaveLength(3);
    // Retry-After: 0 is honoured as given; then core's backoff for the second retry (10·2, jitter at its top).
    expect(sleeps).toEqual([0, 20]);
  });

  it('gives up after attemptsMax and does not retry 4xx', async () => {
    server = await fakeEmbeddingServer((n, res) => {
      res.writeHead(n <= 3 ? 500 : 400).end('nope');
      return true;
    });
    const e = new OpenAiEmbedder({ baseUrl: server.url, model: 'm', attemptsMax: 3, backoffMs: 1 });
    const error = await e.embed(['x']).catch((err: unknown) => err);
    expect(isTributaryError(error, 'UNAVAILABLE')).toBe(true);
    expect(server.requests).toHaveLength(3);
    const bad = await e.embed(['y']).catch((err: unknown) => err);
    expect(isTributaryError(bad, 'EXTERNAL')).toBe(true);
    expect(server.requests).toHaveLength(4);
  });

  it('rate-limits requests with the core throttle (burst, then 1000/rate ms apart)', async () => {
    server = await fakeEmbeddingServer(() => false);
    let now = 0;
    const waits: number[] = [];
    const clock = {
      now: () => now,
      sleep: (ms: number) => {
        waits.push(ms);
        now += ms;
        return Promise.resolve();
      },
    };
    const e = new OpenAiEmbedder({
      baseUrl: server.url,
      model: 'm',
      batchSize: 1,
      requestsPerSecond: 2,
      burst: 2,
      clock,
    });
    await e.embed(['a', 'b', 'c', 'd', 'e']);
    // Two from the burst, then one every 500 ms.
    expect(waits).toEqual([500, 500, 500]);
    expect(server.requests).toHaveLength(5);
  });

  it('creates embedders from config and reports a missing transformers.js clearly', async () => {
    expect(createEmbedder({}).name).toBe('hashed-384');
    expect(createEmbedder({ embeddingModel: 'hashed:64' }).dimensions).toBe(64);
    expect(createEmbedder({ embeddingModel: 'openai:text-embedding-3-small' }).dimensions).toBe(1536);
    expect(
      createEmbedder({ embeddingModel: 'nomic-embed-text', embeddingUrl: 'http://127.0.0.1:1/v1' }).name,
    ).toBe('openai:nomic-embed-text');
    expect(() => createEmbedder({ embeddingModel: 'word2vec' })).toThrow(/not one of hashed/);
    setTransformersImporterForTests(() =>
      Promise.reject(new Error("Cannot find package '@huggingface/transformers'")),
    );
    const error = await new HfEmbedder('Xenova/all-MiniLM-L6-v2').embed(['x']).catch((e: unknown) => e);
    expect(isTributaryError(error, 'MODEL_MISSING')).toBe(true);
    expect((error as Error).message).toContain('hf:Xenova/all-MiniLM-L6-v2');
    expect((error as Error).message).toContain('npm i @huggingface/transformers');
  });
});
