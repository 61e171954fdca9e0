import { describe, it } from 'vitest';
import { connectPg, pgReachable } from '../../src/connectors/index.js';
import { postgresConnectorCases } from './postgres.case.js';
import { skipWithout } from '../fixtures/prerequisite.js';

const url = process.env.TRIBUTARY_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const available = await pgReachable(url);
if (!skipWithout(available, `no PostgreSQL reachable at ${url} (set TRIBUTARY_TEST_PG_URL to run)`)) {
  postgresConnectorCases(`real PostgreSQL (${url})`, () => connectPg(url));
} else {
  describe('PostgreSQL connectors on a real server', () => {
    it.skip(`skipped: no PostgreSQL reachable at ${url}`, () => undefined);
  });
}
