/**
 * Adapter from a lake table (src/lake) to the lake sink's two-phase contract: the rows of one
 * partition (carrying their partition columns: time partitions such as `year`, `month`, `day`,
 * `hour` and any row columns the sink partitions by) are staged as Hive partitions under the sink's
 * deterministic file name, and committed with the checkpoint's commit id (a commit id the table has
 * already applied is recognised, so the re-commit after a restart is a no-op).
 */
import { decodePartitionPath, type LakeTable, type PendingFiles } from '../lake/index.js';
import type { StagedFile, TwoPhaseTable } from './sinks.js';

export interface LakeStagedFile extends StagedFile {
  pending: PendingFiles;
}

export interface LakeTableTargetOptions {
  /** Bronze tables: the `_source` column value. */
  source?: string;
  /**
   * DuckDB types for new columns, e.g. `{ amount: 'DECIMAL(12,2)' }`. Partition columns read back
   * with these types too (`{ event_date: 'DATE' }`).
   */
  types?: Record<string, string>;
}

/**
 * @example .to(lakeSink(lakeTableTarget(lake.table('bronze', 'embeddings'), { source: 'embeddings.ready' }), { flushSize: 1000 }))
 */
export function lakeTableTarget(table: LakeTable, options: LakeTableTargetOptions = {}): TwoPhaseTable {
  return {
    name: table.qualifiedName,
    async stage(rows, { partition, fileName }): Promise<LakeStagedFile> {
      const columns = Object.keys(partition);
      const pending = await table.stage(rows, {
        partitionBy: columns,
        fileName: fileName.replace(/\.parquet$/, ''),
        ...(options.source === undefined ? {} : { source: options.source }),
        ...(options.types === undefined ? {} : { types: options.types }),
      });
      const written = pending.files[0];
      return {
        path: written?.path ?? '',
        // The partition as the table wrote it (typed values are rendered by DuckDB), so compaction
        // names exactly the directory the files are in.
        partition: written === undefined ? partition : decodePartitionPath(written.partition, columns),
        rows: rows.length,
        pending,
      };
    },
    async commit({ commitId, add }) {
      await table.commit({ commitId, add: add.map((file) => (file as LakeStagedFile).pending) });
    },
    async compact(partitions) {
      for (const partition of partitions) await table.compact({ partition });
    },
  };
}
