import { randomBytes } from 'node:crypto';
import { constants, createReadStream, createWriteStream } from 'node:fs';
import {
  copyFile,
  link,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  rmdir,
  stat,
  unlink,
} from 'node:fs/promises';
import nodePath from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  fsyncDirectory,
  isNoSpaceError,
  noSpaceError,
  resolveInside,
  TributaryError,
} from '../../core/index.js';
import type { LakeStorage, StorageObjectInfo } from '../types.js';
import { checkStoragePath, checkStoragePrefix, compareKeys, tempNamePattern } from './paths.js';

/**
 * Lake storage on the local file system, rooted at a directory (by default
 * `dataDirPaths(dataDir).lake`).
 *
 * Durability: every write goes to a temp file in the destination directory (`.name.<hex>.tmp`),
 * is fsync'd, then published by `rename` (put) or `link` (putIfAbsent, which fails with EEXIST when
 * the name is taken, so exactly one racing writer wins), and the directory is fsync'd. After
 * `kill -9` or power loss an object is either absent or complete.
 */
export class LocalStorage implements LakeStorage {
  readonly kind = 'local' as const;
  readonly root: string;

  constructor(root: string) {
    this.root = nodePath.resolve(root);
  }

  #resolve(path: string): string {
    return resolveInside(this.root, checkStoragePath(path));
  }

  #tempFor(file: string): string {
    return nodePath.join(
      nodePath.dirname(file),
      `.${nodePath.basename(file)}.${randomBytes(6).toString('hex')}.tmp`,
    );
  }

  async #writeTemp(file: string, data: Uint8Array): Promise<string> {
    await mkdir(nodePath.dirname(file), { recursive: true });
    const temp = this.#tempFor(file);
    const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } catch (error) {
      await handle.close();
      await rm(temp, { force: true });
      throw ioError('write', file, error);
    }
    await handle.close();
    return temp;
  }

  async put(path: string, data: Uint8Array): Promise<void> {
    const file = this.#resolve(path);
    const temp = await this.#writeTemp(file, data);
    await rename(temp, file);
    await fsyncDirectory(nodePath.dirname(file));
  }

  async putIfAbsent(path: string, data: Uint8Array): Promise<boolean> {
    const file = this.#resolve(path);
    const temp = await this.#writeTemp(file, data);
    try {
      // link() publishes the complete, fsync'd temp file under the final name, or fails when the
      // name exists: an atomic create-if-absent that never exposes a partially written object.
      await link(temp, file);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw ioError('publish', file, error);
    } finally {
      await unlink(temp).catch(() => undefined);
      await fsyncDirectory(nodePath.dirname(file));
    }
  }

  async putFile(path: string, localFile: string): Promise<void> {
    const file = this.#resolve(path);
    await mkdir(nodePath.dirname(file), { recursive: true });
    const temp = this.#tempFor(file);
    try {
      await copyFile(localFile, temp);
      await fsyncFile(temp);
      await rename(temp, file);
    } catch (error) {
      await rm(temp, { force: true });
      throw ioError('copy', `${localFile} → ${file}`, error);
    }
    await fsyncDirectory(nodePath.dirname(file));
  }

  async moveFile(path: string, localFile: string): Promise<void> {
    const file = this.#resolve(path);
    await mkdir(nodePath.dirname(file), { recursive: true });
    await fsyncFile(localFile);
    try {
      await rename(localFile, file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EXDEV')
        throw ioError('move', `${localFile} → ${file}`, error);
      await this.putFile(path, localFile);
      await rm(localFile, { force: true });
      return;
    }
    await fsyncDirectory(nodePath.dirname(file));
  }

  async get(path: string): Promise<Uint8Array> {
    const file = this.#resolve(path);
    try {
      return await readFile(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT')
        throw new TributaryError('NOT_FOUND', `lake object ${path} does not exist under ${this.root}`);
      throw ioError('read', file, error);
    }
  }

  async getFile(path: string, localFile: string): Promise<void> {
    const file = this.#resolve(path);
    await mkdir(nodePath.dirname(localFile), { recursive: true });
    const temp = this.#tempFor(localFile);
    try {
      await pipeline(createReadStream(file), createWriteStream(temp));
      await rename(temp, localFile);
    } catch (error) {
      await rm(temp, { force: true });
      if ((error as NodeJS.ErrnoException).code === 'ENOENT')
        throw new TributaryError('NOT_FOUND', `lake object ${path} does not exist under ${this.root}`);
      throw ioError('read', file, error);
    }
  }

  async stat(path: string): Promise<StorageObjectInfo | null> {
    const file = this.#resolve(path);
    try {
      const info = await stat(file);
      if (!info.isFile()) return null;
      return { path, sizeBytes: info.size, modifiedMs: info.mtimeMs };
    } catch (error) {
      if (
        (error as NodeJS.ErrnoException).code === 'ENOENT' ||
        (error as NodeJS.ErrnoException).code === 'ENOTDIR'
      )
        return null;
      throw ioError('stat', file, error);
    }
  }

  async list(prefix: string): Promise<StorageObjectInfo[]> {
    checkStoragePrefix(prefix);
    const slash = prefix.lastIndexOf('/');
    const baseKey = slash >= 0 ? prefix.slice(0, slash) : '';
    const out: StorageObjectInfo[] = [];
    const walk = async (key: string): Promise<void> => {
      const directory = key === '' ? this.root : resolveInside(this.root, key);
      let entries;
      try {
        entries = await readdir(directory, { withFileTypes: true });
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') return;
        throw ioError('list', directory, error);
      }
      for (const entry of entries) {
        const child = key === '' ? entry.name : `${key}/${entry.name}`;
        if (entry.isDirectory()) {
          // Descend only where keys below can still match the prefix.
          if (child.startsWith(prefix) || prefix.startsWith(`${child}/`)) await walk(child);
        } else if (entry.isFile() && child.startsWith(prefix) && !tempNamePattern.test(child)) {
          const info = await stat(nodePath.join(directory, entry.name)).catch(() => null);
          if (info) out.push({ path: child, sizeBytes: info.size, modifiedMs: info.mtimeMs });
        }
      }
    };
    await walk(baseKey);
    return out.sort((a, b) => compareKeys(a.path, b.path));
  }

  async delete(path: string): Promise<void> {
    const file = this.#resolve(path);
    await rm(file, { force: true });
    // Remove directories left empty (an overwritten partition), up to the root; a non-empty one
    // stops the walk.
    let directory = nodePath.dirname(file);
    while (directory.startsWith(this.root + nodePath.sep)) {
      try {
        await rmdir(directory);
      } catch {
        break;
      }
      directory = nodePath.dirname(directory);
    }
  }

  localPath(path: string): string | null {
    return this.#resolve(path);
  }

  async close(): Promise<void> {
    // Nothing to release: every operation opens and closes its own handles.
  }
}

async function fsyncFile(file: string): Promise<void> {
  const handle = await open(file, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function ioError(operation: string, target: string, error: unknown): TributaryError {
  if (error instanceof TributaryError) return error;
  if (isNoSpaceError(error)) return noSpaceError(error, `the lake's ${operation}`) as TributaryError;
  return new TributaryError(
    'IO',
    `lake storage could not ${operation} ${target}: ${(error as Error).message}`,
    { cause: error, details: { file: target } },
  );
}
