import { createHash } from 'node:crypto';
import { TributaryError } from '../../core/index.js';
import type { ExtractedDocument } from './extract.js';

export interface Chunk {
  /** Stable id: sha256(document id, page, position, text), hex, 32 characters. */
  chunkId: string;
  documentId: string;
  filename: string;
  page: number;
  /** Position of the chunk in the document (0-based, counts across pages). */
  index: number;
  text: string;
  /** Offsets of `text` in the page text: `pageText.slice(start, end) === text`. */
  start: number;
  end: number;
}

export interface ChunkOptions {
  /** Largest chunk in characters (default 1000). */
  maxChars?: number;
  /** Characters of trailing context repeated at the start of the next chunk (default 150). */
  overlapChars?: number;
}

interface Unit {
  start: number;
  end: number;
  /** True when a paragraph ends with this unit. */
  paragraphEnd: boolean;
}

/** `\s` as JavaScript regular expressions define it, by code unit. */
function isWhite(code: number): boolean {
  return (
    (code >= 0x09 && code <= 0x0d) ||
    code === 0x20 ||
    code === 0xa0 ||
    code === 0x1680 ||
    (code >= 0x2000 && code <= 0x200a) ||
    code === 0x2028 ||
    code === 0x2029 ||
    code === 0x202f ||
    code === 0x205f ||
    code === 0x3000 ||
    code === 0xfeff
  );
}

const sentenceEnds = '.!?';
/** Closing quotes and brackets a sentence end may carry: `"` `'` `)` `]` `’` `”`. */
const sentenceClosers = `"')]\u2019\u201d`;

/**
 * Splits page text into sentence units (offsets into the text). Paragraph breaks (a blank line)
 * always end a unit; a sentence ends at `.`, `!`, `?` (plus closing quotes or brackets) followed
 * by white space. Units longer than `maxChars` are cut at the last space before the limit.
 *
 * One left-to-right scan: every character is looked at a bounded number of times, so hostile
 * text (long runs of `!`, spaces or newlines, no spaces at all) costs linear time.
 */
export function sentenceUnits(text: string, maxChars: number): Unit[] {
  const units: Unit[] = [];
  const push = (start: number, end: number, paragraphEnd: boolean) => {
    while (start < end && isWhite(text.charCodeAt(start))) start++;
    while (end > start && isWhite(text.charCodeAt(end - 1))) end--;
    if (end <= start) return;
    while (end - start > maxChars) {
      // The last space within the limit, searched only inside this unit (never before `start`).
      let cut = start + maxChars;
      while (cut > start && text.charCodeAt(cut) !== 0x20) cut--;
      if (cut <= start) cut = start + maxChars;
      let cutEnd = cut;
      while (cutEnd > start && isWhite(text.charCodeAt(cutEnd - 1))) cutEnd--;
      units.push({ start, end: cutEnd, paragraphEnd: false });
      start = cut;
      while (start < end && isWhite(text.charCodeAt(start))) start++;
    }
    if (end > start) units.push({ start, end, paragraphEnd });
  };
  const n = text.length;
  let last = 0;
  let i = 0;
  while (i < n) {
    const c = text[i];
    if (sentenceEnds.includes(c)) {
      // `[.!?]+["')\]’”]*` then white space: a sentence end (a blank line in the space ends the
      // paragraph too). Without the space the whole run is plain text.
      let j = i;
      while (j < n && sentenceEnds.includes(text[j])) j++;
      while (j < n && sentenceClosers.includes(text[j])) j++;
      let k = j;
      let blankLine = false;
      while (k < n && isWhite(text.charCodeAt(k))) {
        if (text.charCodeAt(k) === 0x0a && text.charCodeAt(k + 1) === 0x0a) blankLine = true;
        k++;
      }
      if (k > j) {
        push(last, j, blankLine);
        last = k;
      }
      i = k > j ? k : j;
      continue;
    }
    if (c === '\n') {
      // `\n[ \t]*\n\s*`: a blank line (spaces allowed on it) ends the paragraph.
      let j = i + 1;
      while (j < n && (text[j] === ' ' || text[j] === '\t')) j++;
      if (j < n && text[j] === '\n') {
        let k = j + 1;
        while (k < n && isWhite(text.charCodeAt(k))) k++;
        push(last, i, true);
        last = k;
        i = k;
        continue;
      }
      i = j;
      continue;
    }
    i++;
  }
  push(last, n, true);
  return units;
}

/**
 * Chunks a document by size with overlap. Sentence units are packed greedily up to `maxChars`; a
 * chunk prefers to end at a paragraph end once it is at least half full; the next chunk starts
 * with the trailing units of the previous one that fit in `overlapChars`. Chunks never cross
 * pages, so every chunk has one page number. Every non-space character of every page is in at
 * least one chunk; no chunk is empty.
 *
 * @example
 * const chunks = chunkDocument(await extractText({ filename: 'a.md', data }), { maxChars: 800 });
 */
export function chunkDocument(doc: ExtractedDocument, options: ChunkOptions = {}): Chunk[] {
  const maxChars = options.maxChars ?? 1000;
  const overlapChars = options.overlapChars ?? 150;
  if (!Number.isInteger(maxChars) || maxChars < 16) {
    throw new TributaryError('INVALID_ARGUMENT', `chunk maxChars must be an integer >= 16, got ${maxChars}`);
  }
  if (!Number.isInteger(overlapChars) || overlapChars < 0 || overlapChars >= maxChars) {
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `chunk overlapChars must be an integer in [0, maxChars), got ${overlapChars}`,
    );
  }
  const chunks: Chunk[] = [];
  for (const page of doc.pages) {
    const text = page.text;
    const units = sentenceUnits(text, maxChars);
    let first = 0;
    while (first < units.length) {
      let last = first;
      // Grow while the chunk fits; stop early at a paragraph end when at least half full.
      while (last + 1 < units.length && units[last + 1].end - units[first].start <= maxChars) {
        if (units[last].paragraphEnd && units[last].end - units[first].start >= maxChars / 2) break;
        last++;
      }
      const start = units[first].start;
      const end = units[last].end;
      const chunkText = text.slice(start, end);
      const index = chunks.length;
      chunks.push({
        chunkId: chunkId(doc.documentId, page.page, index, chunkText),
        documentId: doc.documentId,
        filename: doc.filename,
        page: page.page,
        index,
        text: chunkText,
        start,
        end,
      });
      if (last + 1 >= units.length) break;
      // Overlap: restart at the earliest trailing unit that fits in overlapChars (and still leaves
      // room for the next new unit), but always move forward by at least one unit so chunking
      // terminates and no chunk is pure overlap.
      let next = last + 1;
      const following = units[last + 1];
      while (
        next - 1 > first &&
        end - units[next - 1].start <= overlapChars &&
        following.end - units[next - 1].start <= maxChars
      ) {
        next--;
      }
      first = next;
    }
  }
  return chunks;
}

export function chunkId(documentId: string, page: number, index: number, text: string): string {
  return createHash('sha256')
    .update(`${documentId}\u0000${page}\u0000${index}\u0000${text}`)
    .digest('hex')
    .slice(0, 32);
}
