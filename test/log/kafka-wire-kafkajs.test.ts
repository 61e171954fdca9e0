import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kafka, logLevel, type Consumer, type EachMessagePayload } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openEmbeddedLog, serveKafka, type EmbeddedLog, type KafkaListener } from '../../src/log/index.js';
import { kafkaAuthenticator, KeyStore } from '../../src/serve/index.js';
import { until as waitUntil } from '../fixtures/processes.js';

/**
 * kafkajs 2.2.4 (a client nobody here wrote) against the Kafka listener: admin client, an
 * idempotent producer, and a consumer group of two members that rebalances when the second joins
 * and again when it leaves, every record read exactly once.
 */
const dir = mkdtempSync(path.join(os.tmpdir(), 'tributary-kafka-kafkajs-'));
let log: EmbeddedLog;
let listener: KafkaListener;
let kafka: Kafka;

beforeAll(async () => {
  log = await openEmbeddedLog({ dir: path.join(dir, 'log'), fsync: 'group', groupCommitMs: 2 });
  const keys = KeyStore.open(path.join(dir, 'keys.json'));
  const { key } = await keys.create({ scopes: ['admin'], name: 'kafkajs' });
  listener = await serveKafka(log, {
    port: 0,
    authenticator: kafkaAuthenticator(keys),
    initialRebalanceDelayMs: 100,
  });
  kafka = new Kafka({
    clientId: 'kafkajs-test',
    brokers: [`127.0.0.1:${listener.port}`],
    sasl: { mechanism: 'plain', username: 'kafkajs', password: key },
    logLevel: logLevel.NOTHING,
    retry: { retries: 3 },
  });
});

afterAll(async () => {
  await listener?.close();
  await log?.close();
  rmSync(dir, { recursive: true, force: true });
});

const until = (condition: () => boolean, what: string, timeoutMs = 20_000) =>
  waitUntil(what, condition, timeoutMs);

describe('Kafka listener with kafkajs', () => {
  it('creates, lists, describes and deletes topics with the admin client', async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      expect(
        await admin.createTopics({ topics: [{ topic: 'js-admin', numPartitions: 4 }], waitForLeaders: true }),
      ).toBe(true);
      expect(await admin.listTopics()).toContain('js-admin');
      const meta = await admin.fetchTopicMetadata({ topics: ['js-admin'] });
      expect(meta.topics[0].partitions).toHaveLength(4);
      const configs = await admin.describeConfigs({
        resources: [{ type: 2, name: 'js-admin', configNames: ['retention.ms'] }],
        includeSynonyms: false,
      });
      expect(configs.resources[0].configEntries.map((c) => c.configName)).toEqual(['retention.ms']);
      await expect(admin.createTopics({ topics: [{ topic: 'js-admin', numPartitions: 1 }] })).resolves.toBe(
        false,
      );
      await admin.deleteTopics({ topics: ['js-admin'] });
      expect(await admin.listTopics()).not.toContain('js-admin');
      expect((await log.listTopics()).includes('js-admin')).toBe(false);
    } finally {
      await admin.disconnect();
    }
  });

  it('produces idempotently and a group of two consumers rebalances and reads each record once', async () => {
    await log.createTopic('js-events', { partitions: 4 });
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const send = (from: number, count: number) =>
      producer.send({
        topic: 'js-events',
        acks: -1,
        messages: Array.from({ length: count }, (_, i) => ({
          key: `key-${(from + i) % 10}`,
          value: `value-${from + i}`,
          headers: { n: String(from + i) },
        })),
      });
    await send(0, 40);

    const seen: { member: string; value: string; partition: number }[] = [];
    const assignments = new Map<string, number[]>();
    const start = async (member: string): Promise<Consumer> => {
      const consumer = kafka.consumer({
        groupId: 'js-group',
        sessionTimeout: 6000,
        heartbeatInterval: 200,
        rebalanceTimeout: 6000,
        maxWaitTimeInMs: 300,
      });
      consumer.on(consumer.events.GROUP_JOIN, (event) => {
        assignments.set(member, event.payload.memberAssignment['js-events'] ?? []);
      });
      await consumer.connect();
      await consumer.subscribe({ topic: 'js-events', fromBeginning: true });
      await consumer.run({
        eachMessage: ({ message, partition }: EachMessagePayload) => {
          seen.push({ member, value: message.value!.toString(), partition });
          return Promise.resolve();
        },
      });
      return consumer;
    };
    const first = await start('a');
    await until(() => seen.length >= 40, 'the first member to read the first 40 records');
    const second = await start('b');
    await until(
      () => (assignments.get('b')?.length ?? 0) > 0 && (assignments.get('a')?.length ?? 0) < 4,
      'the rebalance that gives the second member partitions',
    );
    expect([...(assignments.get('a') ?? []), ...(assignments.get('b') ?? [])].sort()).toEqual([0, 1, 2, 3]);
    await send(40, 40);
    await until(() => seen.length >= 80, 'all 80 records');
    expect(new Set(seen.filter((s) => Number(s.value.slice(6)) >= 40).map((s) => s.member))).toEqual(
      new Set(['a', 'b']),
    );
    await second.disconnect();
    await until(() => assignments.get('a')?.length === 4, 'the rebalance after the second member left');
    await send(80, 20);
    await until(() => seen.length >= 100, 'all 100 records');
    await first.disconnect();
    await producer.disconnect();

    const values = seen.map((s) => s.value).sort();
    expect(values).toEqual(Array.from({ length: 100 }, (_, i) => `value-${i}`).sort());
    // The group's commits are the platform's committed offsets: `tributary status` shows no lag.
    const committed = await log.committedOffsets('js-group', 'js-events');
    const ends = (await log.describeTopic('js-events')).partitions.map((p) => p.endOffset);
    expect(ends.reduce((a, b) => a + b, 0)).toBe(100);
    expect(ends.map((_, p) => committed.get(p))).toEqual(ends);
  });
});
