import path from 'node:path';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  openEmbeddedLog,
  readLogServerInfo,
  serveKafka,
  serveLog,
  type KafkaAuthenticator,
  type Log,
} from '../src/log/index.js';
import type { ClientAnswer, ClientSetup, ClientTask } from './kafka-clients.js';
import type { Benchmark, BenchContext, BenchResult } from './types.js';

const produceRecords = Number(process.env.TRIBUTARY_BENCH_KAFKA_RECORDS ?? 400_000);
const valueBytes = 200;
const recordsPerBatch = 1_000;
const batchesInFlight = 4;
const partitions = 4;
/** Bytes asked per partition and Fetch: about as many records as one remote fetch (10,000) returns. */
const fetchPartitionBytes = 2 * 1024 * 1024;

/** Any password: the benchmark measures the protocol, not SASL (done once per connection). */
const openAuthenticator: KafkaAuthenticator = {
  plain: () => ({ name: 'bench', produce: true, consume: true, admin: true }),
  scram: () => 'SCRAM is not used by the benchmark',
};

/**
 * One embedded log served both ways in this process (the log server and the Kafka listener, as in
 * `tributary up`), and the clients of both in one child process (see kafka-clients.ts): the
 * figures are the served side's throughput, with client encoding in a process of its own as it is
 * for real clients.
 */
interface Served {
  log: Log;
  run(task: ClientTask): Promise<{ records: number; seconds: number }>;
  close(): Promise<void>;
}

async function serveBoth(context: BenchContext): Promise<Served> {
  const logDir = path.join(context.dir, 'log');
  const log = await openEmbeddedLog({ dir: logDir, fsync: 'group', groupCommitMs: 2, retentionCheckMs: 0 });
  const server = await serveLog(log, { dir: logDir });
  const info = readLogServerInfo(logDir);
  if (info === null) throw new Error(`the log server wrote no server.json in ${logDir}`);
  const kafka = await serveKafka(log, { port: 0, authenticator: openAuthenticator });
  const setup: ClientSetup = {
    kafkaPort: kafka.port,
    remote: { host: info.host, port: info.port, token: info.token },
    partitions,
    valueBytes,
    recordsPerBatch,
    batchesInFlight,
    fetchPartitionBytes,
  };
  const client = fork(
    fileURLToPath(new URL('./kafka-clients.js', import.meta.url)),
    [JSON.stringify(setup)],
    {
      // The young generation npm run bench gives itself.
      execArgv: ['--max-semi-space-size=32'],
    },
  );
  const answers: ((answer: ClientAnswer) => void)[] = [];
  const failed = new Promise<never>((_, reject) => {
    client.once('error', reject);
    client.once('exit', (code) => reject(new Error(`the benchmark client exited with code ${code}`)));
  });
  failed.catch(() => undefined);
  client.on('message', (answer: ClientAnswer) => answers.shift()?.(answer));
  const next = () =>
    Promise.race([new Promise<ClientAnswer>((resolve) => answers.push(resolve)), failed]).then((answer) => {
      if (!answer.ok) throw new Error(`benchmark client: ${answer.error}`);
      return answer;
    });
  await next(); // connected
  const run = (task: ClientTask) => {
    const answer = next();
    client.send(task);
    return answer;
  };
  return {
    log,
    run,
    close: async () => {
      try {
        await run({ kind: 'close' });
      } finally {
        client.kill();
        await kafka.close();
        await server.close();
        await log.close();
      }
    },
  };
}

const produceBench: Benchmark = {
  name: 'kafka.produce',
  description: `produce ${produceRecords.toLocaleString('en-US')} records of ${valueBytes} B through the Kafka listener (@platformatic/kafka producer, acks=1, batches of ${recordsPerBatch}, ${batchesInFlight} in flight; clients in a child process)`,
  async run(context: BenchContext): Promise<BenchResult> {
    const served = await serveBoth(context);
    try {
      await served.log.createTopic('via-kafka', { partitions, retentionMs: -1 });
      await served.log.createTopic('via-remote', { partitions, retentionMs: -1 });
      // Warm both paths (connections, JIT); then three rounds each, alternating, best of each (the
      // machine's load moves between runs; alternating keeps one path from getting the quiet one).
      await served.run({ kind: 'produce', via: 'kafka', topic: 'via-kafka', records: produceRecords / 4 });
      await served.run({ kind: 'produce', via: 'remote', topic: 'via-remote', records: produceRecords / 4 });
      let kafkaSeconds = Infinity;
      let remoteSeconds = Infinity;
      const rounds = 3;
      for (let round = 0; round < rounds; round++) {
        const kafka = await served.run({
          kind: 'produce',
          via: 'kafka',
          topic: 'via-kafka',
          records: produceRecords,
        });
        kafkaSeconds = Math.min(kafkaSeconds, kafka.seconds);
        const remote = await served.run({
          kind: 'produce',
          via: 'remote',
          topic: 'via-remote',
          records: produceRecords,
        });
        remoteSeconds = Math.min(remoteSeconds, remote.seconds);
      }
      const stored = (await served.log.describeTopic('via-kafka')).partitions.reduce(
        (n, p) => n + p.endOffset,
        0,
      );
      const expected = rounds * produceRecords + produceRecords / 4;
      if (stored < expected) throw new Error(`the log holds ${stored} of ${expected} produced records`);
      const value_ = produceRecords / kafkaSeconds;
      const baseline = produceRecords / remoteSeconds;
      context.progress(
        `Kafka protocol ${kafkaSeconds.toFixed(3)} s, log server client ${remoteSeconds.toFixed(3)} s`,
      );
      return {
        value: value_,
        unit: 'records/s',
        baseline,
        baseline_name: "the log's own remote client (log server), same records and batches",
        ratio: value_ / baseline,
        goal: '>= 500,000 records/s and ratio >= 0.5',
      };
    } finally {
      await served.close();
    }
  },
};

const fetchBench: Benchmark = {
  name: 'kafka.fetch',
  description: `fetch ${produceRecords.toLocaleString('en-US')} records of ${valueBytes} B through the Kafka listener (@platformatic/kafka Fetch, ${fetchPartitionBytes / 1024 / 1024} MiB per request; clients in a child process)`,
  async run(context: BenchContext): Promise<BenchResult> {
    const served = await serveBoth(context);
    try {
      await served.log.createTopic('bench', { partitions, retentionMs: -1 });
      const value = Buffer.alloc(valueBytes, 0x66);
      for (let sent = 0, call = 0; sent < produceRecords; sent += recordsPerBatch * batchesInFlight) {
        await Promise.all(
          Array.from({ length: batchesInFlight }, () =>
            served.log.append(
              Array.from({ length: recordsPerBatch }, () => ({
                topic: 'bench',
                partition: call++ % partitions,
                value,
              })),
            ),
          ),
        );
      }
      const endOffsets = (await served.log.describeTopic('bench')).partitions.map((p) => p.endOffset);
      // Three rounds each, alternating, best of each (the first read of a round may warm caches).
      let viaKafka = Infinity;
      let viaRemote = Infinity;
      let records = 0;
      for (let round = 0; round < 3; round++) {
        const kafka = await served.run({ kind: 'fetch', via: 'kafka', topic: 'bench', endOffsets });
        const remote = await served.run({ kind: 'fetch', via: 'remote', topic: 'bench', endOffsets });
        if (kafka.records !== remote.records || kafka.records < produceRecords)
          throw new Error(
            `Kafka fetch read ${kafka.records} records, the log server client ${remote.records}, of ${produceRecords}`,
          );
        records = kafka.records;
        viaKafka = Math.min(viaKafka, kafka.seconds);
        viaRemote = Math.min(viaRemote, remote.seconds);
      }
      context.progress(
        `Kafka protocol ${viaKafka.toFixed(3)} s, log server client ${viaRemote.toFixed(3)} s`,
      );
      const value_ = records / viaKafka;
      const baseline = records / viaRemote;
      return {
        value: value_,
        unit: 'records/s',
        baseline,
        baseline_name: "the log's own remote client (log.remote_fetch's path), same records",
        ratio: value_ / baseline,
        goal: '>= 500,000 records/s and ratio >= 0.5',
      };
    } finally {
      await served.close();
    }
  },
};

export const kafkaBenchmarks: Benchmark[] = [produceBench, fetchBench];
