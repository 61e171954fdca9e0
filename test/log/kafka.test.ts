import { randomBytes } from 'node:crypto';
import { describe, it } from 'vitest';
import { logContract } from '../../src/log/contract.case.js';
import { openLog } from '../../src/log/index.js';

/**
 * The Log contract against a real Kafka cluster, only when KAFKA_BROKERS=host:9092[,host:9092] is
 * set (no broker runs on our CI machines, and we do not fake one). Topic and group names get a
 * random suffix because they outlive the test on the cluster. Retention is left out: Kafka applies
 * it on the broker's own schedule (log.retention.check.interval.ms).
 */
const brokers = process.env.KAFKA_BROKERS;

if (brokers === undefined || brokers === '') {
  describe('Log contract: kafka', () => {
    it.skip('skipped: KAFKA_BROKERS not set (set KAFKA_BROKERS=host:9092 to run the contract against Kafka)', () => {});
  });
  process.stderr.write('test/log/kafka.test.ts skipped: KAFKA_BROKERS not set\n');
} else {
  const run = randomBytes(4).toString('hex');
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
}
