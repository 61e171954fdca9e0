import path from 'node:path';
import { TributaryError } from '../../core/index.js';

/** Document kinds the upload accepts; `docx` only when the ML layer can extract it. */
export type DocumentKind = 'pdf' | 'txt' | 'md' | 'html' | 'docx';

const kindByExtension: Record<string, DocumentKind> = {
  '.pdf': 'pdf',
  '.txt': 'txt',
  '.text': 'txt',
  '.md': 'md',
  '.markdown': 'md',
  '.html': 'html',
  '.htm': 'html',
  '.docx': 'docx',
};

export const contentTypeByKind: Record<DocumentKind, string> = {
  pdf: 'application/pdf',
  txt: 'text/plain; charset=utf-8',
  md: 'text/markdown; charset=utf-8',
  html: 'text/html; charset=utf-8',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
};

const pdfMagic = Buffer.from('%PDF-');
const zipMagic = Buffer.from([0x50, 0x4b, 0x03, 0x04]);
/** How much of the start of a file the HTML sniffing looks at. */
const sniffBytesMax = 1024;

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
  const head = Buffer.from(bytes.subarray(0, sniffBytesMax))
    .toString('utf8')
    .replace(/^\uFEFF/, '')
    .trimStart()
    .toLowerCase();
  return /^(<!doctype html|<html|<head|<body|<!--|<meta|<title|<p[\s>]|<div|<h[1-6][\s>])/.test(head);
}

/**
 * Decides a document's kind from its file name AND its first bytes; both must agree, so a binary
 * renamed `.txt` or an executable renamed `.pdf` is refused with `UNSUPPORTED_MEDIA_TYPE` (HTTP 415).
 */
export function detectDocumentKind(
  filename: string,
  bytes: Uint8Array,
  accepted: readonly DocumentKind[],
): DocumentKind {
  const extension = path.extname(filename).toLowerCase();
  const kind = kindByExtension[extension];
  const acceptedText = accepted.map((k) => `.${k}`).join(', ');
  if (kind === undefined || !accepted.includes(kind)) {
    throw new TributaryError(
      'UNSUPPORTED_MEDIA_TYPE',
      `file ${JSON.stringify(filename)}: extension "${extension}" is not accepted; accepted: ${acceptedText}`,
      {
        details: { file: filename },
      },
    );
  }
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, sniffBytesMax));
  let matches: boolean;
  switch (kind) {
    case 'pdf':
      matches = head.subarray(0, pdfMagic.length).equals(pdfMagic);
      break;
    case 'docx':
      matches = head.subarray(0, zipMagic.length).equals(zipMagic);
      break;
    case 'html':
      matches = isUtf8Text(bytes) && looksLikeHtml(bytes);
      break;
    case 'txt':
    case 'md':
      matches = isUtf8Text(bytes);
      break;
  }
  if (!matches) {
    throw new TributaryError(
      'UNSUPPORTED_MEDIA_TYPE',
      `file ${JSON.stringify(filename)}: content does not look like ${kind.toUpperCase()} (checked its first bytes)`,
      {
        details: { file: filename },
      },
    );
  }
  return kind;
}

/**
 * A file name safe to use as the last segment of a storage path: the base name only, characters
 * outside `A-Z a-z 0-9 . _ -` replaced, no leading/trailing dots or `..`, stem of at most 100
 * characters, extension kept (or the kind's own when the name has none).
 */
export function safeFileName(filename: string, kind: DocumentKind): string {
  const base = filename.split(/[\\/]/).pop() ?? '';
  const extension = path.extname(base).toLowerCase();
  // No leading or trailing dots and no ".." anywhere, so the name is never special or a traversal.
  let stem = base
    .slice(0, base.length - extension.length)
    .replace(/[^A-Za-z0-9._-]/g, '_')
    .replace(/\.{2,}/g, '.')
    .replace(/^\.+|\.+$/g, '')
    .slice(0, 100)
    .replace(/\.+$/, '');
  if (stem === '') stem = 'document';
  const ext = kindByExtension[extension] === kind ? extension : `.${kind}`;
  return `${stem}${ext}`;
}
