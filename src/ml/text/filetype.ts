import path from 'node:path';
import { limits } from '../../core/index.js';

/**
 * The one map of document types the platform reads: extraction picks its parser from it, the
 * documents upload checks names and first bytes against it, and the seeders list files with it.
 * `kind` is the short name uploads and stored originals use (`.txt`, `.md`, …); `format` names the
 * parser.
 */
export type DocumentFormat = 'text' | 'markdown' | 'html' | 'pdf' | 'docx';
export type DocumentKind = 'txt' | 'md' | 'html' | 'pdf' | 'docx';

export interface DocumentType {
  kind: DocumentKind;
  format: DocumentFormat;
  /** Lower-case, with the dot; the first is the kind's own. */
  extensions: readonly string[];
  /** Media types that name this format (parameters such as `charset` ignored). */
  mediaTypes: readonly string[];
  /** Content-Type a stored original of this kind is written with. */
  contentType: string;
}

export const documentTypes: readonly DocumentType[] = [
  {
    kind: 'pdf',
    format: 'pdf',
    extensions: ['.pdf'],
    mediaTypes: ['application/pdf'],
    contentType: 'application/pdf',
  },
  {
    kind: 'txt',
    format: 'text',
    extensions: ['.txt', '.text', '.log'],
    mediaTypes: ['text/plain'],
    contentType: 'text/plain; charset=utf-8',
  },
  {
    kind: 'md',
    format: 'markdown',
    extensions: ['.md', '.markdown'],
    mediaTypes: ['text/markdown'],
    contentType: 'text/markdown; charset=utf-8',
  },
  {
    kind: 'html',
    format: 'html',
    extensions: ['.html', '.htm', '.xhtml'],
    mediaTypes: ['text/html', 'application/xhtml+xml'],
    contentType: 'text/html; charset=utf-8',
  },
  {
    kind: 'docx',
    format: 'docx',
    extensions: ['.docx'],
    mediaTypes: ['application/vnd.openxmlformats-officedocument.wordprocessingml.document'],
    contentType: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  },
];

/** Every extension any document type accepts, for messages. */
export const documentExtensions: readonly string[] = documentTypes.flatMap((t) => t.extensions);

/** The type a file name's extension names (case-insensitive), or undefined. */
export function documentTypeOfName(filename: string): DocumentType | undefined {
  const extension = path.extname(filename).toLowerCase();
  return documentTypes.find((t) => t.extensions.includes(extension));
}

/** The type a media type names (`text/html; charset=utf-8` → html), or undefined. */
export function documentTypeOfMediaType(mediaType: string): DocumentType | undefined {
  const bare = (mediaType.split(';')[0] ?? '').trim().toLowerCase();
  return documentTypes.find((t) => t.mediaTypes.includes(bare));
}

export function documentTypeOfKind(kind: DocumentKind): DocumentType {
  const type = documentTypes.find((t) => t.kind === kind);
  if (type === undefined) throw new RangeError(`unknown document kind ${kind}`);
  return type;
}

const pdfMagic = [0x25, 0x50, 0x44, 0x46, 0x2d]; // %PDF-
const zipMagic = [0x50, 0x4b, 0x03, 0x04]; // PK\3\4
const htmlStarts = ['<!doctype html', '<html', '<head', '<body', '<!--', '<meta', '<title', '<div'];

function startsWithBytes(bytes: Uint8Array, magic: readonly number[]): boolean {
  return bytes.length >= magic.length && magic.every((b, i) => bytes[i] === b);
}

function isUtf8Text(bytes: Uint8Array): boolean {
  // A text document has no NUL bytes and decodes as UTF-8 without replacement.
  if (bytes.includes(0)) return false;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

function looksLikeHtml(bytes: Uint8Array): boolean {
  const head = new TextDecoder('utf-8')
    .decode(bytes.subarray(0, limits.fileSniffBytesMax))
    .replace(/^\uFEFF/, '')
    .trimStart()
    .toLowerCase();
  if (htmlStarts.some((start) => head.startsWith(start))) return true;
  // `<p>`, `<p class=…>`, `<h1>`…`<h6>`: the tag name must end there.
  const after = (prefix: string) => head.startsWith(prefix) && /^[\s>]/.test(head.charAt(prefix.length));
  return after('<p') || ['1', '2', '3', '4', '5', '6'].some((n) => after(`<h${n}`));
}

/** True when the first bytes (and, for text kinds, all bytes) are what `format` claims. */
export function contentMatchesFormat(format: DocumentFormat, bytes: Uint8Array): boolean {
  switch (format) {
    case 'pdf':
      return startsWithBytes(bytes, pdfMagic);
    case 'docx':
      return startsWithBytes(bytes, zipMagic);
    case 'html':
      return isUtf8Text(bytes) && looksLikeHtml(bytes);
    case 'text':
    case 'markdown':
      return isUtf8Text(bytes);
  }
}
