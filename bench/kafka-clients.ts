import { Consumer, Producer } from '@platformatic/kafka';
import { forEachBounded } from '../src/core/index.js';
import { connectRemoteLog, type Log } from '../src/log/index.js';

/**
 * The client side of kafka.produce and kafka.fetch, run as a child process: a Kafka client and the
 * log's own remote client are separate programs in real use (a producer process, a worker), so
 * they share neither the served log's event loop nor its process (in a worker thread of the same
 * process, the client's large request buffers and the server's contended for one address space:
 * mmap and page faults of both threads serialised, and the produce figure dropped by a fifth).
 * Both paths, the Kafka protocol and the same-run baseline, run their clients here the same way.
 */

export interface ClientSetup {
  kafkaPort: number;
  remote: { host: string; port: number; token: string };
  partitions: number;
  valueBytes: number;
  recordsPerBatch: number;
  batchesInFlight: number;
  fetchPartitionBytes: number;
}

export type ClientTask =
  | { kind: 'produce'; via: 'kafka' | 'remote'; topic: string; records: number }
  | { kind: 'fetch'; via: 'kafka' | 'remote'; topic: string; endOffsets: number[] }
  | { kind: 'close' };

export type ClientAnswer = { ok: true; records: number; seconds: number } | { ok: false; error: string };

/**
 * Sends `count` records as batches round-robin over partitions with `batchesInFlight` outstanding
 * at any time, a sliding window as a producer's max-in-flight keeps (the next batch is encoded
 * while earlier ones wait for the group commit).
 */
async function sendAll(
  setup: ClientSetup,
  send: (partition: number) => Promise<unknown>,
  count: number,
): Promise<number> {
  const started = performance.now();
  const batches = Math.ceil(count / setup.recordsPerBatch);
  await forEachBounded(
    Array.from({ length: batches }, (_, i) => i % setup.partitions),
    setup.batchesInFlight,
    async (partition) => void (await send(partition)),
  );
  return (performance.now() - started) / 1000;
}

/** Reads every partition from 0 to `endOffsets` with @platformatic/kafka's Fetch (what the platform's Kafka backend sends). */
async function kafkaFetchEverything(
  setup: ClientSetup,
  consumer: Consumer,
  topic: string,
  endOffsets: number[],
): Promise<{ records: number; seconds: number }> {
  const started = performance.now();
  const metadata = await consumer.metadata({ topics: [topic] });
  const topicId = metadata.topics.get(topic)!.id;
  let records = 0;
  let checksum = 0;
  for (let partition = 0; partition < endOffsets.length; partition++) {
    let offset = 0;
    while (offset < endOffsets[partition]) {
      const response = await consumer.fetch({
        node: 0,
        maxWaitTime: 0,
        minBytes: 0,
        maxBytes: setup.fetchPartitionBytes,
        topics: [
          {
            topicId,
            partitions: [
              {
                partition,
                currentLeaderEpoch: -1,
                fetchOffset: BigInt(offset),
                lastFetchedEpoch: -1,
                partitionMaxBytes: setup.fetchPartitionBytes,
              },
            ],
          },
        ],
      });
      let last = -1;
      for (const t of response.responses)
        for (const part of t.partitions)
          for (const batch of part.records ?? [])
            for (const r of batch.records) {
              records++;
              checksum += r.value?.length ?? 0;
              last = Number(batch.firstOffset) + r.offsetDelta;
            }
      if (last < 0) break;
      offset = last + 1;
    }
  }
  const seconds = (performance.now() - started) / 1000;
  if (checksum === 0) throw new Error('fetched no values');
  return { records, seconds };
}

/** The same read through the log server's client, 10,000 records per fetch (log.remote_fetch's path). */
async function remoteFetchEverything(
  remote: Log,
  topic: string,
  endOffsets: number[],
): Promise<{ records: number; seconds: number }> {
  const started = performance.now();
  let records = 0;
  let checksum = 0;
  for (let partition = 0; partition < endOffsets.length; partition++) {
    let offset = 0;
    while (offset < endOffsets[partition]) {
      const batch = await remote.fetch(topic, partition, offset, { maxRecords: 10_000 });
      if (batch.length === 0) break;
      records += batch.length;
      checksum += batch[batch.length - 1].value!.length;
      offset = batch[batch.length - 1].offset + 1;
    }
  }
  const seconds = (performance.now() - started) / 1000;
  if (checksum === 0) throw new Error('fetched no values');
  return { records, seconds };
}

async function serveTasks(setup: ClientSetup): Promise<void> {
  const answer = (message: ClientAnswer) => process.send!(message);
  const remote = await connectRemoteLog(setup.remote);
  const sasl = { mechanism: 'PLAIN' as const, username: 'bench', password: 'bench' };
  const brokers = [`127.0.0.1:${setup.kafkaPort}`];
  const producer = new Producer({
    clientId: 'bench',
    bootstrapBrokers: brokers,
    acks: 1,
    idempotent: false,
    sasl,
  });
  const consumer = new Consumer({
    clientId: 'bench',
    groupId: 'bench-reader',
    bootstrapBrokers: brokers,
    sasl,
  });
  const value = Buffer.alloc(setup.valueBytes, 0x6b);
  const batch = (topic: string, partition: number) =>
    Array.from({ length: setup.recordsPerBatch }, () => ({ topic, partition, value }));
  const run = async (task: ClientTask): Promise<{ records: number; seconds: number }> => {
    switch (task.kind) {
      case 'produce': {
        const send =
          task.via === 'kafka'
            ? (p: number) => producer.send({ messages: batch(task.topic, p) })
            : (p: number) => remote.append(batch(task.topic, p));
        return { records: task.records, seconds: await sendAll(setup, send, task.records) };
      }
      case 'fetch':
        return task.via === 'kafka'
          ? kafkaFetchEverything(setup, consumer, task.topic, task.endOffsets)
          : remoteFetchEverything(remote, task.topic, task.endOffsets);
      case 'close':
        await producer.close();
        await consumer.close();
        await remote.close();
        return { records: 0, seconds: 0 };
    }
  };
  process.on('message', (task: ClientTask) => {
    run(task).then(
      (result) => {
        answer({ ok: true, ...result });
        if (task.kind === 'close') process.disconnect();
      },
      (error: unknown) => answer({ ok: false, error: String(error) }),
    );
  });
  answer({ ok: true, records: 0, seconds: 0 });
}

// Started by bench/kafka.ts with an IPC channel and the setup as its one argument.
if (process.send !== undefined) await serveTasks(JSON.parse(process.argv[2]) as ClientSetup);
