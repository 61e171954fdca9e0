import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isTributaryError, metricsRegistry } from '../../src/core/index.js';
import { openEmbeddedLog } from '../../src/log/index.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-embedded-extra-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => path.join(root, `log-${++n}`);

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'OK';
  } catch (error) {
    if (isTributaryError(error)) return error.code;
    throw error;
  }
}

describe('embedded log specifics', () => {
  for (const fsync of ['always', 'group', 'never'] as const) {
    it(`appends and reads back with fsync=${fsync}`, async () => {
      const dir = freshDir();
      const log = await openEmbeddedLog({ dir, fsync, retentionCheckMs: 0 });
      await log.createTopic('t', { partitions: 2 });
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => log.append([{ topic: 't', partition: i % 2, value: `v${i}` }])),
      );
      expect(
        results
          .flat()
          .filter((r) => r.partition === 0)
          .map((r) => r.offset)
          .sort((a, b) => a - b),
      ).toEqual(Array.from({ length: 10 }, (_, i) => i));
      await log.close();
      const again = await openEmbeddedLog({ dir, retentionCheckMs: 0 });
      expect((await again.fetch('t', 1, 0)).map((r) => new TextDecoder().decode(r.value!))).toEqual(
        Array.from({ length: 10 }, (_, i) => `v${i * 2 + 1}`),
      );
      await again.close();
    });
  }

  it('applies back-pressure: producers wait when pending bytes exceed the bound, and nothing is lost', async () => {
    const log = await openEmbeddedLog({
      dir: freshDir(),
      pendingBytesMax: 4096,
      groupCommitMs: 5,
      retentionCheckMs: 0,
    });
    await log.createTopic('bp', { partitions: 1 });
    const value = 'x'.repeat(1000);
    let maxPending = 0;
    const sample = setInterval(() => {
      void metricsRegistry.getSingleMetricAsString('tributary_log_pending_bytes').then((text) => {
        const m = /tributary_log_pending_bytes (\d+)/.exec(text);
        if (m) maxPending = Math.max(maxPending, Number(m[1]));
      });
    }, 1);
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => log.append([{ topic: 'bp', value: `${i}:${value}` }])),
    );
    clearInterval(sample);
    expect(results.flat().map((r) => r.offset)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    // One call may exceed the bound alone; beyond that producers waited.
    expect(maxPending).toBeLessThanOrEqual(4096 + 1100);
    const records = await log.fetch('bp', 0, 0, { maxRecords: 100 });
    expect(records.map((r) => new TextDecoder().decode(r.value!).split(':')[0])).toEqual(
      Array.from({ length: 40 }, (_, i) => String(i)),
    );
    await log.close();
  });

  it('one process owns a log directory: a second open is refused, a dead owner lock is taken over', async () => {
    const dir = freshDir();
    const log = await openEmbeddedLog({ dir, retentionCheckMs: 0 });
    expect(await codeOf(openEmbeddedLog({ dir }))).toBe('CONFLICT');
    await log.close();
    fs.writeFileSync(path.join(dir, 'LOCK'), '999999999\n');
    const again = await openEmbeddedLog({ dir, retentionCheckMs: 0 });
    await again.close();
  });

  it('refuses a log written by a newer format version', async () => {
    const dir = freshDir();
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'LOG_FORMAT'), 'tributary-log 99\n');
    expect(await codeOf(openEmbeddedLog({ dir }))).toBe('FORMAT_VERSION');
  });

  it('a damaged sealed segment is reported as CORRUPT_DATA with file and position when read', async () => {
    const dir = freshDir();
    const log = await openEmbeddedLog({ dir, segmentBytes: 1024, retentionCheckMs: 0 });
    await log.createTopic('c', { partitions: 1 });
    for (let i = 0; i < 30; i++) await log.append([{ topic: 'c', value: `record-${i}-${'y'.repeat(100)}` }]);
    await log.close();
    const partitionDir = path.join(dir, 'topics', 'c', '0');
    const first = path.join(partitionDir, fs.readdirSync(partitionDir).sort()[0]);
    const bytes = fs.readFileSync(first);
    bytes[60] = bytes[60] ^ 0xff; // a value byte of the first record
    fs.writeFileSync(first, bytes);
    const reopened = await openEmbeddedLog({ dir, segmentBytes: 1024, retentionCheckMs: 0 });
    try {
      await reopened.fetch('c', 0, 0);
      throw new Error('expected CORRUPT_DATA');
    } catch (error) {
      expect(isTributaryError(error, 'CORRUPT_DATA')).toBe(true);
      expect((error as Error).message).toContain(first);
      expect((error as Error).message).toContain('byte 0');
    }
    // Later segments stay readable.
    const description = await reopened.describeTopic('c');
    expect(description.partitions[0].endOffset).toBe(30);
    expect((await reopened.fetch('c', 0, 29)).length).toBe(1);
    await reopened.close();
  });

  it('a sealed segment cut short fences its partition at open (only the active segment may have a torn tail)', async () => {
    const dir = freshDir();
    const log = await openEmbeddedLog({ dir, segmentBytes: 1024, retentionCheckMs: 0 });
    await log.createTopic('s', { partitions: 1 });
    for (let i = 0; i < 30; i++) await log.append([{ topic: 's', value: `record-${i}-${'z'.repeat(100)}` }]);
    await log.close();
    const partitionDir = path.join(dir, 'topics', 's', '0');
    const first = path.join(partitionDir, fs.readdirSync(partitionDir).sort()[0]);
    fs.truncateSync(first, fs.statSync(first).size - 10);
    // The log opens (one damaged partition does not stop the platform); the partition is fenced.
    const reopened = await openEmbeddedLog({ dir, segmentBytes: 1024 });
    try {
      expect((await reopened.describeTopic('s')).partitions[0].fenced).toMatch(
        /topic s partition 0 is fenced: its log data is damaged \(segment 0{20}\.log at byte \d+: batch of \d+ bytes runs past the end/,
      );
      const error = await reopened.fetch('s', 0, 0).catch((e: unknown) => e);
      expect(isTributaryError(error, 'CORRUPT_DATA')).toBe(true);
      // The damage with its full path is the cause (for the server log).
      expect(((error as Error).cause as Error).message).toContain(first);
      const write = await reopened.append([{ topic: 's', value: 'x' }]).catch((e: unknown) => e);
      expect(isTributaryError(write, 'CORRUPT_DATA')).toBe(true);
    } finally {
      await reopened.close();
    }
    expect(fs.existsSync(path.join(dir, 'LOCK'))).toBe(false);
  });

  it('exports append and fsync metrics', async () => {
    const log = await openEmbeddedLog({ dir: freshDir(), retentionCheckMs: 0 });
    await log.createTopic('m', { partitions: 1 });
    await log.append([{ topic: 'm', value: 'x' }]);
    await log.close();
    const text = await metricsRegistry.metrics();
    expect(text).toMatch(/tributary_log_appended_records_total\{topic="m"\} 1/);
    expect(text).toMatch(/tributary_log_fsync_seconds_count \d+/);
  });
});
