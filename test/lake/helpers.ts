import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { LocalStorage, openLake, type Lake } from '../../src/lake/index.js';

export interface TempLake {
  lake: Lake;
  dir: string;
  close(): Promise<void>;
}

export async function tempLake(): Promise<TempLake> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tributary-lake-test-'));
  const lake = await openLake({ storage: new LocalStorage(dir) });
  return {
    lake,
    dir,
    close: async () => {
      await lake.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Reads rows through DuckDB views over the committed files (the same views the SQL engine uses). */
export async function queryLake(lake: Lake, sql: string): Promise<Record<string, unknown>[]> {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    await lake.prepareViews(connection);
    const reader = await connection.runAndReadAll(sql);
    return reader.getRowObjectsJson();
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}
