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

/**
 * Splits page text into sentence units (offsets into the text). Paragraph breaks (a blank line)
 * always end a unit; a sentence ends at `.`, `!`, `?` (plus closing quotes or brackets) followed
 * by white space. Units longer than `maxChars` are cut at the last space before the limit.
 */
export function sentenceUnits(text: string, maxChars: number): Unit[] {
  const units: Unit[] = [];
  const push = (start: number, end: number, paragraphEnd: boolean) => {
    while (start < end && /\s/.test(text[start])) start++;
    while (end > start && /\s/.test(text[end - 1])) end--;
    if (end <= start) return;
    while (end - start > maxChars) {
      let cut = text.lastIndexOf(' ', start + maxChars);
      if (cut <= start) cut = start + maxChars;
      let cutEnd = cut;
      while (cutEnd > start && /\s/.test(text[cutEnd - 1])) cutEnd--;
      units.push({ start, end: cutEnd, paragraphEnd: false });
      start = cut;
      while (start < end && /\s/.test(text[start])) start++;
    }
    if (end > start) units.push({ start, end, paragraphEnd });
  };
  const boundary = /([.!?]+["')\]’”]*)(\s+)|(\n[ \t]*\n\s*)/g;
  let last = 0;
  for (let m = boundary.exec(text); m !== null; m = boundary.exec(text)) {
    if (m[3] !== undefined) {
      push(last, m.index, true);
      last = m.index + m[0].length;
    } else {
      const end = m.index + m[1].length;
      push(last, end, m[2].includes('\n\n'));
      last = end + m[2].length;
    }
  }
  push(last, text.length, true);
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
