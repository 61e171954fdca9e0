import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openKafkaLog } from '../../src/log/kafka/index.js';
import type { Log } from '../../src/log/index.js';

/**
 * Interop through `tributary log serve --kafka-port 0` (the compiled CLI, as a user runs it):
 * kcat (librdkafka), kafkajs and the platform's Kafka backend (@platformatic/kafka) each produce
 * records — keyed, with headers, UTF-8 and raw binary — and each reads back every record of the
 * others byte for byte, at the same partition, offset and timestamp; `tributary topics tail`
 * prints the same records. Run `npm run build` first.
 */
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'tributary-kafka-interop-'));
const env: NodeJS.ProcessEnv = { ...process.env, TRIBUTARY_LOG_LEVEL: 'error' };
delete env.TRIBUTARY_DATA_DIR;
delete env.TRIBUTARY_KAFKA_LISTENER;
let server: ChildProcess | undefined;
let port = 0;
let key = '';
const topic = 'interop';

function cli(args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(
      process.execPath,
      ['bin/tributary.js', '--data-dir', dataDir, ...args],
      { env },
      (error, stdout, stderr) =>
        error ? reject(new Error(`${args.join(' ')}: ${stderr}`)) : resolve(stdout),
    ),
  );
}

beforeAll(async () => {
  key = (await cli(['keys', 'create', '--scope', 'admin', '--name', 'interop'])).trim();
  server = spawn(
    process.execPath,
    ['bin/tributary.js', '--data-dir', dataDir, 'log', 'serve', '--kafka-port', '0'],
    { env },
  );
  let output = '';
  port = await new Promise<number>((resolve, reject) => {
    server!.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /Kafka listener on [^\s]+:(\d+)/.exec(output);
      if (match) resolve(Number(match[1]));
    });
    server!.on('exit', (code) => reject(new Error(`log serve exited with ${code}: ${output}`)));
  });
  await cli(['topics', 'create', topic, '--partitions', '3']);
}, 60_000);

afterAll(async () => {
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((resolve) => server!.once('exit', resolve));
  }
  rmSync(dataDir, { recursive: true, force: true });
});

/** What every reader must see of one record, bytes as hex so comparisons are exact. */
interface Seen {
  partition: number;
  offset: number;
  timestamp: number;
  key: string | null;
  value: string | null;
  headers: Record<string, string>;
}
const hex = (b: Uint8Array | null | undefined) =>
  b === null || b === undefined ? null : Buffer.from(b).toString('hex');
const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

function kcatArgs(): string[] {
  return [
    '-b',
    `127.0.0.1:${port}`,
    '-X',
    'security.protocol=SASL_PLAINTEXT',
    '-X',
    'sasl.mechanisms=PLAIN',
    '-X',
    'sasl.username=interop',
    '-X',
    `sasl.password=${key}`,
  ];
}

/** Reads the whole topic with kcat; the format puts the key and value sizes first, so binary is safe. */
function kcatReadAll(): Promise<Seen[]> {
  return new Promise((resolve, reject) => {
    const child = spawn('kcat', [
      ...kcatArgs(),
      '-C',
      '-t',
      topic,
      '-o',
      'beginning',
      '-e',
      '-f',
      '%p %o %T %K %S %h\n%k%s\n',
    ]);
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`kcat exited with ${code}`));
      const out = Buffer.concat(chunks);
      const seen: Seen[] = [];
      for (let at = 0; at < out.length;) {
        const eol = out.indexOf(0x0a, at);
        const [p, o, t, k, s, h = ''] = out.subarray(at, eol).toString('latin1').split(' ');
        at = eol + 1;
        const keyLength = Number(k);
        const valueLength = Number(s);
        const keyBytes = keyLength < 0 ? null : out.subarray(at, at + keyLength);
        at += Math.max(0, keyLength);
        const valueBytes = valueLength < 0 ? null : out.subarray(at, at + valueLength);
        at += Math.max(0, valueLength) + 1;
        // %h prints k=v pairs; only the id header (ASCII) is compared from kcat.
        const id = /(?:^|,)id=([^,]*)/.exec(h)?.[1];
        seen.push({
          partition: Number(p),
          offset: Number(o),
          timestamp: Number(t),
          key: hex(keyBytes),
          value: hex(valueBytes),
          headers: id === undefined ? {} : { id: hex(Buffer.from(id))! },
        });
      }
      resolve(seen);
    });
  });
}

it('records written by kcat, kafkajs and @platformatic/kafka are read back byte for byte by all of them and by topics tail', async () => {
  // kcat: keyed UTF-8 records with headers.
  await new Promise<void>((resolve, reject) => {
    const child = spawn('kcat', [
      ...kcatArgs(),
      '-P',
      '-t',
      topic,
      '-K',
      '\t',
      '-H',
      'id=kcat',
      '-H',
      'lang=fr',
    ]);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`kcat produce exited with ${code}`)),
    );
    child.stdin.end('k-1\théllo ✓\nk-2\t{"n":2}\nk-3\tplain\n');
  });
  // kafkajs: UTF-8 and raw binary keys, values and header values; a null value (tombstone).
  const kafka = new Kafka({
    clientId: 'interop',
    brokers: [`127.0.0.1:${port}`],
    sasl: {
      mechanism: 'scram-sha-256',
      username: await cli(['keys', 'list', '--json']).then((o) => (JSON.parse(o) as { id: string }[])[0].id),
      password: key,
    },
    logLevel: logLevel.NOTHING,
  });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  await producer.send({
    topic,
    acks: -1,
    messages: [
      { key: 'js-1', value: 'ünïcödé', headers: { id: 'kafkajs', bin: binary } },
      { key: binary, value: binary, headers: { id: 'kafkajs' } },
      { key: 'js-3', value: null, headers: { id: 'kafkajs' } },
    ],
  });
  await producer.disconnect();
  // The platform's own Kafka backend: explicit timestamp, binary value.
  const platformatic: Log = await openKafkaLog({
    brokers: [`127.0.0.1:${port}`],
    sasl: { mechanism: 'PLAIN', username: 'interop', password: key },
  });
  try {
    await platformatic.append([
      {
        topic,
        key: 'pk-1',
        value: 'from platformatic',
        headers: { id: 'platformatic' },
        timestamp: 1_700_000_000_123,
      },
      {
        topic,
        key: 'pk-2',
        value: binary.subarray(100),
        headers: { id: 'platformatic', raw: binary.subarray(0, 10) },
      },
    ]);

    // Reader 1: the platform's Kafka backend.
    const viaBackend: Seen[] = [];
    for (const p of [0, 1, 2]) {
      for (const r of await platformatic.fetch(topic, p, 0)) {
        viaBackend.push({
          partition: p,
          offset: r.offset,
          timestamp: r.timestamp,
          key: hex(r.key),
          value: hex(r.value),
          headers: Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, hex(v)!])),
        });
      }
    }
    expect(viaBackend).toHaveLength(8);
    const sortKey = (s: Seen) => s.partition * 1e6 + s.offset;
    viaBackend.sort((a, b) => sortKey(a) - sortKey(b));

    // What was produced, by content.
    const expected = [
      ['k-1', 'héllo ✓', { id: 'kcat', lang: 'fr' }],
      ['k-2', '{"n":2}', { id: 'kcat', lang: 'fr' }],
      ['k-3', 'plain', { id: 'kcat', lang: 'fr' }],
      ['js-1', 'ünïcödé', { id: 'kafkajs', bin: binary }],
      [binary, binary, { id: 'kafkajs' }],
      ['js-3', null, { id: 'kafkajs' }],
      ['pk-1', 'from platformatic', { id: 'platformatic' }],
      ['pk-2', binary.subarray(100), { id: 'platformatic', raw: binary.subarray(0, 10) }],
    ].map(([k, v, h]) => ({
      key: hex(Buffer.from(k as string | Buffer)),
      value: v === null ? null : hex(Buffer.from(v as string | Buffer)),
      headers: Object.fromEntries(
        Object.entries(h as Record<string, string | Buffer>).map(([hk, hv]) => [hk, hex(Buffer.from(hv))!]),
      ),
    }));
    const content = (s: Seen) => ({ key: s.key, value: s.value, headers: s.headers });
    const byContent = (
      a: { key: string | null; value: string | null },
      b: { key: string | null; value: string | null },
    ) => `${a.key}|${a.value}`.localeCompare(`${b.key}|${b.value}`);
    expect(viaBackend.map(content).sort(byContent)).toEqual([...expected].sort(byContent));
    expect(viaBackend.find((s) => s.key === hex(Buffer.from('pk-1')))?.timestamp).toBe(1_700_000_000_123);

    // Reader 2: kafkajs, as a consumer group.
    const viaKafkajs: Seen[] = [];
    const consumer = kafka.consumer({ groupId: 'interop-js', maxWaitTimeInMs: 200 });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: ({ partition, message }) => {
        viaKafkajs.push({
          partition,
          offset: Number(message.offset),
          timestamp: Number(message.timestamp),
          key: hex(message.key),
          value: hex(message.value),
          headers: Object.fromEntries(
            Object.entries(message.headers ?? {}).map(([k, v]) => [k, hex(Buffer.from(v as Buffer))!]),
          ),
        });
        return Promise.resolve();
      },
    });
    const deadline = Date.now() + 20_000;
    while (viaKafkajs.length < 8 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50));
    await consumer.disconnect();
    expect(viaKafkajs.sort((a, b) => sortKey(a) - sortKey(b))).toEqual(viaBackend);

    // Reader 3: kcat (key, value bytes; the id header).
    const viaKcat = (await kcatReadAll()).sort((a, b) => sortKey(a) - sortKey(b));
    expect(viaKcat).toEqual(viaBackend.map((s) => ({ ...s, headers: { id: s.headers.id } })));

    // Reader 4: tributary topics tail (UTF-8 text; JSON values parsed).
    const tailed = (await cli(['topics', 'tail', topic]))
      .trim()
      .split('\n')
      .map(
        (line) =>
          JSON.parse(line) as {
            partition: number;
            offset: number;
            timestamp: number;
            key: string | null;
            value: unknown;
          },
      );
    const text = (h: string | null) => (h === null ? null : Buffer.from(h, 'hex').toString('utf8'));
    expect(tailed.sort((a, b) => a.partition * 1e6 + a.offset - (b.partition * 1e6 + b.offset))).toEqual(
      viaBackend.map((s) => {
        const value = text(s.value);
        let parsed: unknown = value;
        try {
          parsed = value === null ? null : JSON.parse(value);
        } catch {
          // not JSON: tail prints the text
        }
        return {
          topic,
          partition: s.partition,
          offset: s.offset,
          timestamp: s.timestamp,
          key: text(s.key),
          value: parsed,
        };
      }),
    );
  } finally {
    await platformatic.close();
  }
}, 90_000);
