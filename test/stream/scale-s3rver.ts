import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import S3rver from 's3rver';

interface KoaContext {
  method: string;
  path: string;
  status: number;
  body: unknown;
  get(header: string): string;
  set(header: string, value: string): void;
}
type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;
interface S3rverObject {
  bucket: string;
  key: string;
  metadata: Record<string, string>;
  content: Buffer | NodeJS.ReadableStream;
}
interface KoaApp {
  middleware: Middleware[];
  store: {
    existsObject(bucket: string, key: string): Promise<boolean>;
    putObject(object: S3rverObject): Promise<{ size: number; md5: string }>;
    putMetadata(bucket: string, key: string, metadata: Record<string, string>, md5: string): Promise<void>;
    getResourcePath(bucket: string, key: string, resource: string): string;
  };
}

/**
 * s3rver (S3 on 127.0.0.1, in a temp dir) with the guarantees of S3 that the scale-out tests rely
 * on and s3rver 3.x lacks:
 * - `If-None-Match: *` on PUT is honoured (412 PreconditionFailed when the key exists), as on AWS
 *   S3 (since 2024), MinIO and R2. Without it creates from several processes are not exclusive.
 * - A PUT is atomic and complete when answered: s3rver writes into the object's file in place (a
 *   reader sees it half written) and answers a small PUT before its bytes are even written; here the
 *   object goes to a temp file that is renamed over it before the answer.
 * - Requests are handled one at a time, so a listing never meets an object between its data and
 *   its metadata file (s3rver answers 500 then). A GET's body streams from a file descriptor opened
 *   in its turn, so later renames and deletes do not change what it reads.
 * Only path-style requests (`/bucket/key`).
 */
export async function startConditionalS3rver(
  bucket: string,
): Promise<{ endpoint: string; close(): Promise<void> }> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'tributary-s3rver-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: [{ name: bucket }],
  });
  const app = server as unknown as KoaApp;
  let chain: Promise<unknown> = Promise.resolve();
  const conditional: Middleware = async (ctx, next) => {
    const run = chain.then(async () => {
      if (ctx.method === 'PUT' && ctx.get('if-none-match') === '*') {
        const [bucketName, ...rest] = ctx.path.slice(1).split('/').map(decodeURIComponent);
        const key = rest.join('/');
        if (key !== '' && (await app.store.existsObject(bucketName, key))) {
          ctx.status = 412;
          ctx.set('Content-Type', 'application/xml');
          ctx.body =
            '<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message><Condition>If-None-Match</Condition></Error>';
          return;
        }
      }
      await next();
    });
    chain = run.catch(() => undefined);
    await run;
  };
  const store = app.store;
  store.putObject = async (object) => {
    const chunks: Buffer[] = [];
    if (Buffer.isBuffer(object.content)) chunks.push(object.content);
    else for await (const chunk of object.content) chunks.push(Buffer.from(chunk as Buffer));
    const content = Buffer.concat(chunks);
    const file = store.getResourcePath(object.bucket, object.key, 'object');
    await mkdir(path.dirname(file), { recursive: true });
    const temp = `${file}.${randomBytes(6).toString('hex')}.part`;
    await writeFile(temp, content);
    await rename(temp, file);
    const md5 = createHash('md5').update(content).digest('hex');
    await store.putMetadata(object.bucket, object.key, object.metadata, md5);
    return { size: content.length, md5 };
  };
  app.middleware.unshift(conditional);
  const address = (await server.run()) as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    close: async () => {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
