import path from 'node:path';
import { TributaryError } from '../../core/index.js';
import {
  contentMatchesFormat,
  documentTypeOfKind,
  documentTypeOfName,
  type DocumentKind,
} from '../../ml/index.js';

/** Document kinds the upload accepts (the ML layer's one file-type map). */
export type { DocumentKind } from '../../ml/index.js';

/** Content-Type of a stored original of each kind. */
export function contentTypeOfKind(kind: DocumentKind): string {
  return documentTypeOfKind(kind).contentType;
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
  const type = documentTypeOfName(filename);
  const acceptedText = accepted.map((k) => `.${k}`).join(', ');
  if (type === undefined || !accepted.includes(type.kind)) {
    throw new TributaryError(
      'UNSUPPORTED_MEDIA_TYPE',
      `file ${JSON.stringify(filename)}: extension "${extension}" is not accepted; accepted: ${acceptedText}`,
      {
        details: { file: filename },
      },
    );
  }
  if (!contentMatchesFormat(type.format, bytes)) {
    throw new TributaryError(
      'UNSUPPORTED_MEDIA_TYPE',
      `file ${JSON.stringify(filename)}: content does not look like ${type.kind.toUpperCase()} (checked its first bytes)`,
      {
        details: { file: filename },
      },
    );
  }
  return type.kind;
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
  const ext = documentTypeOfKind(kind).extensions.includes(extension) ? extension : `.${kind}`;
  return `${stem}${ext}`;
}
