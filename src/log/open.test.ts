import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isTributaryError } from '../core/index.js';
import { openLog, parseKafkaUrl } from './index.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-open-log-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const config = {
  dataDir: root,
  log: 'embedded',
  logFsync: 'group' as const,
  logGroupCommitMs: 2,
  logRetentionMs: -1,
  logRetentionBytes: -1,
};

describe('openLog', () => {
  it('opens the embedded log under <dataDir>/log by default', async () => {
    const log = await openLog(config, { retentionCheckMs: 0 });
    expect(log.kind).toBe('embedded');
    await log.createTopic('t', { partitions: 1 });
    await log.close();
    expect(fs.existsSync(path.join(root, 'log', 'topics', 't', 'topic.json'))).toBe(true);
    expect(fs.readFileSync(path.join(root, 'FORMAT'), 'utf8')).toMatch(/^tributary-data-dir \d+/);
  });

  it('parses kafka:// broker lists and refuses malformed ones', () => {
    expect(parseKafkaUrl('kafka://a:9092,b.example:19092')).toEqual(['a:9092', 'b.example:19092']);
    for (const bad of ['kafka://', 'kafka://host', 'kafka://host:port', 'http://a:9092']) {
      let error: unknown;
      try {
        parseKafkaUrl(bad);
      } catch (e) {
        error = e;
      }
      expect(isTributaryError(error, 'CONFIG_INVALID'), bad).toBe(true);
    }
  });

  it('reports an unreachable Kafka as UNAVAILABLE', async () => {
    // Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    const error = await openLog({ ...config, log: 'kafka://127.0.0.1:9' }).then(
      (log) => log.close(),
      (e: unknown) => e,
    );
    expect(isTributaryError(error, 'UNAVAILABLE')).toBe(true);
  });
});
