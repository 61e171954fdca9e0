import { mkdtemp, rm } from 'node:fs/promises';
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
interface KoaApp {
  middleware: Middleware[];
  store: { existsObject(bucket: string, key: string): Promise<boolean> };
}

/**
 * s3rver (S3 on 127.0.0.1, in a temp dir) that also honours `If-None-Match: *` on PUT, as AWS S3
 * (since 2024), MinIO and R2 do: 412 PreconditionFailed when the key exists. s3rver 3.x ignores the
 * header, so without this, creates from several processes would not be exclusive (S3Storage falls
 * back to HEAD + PUT, exclusive only inside one process). Conditional PUTs are serialised, so the
 * check and the write are one step, as in S3. Only path-style requests (`/bucket/key`).
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
    if (ctx.method !== 'PUT' || ctx.get('if-none-match') !== '*') return next();
    const [bucketName, ...rest] = ctx.path.slice(1).split('/').map(decodeURIComponent);
    const key = rest.join('/');
    const run = chain.then(async () => {
      if (key !== '' && (await app.store.existsObject(bucketName, key))) {
        ctx.status = 412;
        ctx.set('Content-Type', 'application/xml');
        ctx.body =
          '<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message><Condition>If-None-Match</Condition></Error>';
        return;
      }
      await next();
    });
    chain = run.catch(() => undefined);
    await run;
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
