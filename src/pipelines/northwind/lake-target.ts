import type { Lake } from '../../lake/index.js';
import { sqlString } from './countries.js';
import type { NorthwindLake } from './batch.js';
import { ingestionDateColumn, type SqlBatchJobSpec } from './sql.js';

/**
 * The batch run on the platform lake: every write is one atomic lake commit. Bronze partitions are
 * replaced with `overwrite-partitions` on `ingestion_date` (a rerun the same day swaps that
 * partition, other days stay); silver and gold outputs replace their whole table.
 *
 * @example
 * const lake = await openLakeFromConfig(config);
 * await runNorthwindBatch({ reader, duck, lake: lakeTarget(lake) });
 */
export function lakeTarget(lake: Lake, options: { commitPrefix?: string } = {}): NorthwindLake {
  const prefix = options.commitPrefix ?? 'northwind';
  return {
    async replaceBronzePartition(table, ingestionDate, selectSql) {
      // The staged rows already carry _ingestion_timestamp and _source; the lake keeps them.
      await lake
        .table(table)
        .writeQuery(
          `SELECT *, DATE ${sqlString(ingestionDate)} AS ${ingestionDateColumn} FROM (${selectSql}) AS staged`,
          {
            mode: 'overwrite-partitions',
            partitionBy: [ingestionDateColumn],
            commitId: `${prefix}:${table}:${ingestionDate}:${Date.now()}`,
          },
        );
    },
    async runJob(job: SqlBatchJobSpec) {
      for (const output of job.outputs) {
        await lake.table(output.table).writeQuery(output.sql, { mode: 'overwrite' });
      }
    },
  };
}
