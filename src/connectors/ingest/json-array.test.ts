import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTributaryError } from '../../core/index.js';
import { jsonArrayElements, startsAsJsonArray } from './json-array.js';

const texts = (body: string | Uint8Array) =>
  jsonArrayElements(typeof body === 'string' ? Buffer.from(body) : body).map((e) =>
    Buffer.from(e).toString('utf8'),
  );

/** What JSON.parse says of `body`: its elements (as values), or 'invalid'. */
function parsed(body: string): unknown {
  try {
    const value = JSON.parse(body) as unknown;
    return Array.isArray(value) ? value : 'not an array';
  } catch {
    return 'invalid';
  }
}

function ours(body: string): unknown {
  try {
    return texts(body).map((e) => JSON.parse(e) as unknown);
  } catch (error) {
    if (isTributaryError(error) && error.code === 'INVALID_ARGUMENT') return 'invalid';
    throw error;
  }
}

describe('jsonArrayElements', () => {
  it('slices each element as sent, trimming the whitespace around it', () => {
    expect(texts('[]')).toEqual([]);
    expect(texts(' [ ] ')).toEqual([]);
    expect(texts('[1]')).toEqual(['1']);
    expect(
      texts(
        '\n[ {"a": [1, {"b": "]},"}]} ,\t"x\\"y,]" , null,12345678901234567890, -1.50e+3 , true,false]\n',
      ),
    ).toEqual([
      '{"a": [1, {"b": "]},"}]}',
      '"x\\"y,]"',
      'null',
      '12345678901234567890',
      '-1.50e+3',
      'true',
      'false',
    ]);
    expect(texts('["é€😀", "\\\\", "\\u00e9"]')).toEqual(['"é€😀"', '"\\\\"', '"\\u00e9"']);
  });

  it('refuses what JSON.parse refuses, naming the byte', () => {
    for (const bad of [
      '[',
      '[1,]',
      '[,1]',
      '[1 2]',
      '[01]',
      '[1.]',
      '[.5]',
      '[1e]',
      '[-]',
      '["a\tb"]',
      '["\\x"]',
      '["\\u12G4"]',
      '["open]',
      '[{"a" 1}]',
      '[{a: 1}]',
      '[{"a": 1,}]',
      '[tru]',
      '[nul]',
      '[1]]',
      '[1] x',
      '[{"a": [1}]',
      '{"a": 1}',
    ]) {
      expect(parsed(bad), bad).not.toBeInstanceOf(Array);
      expect(() => jsonArrayElements(Buffer.from(bad)), bad).toThrow(/not valid JSON/);
    }
    expect(() => jsonArrayElements(Buffer.from('[1,]'))).toThrow('at byte 3');
    expect(() => jsonArrayElements(Buffer.from([0x5b, 0x22, 0xff, 0x22, 0x5d]))).toThrow(/UTF-8/);
    expect(startsAsJsonArray(Buffer.from(' \n[1]'))).toBe(true);
    // Nesting is bounded like parseJsonBounded: the outer array is level 1.
    expect(texts('[[[1]], {"a": [2]}]')).toEqual(['[[1]]', '{"a": [2]}']);
    expect(() => jsonArrayElements(Buffer.from('[[[1]]]'), 2)).toThrow(/more than 2 levels/);
    expect(jsonArrayElements(Buffer.from('[[1], {"a": 2}]'), 2)).toHaveLength(2);
    expect(startsAsJsonArray(Buffer.from('{"records": []}'))).toBe(false);
  });

  it('agrees with JSON.parse on valid arrays, pretty or not (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.jsonValue()), fc.boolean(), (values, pretty) => {
        const body = JSON.stringify(values, null, pretty ? 2 : undefined);
        expect(ours(body)).toEqual(parsed(body));
      }),
      { seed: 18, numRuns: 300 },
    );
  });

  it('agrees with JSON.parse on damaged arrays: same accept or refuse, same values (property)', () => {
    const alphabet = [...'[]{},:"\\ -+.0123456789eEtruefalsn\tu\n'];
    fc.assert(
      fc.property(
        fc.array(fc.jsonValue(), { minLength: 1, maxLength: 4 }),
        fc.nat(),
        fc.constantFrom(...alphabet),
        fc.constantFrom('insert', 'replace', 'delete'),
        (values, at, char, how) => {
          const good = JSON.stringify(values);
          const p = 1 + (at % (good.length - 1));
          const body =
            how === 'insert'
              ? good.slice(0, p) + char + good.slice(p)
              : how === 'replace'
                ? good.slice(0, p) + char + good.slice(p + 1)
                : good.slice(0, p) + good.slice(p + 1);
          expect(ours(body)).toEqual(parsed(body));
        },
      ),
      { seed: 1818, numRuns: 3000 },
    );
  });
});
