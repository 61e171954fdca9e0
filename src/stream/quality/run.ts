/**
 * Running data-quality rules (rules.ts) over a batch and writing what they decide:
 * - `writeCheckedQuery`: a batch job's SELECT → the table (passed and flagged rows),
 *   `<table>_quarantine`, and `gold.quality_results`; a `fail` rule refuses the run before
 *   anything is staged, so the table stays at the same manifest version with the same rows.
 * - `checkRows`: JS rows (a stream sink's batch) → kept and quarantined rows and the report; the
 *   lake sink's adapter (`lakeTableTarget(…, { quality })`, lake.ts) stages and commits them.
 *
 * Every run reconciles: rows_in = rows_passed + rows_flagged + rows_quarantined + rows_refused,
 * and these counts are in every `gold.quality_results` row of the run.
 */
import { childLogger, counter, TributaryError } from '../../core/index.js';
import type { Lake, LakeTable, OverwriteSpec, PartitionValues, PendingFiles } from '../../lake/index.js';
import type { SqlEngine } from '../../sql/index.js';
import {
  compileQuality,
  failColumn,
  parseRule,
  qualityColumns,
  qualityRules,
  ruleColumns,
  type QualityAction,
  type QualityRule,
} from './rules.js';

/** Where every run's per-rule results go. */
export const qualityResultsTable = 'gold.quality_results';

/** The quarantine table of `layer.name`: `layer.name_quarantine`. */
export function quarantineTableOf(table: string): string {
  return `${table}_quarantine`;
}

export interface QualityRuleResult {
  rule: string;
  action: QualityAction;
  /** Rows that satisfied the rule. */
  passed: number;
  /** Rows that did not. */
  failed: number;
  /** The rule did not hold for the batch (a row failed, or a row_count bound was missed). */
  violated: boolean;
}

export interface QualityReport {
  /** The checked table, `layer.name`. */
  table: string;
  runId: string;
  checkedAtMs: number;
  /** `failed`: a `fail` rule was violated and nothing was committed. */
  status: 'passed' | 'failed';
  rowsIn: number;
  rowsPassed: number;
  rowsFlagged: number;
  rowsQuarantined: number;
  /** Rows of a refused (failed) run: all of its rows. */
  rowsRefused: number;
  rules: QualityRuleResult[];
}

/**
 * A stream sink appends results at every checkpoint, so the results table is compacted into one
 * file every this many commits (its rows are few; the files would be many and tiny).
 */
const resultsCompactEveryCommits = 32;

/** Prometheus counters (process registry, served at /metrics). */
export const qualityMetrics = {
  rows: counter('tributary_quality_rows_total', 'Rows checked by data-quality rules, by outcome', [
    'table',
    'outcome',
  ]),
  ruleFailures: counter('tributary_quality_rule_failures_total', 'Rows that failed a data-quality rule', [
    'table',
    'rule',
    'action',
  ]),
  runs: counter('tributary_quality_runs_total', 'Data-quality runs, by status', ['table', 'status']),
};

function buildReport(
  table: string,
  runId: string,
  checkedAtMs: number,
  rules: readonly QualityRule[],
  counts: { rowsIn: number; flagged: number; quarantined: number; failed: number[] },
): QualityReport {
  const results = rules.map((declared, i): QualityRuleResult => {
    const rule = parseRule(declared);
    const failed = counts.failed[i] ?? 0;
    // An empty batch has no row to fail a row_count minimum, yet the bound is missed.
    const countMissed =
      rule.expect === 'row_count' &&
      ((rule.min !== undefined && counts.rowsIn < rule.min) ||
        (rule.max !== undefined && counts.rowsIn > rule.max));
    return {
      rule: rule.name,
      action: rule.action,
      passed: counts.rowsIn - failed,
      failed,
      violated: failed > 0 || countMissed,
    };
  });
  const refused = results.some((r) => r.action === 'fail' && r.violated);
  return {
    table,
    runId,
    checkedAtMs,
    status: refused ? 'failed' : 'passed',
    rowsIn: counts.rowsIn,
    rowsPassed: refused ? 0 : counts.rowsIn - counts.flagged - counts.quarantined,
    rowsFlagged: refused ? 0 : counts.flagged,
    rowsQuarantined: refused ? 0 : counts.quarantined,
    rowsRefused: refused ? counts.rowsIn : 0,
    rules: results,
  };
}

/** The error a refused run throws, naming the table, the rule and how many rows failed it. */
export function qualityFailedError(report: QualityReport): TributaryError {
  const failing = report.rules.filter((r) => r.action === 'fail' && r.violated);
  const described = failing.map((r) => `${r.rule} (${r.failed} of ${report.rowsIn} rows failed)`).join(', ');
  return new TributaryError(
    'QUALITY_FAILED',
    `table ${report.table}: rule ${described} has action fail; run ${report.runId} was refused and nothing was committed`,
    { details: { table: report.table, runId: report.runId, rules: failing.map((r) => r.rule) } },
  );
}

const resultTypes: Record<string, string> = {
  table_name: 'VARCHAR',
  rule: 'VARCHAR',
  action: 'VARCHAR',
  passed: 'BIGINT',
  failed: 'BIGINT',
  violated: 'BOOLEAN',
  run_id: 'VARCHAR',
  checked_at: 'TIMESTAMP',
  status: 'VARCHAR',
  rows_in: 'BIGINT',
  rows_passed: 'BIGINT',
  rows_flagged: 'BIGINT',
  rows_quarantined: 'BIGINT',
  rows_refused: 'BIGINT',
};

/** One `gold.quality_results` row per rule of each report. */
export function qualityResultRows(reports: readonly QualityReport[]): Record<string, unknown>[] {
  return reports.flatMap((report) =>
    report.rules.map((r) => ({
      table_name: report.table,
      rule: r.rule,
      action: r.action,
      passed: r.passed,
      failed: r.failed,
      violated: r.violated,
      run_id: report.runId,
      checked_at: new Date(report.checkedAtMs),
      status: report.status,
      rows_in: report.rowsIn,
      rows_passed: report.rowsPassed,
      rows_flagged: report.rowsFlagged,
      rows_quarantined: report.rowsQuarantined,
      rows_refused: report.rowsRefused,
    })),
  );
}

/**
 * Appends the reports to `gold.quality_results` under `commitId` and counts them in the metrics
 * (only when the commit is new, so a retried run is not counted twice).
 */
export async function recordQualityResults(
  lake: Lake,
  reports: readonly QualityReport[],
  commitId: string,
): Promise<void> {
  if (reports.length === 0) return;
  const result = await lake
    .table(qualityResultsTable)
    .append(qualityResultRows(reports), { commitId, types: resultTypes });
  if (!result.applied) return;
  if (result.version % resultsCompactEveryCommits === 0) {
    // An optimisation: the results are committed already, so a failure here only leaves files.
    await lake
      .table(qualityResultsTable)
      .compact({ minFiles: resultsCompactEveryCommits / 2 })
      .catch((error: unknown) =>
        childLogger('quality').warn({ err: error }, `could not compact ${qualityResultsTable}`),
      );
  }
  for (const report of reports) {
    const { table } = report;
    qualityMetrics.runs.inc({ table, status: report.status });
    qualityMetrics.rows.inc({ table, outcome: 'passed' }, report.rowsPassed);
    qualityMetrics.rows.inc({ table, outcome: 'flagged' }, report.rowsFlagged);
    qualityMetrics.rows.inc({ table, outcome: 'quarantined' }, report.rowsQuarantined);
    qualityMetrics.rows.inc({ table, outcome: 'refused' }, report.rowsRefused);
    for (const r of report.rules) {
      if (r.failed > 0) qualityMetrics.ruleFailures.inc({ table, rule: r.rule, action: r.action }, r.failed);
    }
  }
}

function toCount(value: unknown): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isSafeInteger(n))
    throw new TributaryError('INTERNAL', `quality count ${String(value)} is not an integer`);
  return n;
}

export interface CheckedWriteOptions {
  lake: Lake;
  /**
   * Read-only SQL through the SQL layer's sandbox (`SqlEngine.query`, or a pipeline's
   * `services.query`). The counting query runs here first, so the input and every rule
   * expression (SQL predicates included) pass the sandbox before anything is written.
   */
  query: (sql: string) => Promise<Record<string, unknown>[]>;
  /** The checked table, `layer.name`. */
  table: string;
  rules: readonly QualityRule[];
  /** The SELECT producing the batch (over lake tables). */
  input: string;
  /** Stable across retries of one run (a batch job's `ctx.commitId`): commits are recognised. */
  runId: string;
  /**
   * `append` (default), `overwrite` (the batch replaces the table and its quarantine table) or
   * `overwrite-partitions` (it replaces `replacePartitions` of both, other partitions stay).
   */
  mode?: 'append' | 'overwrite' | 'overwrite-partitions';
  partitionBy?: string[];
  /** With `overwrite-partitions`: the partitions replaced (named, so one left empty is emptied too). */
  replacePartitions?: PartitionValues[];
  /** Default `<table>_quarantine`. */
  quarantineTable?: string;
  /** Reference time for `max_age` and `checked_at`; default now. */
  nowMs?: number;
  /**
   * Projections of the checked rows, for a pipeline whose tables keep their own column order or
   * names (`sql` is a SELECT of the kept or quarantined rows). They must not filter rows: the rows
   * written are compared with the rows counted.
   */
  select?: { table?: (sql: string) => string; quarantine?: (sql: string) => string };
}

/** What a checked write's commits replace: nothing (append), the whole table, or partitions. */
function overwriteSpecOf(
  options: Pick<CheckedWriteOptions, 'mode' | 'replacePartitions'>,
): OverwriteSpec | undefined {
  if (options.mode === 'overwrite') return 'all';
  if (options.mode === 'overwrite-partitions') return options.replacePartitions ?? 'touched';
  return undefined;
}

async function stageAndCheck(
  table: LakeTable,
  sql: string,
  expected: number,
  options: { partitionBy: string[] | undefined; replaceTable: boolean },
): Promise<PendingFiles> {
  const pending = await table.stageQuery(sql, {
    ...(options.partitionBy === undefined ? {} : { partitionBy: options.partitionBy }),
    replaceTable: options.replaceTable,
  });
  const rows = pending.files.reduce((sum, f) => sum + f.rows, 0);
  if (rows !== expected) {
    await table.abort(pending);
    throw new TributaryError(
      'CONFLICT',
      `table ${table.qualifiedName}: ${rows} rows were staged but ${expected} were checked (the input changed during the run, or a projection filters rows); nothing was committed`,
    );
  }
  return pending;
}

async function commitOrAbort(
  table: LakeTable,
  pending: PendingFiles,
  commitId: string,
  overwrite: OverwriteSpec | undefined,
): Promise<void> {
  try {
    const result = await table.commit({
      commitId,
      add: pending,
      ...(overwrite === undefined ? {} : { overwritePartitions: overwrite }),
    });
    if (!result.applied) await table.abort(pending);
  } catch (error) {
    await table.abort(pending).catch(() => undefined);
    throw error;
  }
}

/**
 * Checks a batch job's SELECT against the rules and writes it: kept rows to `table`, quarantined
 * rows to `<table>_quarantine` (with `quality_rule`, `quality_reason`), results to
 * `gold.quality_results`. A violated `fail` rule records the results and throws QUALITY_FAILED
 * before anything is staged: the table keeps its manifest version and rows.
 *
 * @example
 * await writeCheckedQuery({ lake, query: (s) => sql.query(s), table: 'silver.ratings', runId: ctx.commitId,
 *   input: 'SELECT * FROM bronze.ratings WHERE day = DATE \'2026-11-22\'', mode: 'overwrite',
 *   rules: [{ name: 'missing_field:user_id', expect: 'not_null', column: 'user_id', action: 'quarantine' }] });
 */
export async function writeCheckedQuery(options: CheckedWriteOptions): Promise<QualityReport> {
  const { lake, table: tableName } = options;
  const rules = qualityRules(options.rules);
  const mode = options.mode ?? 'append';
  const nowMs = options.nowMs ?? Date.now();
  const table = lake.table(tableName);
  const quarantine = lake.table(options.quarantineTable ?? quarantineTableOf(tableName));
  const existing = mode === 'append' && (await table.snapshot()) !== null ? table.qualifiedName : null;
  const compiled = compileQuality(rules, { input: options.input, existingTable: existing, nowMs });
  const [counted] = await options.query(compiled.countsSql);
  const counts = {
    rowsIn: toCount(counted?.rows_in),
    flagged: toCount(counted?.rows_flagged),
    quarantined: toCount(counted?.rows_quarantined),
    failed: rules.map((_, i) => toCount(counted?.[`failed_${i}`])),
  };
  const report = buildReport(table.qualifiedName, options.runId, nowMs, rules, counts);
  if (report.status === 'failed') {
    await recordQualityResults(lake, [report], `${options.runId}:quality:${table.qualifiedName}`);
    throw qualityFailedError(report);
  }
  const overwrite = overwriteSpecOf(options);
  const stageOptions = { partitionBy: options.partitionBy, replaceTable: overwrite === 'all' };
  const quarantineSql = options.select?.quarantine?.(compiled.quarantineSql) ?? compiled.quarantineSql;
  const keptSql = options.select?.table?.(compiled.passedSql) ?? compiled.passedSql;
  const quarantinePending = await stageAndCheck(quarantine, quarantineSql, counts.quarantined, stageOptions);
  let keptPending: PendingFiles;
  try {
    keptPending = await stageAndCheck(table, keptSql, counts.rowsIn - counts.quarantined, stageOptions);
  } catch (error) {
    await quarantine.abort(quarantinePending).catch(() => undefined);
    throw error;
  }
  await commitChecked({
    lake,
    table,
    quarantine,
    kept: keptPending,
    quarantined: quarantinePending,
    overwrite,
    runId: options.runId,
    report,
  });
  return report;
}

/**
 * Phase two of a checked batch. Quarantine first: a crash in between leaves rejected rows visible
 * and the batch uncommitted, and the rerun (same run id) recognises the quarantine commit instead
 * of adding it twice; then the table; then the results.
 */
async function commitChecked(batch: {
  lake: Lake;
  table: LakeTable;
  quarantine: LakeTable;
  kept: PendingFiles;
  quarantined: PendingFiles;
  overwrite: OverwriteSpec | undefined;
  runId: string;
  report: QualityReport;
}): Promise<void> {
  const { table, quarantine, overwrite, runId, report } = batch;
  // An overwrite with no quarantined rows still empties a quarantine table left by an earlier run.
  const writeQuarantine =
    report.rowsQuarantined > 0 || (overwrite !== undefined && (await quarantine.snapshot()) !== null);
  if (writeQuarantine)
    await commitOrAbort(quarantine, batch.quarantined, `${runId}:${quarantine.qualifiedName}`, overwrite);
  else await quarantine.abort(batch.quarantined);
  await commitOrAbort(table, batch.kept, `${runId}:${table.qualifiedName}`, overwrite);
  await recordQualityResults(batch.lake, [report], `${runId}:quality:${table.qualifiedName}`);
}

export interface CheckedRowsWriteOptions extends Omit<CheckedWriteOptions, 'query' | 'input' | 'select'> {
  /** Evaluates the rules (the SQL layer's sandboxed engine). */
  sql: Pick<SqlEngine, 'queryRows'>;
  rows: readonly Record<string, unknown>[];
  /** DuckDB types for columns new to the table, as `LakeTable.stage`. */
  types?: Record<string, string>;
  /** Bronze tables: the `_source` column value. */
  source?: string;
}

/**
 * `writeCheckedQuery` for rows a batch job computed in TypeScript: checked by `checkRows`, then the
 * same writes (table, `<table>_quarantine`, `gold.quality_results`) and the same guarantees.
 *
 * @example
 * await writeCheckedRows({ lake, sql, table: 'silver.movies', rows, rules, runId: ctx.commitId, mode: 'overwrite' });
 */
export async function writeCheckedRows(options: CheckedRowsWriteOptions): Promise<QualityReport> {
  const { lake, table: tableName } = options;
  const rules = qualityRules(options.rules);
  const overwrite = overwriteSpecOf(options);
  const table = lake.table(tableName);
  const quarantine = lake.table(options.quarantineTable ?? quarantineTableOf(tableName));
  const snapshot = await table.snapshot();
  const { kept, quarantined, report } = await checkRows(options.sql, options.rows, {
    table: table.qualifiedName,
    rules,
    runId: options.runId,
    existingTable: overwrite === undefined && snapshot !== null ? table.qualifiedName : null,
    nowMs: options.nowMs ?? Date.now(),
    nullTypes: Object.fromEntries((snapshot?.schema ?? []).map((c) => [c.name, c.type])),
  });
  if (report.status === 'failed') {
    await recordQualityResults(lake, [report], `${options.runId}:quality:${table.qualifiedName}`);
    throw qualityFailedError(report);
  }
  const stageOptions = {
    ...(options.partitionBy === undefined ? {} : { partitionBy: options.partitionBy }),
    ...(options.source === undefined ? {} : { source: options.source }),
    replaceTable: overwrite === 'all',
    types: {
      ...(rules.some((r) => r.action === 'flag') ? { [qualityColumns.flags]: 'VARCHAR[]' } : {}),
      ...options.types,
    },
  };
  const quarantinedPending = await quarantine.stage(quarantined, stageOptions);
  let keptPending: PendingFiles;
  try {
    keptPending = await table.stage(kept, stageOptions);
  } catch (error) {
    await quarantine.abort(quarantinedPending).catch(() => undefined);
    throw error;
  }
  await commitChecked({
    lake,
    table,
    quarantine,
    kept: keptPending,
    quarantined: quarantinedPending,
    overwrite,
    runId: options.runId,
    report,
  });
  return report;
}

export interface CheckRowsOptions {
  /** The table the rows are for (`layer.name`), named in the report. */
  table: string;
  rules: readonly QualityRule[];
  runId: string;
  /** A committed table whose rows `unique` rules also check against, or null. */
  existingTable: string | null;
  nowMs: number;
  /**
   * DuckDB types of columns that are NULL in every row of the batch (e.g. the target table's
   * schema); otherwise such a column is VARCHAR, which a numeric SQL predicate cannot use. Other
   * columns are typed from their values.
   */
  nullTypes?: Readonly<Record<string, string>>;
}

export interface CheckedRows {
  /** Passed and flagged rows (new objects; flagged ones, and all when a flag rule exists, carry quality_flags). */
  kept: Record<string, unknown>[];
  /** Quarantined rows: the original columns plus quality_rule and quality_reason (and quality_flags). */
  quarantined: Record<string, unknown>[];
  report: QualityReport;
}

/**
 * Checks JS rows with the rules, evaluated by DuckDB through the SQL layer's sandbox
 * (`SqlEngine.queryRows`). Only the columns the rules read are sent, unless a SQL predicate
 * may read any of them. Rows keep their order.
 */
export async function checkRows(
  sql: Pick<SqlEngine, 'queryRows'>,
  rows: readonly Record<string, unknown>[],
  options: CheckRowsOptions,
): Promise<CheckedRows> {
  const rules = qualityRules(options.rules);
  const compiled = compileQuality(rules, {
    input: 'SELECT * FROM batch',
    existingTable: options.existingTable,
    nowMs: options.nowMs,
  });
  const needed = ruleColumns(rules);
  const anyColumn = rules.some((r) => r.expect === 'sql');
  const sent = rows.map((row, i) => {
    if (anyColumn) return { ...row, _quality_row: i };
    const slim: Record<string, unknown> = { _quality_row: i };
    for (const column of needed) if (column in row) slim[column] = row[column];
    return slim;
  });
  const failCols = rules.map((_, i) => failColumn(i));
  // An empty batch fails no row (buildReport still sees a missed row_count minimum).
  const verdicts =
    rows.length === 0
      ? []
      : await sql.queryRows(
          sent,
          // Only rows that failed a rule come back (reading every row back costs more than the
          // checks); a row without a verdict passed every rule.
          `SELECT _quality_row, ${qualityColumns.rule}, ${qualityColumns.reason}${compiled.hasFlags ? `, ${qualityColumns.flags}` : ''}, ${failCols.join(', ')} FROM (${compiled.evaluatedSql}) AS _quality_evaluated WHERE ${failCols.join(' OR ')}`,
          {
            columns: [...needed, '_quality_row'],
            rowsMax: rows.length,
            ...(options.nullTypes === undefined ? {} : { nullTypes: options.nullTypes }),
          },
        );
  const failed = rules.map(() => 0);
  const kept: Record<string, unknown>[] = [];
  const quarantined: Record<string, unknown>[] = [];
  let flagged = 0;
  const ordered = new Array<Record<string, unknown> | undefined>(rows.length);
  for (const verdict of verdicts) ordered[toCount(verdict._quality_row)] = verdict;
  for (let i = 0; i < rows.length; i++) {
    const verdict = ordered[i];
    const row: Record<string, unknown> = { ...rows[i] };
    if (verdict === undefined) {
      if (compiled.hasFlags) row[qualityColumns.flags] = [];
      kept.push(row);
      continue;
    }
    failCols.forEach((column, r) => {
      if (verdict[column] === true) failed[r]++;
    });
    const flags = compiled.hasFlags ? (verdict[qualityColumns.flags] as string[]) : undefined;
    if (flags !== undefined) row[qualityColumns.flags] = flags;
    if (verdict[qualityColumns.rule] !== null) {
      row[qualityColumns.rule] = verdict[qualityColumns.rule];
      row[qualityColumns.reason] = verdict[qualityColumns.reason];
      quarantined.push(row);
    } else {
      if (flags !== undefined && flags.length > 0) flagged++;
      kept.push(row);
    }
  }
  const report = buildReport(options.table, options.runId, options.nowMs, rules, {
    rowsIn: rows.length,
    flagged,
    quarantined: quarantined.length,
    failed,
  });
  return report.status === 'failed' ? { kept: [], quarantined: [], report } : { kept, quarantined, report };
}
