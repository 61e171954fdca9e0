import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonArrayElements } from './json-array.js';

const texts = (body: string) =>
  jsonArrayElements(Buffer.from(body)).map((e) => Buffer.from(e).toString('utf8'));

describe('jsonArrayElements', () => {
  it('slices each element as sent, trimming the whitespace around it', () => {
    expect(texts('[]')).toEqual([]);
    expect(texts(' [ ] ')).toEqual([]);
    expect(texts('[1]')).toEqual(['1']);
    expect(texts('\n[ {"a": [1, {"b": "]},"}]} ,\t"x\\"y,]" , null,12345678901234567890, 1.50 ]\n')).toEqual([
      '{"a": [1, {"b": "]},"}]}',
      '"x\\"y,]"',
      'null',
      '12345678901234567890',
      '1.50',
    ]);
    expect(texts('["é€😀", "\\\\"]')).toEqual(['"é€😀"', '"\\\\"']);
  });

  it('gives back elements that parse to what JSON.parse of the whole array gives (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.jsonValue()), fc.boolean(), (values, pretty) => {
        const body = JSON.stringify(values, null, pretty ? 2 : undefined);
        const elements = texts(body);
        expect(elements.map((e) => JSON.parse(e) as unknown)).toEqual(JSON.parse(body));
      }),
      { seed: 18, numRuns: 300 },
    );
  });
});
