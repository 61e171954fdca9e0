import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { storageContract } from '../../src/lake/storage.case.js';
import { LocalStorage } from '../../src/lake/index.js';

storageContract('local', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tributary-local-storage-'));
  return { storage: new LocalStorage(dir), close: () => rm(dir, { recursive: true, force: true }) };
});
