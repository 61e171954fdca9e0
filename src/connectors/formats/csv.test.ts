import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CsvParser, csvField } from './csv.js';

function parseInChunks(text: string, cuts: number[]): string[][] {
  const parser = new CsvParser();
  const rows: string[][] = [];
  let last = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    rows.push(...parser.push(text.slice(last, cut)).map((r) => r.fields));
    last = cut;
  }
  rows.push(...parser.push(text.slice(last)).map((r) => r.fields));
  rows.push(...parser.end().map((r) => r.fields));
  return rows;
}

describe('CsvParser (RFC 4180)', () => {
  it('handles quotes, escaped quotes, delimiters and newlines inside quotes, CRLF, and line numbers', () => {
    const parser = new CsvParser();
    const rows = [...parser.push('a,"b ""q"""\r\n1,"x\ny"\n\n2,z'), ...parser.end()];
    expect(rows).toEqual([
      { fields: ['a', 'b "q"'], line: 1 },
      { fields: ['1', 'x\ny'], line: 2 },
      { fields: ['2', 'z'], line: 5 },
    ]);
  });

  it('keeps empty fields and a trailing empty field', () => {
    const parser = new CsvParser();
    expect([...parser.push(',a,\n""\n'), ...parser.end()].map((r) => r.fields)).toEqual([
      ['', 'a', ''],
      [''],
    ]);
  });

  it('rejects text after a closing quote and an unterminated quote', () => {
    expect(() => new CsvParser().push('"a"b\n')).toThrow(/after closing quote/);
    const parser = new CsvParser();
    parser.push('x,"open\n');
    expect(() => parser.end()).toThrow(/line 1: quoted field is never closed/);
  });

  it('round-trips any table through csvField at any chunk boundaries (property)', () => {
    const field = fc.string({
      unit: fc.constantFrom('a', 'b', ',', '"', '\n', '\r', ' ', 'é'),
      maxLength: 6,
    });
    const table = fc.array(fc.array(field, { minLength: 2, maxLength: 2 }), { minLength: 1, maxLength: 8 });
    fc.assert(
      fc.property(table, fc.array(fc.nat(200), { maxLength: 5 }), (rows, cuts) => {
        // A row that is one empty field is indistinguishable from a blank line; our rows have 2 fields.
        const text = rows.map((r) => r.map((f) => csvField(f)).join(',')).join('\r\n');
        const parsed = parseInChunks(
          text,
          cuts.map((c) => Math.min(c, text.length)),
        );
        expect(parsed).toEqual(rows);
      }),
      { seed: 42, numRuns: 500 },
    );
  });
});
