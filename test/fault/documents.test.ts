/**
 * Issue 17 §1: hostile documents never stall the process that serves the API. Each hostile input
 * is uploaded through the real `/upload` route and processed by the real docproc stage in this
 * process, while `/health` is asked back to back; over-budget documents are dead-lettered once,
 * also when the stage is started again (no poison pill).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { dlqHeaders } from '../../src/stream/index.js';
import { createDocumentsRuntime, runStagesOnce, topics } from '../../src/pipelines/documents/index.js';
import { form, makePdf, readAll, startPlatform, type Platform } from '../pipelines/documents/helpers.js';
import { docxBomb, manyPagePdf, regexHostileHtml, regexHostileText, watchHealth } from './hostile.js';

const MiB = 1024 * 1024;
/** The process may grow by at most this much while hostile documents are processed. */
const rssGrowthMaxBytes = 400 * MiB;

async function upload(platform: Platform, name: string, bytes: Uint8Array): Promise<string> {
  const response = await fetch(`${platform.url}/upload`, {
    method: 'POST',
    body: form({ company_id: 'acme', file: { name, bytes } }),
    headers: { authorization: `Bearer ${platform.keys.acmeIngest}` },
  });
  expect(response.status, await response.clone().text()).toBe(201);
  return ((await response.json()) as { document_id: string }).document_id;
}

/** docproc as `tributary up` runs it, on a fresh runtime (a restarted process builds a new one). */
async function runDocproc(platform: Platform) {
  const runtime = createDocumentsRuntime({
    config: platform.services.config,
    log: platform.log,
    lake: platform.lake,
  });
  try {
    const [status] = await runStagesOnce(runtime.jobs, { dataDir: platform.services.config.dataDir }, [
      'docproc',
    ]);
    return status;
  } finally {
    await runtime.extractor.close();
  }
}

const headerText = (value: string | Uint8Array | null | undefined) =>
  value === null || value === undefined
    ? ''
    : typeof value === 'string'
      ? value
      : Buffer.from(value).toString();

async function deadLetters(platform: Platform) {
  return (await readAll(platform.log, `${topics.raw}.dlq`)).map((record) => ({
    documentId: (JSON.parse(Buffer.from(record.value!).toString()) as { document_id: string }).document_id,
    code: headerText(record.headers[dlqHeaders.code]),
    message: headerText(record.headers[dlqHeaders.message]),
  }));
}

describe('hostile documents', () => {
  let platform: Platform | undefined;
  afterEach(async () => {
    await platform?.close();
    platform = undefined;
  });

  it('are processed off the event loop: /health answers, RSS stays bounded, over-budget ones are dead-lettered once', async () => {
    platform = await startPlatform({
      documentPagesMax: 500,
      documentInflatedBytesMax: 4 * MiB,
      documentHeapMbMax: 128,
    });
    const ids = {
      pdf: await upload(platform, 'many-pages.pdf', await manyPagePdf(600)),
      bomb: await upload(platform, 'bomb.docx', docxBomb(1024 * MiB)),
      text: await upload(platform, 'hostile.txt', Buffer.from(regexHostileText(MiB))),
      markdown: await upload(platform, 'hostile.md', Buffer.from(regexHostileText(MiB))),
      html: await upload(platform, 'hostile.html', Buffer.from(regexHostileHtml(200 * 1024))),
      normal: await upload(platform, 'normal.pdf', await makePdf(['Refunds take 14 days.'])),
    };
    const rssBefore = process.memoryUsage.rss();
    const health = watchHealth(platform.url);
    const status = await runDocproc(platform);
    const watched = await health.stop();

    expect(watched.failures).toEqual([]);
    expect(watched.answers).toBeGreaterThan(0);
    expect(watched.slowestMs).toBeLessThan(1000);
    expect(watched.rssMaxBytes - rssBefore).toBeLessThan(rssGrowthMaxBytes);

    const dlq = await deadLetters(platform);
    expect(dlq.map((d) => d.documentId).sort()).toEqual([ids.pdf, ids.bomb].sort());
    const reasonOf = (id: string) => dlq.find((d) => d.documentId === id)!;
    expect(reasonOf(ids.pdf)).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    expect(reasonOf(ids.pdf).message).toMatch(/many-pages\.pdf.*600 pages.*pagesMax/);
    expect(reasonOf(ids.bomb)).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    expect(reasonOf(ids.bomb).message).toMatch(/bomb\.docx.*inflatedBytesMax/);
    expect(status.counters.dlq).toBe(2);

    const chunked = new Set(
      (await readAll(platform.log, topics.chunks)).map(
        (record) =>
          (JSON.parse(Buffer.from(record.value!).toString()) as { document_id: string }).document_id,
      ),
    );
    for (const id of [ids.text, ids.markdown, ids.html, ids.normal]) expect(chunked.has(id)).toBe(true);
    const chunksBefore = (await readAll(platform.log, topics.chunks)).length;

    // A restart reads from the committed position: nothing is processed or dead-lettered again.
    const again = await runDocproc(platform);
    // Counters are restored from the checkpoint, so unchanged counts mean nothing was redone.
    expect(again.counters).toEqual(status.counters);
    expect(await deadLetters(platform)).toHaveLength(2);
    expect(await readAll(platform.log, topics.chunks)).toHaveLength(chunksBefore);
  }, 180_000);

  it('stops a document past its CPU-time budget by terminating its worker', async () => {
    platform = await startPlatform({ documentCpuMsMax: 200 });
    const slow = await upload(platform, 'slow.md', Buffer.from(regexHostileText(8 * MiB)));
    const fine = await upload(platform, 'fine.md', Buffer.from('# Fine\n\nA short document.'));
    const health = watchHealth(platform.url);
    await runDocproc(platform);
    const watched = await health.stop();

    expect(watched.failures).toEqual([]);
    expect(watched.slowestMs).toBeLessThan(1000);
    const dlq = await deadLetters(platform);
    expect(dlq.map((d) => d.documentId)).toEqual([slow]);
    expect(dlq[0].code).toBe('PAYLOAD_TOO_LARGE');
    expect(dlq[0].message).toMatch(/slow\.md.*CPU-time budget.*cpuMsMax 200/);
    const chunks = await readAll(platform.log, topics.chunks);
    expect(chunks.some((record) => Buffer.from(record.value!).toString().includes(fine))).toBe(true);
  }, 180_000);
});
