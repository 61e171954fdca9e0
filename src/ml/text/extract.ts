import { Unzip, UnzipInflate, type UnzipFile } from 'fflate';
import { Parser } from 'htmlparser2';
import { TributaryError, limits } from '../../core/index.js';
import {
  documentExtensions,
  documentTypeOfMediaType,
  documentTypeOfName,
  type DocumentFormat,
} from './filetype.js';

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

export type { DocumentFormat } from './filetype.js';

/** Picks the format from the media type when given, else the file extension. */
export function detectFormat(filename: string, mediaType?: string): DocumentFormat {
  const type = (mediaType ? documentTypeOfMediaType(mediaType) : undefined) ?? documentTypeOfName(filename);
  if (type) return type.format;
  throw new TributaryError(
    'UNSUPPORTED_MEDIA_TYPE',
    `${filename}: unsupported document type${mediaType ? ` ${mediaType}` : ''}; supported: ${documentExtensions.join(', ')}`,
    { details: { file: filename } },
  );
}

/**
 * What one document may cost to extract; past a limit extraction stops with PAYLOAD_TOO_LARGE
 * naming the limit (defaults in `limits`, core).
 */
export interface ExtractLimits {
  /** Pages of a PDF (checked before any page is read). */
  pagesMax: number;
  /** Entries of a DOCX archive. */
  zipEntriesMax: number;
  /** Bytes inflated from a DOCX archive, counted as they are produced (zip bombs stop here). */
  inflatedBytesMax: number;
  /** Characters of extracted text over all pages. */
  charsMax: number;
}

export const defaultExtractLimits: ExtractLimits = {
  pagesMax: limits.documentPagesMax,
  zipEntriesMax: limits.documentZipEntriesMax,
  inflatedBytesMax: limits.documentInflatedBytesMax,
  charsMax: limits.documentCharsMax,
};

export interface ExtractInput {
  filename: string;
  data: Uint8Array;
  /** Defaults to the file name. */
  documentId?: string;
  mediaType?: string;
  limits?: Partial<ExtractLimits>;
}

function overLimit(what: string, limit: number, name: keyof ExtractLimits): TributaryError {
  return new TributaryError('PAYLOAD_TOO_LARGE', `${what} (limit ${limit}, ${name})`, {
    details: { limit: name, max: limit },
  });
}

/** Counts extracted characters and stops extraction at the limit. */
class TextBudget {
  #chars = 0;
  constructor(readonly charsMax: number) {}
  add(length: number): void {
    this.#chars += length;
    if (this.#chars > this.charsMax)
      throw overLimit(`more than ${this.charsMax} characters of text`, this.charsMax, 'charsMax');
  }
}

/**
 * Extracts plain text from a document, keeping page numbers for PDFs. Every pass is linear in the
 * input (parsers and hand-written scanners, no backtracking regular expressions over user text),
 * and `limits` bound pages, archive entries, inflated bytes and characters. Errors are
 * TributaryError DECODE_FAILED (unreadable) or PAYLOAD_TOO_LARGE (over a limit) naming the file
 * and the reason. Run it through `DocumentExtractor` to also bound CPU time and memory.
 *
 * @example
 * const doc = await extractText({ filename: 'faq.md', data: readFileSync('faq.md') });
 * doc.pages[0].text; // the Markdown without its markup
 */
export async function extractText(input: ExtractInput): Promise<ExtractedDocument> {
  const format = detectFormat(input.filename, input.mediaType);
  const documentId = input.documentId ?? input.filename;
  const base = { documentId, filename: input.filename, format };
  const bounds = { ...defaultExtractLimits, ...input.limits };
  const budget = new TextBudget(bounds.charsMax);
  const single = (text: string): ExtractedDocument => ({ ...base, pages: [{ page: 1, text }] });
  try {
    switch (format) {
      case 'text':
        return single(normaliseText(decodeUtf8(input.data, budget)));
      case 'markdown':
        return single(markdownToText(decodeUtf8(input.data, budget)));
      case 'html':
        return single(htmlToText(decodeUtf8(input.data, budget)));
      case 'pdf':
        return { ...base, pages: await pdfToPages(input.data, bounds, budget) };
      case 'docx':
        return single(docxText(input.data, bounds, budget));
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

function decodeUtf8(data: Uint8Array, budget: TextBudget): string {
  // UTF-8 never has fewer bytes than characters, so a short input skips the count.
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(data);
  } catch (error) {
    throw new TributaryError('DECODE_FAILED', 'not valid UTF-8 text', { cause: error });
  }
  budget.add(text.length);
  return text;
}

/** Spaces a line may end with (removed); `\s` less the line breaks. */
function isLineSpace(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0c || code === 0x0b || code === 0xa0;
}

/** Unix newlines, no trailing spaces, at most one blank line between paragraphs. One pass. */
export function normaliseText(text: string): string {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  const out: string[] = [];
  let blanks = 0;
  for (const line of lines) {
    let end = line.length;
    while (end > 0 && isLineSpace(line.charCodeAt(end - 1))) end--;
    if (end === 0) {
      // At most one blank line in a row (three or more newlines become two).
      if (++blanks > 1) continue;
      out.push('');
      continue;
    }
    blanks = 0;
    out.push(end === line.length ? line : line.slice(0, end));
  }
  return out.join('\n').trim();
}

function isWordChar(code: number): boolean {
  return (
    (code >= 0x30 && code <= 0x39) ||
    (code >= 0x41 && code <= 0x5a) ||
    (code >= 0x61 && code <= 0x7a) ||
    code === 0x5f
  );
}

function isSpace(code: number): boolean {
  return isLineSpace(code) || code === 0x0a || code === 0x0d;
}

/**
 * For each position, the index of the next occurrence of any of `chars` at or after it (-1 when
 * none): one pass from the right, so every look-ahead of the inline scanner is O(1).
 */
function nextIndexOf(line: string, chars: string): Int32Array {
  const next = new Int32Array(line.length + 1);
  next[line.length] = -1;
  for (let i = line.length - 1; i >= 0; i--) next[i] = chars.includes(line[i]) ? i : next[i + 1];
  return next;
}

/** Like `nextIndexOf` for a two-character marker (`**`, `__`, `~~`). */
function nextPairOf(line: string, pair: string): Int32Array {
  const next = new Int32Array(line.length + 1);
  next[line.length] = -1;
  for (let i = line.length - 1; i >= 0; i--) next[i] = line.startsWith(pair, i) ? i : next[i + 1];
  return next;
}

/**
 * Inline Markdown → text in one left-to-right pass: `![alt](url)` and `[text](url)` /
 * `[text][ref]` keep their text, `` `code` `` its content, and emphasis markers (`**`, `__`, `~~`,
 * single `*` / `_` around words) are dropped when they have a partner. Look-aheads use
 * precomputed next-occurrence tables, so the pass is linear however the markers are arranged.
 */
function markdownInline(line: string): string {
  const n = line.length;
  const nextClose = nextIndexOf(line, ']');
  const nextParen = nextIndexOf(line, ')');
  const nextTick = nextIndexOf(line, '`');
  const nextEmphasis = nextIndexOf(line, '*_');
  const pairs = { '**': nextPairOf(line, '**'), __: nextPairOf(line, '__'), '~~': nextPairOf(line, '~~') };
  // Positions of closing emphasis markers already paired with an opening one (dropped too).
  const dropOne = new Set<number>();
  const dropTwo = new Set<number>();
  let out = '';
  let i = 0;
  while (i < n) {
    if (dropTwo.has(i)) {
      i += 2;
      continue;
    }
    if (dropOne.has(i)) {
      i++;
      continue;
    }
    const c = line[i];
    if (c === '[' || (c === '!' && line[i + 1] === '[')) {
      const open = c === '!' ? i + 1 : i;
      const close = nextClose[open + 1];
      const image = c === '!';
      // `[^\]]+` for links, `[^\]]*` for images: the text ends at the first `]`.
      if (close !== -1 && (image || close > open + 1)) {
        if (line[close + 1] === '(') {
          const end = nextParen[close + 2];
          if (end !== -1) {
            out += markdownInline(line.slice(open + 1, close));
            i = end + 1;
            continue;
          }
        } else if (!image && line[close + 1] === '[') {
          const end = nextClose[close + 2];
          if (end !== -1) {
            out += markdownInline(line.slice(open + 1, close));
            i = end + 1;
            continue;
          }
        }
      }
      out += c;
      i++;
      continue;
    }
    if (c === '`') {
      const close = nextTick[i + 1];
      if (close > i + 1) {
        out += line.slice(i + 1, close);
        i = close + 1;
        continue;
      }
    }
    const pair = line.slice(i, i + 2);
    if (pair === '**' || pair === '__' || pair === '~~') {
      const close = i + 2 < n ? (pairs[pair][i + 3] ?? -1) : -1;
      if (close !== -1) {
        dropTwo.add(close);
        i += 2;
        continue;
      }
    }
    if (c === '*' || c === '_') {
      // `(^|[^\w*])[*_]([^*_\n]+)[*_](?=[^\w*]|$)`: a lone marker around at least one character.
      const before = i === 0 ? -1 : line.charCodeAt(i - 1);
      const close = nextEmphasis[i + 1];
      if (
        (before === -1 || (!isWordChar(before) && before !== 0x2a)) &&
        close > i + 1 &&
        (close + 1 >= n || (!isWordChar(line.charCodeAt(close + 1)) && line[close + 1] !== '*'))
      ) {
        dropOne.add(close);
        i++;
        continue;
      }
    }
    out += c;
    i++;
  }
  return out;
}

/** `| a | b |` → `a | b`; every `|` with the spaces around it becomes ` | `. */
function tableRow(line: string): string {
  if (!line.includes('|')) return line;
  const cells = line.split('|');
  const first = cells[0].trim() === '' ? 1 : 0;
  const last = cells.length > 1 && cells[cells.length - 1].trim() === '' ? cells.length - 1 : cells.length;
  const kept = cells.slice(first, last);
  return kept.map((cell, i) => (i === 0 && first === 0 ? cell.trimEnd() : cell.trim())).join(' | ');
}

/** Length of the run of `chars` starting at `from`. */
function runOf(line: string, from: number, test: (code: number) => boolean): number {
  let end = from;
  while (end < line.length && test(line.charCodeAt(end))) end++;
  return end - from;
}

/** Line-start markup: heading `#`s (and closing ones), `>` quotes, list markers, rules. */
function markdownBlockLine(raw: string): string {
  const lead = runOf(raw, 0, isLineSpace);
  let line = raw;
  const hashes = runOf(raw, lead, (c) => c === 0x23);
  if (
    lead <= 3 &&
    hashes >= 1 &&
    hashes <= 6 &&
    lead + hashes < raw.length &&
    isSpace(raw.charCodeAt(lead + hashes))
  )
    line = raw.slice(lead + hashes).trimStart();
  // A closing sequence of `#`s after white space is not text.
  let end = line.length;
  while (end > 0 && isSpace(line.charCodeAt(end - 1))) end--;
  let hashStart = end;
  while (hashStart > 0 && line[hashStart - 1] === '#') hashStart--;
  if (hashStart < end && hashStart > 0 && isSpace(line.charCodeAt(hashStart - 1))) {
    let cut = hashStart - 1;
    while (cut > 0 && isSpace(line.charCodeAt(cut - 1))) cut--;
    line = line.slice(0, cut);
  }
  const quoteLead = runOf(line, 0, isLineSpace);
  if (quoteLead <= 3 && line[quoteLead] === '>') {
    line = line.slice(quoteLead + 1);
    if (line.charCodeAt(0) === 0x20 || line.charCodeAt(0) === 0x09) line = line.slice(1);
  }
  const marks = line.trim();
  // A thematic break: three or more of one of `- * _`, spaces between.
  let count = 0;
  let onlyMarks = marks.length > 0;
  for (let i = 0; i < marks.length && onlyMarks; i++) {
    const c = marks[i];
    if (c === '-' || c === '*' || c === '_') count++;
    else if (!isLineSpace(marks.charCodeAt(i))) onlyMarks = false;
  }
  if (onlyMarks && count >= 3) return '';
  // List markers: `-`, `*`, `+` or `1.` / `1)` followed by a space.
  const indent = runOf(line, 0, isSpace);
  const digits = runOf(line, indent, (c) => c >= 0x30 && c <= 0x39);
  const markerEnd =
    digits > 0
      ? line[indent + digits] === '.' || line[indent + digits] === ')'
        ? indent + digits + 1
        : -1
      : '-*+'.includes(line[indent] ?? 'x')
        ? indent + 1
        : -1;
  if (markerEnd > 0 && markerEnd < line.length && isSpace(line.charCodeAt(markerEnd)))
    line = line.slice(markerEnd + runOf(line, markerEnd, isSpace));
  return line;
}

/** A reference definition `[label]: url …` carries no text. */
function isReferenceDefinition(line: string): boolean {
  const text = line.trimStart();
  if (text[0] !== '[') return false;
  const close = text.indexOf(']');
  return (
    close > 1 &&
    text[close + 1] === ':' &&
    isSpace(text.charCodeAt(close + 2)) &&
    text.slice(close + 2).trim().length > 0
  );
}

/** A table's separator row `|---|:--:|`. */
function isTableSeparator(line: string): boolean {
  if (!line.includes('---')) return false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c !== '|' && c !== ':' && c !== '-' && !isSpace(line.charCodeAt(i))) return false;
  }
  return true;
}

/** Markdown → text: markup removed, paragraph structure kept, code kept as text. Linear time. */
export function markdownToText(markdown: string): string {
  const lines = markdown.replace(/\r\n?/g, '\n').split('\n');
  const out: string[] = [];
  let inFence = false;
  for (const raw of lines) {
    const trimmed = raw.trimStart();
    if (trimmed.startsWith('```') || trimmed.startsWith('~~~')) {
      inFence = !inFence;
      continue;
    }
    if (inFence) {
      out.push(raw);
      continue;
    }
    if (isReferenceDefinition(raw) || isTableSeparator(raw)) {
      out.push('');
      continue;
    }
    const line = tableRow(markdownInline(markdownBlockLine(raw)));
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

/**
 * Decodes HTML character references in plain text. Linear: each `&` starts one attempt that
 * reads a bounded-alphabet run up to the next `;` or other character.
 */
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

/** Elements dropped with everything inside them (`head` keeps its `title`). */
const droppedElements = new Set(['script', 'style', 'template', 'noscript', 'svg', 'iframe', 'object']);
/** Block elements that end a paragraph (a blank line) … */
const paragraphElements = new Set(['p', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'tr', 'table', 'div', 'section', 'article', 'li', 'title']); // prettier-ignore
/** … and block elements that end a line. */
const lineElements = new Set(['address', 'aside', 'blockquote', 'br', 'dd', 'dl', 'dt', 'fieldset', 'figcaption', 'figure', 'footer', 'form', 'header', 'hr', 'main', 'nav', 'ol', 'pre', 'tbody', 'td', 'tfoot', 'th', 'thead', 'ul']); // prettier-ignore
/** Void elements: their (implied) close adds no second break. */
const voidElements = new Set(['br', 'hr']);

/** Collapses runs of spaces and tabs to one space and removes spaces next to line breaks. */
function collapseInlineSpace(text: string): string {
  return text.replace(/[ \t\u00a0]+/g, ' ').replace(/ ?\n ?/g, '\n');
}

/**
 * HTML → text through htmlparser2 (a streaming tokenizer, linear time). Script, style, template,
 * noscript, svg, iframe and object content are dropped with their bodies, and the head keeps only
 * its title; comments and CDATA are not text; block elements become line breaks; entities are
 * decoded by the parser, so `&lt;b&gt;` stays literal text.
 */
export function htmlToText(html: string, fragment = false): string {
  const parts: string[] = [];
  let dropped = 0;
  let inHead = 0;
  let inTitle = 0;
  const parser = new Parser(
    {
      oncomment() {
        if (dropped === 0) parts.push(' ');
      },
      onopentag(name) {
        if (droppedElements.has(name)) dropped++;
        else if (name === 'head') inHead++;
        else if (name === 'title') inTitle++;
        if (dropped > 0) return;
        if (paragraphElements.has(name)) parts.push('\n\n');
        else if (lineElements.has(name)) parts.push('\n');
      },
      onclosetag(name) {
        if (droppedElements.has(name)) {
          dropped = Math.max(0, dropped - 1);
          // A dropped element separates the words around it, as its removal by a space would.
          if (dropped === 0) parts.push(' ');
        } else if (name === 'head') inHead = Math.max(0, inHead - 1);
        else if (name === 'title') inTitle = Math.max(0, inTitle - 1);
        if (dropped > 0 || voidElements.has(name)) return;
        if (paragraphElements.has(name)) parts.push('\n\n');
        else if (lineElements.has(name)) parts.push('\n');
      },
      ontext(text) {
        if (dropped > 0 || (inHead > 0 && inTitle === 0)) return;
        parts.push(text);
      },
    },
    { decodeEntities: true, lowerCaseTags: true },
  );
  parser.write(html);
  parser.end();
  const text = collapseInlineSpace(parts.join(''));
  return fragment ? text.trim() : normaliseText(text);
}

interface PdfTextItem {
  str?: string;
  hasEOL?: boolean;
}

/**
 * PDF → one text per page through pdfjs-dist's legacy build (the one meant for Node). pdf.js runs
 * its parser in-process ("fake worker") from the installed package; nothing is downloaded. The
 * page count is checked before any page is read.
 */
async function pdfToPages(
  data: Uint8Array,
  bounds: ExtractLimits,
  budget: TextBudget,
): Promise<ExtractedPage[]> {
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
    if (doc.numPages > bounds.pagesMax)
      throw overLimit(`PDF has ${doc.numPages} pages`, bounds.pagesMax, 'pagesMax');
    const pages: ExtractedPage[] = [];
    for (let n = 1; n <= doc.numPages; n++) {
      const page = await doc.getPage(n);
      const content = await page.getTextContent();
      const parts: string[] = [];
      for (const item of content.items as PdfTextItem[]) {
        if (typeof item.str !== 'string') continue;
        budget.add(item.str.length);
        parts.push(item.str);
        if (item.hasEOL) parts.push('\n');
      }
      pages.push({ page: n, text: normaliseText(parts.join('')) });
      page.cleanup();
    }
    return pages;
  } finally {
    await doc.destroy();
  }
}

/** Compressed bytes handed to the inflater at a time: DEFLATE expands at most ~1032×, so one
 * push yields at most a few MiB and the inflated-size check runs between pushes. */
const zipPushBytes = 4096;

/**
 * DOCX → text. A .docx is a ZIP archive; fflate's streaming `Unzip` reads it entry by entry,
 * only `word/document.xml` is inflated, and its bytes are counted as they come out (a zip bomb
 * stops at `inflatedBytesMax`) and fed straight into htmlparser2's XML mode, which turns `<w:t>`
 * text, `<w:tab/>`, `<w:br/>` / `<w:cr/>` and `</w:p>` into text. Entries are counted too.
 */
export function docxToText(data: Uint8Array, bounds: ExtractLimits = defaultExtractLimits): string {
  return docxText(data, bounds, new TextBudget(bounds.charsMax));
}

function docxText(data: Uint8Array, bounds: ExtractLimits, budget: TextBudget): string {
  const name = 'word/document.xml';
  if (!(data[0] === 0x50 && data[1] === 0x4b && (data[2] === 0x03 || data[2] === 0x05)))
    throw new TributaryError('DECODE_FAILED', 'not a ZIP archive (no local file header)');
  const parts: string[] = [];
  let inText = 0;
  const xml = new Parser(
    {
      onopentag(tag) {
        if (tag === 'w:t') inText++;
        else if (tag === 'w:tab') parts.push('\t');
        else if (tag === 'w:br' || tag === 'w:cr') parts.push('\n');
      },
      onclosetag(tag) {
        if (tag === 'w:t') inText = Math.max(0, inText - 1);
        else if (tag === 'w:p') parts.push('\n\n');
      },
      ontext(text) {
        if (inText === 0) return;
        budget.add(text.length);
        parts.push(text);
      },
    },
    { xmlMode: true, decodeEntities: true },
  );
  const decoder = new TextDecoder('utf-8');
  let entries = 0;
  let found = false;
  let finished = false;
  let inflated = 0;
  // Set inside fflate's callbacks (a holder, so the type is not narrowed to its initial null).
  const stop: { failure: TributaryError | null } = { failure: null };
  const unzip = new Unzip((file: UnzipFile) => {
    entries++;
    if (entries > bounds.zipEntriesMax)
      throw overLimit(
        `archive has more than ${bounds.zipEntriesMax} entries`,
        bounds.zipEntriesMax,
        'zipEntriesMax',
      );
    if (file.name !== name || found) return;
    found = true;
    if (file.compression !== 0 && file.compression !== 8)
      throw new TributaryError(
        'DECODE_FAILED',
        `${name} uses unsupported ZIP compression method ${file.compression}`,
      );
    file.ondata = (error, chunk, final) => {
      if (stop.failure !== null) return;
      try {
        if (error)
          throw new TributaryError('DECODE_FAILED', `${name} is not valid DEFLATE data: ${error.message}`);
        inflated += chunk.length;
        if (inflated > bounds.inflatedBytesMax)
          throw overLimit(
            `${name} inflates to more than ${bounds.inflatedBytesMax} bytes`,
            bounds.inflatedBytesMax,
            'inflatedBytesMax',
          );
        xml.write(decoder.decode(chunk, { stream: !final }));
        if (final) finished = true;
      } catch (caught) {
        stop.failure =
          caught instanceof TributaryError
            ? caught
            : new TributaryError(
                'DECODE_FAILED',
                `${name} is not readable XML: ${(caught as Error).message}`,
                {
                  cause: caught,
                },
              );
        file.terminate();
      }
    };
    file.start();
  });
  unzip.register(UnzipInflate);
  try {
    for (let offset = 0; offset < data.length && stop.failure === null; offset += zipPushBytes) {
      const end = Math.min(data.length, offset + zipPushBytes);
      unzip.push(data.subarray(offset, end), end === data.length);
    }
  } catch (error) {
    if (error instanceof TributaryError) throw error;
    throw new TributaryError('DECODE_FAILED', `not a readable ZIP archive: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (stop.failure !== null) throw stop.failure;
  if (!found) throw new TributaryError('DECODE_FAILED', `not a Word document (no ${name} in the archive)`);
  if (!finished) throw new TributaryError('DECODE_FAILED', `${name} is truncated`);
  xml.end();
  return normaliseText(parts.join(''));
}
