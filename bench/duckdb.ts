import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';

/**
 * Runs `action` on a connection to a fresh in-memory DuckDB using both cores, as the benchmarks'
 * "DuckDB alone" baselines and ceilings do, and closes it afterwards.
 */
export async function withDuckDB<T>(action: (connection: DuckDBConnection) => Promise<T>): Promise<T> {
  const instance = await DuckDBInstance.create(':memory:', { threads: '2' });
  const connection = await instance.connect();
  try {
    return await action(connection);
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}
