import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { detectDocumentKind, safeFileName } from './filetype.js';
import { originalKey, originalPath } from './ingest.js';
import { decodePayload, embeddingSchema, windowCountPayload, windowStartOf } from './payloads.js';

const all = ['pdf', 'txt', 'md', 'html', 'docx'] as const;

describe('document type checks', () => {
  it('needs extension and first bytes to agree', () => {
    expect(detectDocumentKind('a.PDF', Buffer.from('%PDF-1.4 ...'), all)).toBe('pdf');
    expect(detectDocumentKind('a.docx', Buffer.from([0x50, 0x4b, 0x03, 0x04, 1]), all)).toBe('docx');
    expect(detectDocumentKind('a.htm', Buffer.from('\uFEFF  <!DOCTYPE html><p>x'), all)).toBe('html');
    expect(detectDocumentKind('a.markdown', Buffer.from('# héllo'), all)).toBe('md');
    expect(() => detectDocumentKind('a.txt', Buffer.from([0xff, 0xfe, 0x00]), all)).toThrow(
      /does not look like TXT/,
    );
    expect(() => detectDocumentKind('a.docx', Buffer.from('text'), ['pdf', 'txt'])).toThrow(
      /extension ".docx" is not accepted/,
    );
    expect(() => detectDocumentKind('noext', Buffer.from('text'), all)).toThrow(/UNSUPPORTED|not accepted/);
  });

  it('turns any file name into one safe path segment with the right extension', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), fc.constantFrom(...all), (name, kind) => {
        const safe = safeFileName(name, kind);
        expect(safe).toMatch(/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/);
        expect(safe.includes('..')).toBe(false);
        expect(safe.length).toBeLessThanOrEqual(110);
        expect(safe.toLowerCase().endsWith(`.${kind}`) || /\.(text|log|markdown|htm|xhtml)$/.test(safe)).toBe(
          true,
        );
      }),
      { seed: 42, numRuns: 500 },
    );
    expect(safeFileName('../../etc/passwd.txt', 'txt')).toBe('passwd.txt');
    expect(safeFileName('C:\\Users\\x\\Q3 report.PDF', 'pdf')).toBe('Q3_report.pdf');
  });

  it('maps s3_path back to a storage key only inside the originals prefix', () => {
    const root = 's3://bucket/lake';
    const key = 'originals/documents/acme/d1/a.pdf';
    expect(originalKey(root, originalPath(root, key))).toBe(key);
    expect(() => originalKey(root, `${root}/originals/documents/../../_catalog/x`)).toThrow(
      /not a stored original/,
    );
    expect(() => originalKey(root, `${root}/bronze/x.parquet`)).toThrow(/not a stored original/);
  });
});

describe('payloads', () => {
  it('formats windows as ISO-8601 UTC and aligns them to the minute', () => {
    const ts = Date.UTC(2026, 10, 22, 10, 1, 59, 999);
    expect(windowStartOf(ts)).toBe(Date.UTC(2026, 10, 22, 10, 1));
    expect(windowCountPayload('acme', windowStartOf(ts), 3)).toEqual({
      window_start: '2026-11-22T10:01:00.000Z',
      window_end: '2026-11-22T10:02:00.000Z',
      company_id: 'acme',
      chunk_count: 3,
    });
  });

  it('names topic, partition, offset and field of a bad record', () => {
    const origin = { topic: 'embeddings.ready', partition: 2, offset: 17 };
    expect(() =>
      decodePayload(
        embeddingSchema,
        '{"chunk_id":"c","document_id":"d","company_id":"acme","vector":"x"}',
        origin,
      ),
    ).toThrow(/embeddings.ready\[2\]@17: field "vector"/);
    expect(() => decodePayload(embeddingSchema, 'not json', origin)).toThrow(/not JSON/);
  });
});
