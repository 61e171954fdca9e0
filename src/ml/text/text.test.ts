import fc from 'fast-check';
import { PDFDocument, StandardFonts } from 'pdf-lib';
import { describe, expect, it } from 'vitest';
import { isTributaryError } from '../../core/index.js';
import { chunkDocument, sentenceUnits } from './chunk.js';
import { decodeEntities, extractText, htmlToText, markdownToText } from './extract.js';
import { zip } from '../../../test/fixtures/zip.js';

const utf8 = (s: string) => new TextEncoder().encode(s);

describe('extraction', () => {
  it('strips HTML tags, scripts, styles and comments and decodes entities', () => {
    const html = `<!doctype html><html><head><title>Refunds</title><style>p{color:red}</style>
      <script>var x = "<p>not text</p>";</script></head>
      <body><h1>Refund&nbsp;policy</h1><!-- hidden --><p>Refunds take 5&ndash;7 days &amp; are &lt;free&gt;.</p>
      <ul><li>One</li><li>Two &#x263A; &#65;</li></ul><noscript>enable js</noscript></body></html>`;
    const text = htmlToText(html);
    expect(text).toContain('Refunds');
    expect(text).toContain('Refund policy');
    expect(text).toContain('Refunds take 5–7 days & are <free>.');
    expect(text).toContain('Two ☺ A');
    expect(text).not.toMatch(/color|var x|not text|hidden|enable js|<p>/);
    expect(decodeEntities('&bogus; &#0; &#xD800;')).toBe('&bogus; \ufffd \ufffd');
  });

  it('removes Markdown markup and keeps paragraphs and code', () => {
    const md =
      '# Title\n\nSome **bold** and _italic_ text with a [link](http://x.y) and `code`.\n\n- item one\n- item two\n\n```js\nconst a = 1;\n```\n';
    const text = markdownToText(md);
    expect(text).toBe(
      'Title\n\nSome bold and italic text with a link and code.\n\nitem one\nitem two\n\nconst a = 1;',
    );
  });

  it('extracts PDF text with page numbers (generated with pdf-lib)', async () => {
    const pdf = await PDFDocument.create();
    const font = await pdf.embedFont(StandardFonts.Helvetica);
    for (const line of ['Warranty covers two years.', 'Returns are accepted within 30 days.']) {
      pdf.addPage([400, 200]).drawText(line, { x: 20, y: 100, size: 12, font });
    }
    const doc = await extractText({ filename: 'policy.pdf', data: await pdf.save(), documentId: 'doc-1' });
    expect(doc.format).toBe('pdf');
    expect(doc.pages.map((p) => p.page)).toEqual([1, 2]);
    expect(doc.pages[0].text).toContain('Warranty covers two years.');
    expect(doc.pages[1].text).toContain('Returns are accepted within 30 days.');
    const chunks = chunkDocument(doc);
    expect(chunks.map((c) => c.page)).toEqual([1, 2]);
  });

  it('extracts DOCX paragraphs from word/document.xml', async () => {
    const xml =
      '<?xml version="1.0"?><w:document><w:body><w:p><w:r><w:t>Hello &amp; welcome.</w:t></w:r></w:p>' +
      '<w:p><w:r><w:t xml:space="preserve">Second </w:t></w:r><w:r><w:t>paragraph.</w:t></w:r></w:p></w:body></w:document>';
    const doc = await extractText({
      filename: 'a.docx',
      data: zip({ '[Content_Types].xml': '<Types/>', 'word/document.xml': xml }),
    });
    expect(doc.pages[0].text).toBe('Hello & welcome.\n\nSecond paragraph.');
  });

  it('names the file and reason on failure', async () => {
    const attempts: [string, Uint8Array, string][] = [
      ['broken.pdf', utf8('%PDF-1.4 garbage'), 'broken.pdf'],
      ['bad.docx', utf8('not a zip'), 'bad.docx: not a ZIP archive'],
      ['empty.docx', zip({ 'x.txt': 'x' }), 'no word/document.xml'],
      ['latin1.txt', new Uint8Array([0x66, 0xe9, 0x65]), 'not valid UTF-8'],
      ['image.png', new Uint8Array([1, 2, 3]), 'unsupported document type'],
    ];
    for (const [filename, data, message] of attempts) {
      const error = await extractText({ filename, data }).catch((e: unknown) => e);
      expect(isTributaryError(error), filename).toBe(true);
      expect((error as Error).message).toContain(filename);
      expect((error as Error).message).toContain(message);
    }
  });
});

describe('chunking', () => {
  const sentence = fc
    .array(fc.constantFrom('alpha', 'beta', 'gamma', 'delta', 'refund', 'policy', 'x', 'longerwordhere'), {
      minLength: 1,
      maxLength: 30,
    })
    .map((words) => `${words.join(' ')}${['.', '!', '?'][words.length % 3]}`);
  const paragraph = fc.array(sentence, { minLength: 1, maxLength: 8 }).map((s) => s.join(' '));
  const pageText = fc.array(paragraph, { minLength: 1, maxLength: 6 }).map((p) => p.join('\n\n'));

  it('covers every character, overlaps, never emits empty chunks, and is stable', () => {
    fc.assert(
      fc.property(
        pageText,
        fc.integer({ min: 40, max: 400 }),
        fc.integer({ min: 0, max: 39 }),
        (text, maxChars, overlap) => {
          const doc = {
            documentId: 'd',
            filename: 'f.txt',
            format: 'text' as const,
            pages: [{ page: 1, text }],
          };
          const chunks = chunkDocument(doc, { maxChars, overlapChars: overlap });
          const covered = new Uint8Array(text.length);
          for (const c of chunks) {
            expect(c.text.trim().length).toBeGreaterThan(0);
            expect(c.text.length).toBeLessThanOrEqual(maxChars);
            expect(text.slice(c.start, c.end)).toBe(c.text);
            covered.fill(1, c.start, c.end);
          }
          for (let i = 0; i < text.length; i++)
            if (!/\s/.test(text[i])) expect(covered[i], `char ${i}`).toBe(1);
          for (let i = 1; i < chunks.length; i++) {
            expect(chunks[i].start).toBeGreaterThan(chunks[i - 1].start);
            // Overlap never exceeds the configured size.
            expect(Math.max(0, chunks[i - 1].end - chunks[i].start)).toBeLessThanOrEqual(overlap);
          }
          const again = chunkDocument(doc, { maxChars, overlapChars: overlap });
          expect(again.map((c) => c.chunkId)).toEqual(chunks.map((c) => c.chunkId));
          expect(new Set(chunks.map((c) => c.chunkId)).size).toBe(chunks.length);
        },
      ),
      { seed: 42, numRuns: 200 },
    );
  });

  it('repeats trailing sentences when overlap allows and ends chunks at sentence boundaries', () => {
    const text = Array.from({ length: 12 }, (_, i) => `Sentence number ${i} is here.`).join(' ');
    const chunks = chunkDocument(
      { documentId: 'd', filename: 'f', format: 'text', pages: [{ page: 1, text }] },
      { maxChars: 120, overlapChars: 40 },
    );
    expect(chunks.length).toBeGreaterThan(2);
    for (const c of chunks) expect(c.text).toMatch(/\.$/);
    expect(chunks[1].start).toBeLessThan(chunks[0].end);
  });

  it('changes ids when the document id or content changes', () => {
    const page = { page: 1, text: 'Same text.' };
    const a = chunkDocument({ documentId: 'a', filename: 'f', format: 'text', pages: [page] })[0];
    const b = chunkDocument({ documentId: 'b', filename: 'f', format: 'text', pages: [page] })[0];
    const c = chunkDocument({
      documentId: 'a',
      filename: 'f',
      format: 'text',
      pages: [{ page: 1, text: 'Other text.' }],
    })[0];
    expect(new Set([a.chunkId, b.chunkId, c.chunkId]).size).toBe(3);
  });

  it('splits an over-long sentence at spaces', () => {
    const text = 'word '.repeat(100).trim();
    const units = sentenceUnits(text, 50);
    for (const u of units) expect(u.end - u.start).toBeLessThanOrEqual(50);
    expect(units.length).toBeGreaterThan(5);
  });
});
