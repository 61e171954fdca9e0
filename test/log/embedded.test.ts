import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import { logContract } from '../../src/log/contract.case.js';
import { openEmbeddedLog, type EmbeddedLog } from '../../src/log/index.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'tributary-embedded-contract-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
// Small segments so that retention (which deletes whole segments) has something to delete.
const options = { fsync: 'group' as const, groupCommitMs: 2, segmentBytes: 4096, retentionCheckMs: 0 };

logContract('embedded', {
  open: () => openEmbeddedLog({ dir: path.join(root, `log-${++counter}`), ...options }),
  reopen: async (log) => {
    const dir = (log as EmbeddedLog).dir;
    await log.close();
    return openEmbeddedLog({ dir, ...options });
  },
  enforceRetention: (log) => (log as EmbeddedLog).enforceRetention(),
});
