import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openEmbeddedLog, serveKafka, type EmbeddedLog, type KafkaListener } from '../../src/log/index.js';
import { kafkaAuthenticator, KeyStore } from '../../src/serve/index.js';

/**
 * kcat (librdkafka, a client nobody here wrote) against the Kafka listener over a real embedded
 * log, with SASL/PLAIN and SASL/SCRAM-SHA-256 over API keys from a real key store.
 */
const run = promisify(execFile);
const dir = mkdtempSync(path.join(os.tmpdir(), 'tributary-kafka-kcat-'));
let log: EmbeddedLog;
let listener: KafkaListener;
let keys: KeyStore;
let adminKey: string;
let adminKeyId: string;
let readKey: string;

function kcat(
  args: string[],
  options: {
    key?: string;
    mechanism?: string;
    user?: string;
    input?: string;
    port?: number;
    protocol?: string;
  } = {},
) {
  const mechanism = options.mechanism ?? 'PLAIN';
  const common = [
    '-b',
    `127.0.0.1:${options.port ?? listener.port}`,
    '-X',
    `security.protocol=${options.protocol ?? 'SASL_PLAINTEXT'}`,
    '-X',
    `sasl.mechanisms=${mechanism}`,
    '-X',
    `sasl.username=${options.user ?? 'anyone'}`,
    '-X',
    `sasl.password=${options.key ?? adminKey}`,
  ];
  const child = run('kcat', [...common, ...args], { timeout: 30_000 });
  if (options.input !== undefined) {
    child.child.stdin!.end(options.input);
  }
  return child;
}

beforeAll(async () => {
  log = await openEmbeddedLog({ dir: path.join(dir, 'log'), fsync: 'group', groupCommitMs: 2 });
  keys = KeyStore.open(path.join(dir, 'keys.json'));
  const admin = await keys.create({ scopes: ['admin'], name: 'kcat-admin' });
  adminKey = admin.key;
  adminKeyId = admin.record.id;
  readKey = (await keys.create({ scopes: ['read'], name: 'kcat-reader' })).key;
  listener = await serveKafka(log, {
    port: 0,
    authenticator: kafkaAuthenticator(keys),
    initialRebalanceDelayMs: 100,
  });
  await log.createTopic('kcat-events', { partitions: 3 });
});

afterAll(async () => {
  await listener?.close();
  await log?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('Kafka listener with kcat', () => {
  it('lists metadata (-L) with SASL/PLAIN', async () => {
    const { stdout } = await kcat(['-L', '-J']);
    const meta = JSON.parse(stdout) as {
      brokers: { id: number }[];
      topics: { topic: string; partitions: unknown[] }[];
    };
    expect(meta.brokers.map((b) => b.id)).toEqual([0]);
    const topic = meta.topics.find((t) => t.topic === 'kcat-events');
    expect(topic?.partitions).toHaveLength(3);
  });

  it('produces keyed records with headers that the log reads back exactly', async () => {
    const input = ['k1:hello', 'k2:world', 'k1:again'].join('\n') + '\n';
    await kcat(
      [
        '-P',
        '-t',
        'kcat-events',
        '-K',
        ':',
        '-H',
        'source=kcat',
        '-H',
        'trace=42',
        '-X',
        'enable.idempotence=true',
      ],
      {
        input,
      },
    );
    const records = [];
    for (const p of [0, 1, 2]) records.push(...(await log.fetch('kcat-events', p, 0)));
    const decoded = records
      .map((r) => ({
        key: Buffer.from(r.key!).toString(),
        value: Buffer.from(r.value!).toString(),
        headers: Object.fromEntries(
          Object.entries(r.headers).map(([k, v]) => [k, Buffer.from(v).toString()]),
        ),
        partition: r.partition,
      }))
      .sort((a, b) => a.value.localeCompare(b.value));
    expect(decoded.map((d) => `${d.key}:${d.value}`)).toEqual(['k1:again', 'k1:hello', 'k2:world']);
    expect(decoded[0].headers).toEqual({ source: 'kcat', trace: '42' });
    // murmur2 partitioning: the same key lands in the same partition, as in Kafka
    expect(decoded[0].partition).toBe(decoded[1].partition);
  });

  it('consumes with a group (SCRAM-SHA-256) and commits offsets the log sees', async () => {
    const { stdout } = await kcat(
      ['-G', 'kcat-group', '-o', 'beginning', '-e', '-f', '%k=%s;%h\\n', 'kcat-events'],
      {
        mechanism: 'SCRAM-SHA-256',
        user: adminKeyId,
      },
    );
    const lines = stdout.trim().split('\n').sort();
    expect(lines).toEqual([
      'k1=again;source=kcat,trace=42',
      'k1=hello;source=kcat,trace=42',
      'k2=world;source=kcat,trace=42',
    ]);
    const committed = new Map<number, number>();
    for (const [p, o] of await log.committedOffsets('kcat-group', 'kcat-events')) committed.set(p, o);
    const total = [...committed.values()].reduce((a, b) => a + b, 0);
    expect(total).toBe(3);
  });

  it('decompresses batches librdkafka compressed with gzip, snappy, lz4 and zstd', async () => {
    await log.createTopic('kcat-compressed', { partitions: 1 });
    const codecs = ['gzip', 'snappy', 'lz4', 'zstd'];
    for (const codec of codecs) {
      const lines = Array.from({ length: 50 }, (_, i) => `${codec}-${i}-${'x'.repeat(i)}`);
      await kcat(['-P', '-t', 'kcat-compressed', '-p', '0', '-z', codec, '-X', 'linger.ms=100'], {
        input: `${lines.join('\n')}\n`,
      });
    }
    const values: string[] = [];
    for (let offset = 0; values.length < 200;) {
      const records = await log.fetch('kcat-compressed', 0, offset);
      if (records.length === 0) break;
      values.push(...records.map((r) => Buffer.from(r.value!).toString()));
      offset = records[records.length - 1].offset + 1;
    }
    expect(values).toEqual(
      codecs.flatMap((codec) => Array.from({ length: 50 }, (_, i) => `${codec}-${i}-${'x'.repeat(i)}`)),
    );
  });

  it('acks=0 gets no answer and the records still arrive', async () => {
    await log.createTopic('kcat-acks0', { partitions: 1 });
    await kcat(['-P', '-t', 'kcat-acks0', '-X', 'acks=0'], { input: 'a\nb\nc\n' });
    const deadline = Date.now() + 10_000;
    let values: string[] = [];
    while (values.length < 3 && Date.now() < deadline) {
      values = (await log.fetch('kcat-acks0', 0, 0, { waitMs: 200 })).map((r) =>
        Buffer.from(r.value!).toString(),
      );
    }
    expect(values).toEqual(['a', 'b', 'c']);
  });

  it('speaks TLS (SASL_SSL) with a given certificate and key', async () => {
    const cert = path.join(dir, 'cert.pem');
    const keyFile = path.join(dir, 'key.pem');
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ]);
    const secure = await serveKafka(log, {
      port: 0,
      authenticator: kafkaAuthenticator(keys),
      tls: { cert: readFileSync(cert), key: readFileSync(keyFile) },
    });
    try {
      const { stdout } = await kcat(['-L', '-J', '-X', `ssl.ca.location=${cert}`], {
        port: secure.port,
        protocol: 'SASL_SSL',
      });
      expect((JSON.parse(stdout) as { topics: { topic: string }[] }).topics.map((t) => t.topic)).toContain(
        'kcat-events',
      );
      // A plaintext client gets nothing from the TLS port.
      await expect(kcat(['-L', '-m', '2'], { port: secure.port })).rejects.toThrow();
    } finally {
      await secure.close();
    }
  });

  it('refuses a wrong SCRAM password and a produce without the ingest scope', async () => {
    await expect(
      kcat(['-L', '-m', '2'], { mechanism: 'SCRAM-SHA-256', user: adminKeyId, key: `${adminKey}x` }),
    ).rejects.toThrow();
    await expect(kcat(['-P', '-t', 'kcat-events'], { key: readKey, input: 'nope\n' })).rejects.toThrow(
      /authoriz/i,
    );
    expect((await log.describeTopic('kcat-events')).partitions.reduce((n, p) => n + p.endOffset, 0)).toBe(3);
  });
});
