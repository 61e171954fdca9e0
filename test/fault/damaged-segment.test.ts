/**
 * Issue 17 §3: one damaged log segment used to stop the whole platform from opening its log. Now
 * only the damaged partition is fenced: its reads and writes are refused with a clear error (503 at
 * the API, naming topic, partition and segment, no path), `describeTopic` and status show it, every
 * other partition and topic works, and `tributary topics inspect|repair` shows what a repair drops
 * and truncates only when told to.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataDirPaths, isTributaryError } from '../../src/core/index.js';
import { openEmbeddedLog, partitionForKey, type EmbeddedLog } from '../../src/log/index.js';
import { createApp, formatStatus, KeyStore, topicsModule } from '../../src/serve/index.js';
import { skipWithout } from '../fixtures/prerequisite.js';
import { listen } from '../pipelines/documents/helpers.js';

let dataDir: string;
let logDir: string;
const partitions = 3;
const perPartition = 400;
/** A key of each partition (murmur2, as the log places keyed records). */
const keyOf = (partition: number) => {
  for (let i = 0; ; i++) if (partitionForKey(Buffer.from(`k${i}`), partitions) === partition) return `k${i}`;
};
const segmentsOf = (partition: number) =>
  fs
    .readdirSync(path.join(logDir, 'topics', 'orders', String(partition)))
    .filter((name) => name.endsWith('.log'))
    .sort();

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'fault-damaged-'));
  logDir = dataDirPaths(dataDir).log;
  // Small segments, so partition 1 has sealed segments before its active one.
  const log = await openEmbeddedLog({ dir: logDir, segmentBytes: 8 * 1024 });
  await log.ensureTopic('orders', { partitions });
  await log.ensureTopic('other', { partitions: 1 });
  for (let p = 0; p < partitions; p++) {
    for (let i = 0; i < perPartition; i += 20) {
      await log.append(
        Array.from({ length: 20 }, (_, j) => ({
          topic: 'orders',
          key: keyOf(p),
          value: JSON.stringify({ p, n: i + j, pad: 'x'.repeat(40) }),
        })),
      );
    }
  }
  await log.append([{ topic: 'other', value: 'fine' }]);
  await log.close();
  // Damage partition 1: overwrite the magic of the second batch of its second (sealed) segment.
  const sealed = path.join(logDir, 'topics', 'orders', '1', segmentsOf(1)[1]);
  const bytes = fs.readFileSync(sealed);
  const second = bytes.readUInt32LE(4);
  bytes.write('JUNK', second, 'latin1');
  fs.writeFileSync(sealed, bytes);
});
afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

describe('a damaged segment', () => {
  it('fences only its partition: the log opens, the rest reads and writes, the API answers 503 with a clear message', async () => {
    let log: EmbeddedLog | undefined = await openEmbeddedLog({ dir: logDir, segmentBytes: 8 * 1024 });
    const keys = KeyStore.open(path.join(dataDir, 'keys.json'));
    const admin = (await keys.create({ scopes: ['admin'] })).key;
    const api = createApp({ keys, ui: false, statusTickMs: 0, pipelines: [topicsModule(log)] });
    const server = await listen(api.app);
    try {
      const description = await log.describeTopic('orders');
      expect(description.partitions.map((p) => p.fenced === undefined)).toEqual([true, false, true]);
      expect(description.partitions[1].fenced).toMatch(
        /topic orders partition 1 is fenced: its log data is damaged \(segment \d{20}\.log at byte \d+: bad magic/,
      );

      // The other partitions and topics read and write as before.
      for (const p of [0, 2]) {
        const records = await log.fetch('orders', p, 0, { maxRecords: 10_000 });
        expect(records.length).toBe(perPartition);
      }
      await log.append([{ topic: 'orders', key: keyOf(0), value: 'after' }]);
      await log.append([{ topic: 'other', value: 'after' }]);
      expect((await log.fetch('other', 0, 0)).length).toBe(2);

      // The fenced one refuses reads and writes with the same clear error.
      const read = await log.fetch('orders', 1, 0).catch((error: unknown) => error);
      expect(isTributaryError(read, 'CORRUPT_DATA')).toBe(true);
      expect((read as Error).message).toMatch(/tributary topics inspect orders --partition 1/);
      const write = await log
        .append([{ topic: 'orders', key: keyOf(1), value: 'refused' }])
        .catch((error: unknown) => error);
      expect(isTributaryError(write, 'CORRUPT_DATA')).toBe(true);

      const response = await fetch(`${server.url}/api/topics/orders/partitions/1/records`, {
        headers: { authorization: `Bearer ${admin}` },
      });
      expect(response.status).toBe(503);
      const body = (await response.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('CORRUPT_DATA');
      expect(body.error.message).toMatch(/topic orders partition 1 is fenced/);
      expect(body.error.message).not.toContain(dataDir);
      const healthy = await fetch(`${server.url}/api/topics/orders/partitions/0/records?limit=5`, {
        headers: { authorization: `Bearer ${admin}` },
      });
      expect(healthy.status).toBe(200);

      // Status shows it (what `up` adds to /api/status and `tributary status` prints).
      const text = formatStatus({
        generatedAtMs: Date.now(),
        pipelines: [],
        jobs: [],
        fencedPartitions: [{ topic: 'orders', partition: 1, reason: description.partitions[1].fenced! }],
      });
      expect(text).toMatch(/Fenced log partitions[^\n]*\n {2}orders\/1: topic orders partition 1 is fenced/);
      await log.close();
      log = undefined;
    } finally {
      await api.close();
      await server.close();
      await log?.close();
    }
  });

  it('inspect and repair: prints what it would drop, changes nothing without the flag, then truncates after the last good batch', () => {
    const built = fs.existsSync('dist/src/cli/main.js');
    if (skipWithout(built, 'the compiled CLI (dist/; npm run build)')) return;
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, ['bin/tributary.js', '--data-dir', dataDir, 'topics', ...args], {
        encoding: 'utf8',
        env: { ...process.env, TRIBUTARY_LOG_LEVEL: 'error' },
      });
    const before = segmentsOf(1).map((name) => fs.statSync(path.join(logDir, 'topics', 'orders', '1', name)));

    const inspected = cli('inspect', 'orders', '--partition', '1');
    expect(inspected.status, inspected.stderr).toBe(1);
    const report = JSON.parse(inspected.stdout) as {
      damaged: boolean;
      lastGoodEndOffset: number;
      segments: { file: string; damage?: { reason: string } }[];
      drop: { bytes: number; segmentsTruncated: string[]; segmentsDeleted: string[] };
    };
    expect(report.damaged).toBe(true);
    expect(report.segments[1].damage?.reason).toMatch(/bad magic/);
    expect(report.drop.segmentsTruncated).toEqual([segmentsOf(1)[1]]);
    expect(report.drop.segmentsDeleted).toEqual(segmentsOf(1).slice(2));
    expect(cli('inspect', 'orders', '--partition', '0').status).toBe(0);

    const dryRun = cli('repair', 'orders', '--partition', '1');
    expect(dryRun.status).toBe(1);
    expect(dryRun.stdout).toMatch(
      new RegExp(`would drop ${report.drop.bytes} bytes after offset ${report.lastGoodEndOffset} `),
    );
    expect(dryRun.stdout).toMatch(/nothing was changed; run again with --truncate-after-last-good/);
    expect(
      segmentsOf(1).map((name) => fs.statSync(path.join(logDir, 'topics', 'orders', '1', name)).size),
    ).toEqual(before.map((s) => s.size));

    const repaired = cli('repair', 'orders', '--partition', '1', '--truncate-after-last-good');
    expect(repaired.status, repaired.stderr).toBe(0);
    expect(repaired.stdout).toMatch(
      new RegExp(
        `repaired orders partition 1: dropped ${report.drop.bytes} bytes .* now ends at offset ${report.lastGoodEndOffset}`,
      ),
    );
    expect(cli('inspect', 'orders', '--partition', '1').status).toBe(0);
  });

  it('opens unfenced after the repair, keeping every record before the damage', async () => {
    if (!fs.existsSync('dist/src/cli/main.js')) return;
    const log = await openEmbeddedLog({ dir: logDir, segmentBytes: 8 * 1024 });
    try {
      const p1 = (await log.describeTopic('orders')).partitions[1];
      expect(p1.fenced).toBeUndefined();
      const records = await log.fetch('orders', 1, 0, { maxRecords: 10_000 });
      expect(records.length).toBe(p1.endOffset);
      expect(records.map((r) => (JSON.parse(Buffer.from(r.value!).toString()) as { n: number }).n)).toEqual(
        Array.from({ length: p1.endOffset }, (_, i) => i),
      );
      await log.append([{ topic: 'orders', key: keyOf(1), value: 'writable again' }]);
    } finally {
      await log.close();
    }
  });
});
