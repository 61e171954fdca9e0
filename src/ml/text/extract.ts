import { inflateRawSync } from 'node:zlib';
import path from 'node:path';
import { TributaryError } from '../../core/index.js';

/** One page of extracted text; formats without pages have a single page 1. */
export interface ExtractedPage {
  page: number;
  text: string;
}

export interface ExtractedDocument {
  documentId: string;
  filename: string;
  format: DocumentFormat;
  pages: ExtractedPage[];
}

export type DocumentFormat = 'text' | 'markdown' | 'html' | 'pdf' | 'docx';

const formatByExtension: Record<string, DocumentFormat> = {
  '.txt': 'text',
  '.text': 'text',
  '.log': 'text',
  '.csv': 'text',
  '.md': 'markdown',
  '.markdown': 'markdown',
  '.html': 'html',
  '.htm': 'html',
  '.xhtml': 'html',
  '.pdf': 'pdf',
  '.docx': 'docx',
};

const formatByMediaType: Record<string, DocumentFormat> = {
  'text/plain': 'text',
  'text/markdown': 'markdown',
  'text/html': 'html',
  'application/xhtml+xml': 'html',
  'application/pdf': 'pdf',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document': 'docx',
};

/** Picks the format from the media type when given, else the file extension. */
export function detectFormat(filename: string, mediaType?: string): DocumentFormat {
  const byType = mediaType ? formatByMediaType[mediaType.split(';')[0].trim().toLowerCase()] : undefined;
  if (byType) return byType;
  const byExt = formatByExtension[path.extname(filename).toLowerCase()];
  if (byExt) return byExt;
  throw new TributaryError(
    'UNSUPPORTED_MEDIA_TYPE',
    `${filename}: unsupported document type${mediaType ? ` ${mediaType}` : ''}; supported: ${Object.keys(formatByExtension).join(', ')}`,
    { details: { file: filename } },
  );
}

export interface ExtractInput {
  filename: string;
  data: Uint8Array;
  /** Defaults to the file name. */
  documentId?: string;
  mediaType?: string;
}

/**
 * Extracts plain text from a document, keeping page numbers for PDFs. Errors are
 * TributaryError DECODE_FAILED naming the file and the reason.
 *
 * @example
 * const doc = await extractText({ filename: 'faq.md', data: readFileSync('faq.md') });
 * doc.pages[0].text; // the Markdown without its markup
 */
export async function extractText(input: ExtractInput): Promise<ExtractedDocument> {
  const format = detectFormat(input.filename, input.mediaType);
  const documentId = input.documentId ?? input.filename;
  const base = { documentId, filename: input.filename, format };
  try {
    switch (format) {
      case 'text':
        return { ...base, pages: [{ page: 1, text: normaliseText(decodeUtf8(input.data)) }] };
      case 'markdown':
        return { ...base, pages: [{ page: 1, text: markdownToText(decodeUtf8(input.data)) }] };
      case 'html':
        return { ...base, pages: [{ page: 1, text: htmlToText(decodeUtf8(input.data)) }] };
      case 'pdf':
        return { ...base, pages: await pdfToPages(input.data) };
      case 'docx':
        return { ...base, pages: [{ page: 1, text: docxToText(input.data) }] };
    }
  } catch (error) {
    if (error instanceof TributaryError) {
      throw new TributaryError(error.code, `${input.filename}: ${error.message}`, {
        cause: error,
        details: { file: input.filename, ...error.details },
      });
    }
    throw new TributaryError(
      'DECODE_FAILED',
      `${input.filename}: cannot extract ${format} text: ${(error as Error).message}`,
      {
        cause: error,
        details: { file: input.filename },
      },
    );
  }
}

function decodeUtf8(data: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(data);
  } catch (error) {
    throw new TributaryError('DECODE_FAILED', 'not valid UTF-8 text', { cause: error });
  }
}

/** Unix newlines, no trailing spaces, at most one blank line between paragraphs. */
export function normaliseText(text: string): string {
  return text
    .replace(/\r\n?/g, '\n')
    .replace(/[ \t\f\v\u00a0]+\n/g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/** Markdown → text: markup removed, paragraph structure kept, code kept as text. */
export function markdownToText(markdown: string): string {
  const lines = markdown.replace(/\r\n?/g, '\n').split('\n');
  const out: string[] = [];
  let inFence = false;
  for (const raw of lines) {
    if (/^\s*(```|~~~)/.test(raw)) {
      inFence = !inFence;
      continue;
    }
    if (inFence) {
      out.push(raw);
      continue;
    }
    let line = raw
      .replace(/^\s{0,3}#{1,6}\s+/, '')
      .replace(/\s+#+\s*$/, '')
      .replace(/^\s{0,3}>\s?/, '')
      .replace(/^\s*([-*+]|\d+[.)])\s+/, '')
      .replace(/^\s*([-*_]\s*){3,}$/, '')
      .replace(/!\[([^\]]*)\]\([^)]*\)/g, '$1')
      .replace(/\[([^\]]+)\]\([^)]*\)/g, '$1')
      .replace(/\[([^\]]+)\]\[[^\]]*\]/g, '$1')
      .replace(/^\s*\[[^\]]+\]:\s+\S+.*$/, '')
      .replace(/`([^`]+)`/g, '$1')
      .replace(/(\*\*|__)(.+?)\1/g, '$2')
      .replace(/(^|[^\w*])[*_]([^*_\n]+)[*_](?=[^\w*]|$)/g, '$1$2')
      .replace(/~~(.+?)~~/g, '$1');
    if (/^\s*\|?\s*:?-{3,}/.test(line) && /^[\s|:-]+$/.test(line)) line = '';
    line = line
      .replace(/^\s*\|\s*/, '')
      .replace(/\s*\|\s*$/, '')
      .replace(/\s*\|\s*/g, ' | ');
    out.push(line.includes('<') ? htmlToText(line, true) : line);
  }
  return normaliseText(out.join('\n'));
}

const namedEntities: Record<string, string> = {
  amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ', copy: '©', reg: '®', trade: '™',
  hellip: '…', mdash: '—', ndash: '–', lsquo: '‘', rsquo: '’', ldquo: '“', rdquo: '”', laquo: '«',
  raquo: '»', bull: '•', middot: '·', deg: '°', euro: '€', pound: '£', yen: '¥', cent: '¢',
  sect: '§', para: '¶', times: '×', divide: '÷', plusmn: '±', frac12: '½', frac14: '¼',
  frac34: '¾', eacute: 'é', egrave: 'è', aacute: 'á', agrave: 'à', iacute: 'í', oacute: 'ó',
  uacute: 'ú', ntilde: 'ñ', uuml: 'ü', ouml: 'ö', auml: 'ä', ccedil: 'ç', szlig: 'ß', shy: '',
  zwj: '\u200d', zwnj: '\u200c', ensp: ' ', emsp: ' ', thinsp: ' ',
}; // prettier-ignore

export function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z][a-z0-9]*);/gi, (match, body: string) => {
    if (body[0] === '#') {
      const code =
        body[1] === 'x' || body[1] === 'X' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
      return Number.isFinite(code) && code > 0 && code <= 0x10ffff && (code < 0xd800 || code > 0xdfff)
        ? String.fromCodePoint(code)
        : '\ufffd';
    }
    return namedEntities[body.toLowerCase()] ?? match;
  });
}

const blockTags =
  'address|article|aside|blockquote|br|dd|div|dl|dt|fieldset|figcaption|figure|footer|form|h[1-6]|header|hr|li|main|nav|ol|p|pre|section|table|tbody|td|tfoot|th|thead|title|tr|ul';

/**
 * HTML → text. Script, style, template, noscript, svg and head-only content are dropped with their
 * bodies; comments and CDATA removed; block elements become line breaks; entities decoded after
 * tags are removed so `&lt;b&gt;` stays literal text.
 */
export function htmlToText(html: string, fragment = false): string {
  let text = html
    .replace(/<!--[\s\S]*?(-->|$)/g, ' ')
    .replace(/<!\[CDATA\[[\s\S]*?\]\]>/g, ' ')
    .replace(/<(script|style|template|noscript|svg|iframe|object)\b[\s\S]*?(<\/\1\s*>|$)/gi, ' ')
    .replace(/<head\b[\s\S]*?<\/head\s*>/gi, (head) => {
      const title = /<title\b[^>]*>([\s\S]*?)<\/title\s*>/i.exec(head);
      return title ? `\n${title[1]}\n\n` : ' ';
    })
    .replace(/<!doctype[^>]*>/gi, ' ');
  text = text
    .replace(new RegExp(`<\\/?(?:${blockTags})\\b[^>]*>`, 'gi'), (tag) =>
      /^<\/?(p|h[1-6]|tr|table|div|section|article|li)\b/i.test(tag) ? '\n\n' : '\n',
    )
    .replace(/<\/?[a-z][^>]*>/gi, '')
    .replace(/<\/[a-z][^>]*>/gi, '');
  text = decodeEntities(text)
    .replace(/[ \t\u00a0]+/g, ' ')
    .replace(/ *\n */g, '\n');
  return fragment ? text : normaliseText(text);
}

interface PdfTextItem {
  str?: string;
  hasEOL?: boolean;
}

/**
 * PDF → one text per page through pdfjs-dist's legacy build (the one meant for Node). pdf.js runs
 * its parser in-process ("fake worker") from the installed package; nothing is downloaded.
 */
async function pdfToPages(data: Uint8Array): Promise<ExtractedPage[]> {
  const pdfjs = await import('pdfjs-dist/legacy/build/pdf.mjs');
  // pdf.js transfers (detaches) the buffer it is given, so hand it a copy.
  const task = pdfjs.getDocument({
    data: new Uint8Array(data),
    useSystemFonts: false,
    disableFontFace: true,
    isEvalSupported: false,
    useWorkerFetch: false,
    verbosity: 0,
  });
  let doc;
  try {
    doc = await task.promise;
  } catch (error) {
    throw new TributaryError('DECODE_FAILED', `not a readable PDF: ${(error as Error).message}`, {
      cause: error,
    });
  }
  try {
    const pages: ExtractedPage[] = [];
    for (let n = 1; n <= doc.numPages; n++) {
      const page = await doc.getPage(n);
      const content = await page.getTextContent();
      let text = '';
      for (const item of content.items as PdfTextItem[]) {
        if (typeof item.str !== 'string') continue;
        text += item.str;
        if (item.hasEOL) text += '\n';
      }
      pages.push({ page: n, text: normaliseText(text) });
      page.cleanup();
    }
    return pages;
  } finally {
    await doc.destroy();
  }
}

/**
 * DOCX → text. A .docx is a ZIP archive; this reads the central directory (at the end of the
 * file, found through the End Of Central Directory record 0x06054b50), finds `word/document.xml`,
 * inflates it (method 8, raw DEFLATE) or copies it (method 0), and turns `<w:p>` paragraphs,
 * `<w:tab/>` and `<w:br/>` into text. ZIP64 and encrypted archives are refused.
 */
export function docxToText(data: Uint8Array): string {
  const xml = readZipEntry(data, 'word/document.xml');
  const text = xml
    .replace(/<w:tab\/>/g, '\t')
    .replace(/<w:(br|cr)\/>/g, '\n')
    .replace(/<\/w:p>/g, '\n\n')
    .replace(/<[^>]+>/g, '');
  return normaliseText(decodeEntities(text));
}

function readZipEntry(data: Uint8Array, name: string): string {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let eocd = -1;
  for (let i = data.length - 22; i >= Math.max(0, data.length - 22 - 65_535); i--) {
    if (view.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0)
    throw new TributaryError('DECODE_FAILED', 'not a ZIP archive (no end-of-central-directory record)');
  const entries = view.getUint16(eocd + 10, true);
  let offset = view.getUint32(eocd + 16, true);
  const decoder = new TextDecoder();
  for (let e = 0; e < entries; e++) {
    if (offset + 46 > data.length || view.getUint32(offset, true) !== 0x02014b50) {
      throw new TributaryError('DECODE_FAILED', 'corrupt ZIP central directory');
    }
    const flags = view.getUint16(offset + 8, true);
    const method = view.getUint16(offset + 10, true);
    const compressedSize = view.getUint32(offset + 20, true);
    const nameLength = view.getUint16(offset + 28, true);
    const extraLength = view.getUint16(offset + 30, true);
    const commentLength = view.getUint16(offset + 32, true);
    const localOffset = view.getUint32(offset + 42, true);
    const entryName = decoder.decode(data.subarray(offset + 46, offset + 46 + nameLength));
    offset += 46 + nameLength + extraLength + commentLength;
    if (entryName !== name) continue;
    if (flags & 1) throw new TributaryError('DECODE_FAILED', `${name} is encrypted`);
    if (compressedSize === 0xffffffff || localOffset === 0xffffffff)
      throw new TributaryError('DECODE_FAILED', 'ZIP64 archives are not supported');
    if (view.getUint32(localOffset, true) !== 0x04034b50)
      throw new TributaryError('DECODE_FAILED', `corrupt local header for ${name}`);
    const start =
      localOffset + 30 + view.getUint16(localOffset + 26, true) + view.getUint16(localOffset + 28, true);
    const body = data.subarray(start, start + compressedSize);
    if (method === 0) return decoder.decode(body);
    if (method === 8) return decoder.decode(inflateRawSync(body));
    throw new TributaryError('DECODE_FAILED', `${name} uses unsupported ZIP compression method ${method}`);
  }
  throw new TributaryError('DECODE_FAILED', `not a Word document (no ${name} in the archive)`);
}
