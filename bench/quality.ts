/**
 * Data-quality benchmark:
 * - stream.quality_check: rows/s through `checkRows` (five rules: not_null, range,
 *   accepted_values, regex, unique; evaluated by DuckDB over the batch through the SQL sandbox), on
 *   batches of 10,000 rows, against the same five checks hand-written as one JavaScript loop over
 *   the same rows in the same run.
 */
import path from 'node:path';
import { LocalStorage, openLake } from '../src/lake/index.js';
import { openSqlEngine } from '../src/sql/index.js';
import { checkRows, type QualityRule } from '../src/stream/index.js';
import type { Benchmark } from './types.js';

const batchRows = 10_000;
const batches = 10;

function rowAt(i: number): Record<string, unknown> {
  const h = Math.imul(i ^ 0x9e3779b9, 0x85ebca6b) >>> 0;
  return {
    user_id: h % 97 === 0 ? null : `u${h % 50_000}`,
    event_id: i,
    minutes: (h % 700) - 20,
    device: ['tv', 'phone', 'web', 'console'][h % 4],
    email: h % 31 === 0 ? 'not-an-email' : `u${h % 1000}@example.com`,
  };
}

const rules: QualityRule[] = [
  { name: 'missing_field:user_id', expect: 'not_null', column: 'user_id', action: 'quarantine' },
  { name: 'bad_minutes', expect: 'range', column: 'minutes', min: 0, max: 600, action: 'quarantine' },
  {
    name: 'unknown_device',
    expect: 'accepted_values',
    column: 'device',
    values: ['tv', 'phone', 'web'],
    action: 'flag',
  },
  {
    name: 'bad_email',
    expect: 'regex',
    column: 'email',
    pattern: '^[a-z0-9]+@[a-z]+\\.com$',
    action: 'flag',
  },
  { name: 'duplicate_event', expect: 'unique', column: 'event_id', action: 'quarantine' },
];

/** The same checks by hand: what a pipeline writes without rules (first failing quarantine rule, flags). */
function handWritten(rows: Record<string, unknown>[]): { kept: number; quarantined: number } {
  const seen = new Map<unknown, number>();
  for (const row of rows) seen.set(row.event_id, (seen.get(row.event_id) ?? 0) + 1);
  const email = /^[a-z0-9]+@[a-z]+\.com$/;
  let kept = 0;
  let quarantined = 0;
  for (const row of rows) {
    const minutes = row.minutes as number | null;
    const reason =
      row.user_id === null
        ? 'missing_field:user_id'
        : minutes === null || minutes < 0 || minutes > 600
          ? 'bad_minutes'
          : seen.get(row.event_id)! > 1
            ? 'duplicate_event'
            : null;
    const flags: string[] = [];
    if (!['tv', 'phone', 'web'].includes(row.device as string)) flags.push('unknown_device');
    if (!email.test(row.email as string)) flags.push('bad_email');
    if (reason === null) kept++;
    else quarantined++;
  }
  return { kept, quarantined };
}

const checkBench: Benchmark = {
  name: 'stream.quality_check',
  description: `checkRows, 5 rules, ${batches} batches of ${batchRows.toLocaleString('en-US')} rows, vs the same checks as a JS loop`,
  async run(context) {
    const { dir } = context;
    const lake = await openLake({ storage: new LocalStorage(path.join(dir, 'lake')) });
    const sql = await openSqlEngine(lake);
    try {
      const data = Array.from({ length: batches }, (_, b) =>
        Array.from({ length: batchRows }, (_, i) => rowAt(b * batchRows + i)),
      );
      const ours = async () => {
        const t = performance.now();
        let quarantined = 0;
        for (const [b, rows] of data.entries()) {
          const checked = await checkRows(sql, rows, {
            table: 'silver.bench',
            rules,
            runId: `b${b}`,
            existingTable: null,
            nowMs: 0,
          });
          quarantined += checked.quarantined.length;
        }
        return { ms: performance.now() - t, quarantined };
      };
      const baseline = () => {
        const t = performance.now();
        let quarantined = 0;
        for (const rows of data) quarantined += handWritten(rows).quarantined;
        return { ms: performance.now() - t, quarantined };
      };
      const oursMs: number[] = [];
      const baseMs: number[] = [];
      for (let round = 0; round < 3; round++) {
        const a = await ours();
        const b = baseline();
        if (a.quarantined !== b.quarantined)
          throw new Error(`checkRows quarantined ${a.quarantined} rows, the JS loop ${b.quarantined}`);
        oursMs.push(a.ms);
        baseMs.push(b.ms);
        context.progress(
          `round ${round + 1}: checkRows ${a.ms.toFixed(0)} ms, JS loop ${b.ms.toFixed(0)} ms`,
        );
      }
      const rows = batches * batchRows;
      const value = rows / (Math.min(...oursMs) / 1000);
      const base = rows / (Math.min(...baseMs) / 1000);
      return {
        value: Math.round(value),
        unit: 'rows/s',
        baseline: Math.round(base),
        baseline_name: 'the same checks as a hand-written JS loop',
        ratio: value / base,
        goal: 'informational: the price of declared, sandboxed rules over a hand-written loop',
      };
    } finally {
      sql.close();
      await lake.close();
    }
  },
};

export const qualityBenchmarks: Benchmark[] = [checkBench];
