import { TributaryError, systemClock, type Clock } from '../../core/index.js';
import { decodePartitionPath, quoteLiteral, type Lake } from '../../lake/index.js';
import { openSqlEngine } from '../../sql/index.js';
import { qualityRules, writeCheckedQuery } from '../../stream/index.js';
import { bronzeTables } from './jobs.js';
import { topics } from './payloads.js';

/**
 * The daily report's data-quality rules: every row names a company and a document and counts at
 * least one chunk (else it is quarantined to `gold.daily_chunk_count_quarantine`), and a day
 * with data yields rows (else nothing is written).
 */
export const dailyReportRules = qualityRules([
  { name: 'missing_company', expect: 'not_null', column: 'company_id', action: 'quarantine' },
  { name: 'missing_document', expect: 'not_null', column: 'document_id', action: 'quarantine' },
  { name: 'no_chunks', expect: 'range', column: 'total_chunks', min: 1, action: 'quarantine' },
  { name: 'empty_day', expect: 'row_count', min: 1, action: 'fail' },
]);

/** Output of the seed's Spark job. */
export const dailyReportTable = 'gold.daily_chunk_count';
export const dailyReportJobName = 'documents.daily_chunk_count';
/** Run daily at 00:30 UTC, for the day before (the hour partitions of that day are complete by then). */
export const dailyReportSchedule = '30 0 * * *';

const reportSourceTable = `bronze.${bronzeTables[topics.embeddings]}`;

/** UTC days (YYYY-MM-DD) that have hour partitions in `bronze.embeddings_ready`, sorted. */
export async function daysWithData(lake: Lake): Promise<string[]> {
  const snapshot = await lake.table(reportSourceTable).snapshot();
  const days = new Set<string>();
  for (const file of snapshot?.files ?? []) {
    const values = decodePartitionPath(file.partition);
    if (values.year && values.month && values.day) days.add(`${values.year}-${values.month}-${values.day}`);
  }
  return [...days].sort();
}

const datePattern = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Yesterday in UTC as YYYY-MM-DD. */
export function yesterdayUtc(nowMs: number): string {
  return new Date(nowMs - 86_400_000).toISOString().slice(0, 10);
}

function checkDate(date: string): { year: number; month: number; day: number } {
  const match = datePattern.exec(date);
  const parsed = match ? new Date(`${date}T00:00:00.000Z`) : null;
  if (
    !match ||
    parsed === null ||
    Number.isNaN(parsed.getTime()) ||
    parsed.toISOString().slice(0, 10) !== date
  ) {
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `--date ${JSON.stringify(date)} is not a calendar date in the form YYYY-MM-DD`,
    );
  }
  return { year: Number(match[1]), month: Number(match[2]), day: Number(match[3]) };
}

export interface DailyReportResult {
  date: string;
  table: string;
  /** (company_id, document_id) rows written for the day. */
  rows: number;
  /** Lake snapshot version holding the report. */
  version: number;
}

/**
 * The daily report (seed 004's Spark job): for one UTC day (default yesterday), counts chunks per
 * `company_id, document_id` in `bronze.embeddings_ready` (the lake sink's hour partitions of that
 * day) and writes `gold.daily_chunk_count (date, company_id, document_id, total_chunks)`,
 * partitioned by `date`, replacing that day's partition (a rerun gives the same table).
 *
 * A day with no data in the bronze table is an error (`NOT_FOUND`, naming the days that exist),
 * never an empty success: the seed's job silently printed and exited when its input was missing.
 *
 * @example
 * await runDailyReport(lake, { date: '2026-11-21' });
 */
export async function runDailyReport(
  lake: Lake,
  options: { date?: string; clock?: Clock; commitId?: string } = {},
): Promise<DailyReportResult> {
  const date = options.date ?? yesterdayUtc((options.clock ?? systemClock).now());
  const { year, month, day } = checkDate(date);
  const source = reportSourceTable;
  const snapshot = await lake.table(source).snapshot();
  const days = await daysWithData(lake);
  if (!days.includes(date)) {
    const present = days;
    throw new TributaryError(
      'NOT_FOUND',
      `no data in ${source} for ${date}: ${snapshot === null ? 'the table does not exist yet (has the lake sink run?)' : `days present: ${present.length === 0 ? 'none' : present.slice(-10).join(', ')}`}`,
      { details: { table: source, date } },
    );
  }
  const sql = `
    SELECT CAST(${quoteLiteral(date)} AS DATE) AS date, company_id, document_id, CAST(count(*) AS BIGINT) AS total_chunks
    FROM ${source}
    WHERE CAST(year AS INTEGER) = ${year} AND CAST(month AS INTEGER) = ${month} AND CAST(day AS INTEGER) = ${day}
    GROUP BY company_id, document_id
    ORDER BY company_id, document_id`;
  // Checked by the data-quality rules as it is written: the day's partition is replaced only when
  // it has rows with a company, a document and a positive count (results in gold.quality_results).
  const engine = await openSqlEngine(lake);
  try {
    await writeCheckedQuery({
      lake,
      query: (text) => engine.query(text),
      table: dailyReportTable,
      rules: dailyReportRules,
      input: sql,
      runId: options.commitId ?? `documents-report-${date}-${Date.now()}`,
      mode: 'overwrite-partitions',
      partitionBy: ['date'],
      replacePartitions: [{ date }],
    });
  } finally {
    engine.close();
  }
  const written = await lake.table(dailyReportTable).snapshot();
  const files = written?.files.filter((f) => decodePartitionPath(f.partition).date === date) ?? [];
  return {
    date,
    table: dailyReportTable,
    rows: files.reduce((sum, f) => sum + f.rows, 0),
    version: written?.version ?? 0,
  };
}
