import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lineageModule } from '../../src/serve/index.js';
import { BatchDag, LineageEmitter, LineageGraphReader } from '../../src/stream/index.js';
import { salesPipeline, startFixture, getJson, type Fixture } from './fixture.js';

describe('GET /api/lineage', () => {
  let f: Fixture;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'tributary-lineage-api-'));
    const lineage = new LineageEmitter({ dataDir });
    const dag = new BatchDag(
      [
        {
          name: 'bronze.load',
          inputs: ['orders.raw'],
          outputs: ['bronze.orders'],
          run: () => Promise.resolve(),
        },
        {
          name: 'gold.build',
          inputs: ['bronze.orders'],
          outputs: ['gold.totals'],
          run: () => Promise.resolve(),
        },
      ],
      { lineage },
    );
    await dag.runAll();
    await lineage.flush();
    f = await startFixture({ pipelines: [salesPipeline, lineageModule(new LineageGraphReader(dataDir))] });
  });
  afterAll(async () => {
    await f?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('answers the graph built from the run events, and lists the Lineage page', async () => {
    const { status, body } = await getJson(`${f.url}/api/lineage`, f.keys.read);
    expect(status).toBe(200);
    expect(body.events).toBe(4);
    expect(body.edges).toEqual([
      { from: 'job:tributary/bronze.load', to: 'tributary://lake/bronze.orders' },
      { from: 'job:tributary/gold.build', to: 'tributary://lake/gold.totals' },
      { from: 'tributary://lake/bronze.orders', to: 'job:tributary/gold.build' },
      { from: 'tributary://topic/orders.raw', to: 'job:tributary/bronze.load' },
    ]);
    const pipelines = await getJson(`${f.url}/api/pipelines`, f.keys.read);
    const page = pipelines.body.pipelines.find((p: { name: string }) => p.name === 'lineage').page;
    expect(page.graphs).toEqual([{ id: 'lineage-graph', title: 'Lineage graph', route: '/api/lineage' }]);
  });

  it('needs a key, and refuses tenant-bound keys (the graph spans every tenant)', async () => {
    expect((await getJson(`${f.url}/api/lineage`)).status).toBe(401);
    expect((await getJson(`${f.url}/api/lineage`, f.keys.acme)).status).toBe(403);
  });
});
