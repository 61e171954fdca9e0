import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../../src/cli/main.js';
import { dataDirPaths } from '../../../src/core/index.js';
import { openEmbeddedLog } from '../../../src/log/index.js';
import { reachablePg, realPgUrl, scratchDatabase } from './harness.js';

/** Runs the CLI in-process and returns what it printed on stdout. */
async function cli(args: string[]): Promise<{ code: number; stdout: string }> {
  let stdout = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += typeof chunk === 'string' ? chunk : new TextDecoder().decode(chunk);
    return true;
  });
  const errors = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    const code = await main(['node', 'tributary', ...args]);
    return { code, stdout };
  } finally {
    spy.mockRestore();
    errors.mockRestore();
  }
}

describe('tributary generate northwind / simulate sales', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'northwind-cli-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('simulate sales appends the requested number of events to ventes-temps-reel', async () => {
    const result = await cli([
      '--data-dir',
      dataDir,
      'simulate',
      'sales',
      '--rate',
      '20000/s',
      '--count',
      '120',
    ]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ topic: 'ventes-temps-reel', events: 120 });
    const log = await openEmbeddedLog({ dir: dataDirPaths(dataDir).log });
    try {
      const records = await log.fetch('ventes-temps-reel', 0, 0, { maxRecords: 1000 });
      expect(records).toHaveLength(120);
      const event = JSON.parse(new TextDecoder().decode(records[0].value!));
      expect(Object.keys(event).sort()).toEqual(['montant', 'order_id', 'pays', 'product_id', 'ts']);
    } finally {
      await log.close();
    }
  });

  it('refuses bad flags with a usage error', async () => {
    expect(
      (await cli(['--data-dir', dataDir, 'simulate', 'sales', '--rate', 'fast', '--count', '1'])).code,
    ).toBe(1);
    expect((await cli(['--data-dir', dataDir, 'simulate', 'sales', '--rate', '10/s'])).code).toBe(1);
    expect((await cli(['--data-dir', dataDir, 'generate', 'northwind', '--scale', '0'])).code).toBe(1);
  });

  describe('into a real PostgreSQL', () => {
    let admin: pg.Client | null = null;
    let scratch: Awaited<ReturnType<typeof scratchDatabase>> | undefined;
    beforeAll(async () => {
      admin = await reachablePg(realPgUrl);
      if (admin === null)
        console.warn(`northwind: PostgreSQL at ${realPgUrl} is not reachable; CLI --pg-url test skipped`);
      else scratch = await scratchDatabase(admin, realPgUrl, `northwind_cli_${process.pid}`);
    });
    afterAll(async () => {
      await scratch?.drop();
      await admin?.end();
    });

    it('generate northwind --pg-url creates the 14 tables with the classic sizes', async (context) => {
      if (scratch === undefined) return context.skip();
      const result = await cli([
        '--data-dir',
        dataDir,
        'generate',
        'northwind',
        '--scale',
        '1',
        '--pg-url',
        scratch.url,
      ]);
      expect(result.code).toBe(0);
      expect(JSON.parse(result.stdout).rows).toMatchObject({
        customers: 91,
        products: 77,
        categories: 8,
        orders: 830,
      });
      const tables = await scratch.client.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM information_schema.tables WHERE table_schema = 'public'`,
      );
      expect(tables.rows[0]?.n).toBe('14');
      const types = await scratch.client.query<{ column_name: string; data_type: string }>(
        `SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'order_details' ORDER BY ordinal_position`,
      );
      expect(types.rows.map((r) => r.data_type)).toEqual([
        'smallint',
        'smallint',
        'real',
        'smallint',
        'real',
      ]);
    });
  });
});
