import { afterEach, describe, expect, it } from 'vitest';
import { isTributaryError } from '../../core/index.js';
import { setTransformersImporterForTests } from '../transformers.js';
import { createSentimentModel, fromLabels, HfSentiment, VaderSentiment } from './sentiment.js';

afterEach(() => setTransformersImporterForTests(undefined));

describe('Hugging Face sentiment models', () => {
  it('does not import transformers.js for the default model', () => {
    let imported = false;
    setTransformersImporterForTests(() => {
      imported = true;
      return Promise.reject(new Error('unexpected'));
    });
    expect(createSentimentModel('vader')).toBeInstanceOf(VaderSentiment);
    expect(createSentimentModel('hf:some/model')).toBeInstanceOf(HfSentiment);
    expect(imported).toBe(false);
  });

  it('fails with MODEL_MISSING naming the model when transformers.js is not installed', async () => {
    // The real dynamic import: @huggingface/transformers is not a dependency of this project.
    const error = await createSentimentModel('hf:distilbert-base-uncased-finetuned-sst-2-english')
      .score('hi')
      .catch((e: unknown) => e);
    expect(isTributaryError(error, 'MODEL_MISSING')).toBe(true);
    expect((error as Error).message).toContain('hf:distilbert-base-uncased-finetuned-sst-2-english');
    expect((error as Error).message).toContain('npm i @huggingface/transformers');
  });

  it('refuses a local model directory that does not exist', () => {
    expect(() => createSentimentModel('/nonexistent/model-dir')).toThrow(/no such local model directory/);
  });

  it('loads the pipeline once, lazily, and maps labels onto [-1, 1]', async () => {
    const calls: string[] = [];
    setTransformersImporterForTests(() =>
      Promise.resolve({
        env: { allowLocalModels: false, localModelPath: '' },
        pipeline: (task: string, model: string) => {
          calls.push(`${task}:${model}`);
          return Promise.resolve((texts: string[]) =>
            Promise.resolve(
              texts.map((t) =>
                t.includes('good')
                  ? [
                      { label: 'POSITIVE', score: 0.9 },
                      { label: 'NEGATIVE', score: 0.1 },
                    ]
                  : [
                      { label: 'NEGATIVE', score: 0.8 },
                      { label: 'POSITIVE', score: 0.2 },
                    ],
              ),
            ),
          );
        },
      }),
    );
    const model = new HfSentiment('hf:acme/sst2');
    const results = await model.scoreBatch(['good stuff', 'meh']);
    await model.score('good');
    expect(calls).toEqual(['text-classification:acme/sst2']);
    expect(results[0]).toEqual({ score: expect.closeTo(0.8, 6), label: 'positive', confidence: 0.9 });
    expect(results[1]).toEqual({ score: expect.closeTo(-0.6, 6), label: 'negative', confidence: 0.8 });
  });

  it('maps star ratings and LABEL_n outputs', () => {
    expect(fromLabels([{ label: '5 stars', score: 1 }]).score).toBe(1);
    expect(fromLabels([{ label: '1 star', score: 1 }]).score).toBe(-1);
    expect(fromLabels([{ label: '3 stars', score: 1 }]).label).toBe('neutral');
    expect(
      fromLabels([
        { label: 'LABEL_2', score: 0.7 },
        { label: 'LABEL_0', score: 0.2 },
        { label: 'LABEL_1', score: 0.1 },
      ]).score,
    ).toBeCloseTo(0.5);
  });
});
