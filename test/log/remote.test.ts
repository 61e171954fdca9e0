import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import { logContract } from '../../src/log/contract.case.js';
import {
  connectRemoteLog,
  openEmbeddedLog,
  readLogServerInfo,
  serveLog,
  type EmbeddedLog,
  type Log,
  type LogServer,
} from '../../src/log/index.js';

/**
 * The `Log` contract against the remote client: each log is a fresh embedded log served by a log
 * server in this process, reached over TCP by a client, as worker processes reach it.
 */
const root = mkdtempSync(path.join(os.tmpdir(), 'tributary-remote-contract-'));
let counter = 0;
// Small segments so that retention (which deletes whole segments) has something to delete.
const options = { fsync: 'group' as const, groupCommitMs: 2, segmentBytes: 4096, retentionCheckMs: 0 };

interface Served {
  embedded: EmbeddedLog;
  server: LogServer;
}
const served = new Map<Log, Served>();

async function serve(dir: string): Promise<Log> {
  const embedded = await openEmbeddedLog({ dir, ...options });
  const server = await serveLog(embedded, { dir });
  const info = readLogServerInfo(dir);
  if (info === null) throw new Error(`server.json missing in ${dir}`);
  const client = await connectRemoteLog({ host: info.host, port: info.port, token: info.token });
  served.set(client, { embedded, server });
  return client;
}

async function shutdown(client: Log): Promise<Served> {
  const entry = served.get(client)!;
  served.delete(client);
  await client.close();
  await entry.server.close();
  await entry.embedded.close();
  return entry;
}

afterAll(async () => {
  for (const client of [...served.keys()]) await shutdown(client);
  rmSync(root, { recursive: true, force: true });
});

logContract('remote', {
  open: () => serve(path.join(root, `log-${++counter}`)),
  reopen: async (client) => {
    const { embedded } = await shutdown(client);
    return serve(embedded.dir);
  },
  enforceRetention: (client) => served.get(client)!.embedded.enforceRetention(),
});
