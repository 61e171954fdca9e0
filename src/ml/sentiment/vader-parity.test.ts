import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mlDataDir } from '../data/paths.js';
import { VaderReference } from './testing/vader-reference.js';
import { Vader } from './vader.js';

// The allocation-free VADER must give the previous string-based implementation's scores to the
// bit (all four components), so the pipelines' sentiment columns and `npm run eval` do not move.

function evalTexts(file: string): string[] {
  return readFileSync(path.join(mlDataDir(), 'eval', file), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'))
    .map((line) => line.split('\t')[1]);
}

const fast = new Vader();
const reference = new VaderReference();

function expectSame(text: string): void {
  const want = reference.scores(text);
  expect(fast.scores(text), JSON.stringify(text)).toEqual(want);
  expect(Object.is(fast.compound(text), want.compound), JSON.stringify(text)).toBe(true);
}

// Words that exercise every rule: lexicon words, boosters and dampeners, negations (with n't),
// "but", "least", "no", "kind of", the idioms, caps, emoticons, punctuation runs, emoji and
// non-ASCII case mappings (Kelvin sign, dotted İ, final sigma, German ß).
const vocabulary = [
  'good', 'great', 'bad', 'terrible', 'love', 'hate', 'ok', 'meh', 'broken', 'heart', 'beating',
  'the', 'shit', 'bomb', 'bad', 'ass', 'badass', 'bus', 'stop', 'yeah', 'right', 'kiss', 'of',
  'death', 'to', 'die', 'for', 'just', 'enough', 'kind', 'sort', 'kinda', 'very', 'extremely',
  'slightly', 'barely', 'so', 'this', 'never', 'not', "isn't", 'isnt', "DON'T", 'without', 'doubt',
  'no', 'or', 'nor', 'but', 'BUT', 'least', 'at', "couldn't've", "WOULDN'T'VE", 'GOOD', 'Great', 'LOVE', 'HATE', 'uh-uh',
  ':)', ':(', ':D', ';)', '<3', '!!!', '?', '??', '...', ',', '"good"', '(bad)', 'good!', 'bad?',
  'lol', 'sux', 'SUX', '😁', '💘', '👎', '🙂', '\u212Aind', 'İyi', 'ΣΟΦΟΣ', 'straße', 'café', 'naïve',
  'ﬁne', 'can\u2019t', 'won\u2019t', 'x', '', 'and', 'it', 'was', 'battery', 'charging', 'quick',
  // whole idioms, so the n-gram rules fire often
  'kiss of death', 'to die for', 'the bomb', 'the shit', 'yeah right', 'bus stop', 'broken heart',
  'kind of good', 'sort of bad', 'just enough', 'never so good', 'never this bad', 'without doubt',
  'without a doubt', 'at least', 'very least', 'the least', 'no good', 'no or bad', 'not very good',
]; // prettier-ignore
const separators = [' ', ' ', ' ', '  ', '\t', '\n', '\u00a0', '\u3000', ', ', '. ', '! ', '? '];

const sentenceArbitrary = fc
  .array(fc.tuple(fc.constantFrom(...vocabulary), fc.constantFrom(...separators)), { maxLength: 40 })
  .map((parts) => parts.map(([w, s]) => w + s).join(''));

describe('allocation-free VADER', () => {
  it.each(['sentiment-labelled.tsv', 'reviews-labelled.tsv'])(
    'scores every text of the %s evaluation set exactly as the previous implementation',
    (file) => {
      const texts = evalTexts(file);
      expect(texts.length).toBeGreaterThan(50);
      for (const text of texts) expectSame(text);
    },
  );

  it('agrees with the previous implementation on random sentences of rule words (seeded)', () => {
    fc.assert(
      fc.property(sentenceArbitrary, (text) => {
        expectSame(text);
      }),
      { seed: 20261203, numRuns: 5000 },
    );
  });

  it('agrees with the previous implementation on arbitrary Unicode text (seeded)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (text) => {
        expectSame(text);
      }),
      { seed: 7, numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(..."aAnN't! ?:)(-.,😁İK"), maxLength: 60 }), (text) => {
        expectSame(text);
      }),
      { seed: 11, numRuns: 2000 },
    );
  });

  it('agrees on long texts (token buffers grow) and after them on short ones (buffers reused)', () => {
    const long = Array.from({ length: 700 }, (_, i) => vocabulary[(i * 13) % vocabulary.length]).join(' ');
    expectSame(long);
    expectSame('not bad at all');
    expectSame('');
  });
});
