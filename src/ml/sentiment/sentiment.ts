import { existsSync } from 'node:fs';
import path from 'node:path';
import { TributaryError } from '../../core/index.js';
import { loadTransformers } from '../transformers.js';
import { Vader } from './vader.js';

export type SentimentLabel = 'positive' | 'neutral' | 'negative';

/**
 * One scored text. `score` is VADER's compound value in [-1, 1] (or, for a Hugging Face model,
 * P(positive) − P(negative)); `label` uses the published VADER thresholds (≥ 0.05 positive,
 * ≤ −0.05 negative). `confidence` ∈ [0, 1] says how far the score lies inside its label's band:
 * for positive `0.5 + 0.5·(score − 0.05)/0.95`, for negative the mirror image, for neutral
 * `0.5 + 0.5·(1 − |score|/0.05)` — so 0.5 means "on a boundary" and 1 means "as clear as the model
 * can say" (±1, or exactly 0 with no sentiment-bearing word at all). For a Hugging Face model it is
 * the probability of the top label.
 */
export interface SentimentResult {
  score: number;
  label: SentimentLabel;
  confidence: number;
}

export interface SentimentModel {
  readonly name: string;
  score(text: string): Promise<SentimentResult>;
  /** Scores many texts; result `i` belongs to `texts[i]`. */
  scoreBatch(texts: readonly string[]): Promise<SentimentResult[]>;
}

export function labelFor(score: number): SentimentLabel {
  if (score >= 0.05) return 'positive';
  if (score <= -0.05) return 'negative';
  return 'neutral';
}

export function vaderConfidence(score: number): number {
  const label = labelFor(score);
  const value =
    label === 'neutral'
      ? 0.5 + 0.5 * (1 - Math.abs(score) / 0.05)
      : 0.5 + (0.5 * (Math.abs(score) - 0.05)) / 0.95;
  return Math.round(Math.min(1, Math.max(0, value)) * 10_000) / 10_000;
}

/**
 * The offline default. Synchronous `scoreSync` for hot loops (stream operators, benchmarks); the
 * async methods satisfy `SentimentModel`.
 *
 * @example
 * const model = new VaderSentiment();
 * model.scoreSync('I love it!'); // { score: 0.6696, label: 'positive', confidence: 0.8261 }
 */
export class VaderSentiment implements SentimentModel {
  readonly name = 'vader';
  readonly #vader = new Vader();

  scoreSync(text: string): SentimentResult {
    const score = this.#vader.compound(text);
    return { score, label: labelFor(score), confidence: vaderConfidence(score) };
  }

  scoreBatchSync(texts: readonly string[]): SentimentResult[] {
    return texts.map((t) => this.scoreSync(t));
  }

  score(text: string): Promise<SentimentResult> {
    return Promise.resolve(this.scoreSync(text));
  }

  scoreBatch(texts: readonly string[]): Promise<SentimentResult[]> {
    return Promise.resolve(this.scoreBatchSync(texts));
  }
}

interface ClassifierOutput {
  label: string;
  score: number;
}
type Classifier = (texts: string[], options: { top_k: number | null }) => Promise<ClassifierOutput[][]>;

/**
 * Any Hugging Face text-classification model through transformers.js, loaded on first use.
 * `hf:<model-id>` resolves through the transformers.js model cache (the library fetches from the
 * Hub only where the network allows it; without network a model missing from the cache fails with
 * MODEL_MISSING); a path loads a local model directory.
 */
export class HfSentiment implements SentimentModel {
  readonly name: string;
  readonly #spec: string;
  #classifier: Promise<Classifier> | undefined;

  constructor(spec: string) {
    this.#spec = spec;
    this.name = spec;
  }

  #load(): Promise<Classifier> {
    this.#classifier ??= (async () => {
      const { modelId, localDir } = parseModelSpec(this.#spec);
      const transformers = await loadTransformers(this.#spec);
      if (localDir !== undefined) {
        transformers.env.allowLocalModels = true;
        transformers.env.localModelPath = path.dirname(localDir);
      }
      try {
        return (await transformers.pipeline(
          'text-classification',
          localDir ? path.basename(localDir) : modelId,
        )) as Classifier;
      } catch (error) {
        throw new TributaryError(
          'MODEL_MISSING',
          `sentiment model ${this.#spec} could not be loaded (${(error as Error).message}); place the model files in a local directory and pass its path, or pre-populate the transformers.js cache`,
          { cause: error },
        );
      }
    })();
    return this.#classifier;
  }

  async score(text: string): Promise<SentimentResult> {
    return (await this.scoreBatch([text]))[0];
  }

  async scoreBatch(texts: readonly string[]): Promise<SentimentResult[]> {
    const classify = await this.#load();
    const outputs = await classify([...texts], { top_k: null });
    return outputs.map((labels) => fromLabels(Array.isArray(labels) ? labels : [labels]));
  }
}

/** Maps classifier labels (POSITIVE/NEGATIVE, LABEL_0..2, "1 star".."5 stars") onto [-1, 1]. */
export function fromLabels(labels: ClassifierOutput[]): SentimentResult {
  let positive = 0;
  let negative = 0;
  let top = labels[0] ?? { label: 'neutral', score: 0 };
  for (const entry of labels) {
    if (entry.score > top.score) top = entry;
    const name = entry.label.toLowerCase();
    const stars = /^([1-5]) stars?$/.exec(name);
    if (stars) {
      const weight = (Number(stars[1]) - 3) / 2;
      if (weight > 0) positive += entry.score * weight;
      else negative += entry.score * -weight;
    } else if (name.startsWith('pos') || name === 'label_2' || (labels.length === 2 && name === 'label_1')) {
      positive += entry.score;
    } else if (name.startsWith('neg') || name === 'label_0') {
      negative += entry.score;
    }
  }
  const score = Math.max(-1, Math.min(1, positive - negative));
  return { score, label: labelFor(score), confidence: Math.min(1, Math.max(0, top.score)) };
}

function parseModelSpec(spec: string): { modelId: string; localDir?: string } {
  if (spec.startsWith('hf:')) return { modelId: spec.slice(3) };
  const dir = path.resolve(spec);
  if (!existsSync(dir)) {
    throw new TributaryError(
      'MODEL_MISSING',
      `sentiment model ${spec}: no such local model directory ${dir}; use "vader", "hf:<model-id>" or the path of a transformers.js model directory`,
    );
  }
  return { modelId: path.basename(dir), localDir: dir };
}

/**
 * `vader` (default) | `hf:<model-id>` | a local model directory. Nothing is imported until the
 * model is used, so the default path never touches transformers.js.
 */
export function createSentimentModel(spec = 'vader'): SentimentModel {
  if (spec === 'vader' || spec === '') return new VaderSentiment();
  if (!spec.startsWith('hf:')) parseModelSpec(spec);
  return new HfSentiment(spec);
}
