import { Socket } from 'node:net';
import { describe, it } from 'vitest';
import { connectPg } from '../../src/connectors/index.js';
import { postgresConnectorCases } from './postgres.case.js';

const url = process.env.TRIBUTARY_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** True when something accepts TCP connections at the URL's host:port within 1 s. */
async function reachable(target: string): Promise<boolean> {
  const { hostname, port } = new URL(target);
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(Number(port || 5432), hostname, () => done(true));
  });
}

const available = await reachable(url);
if (available) {
  postgresConnectorCases(`real PostgreSQL (${url})`, () => connectPg(url));
} else {
  describe('PostgreSQL connectors on a real server', () => {
    it.skip(`skipped: no PostgreSQL reachable at ${url} (set TRIBUTARY_TEST_PG_URL to run)`, () => undefined);
  });
}
