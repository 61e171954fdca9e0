import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock, metricsRegistry, TributaryError } from '../../src/core/index.js';
import { LocalStorage, openLake, type Lake } from '../../src/lake/index.js';
import { createMemoryLog } from '../../src/log/index.js';
import { openSqlEngine, type SqlEngine } from '../../src/sql/index.js';
import {
  checkRows,
  lakeSink,
  lakeTableTarget,
  qualityRules,
  recordQualityResults,
  runJob,
  stream,
  writeCheckedQuery,
  writeCheckedRows,
  type QualityRule,
} from '../../src/stream/index.js';

let dir: string;
let lake: Lake;
let sql: SqlEngine;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tributary-quality-'));
  lake = await openLake({ storage: new LocalStorage(path.join(dir, 'lake')) });
  sql = await openSqlEngine(lake, { refreshIntervalMs: 0 });
});
afterAll(async () => {
  sql.close();
  await lake.close();
  await rm(dir, { recursive: true, force: true });
});

const nowMs = Date.UTC(2026, 11, 3, 12, 0, 0);
let runs = 0;

/** Checks `rows` with one rule set through the stream path (DuckDB over the batch). */
async function check(
  rows: Record<string, unknown>[],
  rules: QualityRule[],
  existingTable: string | null = null,
  types?: Record<string, string>,
) {
  return checkRows(sql, rows, {
    table: 'silver.checked',
    rules,
    runId: `run-${++runs}`,
    existingTable,
    nowMs,
    ...(types === undefined ? {} : { nullTypes: types }),
  });
}

function reconciles(report: {
  rowsIn: number;
  rowsPassed: number;
  rowsFlagged: number;
  rowsQuarantined: number;
  rowsRefused: number;
}): void {
  expect(report.rowsPassed + report.rowsFlagged + report.rowsQuarantined + report.rowsRefused).toBe(
    report.rowsIn,
  );
}

describe('quality rule declarations', () => {
  it('refuse regex constructs RE2 cannot run, naming the rule', () => {
    for (const pattern of ['(a)\\1', '(?=a)b', '(?<!x)y', '(?>a+)b', 'a++']) {
      expect(() =>
        qualityRules([{ name: 'bad_pattern', expect: 'regex', column: 'c', pattern, action: 'flag' }]),
      ).toThrow(/quality rule bad_pattern: .*RE2/);
    }
  });

  it('accept escaped quantifier characters', () => {
    expect(
      qualityRules([{ name: 'plus', expect: 'regex', column: 'c', pattern: '^\\++$', action: 'flag' }]),
    ).toHaveLength(1);
  });

  it('refuse bad shapes, duplicate names and multi-statement predicates', () => {
    expect(() => qualityRules([])).toThrow(/at least one rule/);
    expect(() => qualityRules([{ name: 'r', expect: 'range', column: 'c', action: 'flag' }])).toThrow(
      /quality rule r: .*min and\/or max/,
    );
    expect(() =>
      qualityRules([
        { name: 'r', expect: 'not_null', column: 'a', action: 'flag' },
        { name: 'r', expect: 'not_null', column: 'b', action: 'flag' },
      ]),
    ).toThrow(/used twice/);
    expect(() =>
      qualityRules([{ name: 'p', expect: 'sql', predicate: 'true; DROP TABLE x', action: 'fail' }]),
    ).toThrow(/one expression/);
    expect(() =>
      qualityRules([{ name: 'bad name!', expect: 'not_null', column: 'a', action: 'flag' }]),
    ).toThrow(/rule names must match/);
    expect(() =>
      qualityRules([
        { name: 'a', expect: 'not_null', column: 'a', action: 'drop' } as unknown as QualityRule,
      ]),
    ).toThrow(/quality rule a: action/);
  });
});

describe('each rule with each action (stream batch through DuckDB)', () => {
  it('not_null quarantines with the rule and the missing field as reason; absent fields count as null', async () => {
    const { kept, quarantined, report } = await check(
      [{ user_id: 'u1', show: 's' }, { show: 's' }, { user_id: null, show: null }],
      [
        { name: 'missing_field:user_id', expect: 'not_null', column: 'user_id', action: 'quarantine' },
        { name: 'missing_field:show', expect: 'not_null', column: 'show', action: 'quarantine' },
      ],
    );
    expect(kept).toEqual([{ user_id: 'u1', show: 's' }]);
    // Rules are checked in declaration order; the first failing one is the reason.
    expect(quarantined).toEqual([
      { show: 's', quality_rule: 'missing_field:user_id', quality_reason: 'user_id is null' },
      { user_id: null, show: null, quality_rule: 'missing_field:user_id', quality_reason: 'user_id is null' },
    ]);
    expect(report.rules.map((r) => [r.rule, r.failed])).toEqual([
      ['missing_field:user_id', 2],
      ['missing_field:show', 1],
    ]);
    reconciles(report);
  });

  it('flag adds every failing flag rule to quality_flags and keeps the row', async () => {
    const { kept, quarantined, report } = await check(
      [
        { title: 'a', overview: null, poster: null },
        { title: 'b', overview: 'x', poster: null },
        { title: 'c', overview: 'x', poster: 'p' },
      ],
      [
        { name: 'missing_overview', expect: 'not_null', column: 'overview', action: 'flag' },
        { name: 'missing_poster', expect: 'not_null', column: 'poster', action: 'flag' },
      ],
    );
    expect(quarantined).toEqual([]);
    expect(kept.map((r) => r.quality_flags)).toEqual([
      ['missing_overview', 'missing_poster'],
      ['missing_poster'],
      [],
    ]);
    expect([report.rowsPassed, report.rowsFlagged]).toEqual([1, 2]);
  });

  it('range honours inclusive and exclusive bounds and fails NULL unless nullable', async () => {
    const rows = [0, 0.5, 10, 10.5, null].map((score) => ({ score }));
    const strict = await check(rows, [
      {
        name: 'score_range',
        expect: 'range',
        column: 'score',
        min: 0,
        max: 10,
        minInclusive: false,
        action: 'quarantine',
      },
    ]);
    expect(strict.quarantined.map((r) => r.score)).toEqual([0, 10.5, null]);
    expect(strict.quarantined[0]?.quality_reason).toBe('score = 0.0 is outside (0, 10]');
    const lenient = await check(rows, [
      {
        name: 'score_range',
        expect: 'range',
        column: 'score',
        max: 10,
        maxInclusive: false,
        nullable: true,
        action: 'quarantine',
      },
    ]);
    expect(lenient.quarantined.map((r) => r.score)).toEqual([10, 10.5]);
  });

  it('accepted_values', async () => {
    const { quarantined } = await check(
      [{ type: 'Movie' }, { type: 'TV Show' }, { type: 'Podcast' }, { type: null }],
      [
        {
          name: 'show_type',
          expect: 'accepted_values',
          column: 'type',
          values: ['Movie', 'TV Show'],
          action: 'quarantine',
        },
      ],
    );
    expect(quarantined.map((r) => [r.type, r.quality_reason])).toEqual([
      ['Podcast', 'type = Podcast is not one of (Movie, TV Show)'],
      [null, 'type = null is not one of (Movie, TV Show)'],
    ]);
  });

  it('regex matches in linear time: a pattern that backtracks catastrophically in JS stays fast in RE2', async () => {
    const evil = `${'a'.repeat(50_000)}!`;
    const { quarantined, report } = await check(
      [{ code: 'aaa' }, { code: evil }, { code: 'b' }],
      [{ name: 'code_format', expect: 'regex', column: 'code', pattern: '^(a+)+$', action: 'quarantine' }],
    );
    expect(quarantined.map((r) => (r.code as string).length)).toEqual([50_001, 1]);
    expect(report.rules[0]?.failed).toBe(2);
  });

  it('max_age fails rows older than the cutoff, measured from the run clock', async () => {
    const { quarantined } = await check(
      [
        { seen_at: new Date(nowMs - 1_000) },
        { seen_at: new Date(nowMs - 7_200_000) },
        { seen_at: '2026-12-03T11:30:00Z' },
        { seen_at: 'not a time' },
      ],
      [{ name: 'stale', expect: 'max_age', column: 'seen_at', maxAgeMs: 3_600_000, action: 'quarantine' }],
    );
    expect(quarantined.map((r) => r.seen_at)).toEqual([new Date(nowMs - 7_200_000), 'not a time']);
    const epoch = await check(
      [{ ts: nowMs - 1_000 }, { ts: nowMs - 7_200_000 }, { ts: null }],
      [
        {
          name: 'stale',
          expect: 'max_age',
          column: 'ts',
          maxAgeMs: 3_600_000,
          unit: 'epoch_ms',
          action: 'quarantine',
        },
      ],
    );
    expect(epoch.quarantined.map((r) => r.ts)).toEqual([nowMs - 7_200_000, null]);
  });

  it('unique fails every repeated key in the batch and keys the table already holds', async () => {
    await lake.table('silver', 'unique_existing').append([{ id: 1, v: 'old' }], { commitId: 'seed-unique' });
    const { kept, quarantined } = await check(
      [{ id: 1 }, { id: 2 }, { id: 2 }, { id: 3 }, { id: null }],
      [{ name: 'duplicate_id', expect: 'unique', column: 'id', action: 'quarantine' }],
      'silver.unique_existing',
    );
    expect(kept.map((r) => r.id)).toEqual([3, null]);
    expect(quarantined.map((r) => r.quality_reason)).toEqual([
      'id = 1 is already in silver.unique_existing',
      'id = 2 is repeated in the batch',
      'id = 2 is repeated in the batch',
    ]);
  });

  it('row_count applies its action to the whole batch; an empty batch misses a minimum', async () => {
    const rows = [{ a: 1 }, { a: 2 }];
    const flagged = await check(rows, [{ name: 'too_few', expect: 'row_count', min: 3, action: 'flag' }]);
    expect(flagged.kept.map((r) => r.quality_flags)).toEqual([['too_few'], ['too_few']]);
    const empty = await check([], [{ name: 'empty', expect: 'row_count', min: 1, action: 'fail' }]);
    expect(empty.report.status).toBe('failed');
    expect(empty.report.rules[0]?.violated).toBe(true);
  });

  it('a SQL predicate is evaluated by DuckDB over the batch, inside the read-only sandbox', async () => {
    const { quarantined } = await check(
      [
        { quantity: 2, price: 10 },
        { quantity: 20, price: 10 },
        { quantity: null, price: 1 },
      ],
      [{ name: 'order_too_large', expect: 'sql', predicate: 'quantity * price < 100', action: 'quarantine' }],
    );
    expect(quarantined.map((r) => r.quantity)).toEqual([20, null]);
    await expect(
      check(
        [{ a: 1 }],
        [
          {
            name: 'sneaky',
            expect: 'sql',
            predicate: "(SELECT count(*) FROM read_csv('/etc/passwd')) > 0",
            action: 'flag',
          },
        ],
      ),
    ).rejects.toMatchObject({ code: 'SQL_REFUSED' });
  });

  it('fail refuses the batch: nothing kept, every row refused', async () => {
    const { kept, quarantined, report } = await check(
      [{ a: 1 }, { a: -1 }],
      [{ name: 'negative', expect: 'range', column: 'a', min: 0, action: 'fail' }],
    );
    expect([kept, quarantined]).toEqual([[], []]);
    expect([report.status, report.rowsRefused, report.rowsPassed]).toEqual(['failed', 2, 0]);
  });
});

describe('batch runs over a lake table', () => {
  const rules: QualityRule[] = [
    { name: 'missing_field:user_id', expect: 'not_null', column: 'user_id', action: 'quarantine' },
    { name: 'bad_minutes', expect: 'range', column: 'minutes', min: 0, max: 600, action: 'quarantine' },
    { name: 'missing_device', expect: 'not_null', column: 'device', action: 'flag' },
  ];

  async function bronze(name: string, rows: Record<string, unknown>[]): Promise<string> {
    await lake.table('bronze', name).append(rows, { commitId: `${name}-load`, source: 'test' });
    return `SELECT user_id, minutes, device FROM bronze.${name}`;
  }

  /** One batch run into `table` (append mode). */
  function run(table: string, input: string, runId: string, checked: QualityRule[] = rules) {
    return writeCheckedQuery({
      lake,
      query: (s) => sql.query(s),
      table,
      rules: checked,
      input,
      runId,
      nowMs,
    });
  }

  it('writes kept rows with quality_flags, quarantine rows with rule, reason and the row, and results that reconcile', async () => {
    const input = await bronze('views', [
      { user_id: 'u1', minutes: 30, device: 'tv' },
      { user_id: 'u2', minutes: 45, device: null },
      { user_id: null, minutes: 10, device: 'tv' },
      { user_id: 'u3', minutes: 900, device: null },
    ]);
    const report = await run('silver.views', input, 'views-1');
    expect(report).toMatchObject({
      status: 'passed',
      rowsIn: 4,
      rowsPassed: 1,
      rowsFlagged: 1,
      rowsQuarantined: 2,
      rowsRefused: 0,
    });
    expect(await sql.query('SELECT user_id, quality_flags FROM silver.views ORDER BY user_id')).toEqual([
      { user_id: 'u1', quality_flags: [] },
      { user_id: 'u2', quality_flags: ['missing_device'] },
    ]);
    expect(
      await sql.query(
        'SELECT user_id, minutes, device, quality_flags, quality_rule, quality_reason FROM silver.views_quarantine ORDER BY minutes',
      ),
    ).toEqual([
      {
        user_id: null,
        minutes: 10,
        device: 'tv',
        quality_flags: [],
        quality_rule: 'missing_field:user_id',
        quality_reason: 'user_id is null',
      },
      {
        user_id: 'u3',
        minutes: 900,
        device: null,
        quality_flags: ['missing_device'],
        quality_rule: 'bad_minutes',
        quality_reason: 'minutes = 900.0 is outside [0, 600]',
      },
    ]);
    const results = await sql.query(
      `SELECT rule, action, passed, failed, status, rows_in, rows_passed, rows_flagged, rows_quarantined, rows_refused, checked_at
       FROM gold.quality_results WHERE run_id = 'views-1' ORDER BY rule`,
    );
    expect(results.map((r) => [r.rule, r.action, r.passed, r.failed])).toEqual([
      ['bad_minutes', 'quarantine', 3, 1],
      ['missing_device', 'flag', 2, 2],
      ['missing_field:user_id', 'quarantine', 3, 1],
    ]);
    for (const r of results) {
      expect(r.rows_in).toBe(
        Number(r.rows_passed) + Number(r.rows_flagged) + Number(r.rows_quarantined) + Number(r.rows_refused),
      );
      expect(r.checked_at).toBe(new Date(nowMs).toISOString());
    }
    // A retry of the same run (same run id) changes nothing.
    await run('silver.views', input, 'views-1');
    expect(await sql.query('SELECT count(*) AS n FROM silver.views')).toEqual([{ n: 2 }]);
    expect(
      await sql.query(`SELECT count(*) AS n FROM gold.quality_results WHERE run_id = 'views-1'`),
    ).toEqual([{ n: 3 }]);
    const metrics = await metricsRegistry.getSingleMetricAsString('tributary_quality_rows_total');
    expect(metrics).toContain('tributary_quality_rows_total{table="silver.views",outcome="quarantined"} 2');
    expect(await metricsRegistry.getSingleMetricAsString('tributary_quality_rule_failures_total')).toContain(
      'tributary_quality_rule_failures_total{table="silver.views",rule="bad_minutes",action="quarantine"} 1',
    );
  });

  it('a fail rule leaves the table unchanged: same manifest version, same rows; the refused run is in the results', async () => {
    const good = await bronze('plays_ok', [{ user_id: 'u1', minutes: 5, device: 'tv' }]);
    const table = lake.table('silver', 'plays');
    await run('silver.plays', good, 'plays-1');
    const before = await table.snapshot();
    const rowsBefore = await sql.query('SELECT * FROM silver.plays ORDER BY ALL');
    const bad = await bronze('plays_bad', [
      { user_id: 'u2', minutes: 5, device: 'tv' },
      { user_id: 'u3', minutes: -5, device: 'tv' },
    ]);
    const failing: QualityRule[] = [
      ...rules,
      { name: 'negative_minutes', expect: 'range', column: 'minutes', min: 0, action: 'fail' },
    ];
    const error = await run('silver.plays', bad, 'plays-2', failing).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TributaryError);
    expect((error as TributaryError).code).toBe('QUALITY_FAILED');
    expect((error as Error).message).toMatch(/negative_minutes \(1 of 2 rows failed\)/);
    const after = await table.snapshot();
    expect(after?.version).toBe(before?.version);
    expect(after?.files).toEqual(before?.files);
    expect(await sql.query('SELECT * FROM silver.plays ORDER BY ALL')).toEqual(rowsBefore);
    expect(await lake.table('silver', 'plays_quarantine').snapshot()).toBeNull();
    expect(
      await sql.query(
        `SELECT DISTINCT status, rows_in, rows_refused, rows_passed FROM gold.quality_results WHERE run_id = 'plays-2'`,
      ),
    ).toEqual([{ status: 'failed', rows_in: 2, rows_refused: 2, rows_passed: 0 }]);
  });

  it('unique in append mode checks against the rows the table already holds', async () => {
    const first = await bronze('events_a', [{ user_id: 'a', minutes: 1, device: 'x' }]);
    const uniqueRules: QualityRule[] = [
      { name: 'duplicate_user', expect: 'unique', column: 'user_id', action: 'quarantine' },
    ];
    await run('silver.events', first, 'ev-1', uniqueRules);
    const second = await bronze('events_b', [
      { user_id: 'a', minutes: 2, device: 'x' },
      { user_id: 'b', minutes: 3, device: 'x' },
    ]);
    const report = await run('silver.events', second, 'ev-2', uniqueRules);
    expect([report.rowsPassed, report.rowsQuarantined]).toEqual([1, 1]);
    expect(await sql.query('SELECT user_id, minutes FROM silver.events ORDER BY minutes')).toEqual([
      { user_id: 'a', minutes: 1 },
      { user_id: 'b', minutes: 3 },
    ]);
  });
});

describe('batch runs over rows computed in TypeScript', () => {
  const movieRules: QualityRule[] = [
    { name: 'missing_field:movie_id', expect: 'not_null', column: 'movie_id', action: 'quarantine' },
    { name: 'missing_overview', expect: 'not_null', column: 'overview', action: 'flag' },
  ];
  const write = (rows: Record<string, unknown>[], runId: string, mode: 'append' | 'overwrite') =>
    writeCheckedRows({ lake, sql, table: 'silver.movies', rows, rules: movieRules, runId, mode, nowMs });

  it('flags, quarantines, and an overwrite without broken rows empties the old quarantine', async () => {
    const first = await write(
      [
        { movie_id: 1, title: 'A', overview: 'x' },
        { movie_id: 2, title: 'B', overview: null },
        { movie_id: null, title: 'C', overview: 'y' },
      ],
      'movies-1',
      'overwrite',
    );
    expect([first.rowsPassed, first.rowsFlagged, first.rowsQuarantined]).toEqual([1, 1, 1]);
    expect(await sql.query('SELECT movie_id, quality_flags FROM silver.movies ORDER BY movie_id')).toEqual([
      { movie_id: 1, quality_flags: [] },
      { movie_id: 2, quality_flags: ['missing_overview'] },
    ]);
    expect(await sql.query('SELECT title, quality_rule FROM silver.movies_quarantine')).toEqual([
      { title: 'C', quality_rule: 'missing_field:movie_id' },
    ]);
    await write([{ movie_id: 3, title: 'D', overview: 'z' }], 'movies-2', 'overwrite');
    expect(await sql.query('SELECT count(*) AS n FROM silver.movies_quarantine')).toEqual([{ n: 0 }]);
    expect(await sql.query('SELECT movie_id FROM silver.movies')).toEqual([{ movie_id: 3 }]);
  });

  it('an appended batch whose rows are all quarantined leaves the table rows as they were', async () => {
    const report = await write([{ movie_id: null, title: 'E', overview: 'w' }], 'movies-3', 'append');
    expect([report.rowsIn, report.rowsQuarantined]).toEqual([1, 1]);
    expect(await sql.query('SELECT movie_id FROM silver.movies')).toEqual([{ movie_id: 3 }]);
    expect(await sql.query('SELECT title FROM silver.movies_quarantine')).toEqual([{ title: 'E' }]);
  });
});

describe('as a stream lake sink option', () => {
  it('stages kept and quarantined rows per checkpoint and records results; a fail rule fails the job with nothing committed', async () => {
    const log = createMemoryLog();
    await log.createTopic('ratings', { partitions: 1 });
    const t0 = Date.UTC(2026, 11, 3, 10);
    const values = [
      { user_id: 'u1', rating: 4, ts: t0 },
      { user_id: null, rating: 3, ts: t0 + 1 },
      { user_id: 'u2', rating: 11, ts: t0 + 2 },
      { user_id: 'u3', rating: 5, ts: t0 + 3 },
    ];
    await log.append(values.map((v) => ({ topic: 'ratings', value: JSON.stringify(v) })));
    const clock = new ManualClock(nowMs);
    const sinkRules: QualityRule[] = [
      { name: 'missing_field:user_id', expect: 'not_null', column: 'user_id', action: 'quarantine' },
      {
        name: 'rating_out_of_range',
        expect: 'range',
        column: 'rating',
        min: 0,
        max: 10,
        action: 'quarantine',
      },
    ];
    const job = (name: string, rules: QualityRule[]) =>
      stream(name, { checkpointIntervalMs: 0 })
        .from<(typeof values)[number]>(log, { topics: ['ratings'], timestamp: (v) => v.ts })
        .to(
          lakeSink(
            lakeTableTarget(lake.table('silver', name.replace(/-/g, '_')), {
              quality: { rules, sql, lake, clock },
            }),
          ),
        );
    await runJob(job('ratings-ok', sinkRules), { dataDir: path.join(dir, 'ratings-ok'), once: true });
    expect(await sql.query('SELECT user_id FROM silver.ratings_ok ORDER BY user_id')).toEqual([
      { user_id: 'u1' },
      { user_id: 'u3' },
    ]);
    expect(
      await sql.query('SELECT quality_rule, rating FROM silver.ratings_ok_quarantine ORDER BY rating'),
    ).toEqual([
      { quality_rule: 'missing_field:user_id', rating: 3 },
      { quality_rule: 'rating_out_of_range', rating: 11 },
    ]);
    expect(
      await sql.query(
        `SELECT sum(failed) AS failed, max(rows_in) AS rows_in FROM gold.quality_results WHERE table_name = 'silver.ratings_ok'`,
      ),
    ).toEqual([{ failed: 2, rows_in: 4 }]);

    const failing: QualityRule[] = [
      { name: 'rating_limit', expect: 'range', column: 'rating', max: 10, action: 'fail' },
    ];
    await expect(
      runJob(job('ratings-strict', failing), { dataDir: path.join(dir, 'ratings-strict'), once: true }),
    ).rejects.toThrow(/rating_limit/);
    expect(await lake.table('silver', 'ratings_strict').snapshot()).toBeNull();
  });
});

describe('gold.quality_results', () => {
  it('stays a few files under a commit per checkpoint: compacted every 32 commits', async () => {
    const separate = await openLake({ storage: new LocalStorage(path.join(dir, 'results-lake')) });
    try {
      const { report } = await check(
        [{ a: 1 }],
        [{ name: 'a_present', expect: 'not_null', column: 'a', action: 'flag' }],
      );
      for (let i = 1; i <= 32; i++)
        await recordQualityResults(separate, [{ ...report, runId: `r${i}` }], `results-${i}`);
      const snapshot = await separate.table('gold', 'quality_results').snapshot();
      expect(snapshot?.files.length).toBeLessThan(4);
      expect(snapshot?.files.reduce((n, f) => n + f.rows, 0)).toBe(32);
    } finally {
      await separate.close();
    }
  });
});

describe('reconciliation', () => {
  type Row = { id: number | null; score: number | null; tag: string | null };
  const row = fc.record({
    id: fc.option(fc.integer({ min: 0, max: 6 }), { nil: null }),
    score: fc.option(fc.integer({ min: -5, max: 15 }), { nil: null }),
    tag: fc.option(fc.constantFrom('a', 'b', 'c'), { nil: null }),
  });
  const action = fc.constantFrom('flag' as const, 'quarantine' as const, 'fail' as const);
  const candidates: ((a: 'flag' | 'quarantine' | 'fail') => {
    rule: QualityRule;
    fails: (r: Row, all: Row[]) => boolean;
  })[] = [
    (a) => ({
      rule: { name: 'id_present', expect: 'not_null', column: 'id', action: a },
      fails: (r) => r.id === null,
    }),
    (a) => ({
      rule: { name: 'score_range', expect: 'range', column: 'score', min: 0, max: 10, action: a },
      fails: (r) => r.score === null || r.score < 0 || r.score > 10,
    }),
    (a) => ({
      rule: { name: 'tag_known', expect: 'accepted_values', column: 'tag', values: ['a', 'b'], action: a },
      fails: (r) => r.tag !== 'a' && r.tag !== 'b',
    }),
    (a) => ({
      rule: { name: 'id_unique', expect: 'unique', column: 'id', action: a },
      fails: (r, all) => r.id !== null && all.filter((o) => o.id === r.id).length > 1,
    }),
    (a) => ({
      rule: { name: 'score_even', expect: 'sql', predicate: 'score % 2 = 0', action: a },
      fails: (r) => r.score === null || r.score % 2 !== 0,
    }),
  ];
  const scenario = fc.record({
    rows: fc.array(row, { maxLength: 40 }),
    chosen: fc.uniqueArray(fc.integer({ min: 0, max: candidates.length - 1 }), {
      minLength: 1,
      maxLength: candidates.length,
    }),
    actions: fc.array(action, { minLength: candidates.length, maxLength: candidates.length }),
  });

  it('in = passed + flagged + quarantined (+ refused); each row lands once; the reason is the first failing quarantine rule', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async ({ rows, chosen, actions }) => {
        const declared = chosen.map((c) => candidates[c](actions[c]));
        // Declared types: a column NULL in every generated row would otherwise be VARCHAR.
        const { kept, quarantined, report } = await check(
          rows,
          declared.map((d) => d.rule),
          null,
          { id: 'BIGINT', score: 'BIGINT', tag: 'VARCHAR' },
        );
        reconciles(report);
        const failing = (r: Row) => declared.filter((d) => d.fails(r, rows));
        const refused = rows.some((r) => failing(r).some((d) => d.rule.action === 'fail'));
        expect(report.status).toBe(refused ? 'failed' : 'passed');
        expect(report.rules.map((r) => r.failed)).toEqual(
          declared.map((d) => rows.filter((r) => d.fails(r, rows)).length),
        );
        if (refused) {
          expect([kept.length, quarantined.length, report.rowsRefused]).toEqual([0, 0, rows.length]);
          return;
        }
        expect(kept.length + quarantined.length).toBe(rows.length);
        expect([kept.length, quarantined.length]).toEqual([
          report.rowsPassed + report.rowsFlagged,
          report.rowsQuarantined,
        ]);
        const expectedReasons = rows.flatMap((r) => {
          const first = failing(r).find((d) => d.rule.action === 'quarantine');
          return first === undefined ? [] : [first.rule.name];
        });
        expect(quarantined.map((r) => r.quality_rule)).toEqual(expectedReasons);
      }),
      { seed: 20261203, numRuns: 40 },
    );
  });
});
