/**
 * Adapter from a lake table (src/lake) to the lake sink's two-phase contract: the rows of one
 * partition (carrying their partition columns: time partitions such as `year`, `month`, `day`,
 * `hour` and any row columns the sink partitions by) are staged as Hive partitions under the sink's
 * deterministic file name, and committed with the checkpoint's commit id (a commit id the table has
 * already applied is recognised, so the re-commit after a restart is a no-op).
 *
 * With `quality`, each staged batch is checked first (quality/run.ts): kept rows are staged to the
 * table, quarantined ones to `<table>_quarantine` under the same file name, and the reports ride
 * in the checkpoint with the staged files; the commit publishes the quarantine, then the table,
 * then the results. A violated `fail` rule throws QUALITY_FAILED from `stage`, so the checkpoint
 * fails and nothing of it is committed. `unique` compares with the table's committed rows and
 * within each staged batch (a sink's rows between two rolls), not across the uncommitted batches
 * of one checkpoint.
 */
import type { Clock } from '../core/index.js';
import {
  decodePartitionPath,
  type Lake,
  type LakeTable,
  type PartitionValues,
  type PendingFiles,
} from '../lake/index.js';
import type { SqlEngine } from '../sql/index.js';
import {
  checkRows,
  qualityFailedError,
  quarantineTableOf,
  recordQualityResults,
  type QualityReport,
} from './quality/run.js';
import { qualityColumns, qualityRules, type QualityRule } from './quality/rules.js';
import type { StagedFile, TwoPhaseTable } from './sinks.js';

export interface LakeStagedFile extends StagedFile {
  /**
   * What to commit. Files staged together by `stageMany` share one: the first of them carries it
   * (with every file of the write), the others none.
   */
  pending?: PendingFiles;
  /** Quarantined rows staged for `<table>_quarantine` (quality rules only). */
  quarantine?: PendingFiles;
  quality?: QualityReport;
}

export interface LakeTableQualityOptions {
  rules: readonly QualityRule[];
  /** Evaluates the rules (the SQL layer's sandboxed engine). */
  sql: Pick<SqlEngine, 'queryRows'>;
  /** Where the quarantine and `gold.quality_results` tables live. */
  lake: Lake;
  /** Default `<table>_quarantine`. */
  quarantineTable?: string;
  /** Reference time of `max_age` and `checked_at`; default the system clock. */
  clock?: Clock;
}

export interface LakeTableTargetOptions {
  /** Bronze tables: the `_source` column value. */
  source?: string;
  /**
   * DuckDB types for new columns, e.g. `{ amount: 'DECIMAL(12,2)' }`. Partition columns read back
   * with these types too (`{ event_date: 'DATE' }`).
   */
  types?: Record<string, string>;
  /** Data-quality rules checked on every staged batch. */
  quality?: LakeTableQualityOptions;
}

/**
 * @example .to(lakeSink(lakeTableTarget(lake.table('bronze', 'embeddings'), { source: 'embeddings.ready' }), { flushSize: 1000 }))
 * @example .to(lakeSink(lakeTableTarget(lake.table('silver', 'ratings'), { quality: { rules, sql, lake } })))
 */
export function lakeTableTarget(table: LakeTable, options: LakeTableTargetOptions = {}): TwoPhaseTable {
  const quality = options.quality;
  const rules = quality === undefined ? [] : qualityRules(quality.rules);
  const types = {
    ...(quality !== undefined && rules.some((r) => r.action === 'flag')
      ? { [qualityColumns.flags]: 'VARCHAR[]' }
      : {}),
    ...options.types,
  };
  const quarantine =
    quality === undefined
      ? null
      : quality.lake.table(quality.quarantineTable ?? quarantineTableOf(table.qualifiedName));

  /** Rows carry their partition columns already (the sink puts them there). */
  async function stageRows(
    target: LakeTable,
    rows: Record<string, unknown>[],
    partition: PartitionValues,
    fileName: string,
  ) {
    const columns = Object.keys(partition);
    return target.stage(rows, {
      partitionBy: columns,
      fileName: fileName.replace(/\.parquet$/, ''),
      ...(options.source === undefined ? {} : { source: options.source }),
      ...(Object.keys(types).length === 0 ? {} : { types }),
    });
  }

  const target: TwoPhaseTable = {
    name: table.qualifiedName,
    async stage(rows, { partition, fileName }): Promise<LakeStagedFile> {
      // The partition as the table wrote it (typed values are rendered by DuckDB), so compaction
      // names exactly the directory the files are in.
      const written = (pending: PendingFiles): PartitionValues => {
        const file = pending.files[0];
        return file === undefined ? partition : decodePartitionPath(file.partition, Object.keys(partition));
      };
      if (quality === undefined || quarantine === null) {
        const pending = await stageRows(table, rows, partition, fileName);
        return {
          path: pending.files[0]?.path ?? '',
          partition: written(pending),
          rows: rows.length,
          pending,
        };
      }
      const snapshot = await table.snapshot();
      const existing = rules.some((r) => r.expect === 'unique') && snapshot !== null;
      const runId = fileName.replace(/\.parquet$/, '');
      const checked = await checkRows(quality.sql, rows, {
        table: table.qualifiedName,
        rules,
        runId,
        existingTable: existing ? table.qualifiedName : null,
        nowMs: quality.clock?.now() ?? Date.now(),
        // The table's column types, so a column NULL throughout this batch keeps its type.
        nullTypes: { ...Object.fromEntries((snapshot?.schema ?? []).map((c) => [c.name, c.type])), ...types },
      });
      if (checked.report.status === 'failed') {
        await recordQualityResults(quality.lake, [checked.report], `${runId}:quality`);
        throw qualityFailedError(checked.report);
      }
      const pending = await stageRows(table, checked.kept, partition, fileName);
      const quarantined =
        checked.quarantined.length === 0
          ? undefined
          : await stageRows(quarantine, checked.quarantined, partition, fileName);
      return {
        path: pending.files[0]?.path ?? '',
        partition: written(pending),
        rows: checked.kept.length,
        pending,
        ...(quarantined === undefined ? {} : { quarantine: quarantined }),
        quality: checked.report,
      };
    },
    async stageMany(groups, { fileName }): Promise<LakeStagedFile[]> {
      if (groups.length === 0) return [];
      if (quality !== undefined) {
        // Rules are checked per partition's rows, as `stage` does.
        const staged: LakeStagedFile[] = [];
        for (let i = 0; i < groups.length; i++) {
          const { rows, partition, constants } = groups[i];
          const full = Object.keys(constants).length === 0 ? rows : rows.map((r) => ({ ...r, ...constants }));
          staged.push(await target.stage(full, { partition, fileName: `${fileName}-${i}` }));
        }
        return staged;
      }
      const columns = Object.keys(groups[0].partition);
      const pending = await table.stageGroups(
        groups.map((g) => ({ rows: g.rows, constants: g.constants })),
        {
          partitionBy: columns,
          fileName,
          ...(options.source === undefined ? {} : { source: options.source }),
          ...(Object.keys(types).length === 0 ? {} : { types }),
        },
      );
      return pending.files.map((file, i) => ({
        path: file.path,
        // The partition as the table wrote it (typed values rendered by DuckDB).
        partition: decodePartitionPath(file.partition, columns),
        rows: file.rows,
        ...(i === 0 ? { pending } : {}),
      }));
    },
    async commit({ commitId, add }) {
      const files = add as LakeStagedFile[];
      const quarantined = files.flatMap((f) => (f.quarantine === undefined ? [] : [f.quarantine]));
      if (quarantine !== null && quarantined.length > 0)
        await quarantine.commit({ commitId: `${commitId}:quarantine`, add: quarantined });
      await table.commit({ commitId, add: files.flatMap((file) => (file.pending ? [file.pending] : [])) });
      if (quality !== undefined) {
        const reports = files.flatMap((f) => (f.quality === undefined ? [] : [f.quality]));
        await recordQualityResults(quality.lake, reports, `${commitId}:quality`);
      }
    },
    async compact(partitions, options) {
      for (const partition of partitions) await table.compact({ ...options, partition });
    },
  };
  return target;
}
