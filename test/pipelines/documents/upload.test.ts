import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { limits } from '../../../src/core/index.js';
import { originalKey, topics } from '../../../src/pipelines/documents/index.js';
import { rawDocumentSchema } from '../../../src/pipelines/documents/payloads.js';
import { form, json, makePdf, readAll, startPlatform, type Platform } from './helpers.js';

describe('POST /upload through the serving layer', () => {
  let platform: Platform;

  beforeAll(async () => {
    platform = await startPlatform();
    // A topic created beforehand keeps its single partition.
    await platform.log.createTopic(topics.raw, { partitions: 1 });
  });
  afterAll(async () => platform.close());

  const post = (key: string | undefined, body: FormData) =>
    fetch(`${platform.url}/upload`, {
      method: 'POST',
      body,
      headers: key ? { authorization: `Bearer ${key}` } : {},
    });

  it('stores the original, appends documents.raw with the upload time and answers the document_id', async () => {
    const pdf = await makePdf(['Quarterly revenue grew by 12 percent.', 'Page two text.']);
    const before = Date.now();
    const response = await post(
      platform.keys.acmeIngest,
      form({
        company_id: 'acme',
        metadata: '{"source":"test"}',
        file: { name: 'Q3 report.pdf', bytes: pdf },
      }),
    );
    expect(response.status).toBe(201);
    const body = (await response.json()) as Record<string, unknown>;
    expect(Object.keys(body)).toEqual(['document_id']);
    const documentId = body.document_id as string;

    expect((await platform.log.describeTopic(topics.raw)).partitions).toHaveLength(1);
    const record = (await readAll(platform.log, topics.raw)).find(
      (r) => Buffer.from(r.key!).toString() === documentId,
    )!;
    expect(record.timestamp).toBeGreaterThanOrEqual(before);
    expect(record.timestamp).toBeLessThanOrEqual(Date.now());
    expect(Object.keys(json(record))).toEqual(['document_id', 'company_id', 's3_path']);
    const payload = rawDocumentSchema.parse(json(record));
    expect(payload).toMatchObject({ document_id: documentId, company_id: 'acme' });
    const storage = platform.lake.storage;
    expect(payload.s3_path).toBe(`${storage.root}/originals/documents/acme/${documentId}/Q3_report.pdf`);
    expect(Buffer.from(record.headers.metadata).toString()).toBe('{"source":"test"}');
    expect(
      Buffer.from(await storage.get(originalKey(storage.root, payload.s3_path))).equals(Buffer.from(pdf)),
    ).toBe(true);
  });

  it('accepts TXT, Markdown and HTML', async () => {
    for (const [name, text] of [
      ['notes.txt', 'plain text notes'],
      ['readme.md', '# Title\n\nSome *markdown*.'],
      ['page.html', '<!doctype html><html><body><p>Hello</p></body></html>'],
    ] as const) {
      const response = await post(
        platform.keys.admin,
        form({ company_id: 'acme', file: { name, bytes: Buffer.from(text) } }),
      );
      expect(response.status, name).toBe(201);
    }
  });

  it('refuses unsupported types by extension and by content with 415', async () => {
    const exe = Buffer.from([0x4d, 0x5a, 0x90, 0x00, 0x03, 0x00]);
    for (const [name, bytes] of [
      ['tool.exe', exe],
      ['fake.pdf', Buffer.from('just text, not a PDF')],
      ['binary.txt', exe],
      ['page.html', Buffer.from('no markup at all')],
      ['fake.docx', Buffer.from('plain text')],
    ] as const) {
      const response = await post(
        platform.keys.acmeIngest,
        form({ company_id: 'acme', file: { name, bytes } }),
      );
      expect(response.status, name).toBe(415);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe(
        'UNSUPPORTED_MEDIA_TYPE',
      );
    }
  });

  it('enforces key, scope and company binding', async () => {
    const file = { name: 'a.txt', bytes: Buffer.from('hello') };
    expect((await post(undefined, form({ company_id: 'acme', file }))).status).toBe(401);
    expect(
      (await post('trb_000000000000_' + 'x'.repeat(43), form({ company_id: 'acme', file }))).status,
    ).toBe(401);
    expect((await post(platform.keys.readOnly, form({ company_id: 'acme', file }))).status).toBe(403);
    expect((await post(platform.keys.globexIngest, form({ company_id: 'acme', file }))).status).toBe(403);
    expect((await post(platform.keys.globexIngest, form({ company_id: 'globex', file }))).status).toBe(201);
  });

  it('keeps file names and company ids from escaping the document directory', async () => {
    const response = await post(
      platform.keys.acmeIngest,
      form({ company_id: 'acme', file: { name: '../../../etc/passwd.txt', bytes: Buffer.from('x') } }),
    );
    expect(response.status).toBe(201);
    const { document_id: documentId } = (await response.json()) as { document_id: string };
    const record = (await readAll(platform.log, topics.raw)).find(
      (r) => Buffer.from(r.key!).toString() === documentId,
    )!;
    expect(rawDocumentSchema.parse(json(record)).s3_path).toMatch(
      /\/originals\/documents\/acme\/[0-9a-f-]{36}\/passwd\.txt$/,
    );
    for (const company of ['../etc', '..', 'a/b', '']) {
      const bad = await post(
        platform.keys.admin,
        form({ company_id: company, file: { name: 'a.txt', bytes: Buffer.from('x') } }),
      );
      expect(bad.status, company).toBe(400);
    }
    expect((await readdir(path.join(platform.lake.storage.root, 'originals', 'documents'))).sort()).toEqual([
      'acme',
      'globex',
    ]);
  });

  it('answers 400 for a missing file or bad metadata, 415 for a non-multipart body', async () => {
    expect((await post(platform.keys.admin, form({ company_id: 'acme' }))).status).toBe(400);
    expect(
      (
        await post(
          platform.keys.admin,
          form({ company_id: 'acme', metadata: '[1]', file: { name: 'a.txt', bytes: Buffer.from('x') } }),
        )
      ).status,
    ).toBe(400);
    const raw = await fetch(`${platform.url}/upload`, {
      method: 'POST',
      body: 'hello',
      headers: { authorization: `Bearer ${platform.keys.admin}`, 'content-type': 'text/plain' },
    });
    expect(raw.status).toBe(415);
  });

  // Last: a 413 answered before the body is read makes the server drop that connection.
  it('refuses bodies over the limit with 413', async () => {
    // The upload route allows limits.uploadBytesMax (+ multipart framing); one byte more is refused.
    const big = Buffer.alloc(limits.uploadBytesMax + 64 * 1024 + 1, 'a');
    const response = await post(
      platform.keys.acmeIngest,
      form({ company_id: 'acme', file: { name: 'big.txt', bytes: big } }),
    );
    expect(response.status).toBe(413);
  });
});
