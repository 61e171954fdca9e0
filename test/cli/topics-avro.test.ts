import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/index.js';
import {
  AvroSerde,
  createMemoryLog,
  openLog,
  openSchemaRegistry,
  type AvroWriter,
} from '../../src/log/index.js';
import { createApp, KeyStore, topicsModule } from '../../src/serve/index.js';

/** Avro values shown as JSON: `tributary topics tail` (the built CLI) and the API's topic records. */
const ratingSchema = {
  type: 'record',
  name: 'Rating',
  namespace: 'movies',
  fields: [
    { name: 'movie', type: 'string' },
    { name: 'stars', type: 'int' },
    { name: 'raw', type: 'bytes' },
  ],
};

let dataDir: string;
let writer: AvroWriter;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'tributary-topics-avro-'));
  const config = loadConfig({ env: {}, cwd: dataDir, dotenv: false, overrides: { dataDir } });
  writer = await new AvroSerde(await openSchemaRegistry(config)).writer('ratings-value', ratingSchema);
});
afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

describe('Avro values as JSON', { timeout: 60_000 }, () => {
  it('tributary topics tail decodes them through the data dir registry', async () => {
    const config = loadConfig({ env: {}, cwd: dataDir, dotenv: false, overrides: { dataDir } });
    const log = await openLog(config, { retentionCheckMs: 0 });
    try {
      await log.ensureTopic('ratings', { partitions: 1 });
      await log.append([
        {
          topic: 'ratings',
          key: 'alien',
          value: writer.encode({ movie: 'alien', stars: 5, raw: Buffer.from('hi') }),
        },
        { topic: 'ratings', value: '{"plain":"json"}' },
      ]);
    } finally {
      await log.close();
    }
    const result = spawnSync(
      process.execPath,
      ['bin/tributary.js', '--data-dir', dataDir, 'topics', 'tail', 'ratings'],
      { encoding: 'utf8', env: { ...process.env, TRIBUTARY_LOG_LEVEL: 'error' } },
    );
    expect(result.status, result.stderr).toBe(0);
    const values = result.stdout
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { value: unknown }).value);
    expect(values).toEqual([
      { movie: 'alien', stars: 5, raw: Buffer.from('hi').toString('base64') },
      { plain: 'json' },
    ]);
  });

  it('the topic records route decodes them for the dashboard', async () => {
    const config = loadConfig({ env: {}, cwd: dataDir, dotenv: false, overrides: { dataDir } });
    const registry = await openSchemaRegistry(config);
    const store = KeyStore.open(path.join(dataDir, 'keys.json'));
    const { key } = await store.create({ scopes: ['admin'], name: 'admin' });
    const log = createMemoryLog();
    await log.ensureTopic('ratings', { partitions: 1 });
    await log.append([
      { topic: 'ratings', value: writer.encode({ movie: 'heat', stars: 4, raw: Buffer.alloc(0) }) },
    ]);
    const api = createApp({
      keys: store,
      ui: false,
      statusTickMs: 0,
      pipelines: [topicsModule(log, registry)],
    });
    try {
      const response = await api.app.request('/api/topics/ratings/partitions/0/records', {
        headers: { authorization: `Bearer ${key}` },
      });
      const body = (await response.json()) as { records: { value: string }[] };
      expect(JSON.parse(body.records[0].value)).toEqual({ movie: 'heat', stars: 4, raw: '' });
    } finally {
      await api.close();
      await log.close();
    }
  });
});
