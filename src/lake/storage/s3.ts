import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import nodePath from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { childLogger, TributaryError } from '../../core/index.js';
import type { LakeStorage, StorageObjectInfo } from '../types.js';
import { checkStoragePath, checkStoragePrefix, compareKeys } from './paths.js';

/**
 * Per-object locks for `putIfAbsent` without conditional writes, shared by every S3Storage in the
 * process (two lakes opened on one bucket must still exclude each other).
 */
const keyLocks = new Map<string, Promise<unknown>>();

export interface S3StorageOptions {
  bucket: string;
  /** Key prefix inside the bucket, without leading or trailing '/'. */
  prefix?: string;
  region?: string;
  /** S3-compatible endpoint (MinIO, s3rver); AWS when absent. */
  endpoint?: string;
  forcePathStyle?: boolean;
  accessKeyId?: string;
  secretAccessKey?: string;
  /**
   * How `putIfAbsent` is made exclusive:
   * - `auto` (default): probe once whether the store honours `If-None-Match: *` on PUT (AWS S3
   *   since 2024, MinIO, R2 do); use it when it does, otherwise fall back to `check`.
   * - `conditional`: always send `If-None-Match: *` and trust the store's 412.
   * - `check`: HEAD, then PUT, serialized per key inside this process. Exclusive only among writers
   *   in one process; with several processes committing to one table on such a store, two may both
   *   believe they won. Tributary logs a warning when it falls back to this mode.
   */
  conditionalWrites?: 'auto' | 'conditional' | 'check';
}

/**
 * Lake storage on S3 or an S3-compatible store, with `@aws-sdk/client-s3`.
 *
 * A PUT is atomic on S3 (readers see the old object, none, or the whole new one), so `put` needs no
 * temp object. The commit primitive `putIfAbsent` uses conditional writes when the store has them;
 * see `conditionalWrites` for stores that do not (s3rver, which the tests use, ignores
 * `If-None-Match` on PUT).
 */
export class S3Storage implements LakeStorage {
  readonly kind = 's3' as const;
  readonly root: string;
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #mode: 'auto' | 'conditional' | 'check';
  #conditionalSupported: Promise<boolean> | undefined;

  constructor(options: S3StorageOptions) {
    this.#bucket = options.bucket;
    this.#prefix = (options.prefix ?? '').replace(/^\/+|\/+$/g, '');
    this.#mode = options.conditionalWrites ?? 'auto';
    this.root = `s3://${options.bucket}${this.#prefix ? `/${this.#prefix}` : ''}`;
    this.#client = new S3Client({
      region: options.region ?? 'us-east-1',
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      forcePathStyle: options.forcePathStyle ?? false,
      // Checksums only where S3 requires them: the default (streamed aws-chunked uploads with
      // trailing CRC32) is not understood by several S3-compatible stores (s3rver, older MinIO).
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      ...(options.accessKeyId && options.secretAccessKey
        ? { credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey } }
        : {}),
    });
  }

  #key(path: string): string {
    checkStoragePath(path);
    return this.#prefix ? `${this.#prefix}/${path}` : path;
  }

  async put(path: string, data: Uint8Array): Promise<void> {
    const key = this.#key(path);
    await this.#send('put', path, () =>
      this.#client.send(new PutObjectCommand({ Bucket: this.#bucket, Key: key, Body: data })),
    );
  }

  /** Whether this store enforces `If-None-Match: *` on PUT (probed once, see `conditionalWrites`). */
  async conditionalWritesSupported(): Promise<boolean> {
    if (this.#mode === 'conditional') return true;
    if (this.#mode === 'check') return false;
    this.#conditionalSupported ??= this.#probeConditional();
    return this.#conditionalSupported;
  }

  async #probeConditional(): Promise<boolean> {
    const probe = this.#key(`_probe/${randomBytes(8).toString('hex')}`);
    const body = new TextEncoder().encode('probe');
    await this.#send('probe', probe, () =>
      this.#client.send(new PutObjectCommand({ Bucket: this.#bucket, Key: probe, Body: body })),
    );
    let supported: boolean;
    try {
      await this.#client.send(
        new PutObjectCommand({ Bucket: this.#bucket, Key: probe, Body: body, IfNoneMatch: '*' }),
      );
      supported = false;
    } catch (error) {
      if (statusOf(error) !== 412) throw s3Error('probe', probe, error);
      supported = true;
    } finally {
      await this.#client
        .send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: probe }))
        .catch(() => undefined);
    }
    if (!supported) {
      childLogger('lake.s3').warn(
        { root: this.root },
        'this S3 store ignores If-None-Match on PUT; lake commits are exclusive only among writers in one process',
      );
    }
    return supported;
  }

  async putIfAbsent(path: string, data: Uint8Array): Promise<boolean> {
    const key = this.#key(path);
    if (await this.conditionalWritesSupported()) {
      try {
        await this.#client.send(
          new PutObjectCommand({ Bucket: this.#bucket, Key: key, Body: data, IfNoneMatch: '*' }),
        );
        return true;
      } catch (error) {
        const status = statusOf(error);
        if (status === 412) return false;
        // 409 ConditionalRequestConflict: a concurrent conditional write to the same key is in
        // flight; whichever completes owns the key, so look.
        if (status === 409) return (await this.stat(path)) === null ? this.putIfAbsent(path, data) : false;
        throw s3Error('put', key, error);
      }
    }
    return this.#withKeyLock(key, async () => {
      if ((await this.stat(path)) !== null) return false;
      await this.put(path, data);
      return true;
    });
  }

  async #withKeyLock<T>(objectKey: string, action: () => Promise<T>): Promise<T> {
    const key = `${this.#bucket}/${objectKey}`;
    const previous = keyLocks.get(key) ?? Promise.resolve();
    const run = previous.then(action, action);
    const tail = run.catch(() => undefined);
    keyLocks.set(key, tail);
    try {
      return await run;
    } finally {
      if (keyLocks.get(key) === tail) keyLocks.delete(key);
    }
  }

  async putFile(path: string, localFile: string): Promise<void> {
    const key = this.#key(path);
    const { size } = await stat(localFile);
    await this.#send('upload', path, () =>
      this.#client.send(
        new PutObjectCommand({
          Bucket: this.#bucket,
          Key: key,
          Body: createReadStream(localFile),
          ContentLength: size,
        }),
      ),
    );
  }

  async moveFile(path: string, localFile: string): Promise<void> {
    await this.putFile(path, localFile);
    await rm(localFile, { force: true });
  }

  async get(path: string): Promise<Uint8Array> {
    const key = this.#key(path);
    try {
      const response = await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key: key }));
      if (!response.Body) return new Uint8Array();
      return await response.Body.transformToByteArray();
    } catch (error) {
      if (statusOf(error) === 404)
        throw new TributaryError('NOT_FOUND', `lake object ${path} does not exist under ${this.root}`);
      throw s3Error('get', key, error);
    }
  }

  async getFile(path: string, localFile: string): Promise<void> {
    const key = this.#key(path);
    await mkdir(nodePath.dirname(localFile), { recursive: true });
    const temp = `${localFile}.${randomBytes(6).toString('hex')}.part`;
    try {
      const response = await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key: key }));
      const body = response.Body;
      if (!(body instanceof Readable))
        throw new TributaryError('EXTERNAL', `S3 GET ${key} returned no stream body`);
      await pipeline(body, createWriteStream(temp));
      await rename(temp, localFile);
    } catch (error) {
      await rm(temp, { force: true });
      if (statusOf(error) === 404)
        throw new TributaryError('NOT_FOUND', `lake object ${path} does not exist under ${this.root}`);
      throw s3Error('download', key, error);
    }
  }

  async stat(path: string): Promise<StorageObjectInfo | null> {
    const key = this.#key(path);
    try {
      const head = await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: key }));
      return { path, sizeBytes: head.ContentLength ?? 0, modifiedMs: head.LastModified?.getTime() ?? 0 };
    } catch (error) {
      if (statusOf(error) === 404) return null;
      throw s3Error('head', key, error);
    }
  }

  async list(prefix: string): Promise<StorageObjectInfo[]> {
    checkStoragePrefix(prefix);
    const keyPrefix = this.#prefix ? `${this.#prefix}/${prefix}` : prefix;
    const strip = this.#prefix ? this.#prefix.length + 1 : 0;
    const out: StorageObjectInfo[] = [];
    let token: string | undefined;
    do {
      const page = await this.#send('list', prefix, () =>
        this.#client.send(
          new ListObjectsV2Command({ Bucket: this.#bucket, Prefix: keyPrefix, ContinuationToken: token }),
        ),
      );
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined) continue;
        const path = object.Key.slice(strip);
        if (path.startsWith('_probe/')) continue;
        out.push({ path, sizeBytes: object.Size ?? 0, modifiedMs: object.LastModified?.getTime() ?? 0 });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return out.sort((a, b) => compareKeys(a.path, b.path));
  }

  async delete(path: string): Promise<void> {
    const key = this.#key(path);
    await this.#send('delete', path, () =>
      this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: key })),
    );
  }

  localPath(): string | null {
    return null;
  }

  close(): Promise<void> {
    this.#client.destroy();
    return Promise.resolve();
  }

  async #send<T>(operation: string, target: string, action: () => Promise<T>): Promise<T> {
    try {
      return await action();
    } catch (error) {
      throw s3Error(operation, target, error);
    }
  }
}

function statusOf(error: unknown): number | undefined {
  if (error instanceof S3ServiceException) return error.$metadata.httpStatusCode;
  const metadata = (error as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata;
  return metadata?.httpStatusCode;
}

function s3Error(operation: string, target: string, error: unknown): TributaryError {
  if (error instanceof TributaryError) return error;
  const status = statusOf(error);
  return new TributaryError(
    'EXTERNAL',
    `S3 ${operation} ${target} failed${status ? ` (HTTP ${status})` : ''}: ${(error as Error).message}`,
    {
      cause: error,
      details: { file: target, status },
    },
  );
}
