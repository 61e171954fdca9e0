import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import { logContract } from '../../src/log/contract.case.js';
import { openKafkaLog } from '../../src/log/kafka/index.js';
import {
  openEmbeddedLog,
  openLog,
  serveKafka,
  type EmbeddedLog,
  type KafkaListener,
} from '../../src/log/index.js';
import { kafkaAuthenticator, KeyStore } from '../../src/serve/index.js';

/**
 * The Log contract on the Kafka backend (@platformatic/kafka). With KAFKA_BROKERS=host:9092 set, it
 * runs against that cluster; otherwise (always in CI) against the embedded log's own Kafka
 * listener (`serveKafka`), authenticated with SASL/SCRAM-SHA-256 and an admin API key, so the
 * backend and the listener check each other. Topic and group names get a random suffix because
 * they outlive a test on a cluster. Retention is left out: Kafka applies it on the broker's own
 * schedule (log.retention.check.interval.ms), and the listener leaves it to the embedded log's.
 */
const brokers = process.env.KAFKA_BROKERS;
const run = randomBytes(4).toString('hex');

if (brokers !== undefined && brokers !== '') {
  logContract('kafka', {
    open: () =>
      openLog({
        dataDir: '.',
        log: `kafka://${brokers}`,
        logFsync: 'group',
        logGroupCommitMs: 2,
        logRetentionMs: -1,
        logRetentionBytes: -1,
      }),
    topicName: (base) => `${base}-${run}`,
  });
} else {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tributary-kafka-contract-'));
  let served: Promise<{ log: EmbeddedLog; listener: KafkaListener; keyId: string; key: string }> | undefined;
  const serve = () =>
    (served ??= (async () => {
      const log = await openEmbeddedLog({ dir: path.join(dir, 'log'), fsync: 'group', groupCommitMs: 2 });
      const keys = KeyStore.open(path.join(dir, 'keys.json'));
      const { key, record } = await keys.create({ scopes: ['admin'], name: 'contract' });
      const listener = await serveKafka(log, {
        port: 0,
        authenticator: kafkaAuthenticator(keys),
        initialRebalanceDelayMs: 50,
      });
      return { log, listener, keyId: record.id, key };
    })());
  afterAll(async () => {
    if (served !== undefined) {
      const { log, listener } = await served;
      await listener.close();
      await log.close();
    }
    rmSync(dir, { recursive: true, force: true });
  });
  logContract('kafka (the embedded log served over the Kafka protocol)', {
    open: async () => {
      const { listener, keyId, key } = await serve();
      return openKafkaLog({
        brokers: [`127.0.0.1:${listener.port}`],
        retentionMs: -1,
        retentionBytes: -1,
        sasl: { mechanism: 'SCRAM-SHA-256', username: keyId, password: key },
      });
    },
    topicName: (base) => `${base}-${run}`,
  });
}
