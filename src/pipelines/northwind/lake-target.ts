import type { CommitResult, Lake, LakeTable } from '../../lake/index.js';
import type { NorthwindLake } from './batch.js';
import { ingestionDateColumn, withIngestionDate, type SqlBatchJobSpec } from './sql.js';

/**
 * Replaces partition `ingestion_date = <date>` of `table` with `sql`'s rows in one atomic commit;
 * other dates stay. The partition is named explicitly, so a date whose new result is empty is
 * emptied too (an overwrite of the "touched" partitions would keep the old rows).
 */
export async function replaceDatePartition(
  table: LakeTable,
  ingestionDate: string,
  sql: string,
  commitId: string,
): Promise<CommitResult> {
  const pending = await table.stageQuery(withIngestionDate(sql, ingestionDate), {
    partitionBy: [ingestionDateColumn],
  });
  try {
    const result = await table.commit({
      commitId,
      add: pending,
      overwritePartitions: [{ [ingestionDateColumn]: ingestionDate }],
    });
    if (!result.applied) await table.abort(pending);
    return result;
  } catch (error) {
    await table.abort(pending).catch(() => undefined);
    throw error;
  }
}

/**
 * The batch run on the platform lake: every write is one atomic lake commit that replaces the run
 * date's partition (`ingestion_date`) of its table, in bronze, silver and gold alike: a rerun the
 * same day swaps that partition, other days stay (history by date, as seed 001 lays it out).
 *
 * @example
 * const lake = await openLakeFromConfig(config);
 * await runNorthwindBatch({ reader, duck, lake: lakeTarget(lake) });
 */
export function lakeTarget(lake: Lake, options: { commitPrefix?: string } = {}): NorthwindLake {
  const prefix = options.commitPrefix ?? 'northwind';
  const commitId = (table: string, date: string) => `${prefix}:${table}:${date}:${Date.now()}`;
  return {
    async replaceBronzePartition(table, ingestionDate, selectSql) {
      // The staged rows already carry _ingestion_timestamp and _source; the lake keeps them.
      await replaceDatePartition(lake.table(table), ingestionDate, selectSql, commitId(table, ingestionDate));
    },
    async runJob(job: SqlBatchJobSpec) {
      for (const output of job.outputs) {
        await replaceDatePartition(
          lake.table(output.table),
          job.ingestionDate,
          output.sql,
          commitId(output.table, job.ingestionDate),
        );
      }
    },
  };
}
