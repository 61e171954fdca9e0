import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openLake, openStorage } from '../../src/lake/index.js';
import { queryLake } from './helpers.js';
import { s3Credentials, startS3rver } from './s3rver.js';

describe('lake tables on S3 (s3rver)', () => {
  it('commits atomically, deduplicates retries, overwrites partitions and garbage-collects', async () => {
    const server = await startS3rver('lake');
    const work = await mkdtemp(path.join(os.tmpdir(), 'tributary-s3-lake-'));
    const storage = openStorage({
      storage: 's3://lake/tables',
      dataDir: work,
      s3Endpoint: server.endpoint,
      s3ForcePathStyle: true,
      ...s3Credentials,
    });
    const lake = await openLake({ storage, workDir: work });
    try {
      const table = lake.table('silver', 'metrics');
      const results = await Promise.all(
        [0, 1, 2, 3].map(async (i) =>
          table.commit({
            commitId: `c-${i}`,
            add: await table.stage([{ k: `k${i}`, day: i % 2 === 0 ? 'even' : 'odd' }], {
              partitionBy: ['day'],
            }),
          }),
        ),
      );
      expect(results.map((r) => r.version).sort()).toEqual([1, 2, 3, 4]);
      expect((await table.commit({ commitId: 'c-2' })).applied).toBe(false);
      await table.overwrite([{ k: 'only', day: 'odd' }]);
      expect(
        await queryLake(
          lake,
          'select day, list(k order by k) as ks from silver.metrics group by day order by day',
        ),
      ).toEqual([
        { day: 'even', ks: ['k0', 'k2'] },
        { day: 'odd', ks: ['only'] },
      ]);
      const objects = (await storage.list('silver/metrics/')).map((o) => o.path);
      expect(objects).toContain('silver/metrics/day=even/_SUCCESS');
      const gc = await table.gc({ graceMs: 0, keepVersions: 1 });
      expect(gc.deletedFiles).toHaveLength(2);
      expect(gc.deletedManifests).toBe(4);
    } finally {
      await lake.close();
      await server.close();
      await rm(work, { recursive: true, force: true });
    }
  });
});
