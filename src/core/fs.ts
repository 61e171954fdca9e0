import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { TributaryError } from './errors.js';

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
  const handle = await open(temp, 'wx', options.mode ?? 0o666);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(temp, { force: true });
    throw error;
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
