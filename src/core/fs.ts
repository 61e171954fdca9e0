import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { TributaryError } from './errors.js';

/**
 * True when `error` says the file system has no room left: ENOSPC (disk full) or EDQUOT (quota),
 * from Node's fs or as DuckDB words it ("No space left on device").
 */
export function isNoSpaceError(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    if (e instanceof TributaryError && e.code === 'STORAGE_FULL') return true;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT' || /no space left on device/i.test(e.message)) return true;
  }
  return false;
}

/**
 * The error to report when writing `what` failed because the disk is full: STORAGE_FULL, a message
 * an operator can act on and an API client can be shown (no paths or errno text; those stay in the
 * cause, for the server log). Any other error is returned unchanged.
 */
export function noSpaceError(error: unknown, what: string): unknown {
  if (!isNoSpaceError(error) || (error instanceof TributaryError && error.code === 'STORAGE_FULL'))
    return error;
  return new TributaryError(
    'STORAGE_FULL',
    `${what} failed: no space left on the data directory's disk; nothing was written. Free space and retry.`,
    { cause: error, retryAfterMs: 5000 },
  );
}

/** fsync a directory so that a rename or create inside it survives a crash. */
export async function fsyncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Replaces `file` atomically: a reader (or a process restarted after `kill -9`) sees either the
 * old content or the new, never a mix. Write to a unique temp name, fsync, rename, fsync the dir.
 */
export async function writeFileAtomic(
  file: string,
  data: string | Uint8Array,
  options: { mode?: number } = {},
): Promise<void> {
  const directory = path.dirname(file);
  await mkdir(directory, { recursive: true });
  const temp = path.join(directory, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  // The mode applies from the create: a secret (a token) is never readable by others, not even
  // between create and chmod.
  let handle;
  try {
    handle = await open(temp, 'wx', options.mode ?? 0o666);
  } catch (error) {
    throw noSpaceError(error, `writing ${path.basename(file)}`);
  }
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    await handle.close();
    // A half-written temp file is never left behind (it would hold the space a retry needs).
    await rm(temp, { force: true });
    throw noSpaceError(error, `writing ${path.basename(file)}`);
  }
  await handle.close();
  await rename(temp, file);
  await fsyncDirectory(directory);
}

/**
 * Resolves `relative` inside `root` and refuses anything that would escape it
 * (`..`, absolute paths, NUL bytes). Use for every path that comes from a user or a record.
 */
export function resolveInside(root: string, relative: string): string {
  if (relative.includes('\0')) {
    throw new TributaryError('PATH_REFUSED', `path contains a NUL byte: ${JSON.stringify(relative)}`);
  }
  const base = path.resolve(root);
  const resolved = path.resolve(base, relative);
  if (resolved !== base && !resolved.startsWith(base + path.sep)) {
    throw new TributaryError('PATH_REFUSED', `path ${JSON.stringify(relative)} escapes ${base}`);
  }
  return resolved;
}
