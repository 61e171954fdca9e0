import { TributaryError } from '../../core/index.js';

/** Names the backends use for in-flight temporary objects; `list` never returns them. */
export const tempNamePattern = /(^|\/)\.[^/]*\.tmp$/;

/**
 * Checks a storage key: '/'-separated, relative, no empty, '.' or '..' segments, no NUL, and not a
 * backend temp name. Keys come from table names and partition values, so a bad one is refused
 * before it reaches a file system or a bucket.
 */
export function checkStoragePath(path: string, allowEmpty = false): string {
  if (path === '' && allowEmpty) return path;
  const bad =
    path === '' ||
    path.includes('\0') ||
    path.includes('\\') ||
    path.startsWith('/') ||
    path.split('/').some((segment) => segment === '' || segment === '.' || segment === '..') ||
    tempNamePattern.test(path);
  if (bad)
    throw new TributaryError(
      'PATH_REFUSED',
      `invalid storage path ${JSON.stringify(path)}: expected a relative '/'-separated key without '.', '..' or empty segments`,
    );
  return path;
}

/** Checks a list prefix: like a path, but it may be empty or end with '/'. */
export function checkStoragePrefix(prefix: string): string {
  if (prefix === '') return prefix;
  checkStoragePath(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
  return prefix;
}

/** Byte-order comparison of keys, the order S3 lists in; both backends sort with it. */
export function compareKeys(a: string, b: string): number {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return Buffer.compare(ab, bb);
}
