import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, seededRandom } from '../../../src/core/index.js';
import { openLakeFromConfig } from '../../../src/lake/index.js';
import { openLog } from '../../../src/log/index.js';
import { analyticsLateTopic, topics } from '../../../src/pipelines/documents/index.js';
import { checkpointDir } from '../../../src/stream/index.js';
import { openSqlEngine } from '../../../src/sql/index.js';

/**
 * kill -9 of a worker running the analytics and lake-sink stages, mid-stream, then a restart:
 * analytics.flink, the late side output and bronze.embeddings_ready must be identical to an
 * uninterrupted run over the same input. Runs the compiled CLI (`npm run build` first), and feeds
 * the input through the replay path `tributary topics produce embeddings.ready --key-field
 * document_id --timestamp-field ts`.
 */
const bin = path.resolve('bin/tributary.js');
const slow = process.env.TRIBUTARY_SLOW === '1';

/** NDJSON embeddings.ready replay lines: mostly in order, jitter within 5 s, ~2% late by minutes. */
function generate(seed: number, count: number, startMs: number): { lines: string[]; endMs: number } {
  const random = seededRandom(seed);
  const companies = ['acme', 'globex', 'initech', 'umbrella'];
  const lines: string[] = [];
  let clock = startMs;
  for (let i = 0; i < count; i++) {
    clock += Math.floor(random() * 120);
    let ts = clock - Math.floor(random() * 4_000);
    if (random() < 0.02) ts -= 60_000 + Math.floor(random() * 180_000);
    const company = companies[Math.floor(random() * companies.length)];
    const document = `doc-${seed}-${Math.floor(i / 25)}`;
    lines.push(
      JSON.stringify({
        chunk_id: `c-${seed}-${startMs}-${i}`,
        document_id: document,
        company_id: company,
        vector: [random(), random(), random(), random()],
        ts,
      }),
    );
  }
  return { lines, endMs: clock };
}

function cli(dataDir: string, args: string[], input?: string): string {
  const result = spawnSync(process.execPath, [bin, ...args], {
    input,
    env: { ...process.env, TRIBUTARY_DATA_DIR: dataDir, TRIBUTARY_LOG_LEVEL: 'error' },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.status !== 0)
    throw new Error(`tributary ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  return result.stdout;
}

interface Outputs {
  windows: string[];
  late: number;
  bronze: Record<string, unknown>[];
  files: number;
}

async function outputs(dataDir: string): Promise<Outputs> {
  const config = loadConfig({ env: {}, dotenv: false, overrides: { dataDir } });
  const log = await openLog(config);
  const lake = await openLakeFromConfig(config);
  const sql = await openSqlEngine(lake);
  try {
    const read = async (topic: string) => {
      const values: string[] = [];
      if (!(await log.listTopics()).includes(topic)) return values;
      for (const p of (await log.describeTopic(topic)).partitions) {
        let offset = p.startOffset;
        for (;;) {
          const batch = await log.fetch(topic, p.partition, offset, { maxRecords: 10_000 });
          if (batch.length === 0) break;
          for (const r of batch) values.push(Buffer.from(r.value!).toString());
          offset = batch[batch.length - 1].offset + 1;
        }
      }
      return values;
    };
    const bronze = await sql.query(
      'select chunk_id, document_id, company_id, cast(ts as bigint) as ts, year, month, day, hour from bronze.embeddings_ready order by chunk_id',
    );
    const snapshot = await lake.table('bronze', 'embeddings_ready').snapshot();
    return {
      windows: (await read(topics.analytics)).sort(),
      late: (await read(analyticsLateTopic)).length,
      bronze,
      files: snapshot?.files.length ?? 0,
    };
  } finally {
    sql.close();
    await lake.close();
    await log.close();
  }
}

describe('documents worker: kill -9 mid-stream and restart', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'documents-crash-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  // Each seed spawns five CLI processes (~20 s on two busy cores): one seed in `npm test`, more when slow.
  const seeds = slow ? [1, 2, 3, 4, 5, 6] : [7];
  for (const seed of seeds) {
    it(`gives the uninterrupted run's outputs (seed ${seed})`, async () => {
      const start = Date.UTC(2026, 10, 21, 22, 50, 0);
      const first = generate(seed, slow ? 60_000 : 12_000, start);
      const second = generate(seed + 1000, 3_000, first.endMs);
      const firstFile = path.join(dir, `first-${seed}.ndjson`);
      const secondFile = path.join(dir, `second-${seed}.ndjson`);
      await writeFile(firstFile, `${first.lines.join('\n')}\n`);
      await writeFile(secondFile, `${second.lines.join('\n')}\n`);
      const produce = (dataDir: string, ...files: string[]) =>
        cli(
          dataDir,
          ['topics', 'produce', topics.embeddings, '--key-field', 'document_id', '--timestamp-field', 'ts'],
          files.map((f) => readFileSync(f, 'utf8')).join(''),
        );

      // Uninterrupted: everything, one bounded run. `topics produce` creates the topic with one
      // partition, which the pipeline then uses as it is.
      const straight = path.join(dir, `straight-${seed}`);
      produce(straight, firstFile, secondFile);
      cli(straight, ['worker', 'documents', '--stage', 'analytics,sink', '--once']);
      const expected = await outputs(straight);
      expect(expected.windows.length).toBeGreaterThan(20);
      expect(expected.late).toBeGreaterThan(0);
      expect(expected.bronze.length).toBe(first.lines.length + second.lines.length);

      // Interrupted: the first part, an unbounded worker killed with SIGKILL once it has
      // checkpointed (at a seeded random moment after that), the rest, then a restart.
      const crashed = path.join(dir, `crashed-${seed}`);
      produce(crashed, firstFile);
      const worker = spawn(
        process.execPath,
        [bin, 'worker', 'documents', '--stage', 'analytics,sink', '--checkpoint-interval-ms', '50'],
        {
          env: { ...process.env, TRIBUTARY_DATA_DIR: crashed, TRIBUTARY_LOG_LEVEL: 'error' },
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      let stderr = '';
      worker.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<NodeJS.Signals | null>((resolve) =>
        worker.on('exit', (_code, signal) => resolve(signal)),
      );
      const manifests = ['documents.analytics', 'documents.sink.embeddings_ready'].map((job) =>
        path.join(checkpointDir(crashed, job), 'CURRENT'),
      );
      const deadline = Date.now() + 30_000;
      while (!manifests.every((m) => existsSync(m))) {
        if (Date.now() > deadline || worker.exitCode !== null)
          throw new Error(`worker did not checkpoint: ${stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await new Promise((resolve) => setTimeout(resolve, Math.floor(seededRandom(seed)() * 400)));
      worker.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');
      produce(crashed, secondFile);
      cli(crashed, ['worker', 'documents', '--stage', 'analytics,sink', '--once']);
      const actual = await outputs(crashed);

      expect(actual.windows).toEqual(expected.windows);
      expect(actual.late).toBe(expected.late);
      expect(actual.bronze).toEqual(expected.bronze);
    });
  }
});
