import fc from 'fast-check';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { decodeStream, type DecodedRecord } from './decode.js';

/** Decodes `bytes` delivered in pieces cut at `cuts` (the stream's chunk boundaries). */
async function decodeInChunks(
  bytes: Buffer,
  cuts: number[],
  format: 'txt' | 'jsonl',
): Promise<DecodedRecord[]> {
  const chunks: Buffer[] = [];
  let last = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    chunks.push(bytes.subarray(last, cut));
    last = cut;
  }
  chunks.push(bytes.subarray(last));
  const out: DecodedRecord[] = [];
  for await (const record of decodeStream(Readable.from(chunks), {
    format,
    gzip: false,
    name: 'f',
    badRecords: 'yield',
  }))
    out.push(record);
  return out;
}

describe('decodeStream: line bytes', () => {
  it("hands out each line's bytes: exactly what encoding its value gives (BOM, CRLF, non-ASCII, pieces)", async () => {
    const text = '\uFEFF{"a":"é"}\r\n{"b":"日本"}\n\nnot json\r\n{"c":"😀"}';
    const bytes = Buffer.from(text, 'utf8');
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: bytes.length }), { maxLength: 6 }),
        async (cuts) => {
          for (const format of ['txt', 'jsonl'] as const) {
            const records = await decodeInChunks(bytes, cuts, format);
            expect(records.map((r) => r.value)).toEqual([
              '{"a":"é"}',
              '{"b":"日本"}',
              'not json',
              '{"c":"😀"}',
            ]);
            for (const record of records)
              expect(Buffer.from(record.bytes!).equals(Buffer.from(record.value, 'utf8'))).toBe(true);
          }
        },
      ),
      { seed: 41, numRuns: 200 },
    );
  });
});
