import { describe, expect, it } from 'vitest';
import { evaluateRag, readRagQuestions } from '../../bench/eval.js';

/** The RAG eval counts an answer only when it contains the fact the question asks for. */
describe('RAG eval', () => {
  it('every answerable question names the fact its answer must contain', async () => {
    const questions = await readRagQuestions();
    const answerable = questions.filter((q) => q.document !== null);
    expect(answerable.length).toBeGreaterThan(20);
    for (const q of answerable) expect(q.fact, q.question).toMatch(/\S/);
  });

  it('an answer without the expected fact is not counted as answered', async () => {
    const question = 'How many days do I have to return an item?';
    const right = await evaluateRag([{ question, document: 'returns-and-refunds.md', fact: '30 days' }]);
    expect(right.answered).toBe(1);
    expect(right.wrong).toEqual([]);
    const wrong = await evaluateRag([{ question, document: 'returns-and-refunds.md', fact: '90 days' }]);
    expect(wrong.answered).toBe(0);
    expect(wrong.wrong).toHaveLength(1);
    expect(wrong.wrong[0]).toContain('expected "90 days"');
  });

  it('reports the shipped questions', async () => {
    const report = await evaluateRag();
    // Printed for the reader; the figure is the eval's, not a pass mark.
    console.log(`RAG eval: answered with the fact ${report.answered}`, report.wrong);
    expect(report.answered).toBeGreaterThan(0);
  });
});
