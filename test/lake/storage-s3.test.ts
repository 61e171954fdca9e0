import { describe, expect, it } from 'vitest';
import { storageContract } from '../../src/lake/storage.case.js';
import { openStorage, S3Storage } from '../../src/lake/index.js';
import { s3Credentials, startS3rver } from './s3rver.js';

let counter = 0;
storageContract('s3 (s3rver)', async () => {
  const server = await startS3rver('lake');
  const storage = openStorage({
    storage: `s3://lake/prefix-${counter++}`,
    dataDir: '/nonexistent',
    s3Endpoint: server.endpoint,
    s3ForcePathStyle: true,
    ...s3Credentials,
  });
  return {
    storage,
    close: async () => {
      await storage.close();
      await server.close();
    },
  };
});

describe('S3 conditional writes', () => {
  it('detects that s3rver ignores If-None-Match on PUT and falls back to the checked mode', async () => {
    const server = await startS3rver('probe');
    const storage = openStorage({
      storage: 's3://probe',
      dataDir: '/nonexistent',
      s3Endpoint: server.endpoint,
      s3ForcePathStyle: true,
      ...s3Credentials,
    });
    try {
      expect(storage).toBeInstanceOf(S3Storage);
      expect(await (storage as S3Storage).conditionalWritesSupported()).toBe(false);
      expect(await storage.list('')).toEqual([]);
      // Two storage objects in one process (say the API and a pipeline) still exclude each other.
      const other = openStorage({
        storage: 's3://probe',
        dataDir: '/nonexistent',
        s3Endpoint: server.endpoint,
        s3ForcePathStyle: true,
        ...s3Credentials,
      });
      const bytes = new TextEncoder().encode('x');
      const results = await Promise.all(
        [0, 1, 2, 3].map((i) => (i % 2 === 0 ? storage : other).putIfAbsent('t/_manifests/1.json', bytes)),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
      await other.close();
    } finally {
      await storage.close();
      await server.close();
    }
  });
});
