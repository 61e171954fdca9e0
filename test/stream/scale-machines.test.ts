import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataDirPaths } from '../../src/core/index.js';
import { LocalStorage, openLake, openLakeFromConfig, S3Storage, type Lake } from '../../src/lake/index.js';
import { connectRemoteLog, openEmbeddedLog, readLogServerInfo, type Log } from '../../src/log/index.js';
import { openSqlEngine } from '../../src/sql/index.js';
import { runJob } from '../../src/stream/index.js';
import {
  goldenJob,
  goldenLakeTable,
  goldenOutputTopic,
  goldenSales,
} from '../../src/stream/testing/golden.js';
import { startConditionalS3rver } from './scale-s3rver.js';
import { startNode, until, type StartedProcess } from '../fixtures/processes.js';

// Scale-out across machines, simulated on one: three worker processes, each with its own data dir,
// share nothing but the log — one `tributary log serve --kafka-port` process, reached over the
// Kafka protocol with SASL (the workers' log backend is `kafka://…`) — and object storage (s3rver):
// the lake and the tasks' checkpoints and leases (`storage s3://…`). One worker is killed with
// SIGKILL mid-run and a replacement (a new "machine") starts, as a Deployment would restart it;
// the topic outputs, the dead-letter records and the lake table equal one process's run of the
// golden job (test/stream/golden.test.ts). Run `npm run build` first.
const cli = path.resolve('bin/tributary.js');
const worker = path.resolve('dist/src/stream/testing/golden.js');
const n = 12_000;
const leaseTtlMs = 8_000;
const verbose = process.env.SCALE_DEBUG === '1';
let root: string;
let s3: { endpoint: string; close(): Promise<void> };

const baseEnv: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(([name]) => !name.startsWith('TRIBUTARY_') && !name.startsWith('AWS_')),
);
const s3Env = () => ({
  TRIBUTARY_STORAGE: 's3://lake/golden',
  TRIBUTARY_S3_ENDPOINT: s3.endpoint,
  TRIBUTARY_S3_FORCE_PATH_STYLE: 'true',
  TRIBUTARY_S3_ACCESS_KEY_ID: 'S3RVER',
  TRIBUTARY_S3_SECRET_ACCESS_KEY: 'S3RVER',
});

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'tributary-machines-'));
  s3 = await startConditionalS3rver('lake');
});
afterAll(async () => {
  await s3.close();
  await rm(root, { recursive: true, force: true });
});

const text = (b: Uint8Array | null | undefined) => (b ? Buffer.from(b).toString('utf8') : '');

interface Results {
  values: string[];
  ids: string[];
  dlqIds: string[];
  lakeRows: unknown[];
}

async function results(log: Log, lake: Lake): Promise<Results> {
  const d = await log.describeTopic(goldenOutputTopic);
  const records = (
    await Promise.all(
      d.partitions.map((p) => log.fetch(goldenOutputTopic, p.partition, 0, { maxRecords: 1_000_000 })),
    )
  ).flat();
  const dlq = await log.fetch('golden.sales.dlq', 0, 0, { maxRecords: 100_000 });
  const sql = await openSqlEngine(lake);
  try {
    return {
      values: records.map((r) => text(r.value)).sort(),
      ids: records.map((r) => text(r.headers['tributary-id'])),
      dlqIds: dlq.map((r) => text(r.headers['tributary-id'])),
      lakeRows: await sql.query(
        `select country, start, count, total, kind from gold.${goldenLakeTable} order by country, start, kind`,
      ),
    };
  } finally {
    sql.close();
  }
}

type Proc = StartedProcess;

const start = (args: string[], env: NodeJS.ProcessEnv, cwd: string): Proc =>
  startNode(args, {
    env: { ...baseEnv, TRIBUTARY_LOG_LEVEL: verbose ? 'info' : 'error', ...env },
    cwd,
    echo: verbose,
  });

function tributary(dataDir: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(
      process.execPath,
      [cli, '--data-dir', dataDir, ...args],
      { env: { ...baseEnv, TRIBUTARY_LOG_LEVEL: 'error' } },
      (error, stdout, stderr) =>
        error ? reject(new Error(`${args.join(' ')}: ${stderr}`)) : resolve(stdout),
    ),
  );
}

describe('three worker machines: Kafka protocol + object storage only', () => {
  let expected: Results;
  let server: Proc | undefined;

  beforeAll(async () => {
    // One process, embedded log, local lake: the reference.
    const dir = path.join(root, 'single');
    const log = await openEmbeddedLog({ dir: dataDirPaths(dir).log, fsync: 'never' });
    const lake = await openLake({ storage: new LocalStorage(dataDirPaths(dir).lake) });
    try {
      await log.createTopic('golden.sales', { partitions: 1 });
      await log.append(
        goldenSales(n).map((value, i) => ({ topic: 'golden.sales', key: `k${i % 17}`, value })),
      );
      await runJob(goldenJob(log, { lake }), { dataDir: dir, once: true, pollMaxRecords: 333 });
      expected = await results(log, lake);
    } finally {
      await lake.close();
      await log.close();
    }
  }, 120_000);
  afterAll(async () => {
    server?.child.kill('SIGTERM');
    await server?.exited.catch(() => undefined);
  });

  it('a worker killed with SIGKILL and replaced: same outputs, DLQ and lake table as one process', async () => {
    expect(existsSync(worker), 'run `npm run build` first').toBe(true);
    expect(expected.values.length).toBeGreaterThan(100);
    expect(expected.lakeRows.length).toBe(expected.values.length);

    // The log's machine: `tributary log serve --kafka-port 0`, SASL with an API key.
    const logDir = path.join(root, 'log-machine');
    const key = (await tributary(logDir, ['keys', 'create', '--scope', 'admin', '--name', 'workers'])).trim();
    server = start([cli, '--data-dir', logDir, 'log', 'serve', '--kafka-port', '0'], {}, root);
    await until('the Kafka listener', () => server!.lines.some((l) => /Kafka listener on /.test(l)), 90_000);
    const kafkaPort = Number(/:(\d+)$/.exec(server.lines.find((l) => /Kafka listener on /.test(l))!)![1]);
    const info = readLogServerInfo(dataDirPaths(logDir).log)!;
    const log = await connectRemoteLog({ host: info.host, port: info.port, token: info.token });
    await log.createTopic('golden.sales', { partitions: 6 });
    await log.append(goldenSales(n).map((value, i) => ({ topic: 'golden.sales', key: `k${i % 17}`, value })));

    let machines = 0;
    const machine = async (delayMs: number): Promise<Proc> => {
      const dataDir = path.join(root, `machine-${++machines}`);
      await mkdir(dataDir, { recursive: true });
      return start(
        [worker, '--config-worker', `--batch-delay-ms=${delayMs}`, `--lease-ttl-ms=${leaseTtlMs}`],
        {
          TRIBUTARY_DATA_DIR: dataDir,
          TRIBUTARY_LOG: `kafka://127.0.0.1:${kafkaPort}`,
          TRIBUTARY_KAFKA_SASL_USERNAME: `machine-${machines}`,
          TRIBUTARY_KAFKA_SASL_PASSWORD: key,
          ...s3Env(),
        },
        dataDir,
      );
    };
    const batchesOf = (p: Proc) => p.lines.filter((l) => l.startsWith('batch ')).length;
    const tasksOf = (p: Proc) =>
      new Set(p.lines.filter((l) => l.startsWith('task start ')).map((l) => l.slice(11)));
    try {
      const workers = [await machine(25), await machine(25), await machine(25)];
      await until('every worker to be under way', () => workers.every((w) => batchesOf(w) >= 3), 90_000);
      const [victim, ...survivors] = workers;
      victim.child.kill('SIGKILL');
      expect((await victim.exited).signal).toBe('SIGKILL');
      const replacement = await machine(5);
      const running = [...survivors, replacement];
      // On a hang, say where each worker is (its last lines) instead of a bare timeout.
      const report = setTimeout(() => {
        for (const [i, w] of running.entries())
          console.error(
            `worker ${i + 2}:\n  ${w.lines
              .filter((l) => !l.startsWith('batch '))
              .slice(-15)
              .join('\n  ')}\n  batches ${batchesOf(w)}`,
          );
      }, 150_000);
      try {
        for (const w of running) expect((await w.exited).code).toBe(0);
      } finally {
        clearTimeout(report);
      }
      // The dead worker's tasks were run again elsewhere, from its checkpoints in object storage.
      const orphaned = [...tasksOf(victim)];
      expect(orphaned.length).toBeGreaterThan(0);
      for (const task of orphaned)
        expect(
          [...survivors, replacement].some((w) => tasksOf(w).has(task)),
          task,
        ).toBe(true);
      // Nothing of the job is on the workers' disks: checkpoints, leases and lake are in the bucket.
      for (let i = 1; i <= machines; i++)
        expect(existsSync(path.join(root, `machine-${i}`, 'checkpoints', 'golden'))).toBe(false);
      const checkpoints = await new S3Storage({
        bucket: 'lake',
        prefix: 'golden/_checkpoints',
        endpoint: s3.endpoint,
        forcePathStyle: true,
        accessKeyId: 'S3RVER',
        secretAccessKey: 'S3RVER',
      }).list('golden/');
      expect(checkpoints.some((o) => /\/lease\/\d{10}\.json$/.test(o.path))).toBe(true);
      expect(checkpoints.some((o) => /\/manifest\/\d{10}\.json$/.test(o.path))).toBe(true);

      const lake = await openLakeFromConfig({
        dataDir: path.join(root, 'reader'),
        storage: 's3://lake/golden',
        s3Endpoint: s3.endpoint,
        s3ForcePathStyle: true,
        s3AccessKeyId: 'S3RVER',
        s3SecretAccessKey: 'S3RVER',
      });
      try {
        const got = await results(log, lake);
        expect(new Set(got.ids).size).toBe(got.ids.length);
        expect(got.values).toEqual(expected.values);
        expect(got.dlqIds.length).toBe(expected.dlqIds.length);
        expect(new Set(got.dlqIds).size).toBe(got.dlqIds.length);
        expect(got.lakeRows).toEqual(expected.lakeRows);
      } finally {
        await lake.close();
      }
    } finally {
      await log.close();
    }
  }, 240_000);
});
