import {
  limits,
  parseRetryAfter,
  retry,
  systemClock,
  Throttle,
  toTributaryError,
  TributaryError,
  type Clock,
} from '../../core/index.js';
import { loadTransformers } from '../transformers.js';

/**
 * Turns texts into fixed-size vectors. Every implementation returns L2-normalised vectors so the
 * index can use the inner product as cosine similarity.
 */
export interface Embedder {
  /** Name recorded in the index manifest, so an index is never queried with another model. */
  readonly name: string;
  /** Vector length; for a remote model it may be learned from the first response (0 until then). */
  readonly dimensions: number;
  /** `signal` stops a remote model's requests (the API request that asked timed out or left). */
  embed(texts: readonly string[], options?: { signal?: AbortSignal | undefined }): Promise<Float32Array[]>;
}

export function l2Normalise(vector: Float32Array): Float32Array {
  let sum = 0;
  for (let i = 0; i < vector.length; i++) sum += vector[i] * vector[i];
  if (sum > 0) {
    const inv = 1 / Math.sqrt(sum);
    for (let i = 0; i < vector.length; i++) vector[i] *= inv;
  }
  return vector;
}

// ---------------------------------------------------------------------------------------------
// Offline default: hashed word + character n-gram vectors
// ---------------------------------------------------------------------------------------------

/**
 * English stop words: the embedder weighs them down, BM25 ignores them (they would match nearly
 * every chunk). One list, so both retrieval paths agree on what carries no meaning.
 */
export const englishStopwords: ReadonlySet<string> = new Set(
  (
    'a about above after again against all am an and any are as at be because been before being below between both but by ' +
    'can could did do does doing down during each few for from further had has have having he her here hers herself him ' +
    'himself his how i if in into is it its itself just me more most my myself no nor not now of off on once only or other ' +
    'our ours ourselves out over own same she should so some such than that the their theirs them themselves then there ' +
    'these they this those through to too under until up very was we were what when where which while who whom why will ' +
    'with would you your yours yourself yourselves'
  ).split(' '),
);

/** FNV-1a, 32-bit: small, fast and stable across platforms and versions. */
function fnv1a(text: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Lower-cased word tokens (letters and digits), light plural stemming so "refunds" ≈ "refund". */
export function wordTokens(text: string): string[] {
  const words = text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  return words.map((w) => (w.length > 4 && w.endsWith('s') && !w.endsWith('ss') ? w.slice(0, -1) : w));
}

export interface HashedEmbedderOptions {
  /** Vector length (default 384). */
  dimensions?: number;
}

/**
 * Feature-hashing embedder that needs no model file. Features: content words (weight 1), word
 * bigrams (0.5) and character trigrams of each content word with boundary marks (0.25 each),
 * stop words at 0.1. Term frequency is sublinear (1 + ln tf), each feature is hashed to a
 * dimension with a sign from a second hash (so collisions cancel in expectation), and the vector
 * is L2-normalised. Deterministic: the same text always gives the same vector.
 *
 * @example
 * const [v] = await new HashedEmbedder().embed(['refund policy']); // Float32Array(384)
 */
export class HashedEmbedder implements Embedder {
  readonly name: string;
  readonly dimensions: number;

  constructor(options: HashedEmbedderOptions = {}) {
    this.dimensions = options.dimensions ?? 384;
    if (!Number.isInteger(this.dimensions) || this.dimensions < 8) {
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `hashed embedder dimensions must be an integer >= 8, got ${this.dimensions}`,
      );
    }
    this.name = `hashed-${this.dimensions}`;
  }

  embedSync(text: string): Float32Array {
    const counts = new Map<string, number>();
    const add = (feature: string, weight: number) => counts.set(feature, (counts.get(feature) ?? 0) + weight);
    const words = wordTokens(text);
    let previous: string | undefined;
    for (const word of words) {
      if (englishStopwords.has(word)) {
        add(`w:${word}`, 0.1);
        previous = undefined;
        continue;
      }
      add(`w:${word}`, 1);
      if (previous !== undefined) add(`b:${previous} ${word}`, 0.5);
      previous = word;
      const marked = `<${word}>`;
      for (let i = 0; i + 3 <= marked.length; i++) add(`c:${marked.slice(i, i + 3)}`, 0.25);
    }
    const vector = new Float32Array(this.dimensions);
    for (const [feature, tf] of counts) {
      const h = fnv1a(feature);
      const sign = fnv1a(feature, 0x9747b28c) & 1 ? 1 : -1;
      // Sublinear tf on the weighted count keeps one repeated word from dominating.
      vector[h % this.dimensions] += sign * (tf >= 1 ? 1 + Math.log(tf) : tf);
    }
    return l2Normalise(vector);
  }

  embed(texts: readonly string[]): Promise<Float32Array[]> {
    return Promise.resolve(texts.map((t) => this.embedSync(t)));
  }
}

// ---------------------------------------------------------------------------------------------
// OpenAI-compatible /v1/embeddings
// ---------------------------------------------------------------------------------------------

export interface OpenAiEmbedderOptions {
  /** Base URL including `/v1`, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:11434/v1`. */
  baseUrl: string;
  model: string;
  apiKey?: string | undefined;
  /** Texts per request (default 64). */
  batchSize?: number;
  /** Throttle (token bucket): sustained requests per second (default 5) and burst (default 5). */
  requestsPerSecond?: number;
  burst?: number;
  /** Attempts per request, first included (default limits.retryAttemptsMax). */
  attemptsMax?: number;
  /** First retry delay; doubles each attempt, capped by limits.retryBackoffMsMax (default 500). */
  backoffMs?: number;
  timeoutMs?: number;
  /** Known dimension; otherwise learned from the first response. */
  dimensions?: number;
  /** Injected for tests. */
  fetch?: typeof fetch;
  clock?: Clock;
  random?: () => number;
}

/**
 * POST JSON with retries on 429, 5xx and network errors (core's `retry`: jittered backoff,
 * Retry-After as seconds or HTTP date, capped by limits.retryBackoffMsMax).
 */
export async function postJsonWithRetry(
  url: string,
  body: unknown,
  options: {
    apiKey?: string | undefined;
    attemptsMax: number;
    backoffMs: number;
    timeoutMs: number;
    fetch: typeof fetch;
    clock?: Clock;
    random?: () => number;
    what: string;
    /** Aborts the request and its retries (with the signal's reason, e.g. the route's TIMEOUT). */
    signal?: AbortSignal | undefined;
  },
): Promise<Response> {
  const clock = options.clock ?? systemClock;
  const signal = options.signal;
  const transient = new WeakSet<TributaryError>();
  try {
    return await retry(
      async () => {
        let response: Response;
        try {
          response = await options.fetch(url, {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}),
            },
            body: JSON.stringify(body),
            signal:
              signal === undefined
                ? AbortSignal.timeout(options.timeoutMs)
                : AbortSignal.any([signal, AbortSignal.timeout(options.timeoutMs)]),
          });
        } catch (error) {
          // Our caller gave up: its reason, not a retryable network failure.
          if (signal?.aborted) throw toTributaryError(signal.reason, 'TIMEOUT');
          const failure = new TributaryError('UNAVAILABLE', (error as Error).message, { cause: error });
          transient.add(failure);
          throw failure;
        }
        if (response.ok) return response;
        const text = (await response.text()).slice(0, 300);
        const detail = `HTTP ${response.status}: ${text}`;
        if (response.status !== 429 && response.status < 500) {
          throw new TributaryError(
            response.status === 401 || response.status === 403 ? 'UNAUTHENTICATED' : 'EXTERNAL',
            `${options.what} ${url} refused the request: ${detail}`,
            { domain: 'user' },
          );
        }
        const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), clock.now());
        const failure = new TributaryError('UNAVAILABLE', detail, {
          ...(retryAfterMs === null ? {} : { retryAfterMs }),
        });
        transient.add(failure);
        throw failure;
      },
      {
        attemptsMax: options.attemptsMax,
        baseMs: options.backoffMs,
        maxMs: limits.retryBackoffMsMax,
        clock,
        ...(options.random ? { random: options.random } : {}),
        ...(signal === undefined ? {} : { signal }),
        retryable: (error) => error instanceof TributaryError && transient.has(error),
      },
    );
  } catch (error) {
    if (error instanceof TributaryError && transient.has(error)) {
      throw new TributaryError(
        'UNAVAILABLE',
        `${options.what} ${url} failed after ${options.attemptsMax} attempts: ${error.message}`,
        { cause: error, ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs }) },
      );
    }
    throw error;
  }
}

const knownDimensions: Record<string, number> = {
  'text-embedding-3-small': 1536,
  'text-embedding-3-large': 3072,
  'text-embedding-ada-002': 1536,
};

/**
 * Any OpenAI-compatible embeddings endpoint (OpenAI, Ollama, vLLM, LM Studio): batches texts,
 * limits the request rate with core's `Throttle`, retries 429/5xx with core's `retry`.
 */
export class OpenAiEmbedder implements Embedder {
  readonly name: string;
  #dimensions: number;
  readonly #options: Required<Omit<OpenAiEmbedderOptions, 'apiKey' | 'dimensions' | 'random'>> & {
    apiKey?: string | undefined;
    random?: () => number;
  };
  readonly #throttle: Throttle;

  constructor(options: OpenAiEmbedderOptions) {
    this.name = `openai:${options.model}`;
    this.#dimensions = options.dimensions ?? knownDimensions[options.model] ?? 0;
    this.#options = {
      baseUrl: options.baseUrl.replace(/\/+$/, ''),
      model: options.model,
      apiKey: options.apiKey,
      batchSize: options.batchSize ?? 64,
      requestsPerSecond: options.requestsPerSecond ?? 5,
      burst: options.burst ?? 5,
      attemptsMax: options.attemptsMax ?? limits.retryAttemptsMax,
      backoffMs: options.backoffMs ?? 500,
      timeoutMs: options.timeoutMs ?? 60_000,
      fetch: options.fetch ?? fetch,
      clock: options.clock ?? systemClock,
      ...(options.random ? { random: options.random } : {}),
    };
    this.#throttle = new Throttle(
      { ratePerSecond: this.#options.requestsPerSecond, burst: this.#options.burst },
      this.#options.clock,
    );
  }

  get dimensions(): number {
    return this.#dimensions;
  }

  async embed(
    texts: readonly string[],
    options: { signal?: AbortSignal | undefined } = {},
  ): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    const url = `${this.#options.baseUrl}/embeddings`;
    for (let i = 0; i < texts.length; i += this.#options.batchSize) {
      const batch = texts.slice(i, i + this.#options.batchSize);
      await this.#throttle.take(options.signal);
      const response = await postJsonWithRetry(
        url,
        { model: this.#options.model, input: batch },
        { ...this.#options, what: 'embedding endpoint', signal: options.signal },
      );
      const json = (await response.json()) as { data?: { embedding?: unknown; index?: number }[] };
      if (!Array.isArray(json.data) || json.data.length !== batch.length) {
        throw new TributaryError(
          'EXTERNAL',
          `embedding endpoint ${url} returned ${Array.isArray(json.data) ? json.data.length : 'no'} vectors for ${batch.length} inputs`,
        );
      }
      const ordered = [...json.data].sort((a, b) => (a.index ?? 0) - (b.index ?? 0));
      for (const item of ordered) {
        if (!Array.isArray(item.embedding) || item.embedding.some((x) => typeof x !== 'number')) {
          throw new TributaryError('EXTERNAL', `embedding endpoint ${url} returned a non-numeric embedding`);
        }
        const vector = l2Normalise(Float32Array.from(item.embedding as number[]));
        if (this.#dimensions === 0) this.#dimensions = vector.length;
        if (vector.length !== this.#dimensions) {
          throw new TributaryError(
            'EXTERNAL',
            `embedding endpoint ${url} returned ${vector.length} dimensions, expected ${this.#dimensions}`,
          );
        }
        out.push(vector);
      }
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Hugging Face feature extraction via transformers.js
// ---------------------------------------------------------------------------------------------

type FeatureExtractor = (
  texts: string[],
  options: { pooling: 'mean'; normalize: boolean },
) => Promise<{ dims: number[]; data: Float32Array | number[] }>;

/** A transformers.js feature-extraction model (mean pooling, normalised), imported lazily. */
export class HfEmbedder implements Embedder {
  readonly name: string;
  #dimensions = 0;
  readonly #model: string;
  #extractor: Promise<FeatureExtractor> | undefined;

  constructor(model: string) {
    this.#model = model;
    this.name = `hf:${model}`;
  }

  get dimensions(): number {
    return this.#dimensions;
  }

  async embed(texts: readonly string[]): Promise<Float32Array[]> {
    this.#extractor ??= (async () => {
      const transformers = await loadTransformers(this.name);
      try {
        return (await transformers.pipeline('feature-extraction', this.#model)) as FeatureExtractor;
      } catch (error) {
        throw new TributaryError(
          'MODEL_MISSING',
          `embedding model ${this.name} could not be loaded (${(error as Error).message}); provide the model files in the transformers.js cache or a local model directory, or use embeddingModel=hashed`,
          { cause: error },
        );
      }
    })();
    const extract = await this.#extractor;
    if (texts.length === 0) return [];
    const output = await extract([...texts], { pooling: 'mean', normalize: true });
    const dims = output.dims[output.dims.length - 1];
    this.#dimensions = dims;
    const data = Float32Array.from(output.data);
    return texts.map((_, i) => l2Normalise(data.slice(i * dims, (i + 1) * dims)));
  }
}

export interface EmbedderConfig {
  /** `hashed` (default) | `hashed:<dims>` | `hf:<model-id>` | `openai:<model>`. */
  embeddingModel?: string | undefined;
  embeddingUrl?: string | undefined;
  embeddingApiKey?: string | undefined;
}

/**
 * Builds the embedder a configuration names. A bare model name with `embeddingUrl` set is
 * treated as an OpenAI-compatible model served there (e.g. Ollama's `nomic-embed-text`).
 *
 * @example
 * const embedder = createEmbedder({ embeddingModel: 'openai:text-embedding-3-small', embeddingApiKey: key });
 */
export function createEmbedder(config: EmbedderConfig = {}): Embedder {
  const model = config.embeddingModel ?? 'hashed';
  if (model === 'hashed') return new HashedEmbedder();
  const hashed = /^hashed:(\d+)$/.exec(model);
  if (hashed) return new HashedEmbedder({ dimensions: Number(hashed[1]) });
  if (model.startsWith('hf:')) return new HfEmbedder(model.slice(3));
  if (model.startsWith('openai:') || config.embeddingUrl !== undefined) {
    return new OpenAiEmbedder({
      baseUrl: config.embeddingUrl ?? 'https://api.openai.com/v1',
      model: model.replace(/^openai:/, ''),
      apiKey: config.embeddingApiKey,
    });
  }
  throw new TributaryError(
    'CONFIG_INVALID',
    `embeddingModel ${JSON.stringify(model)} is not one of hashed, hashed:<dims>, hf:<model-id>, openai:<model> (or set embeddingUrl)`,
  );
}
