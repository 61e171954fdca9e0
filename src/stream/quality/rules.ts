/**
 * Data-quality rules: declarative expectations on the rows of a batch (a stream sink's staged file,
 * or a batch job's query over a lake table), compiled to one DuckDB query.
 *
 * Each rule has a `name`, an `expect` kind and an `action`:
 * - `flag`: the row is kept and the rule name is added to its `quality_flags` list (VARCHAR[]);
 * - `quarantine`: the row goes to `<table>_quarantine` with `quality_rule` (the first failing
 *   quarantine rule, in declaration order) and `quality_reason`, plus all its own columns;
 * - `fail`: one failing row refuses the whole batch; nothing is committed.
 * A row is *quarantined* when any quarantine rule fails, else *flagged* when any flag rule fails,
 * else *passed*; so every row is counted once and `in = passed + flagged + quarantined` (a refused
 * batch counts all its rows as refused).
 *
 * Why SQL: the same compiled text checks a batch job's SELECT over millions of lake rows without
 * moving them through JavaScript, and a stream sink's rows (loaded into the SQL engine as the
 * `batch` table, `SqlEngine.queryRows`). One implementation of every rule, one meaning.
 *
 * Null handling: `range`, `accepted_values`, `regex` and `max_age` fail on NULL unless the rule
 * says `nullable: true` (a missing value is not a valid one; use `not_null` first when the reason
 * should say so). `unique` skips rows whose key has a NULL.
 *
 * @example
 * const rules = qualityRules([
 *   { name: 'missing_field:user_id', expect: 'not_null', column: 'user_id', action: 'quarantine' },
 *   { name: 'bad_rating', expect: 'range', column: 'rating', min: 0, max: 10, action: 'quarantine' },
 *   { name: 'missing_overview', expect: 'not_null', column: 'overview', action: 'flag' },
 *   { name: 'duplicate_event', expect: 'unique', column: ['user_id', 'event_id'], action: 'quarantine' },
 *   { name: 'empty_batch', expect: 'row_count', min: 1, action: 'fail' },
 * ]);
 */
import { z } from 'zod';
import { TributaryError, limits } from '../../core/index.js';
import { quoteIdentifier, quoteLiteral } from '../../lake/index.js';

export const qualityActions = ['flag', 'quarantine', 'fail'] as const;
export type QualityAction = (typeof qualityActions)[number];

/** Column names the rules add to checked rows. */
export const qualityColumns = {
  flags: 'quality_flags',
  rule: 'quality_rule',
  reason: 'quality_reason',
} as const;

const ruleNamePattern = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$/;
/** Characters of a value shown in a quarantine reason. */
const reasonValueChars = 100;

const columnName = z.string().min(1).max(256);
const columns = z.union([columnName, z.array(columnName).min(1).max(32)]);
const literal = z.union([z.string(), z.number().finite(), z.boolean()]);
const bound = z.union([z.number().finite(), z.string()]);
const base = {
  name: z.string().regex(ruleNamePattern, `rule names must match ${ruleNamePattern.source}`),
  action: z.enum(qualityActions),
  /** Fixed text for `quality_reason`; default a description with the offending value. */
  reason: z.string().min(1).max(500).optional(),
};
const nullable = z.boolean().optional();

const ruleSchema = z.discriminatedUnion('expect', [
  z.object({ ...base, expect: z.literal('not_null'), column: columns }).strict(),
  z
    .object({
      ...base,
      expect: z.literal('unique'),
      column: columns,
      /** Also fail keys the table already holds (default true; ignored when the batch replaces the table). */
      againstTable: z.boolean().optional(),
    })
    .strict(),
  z
    .object({
      ...base,
      expect: z.literal('range'),
      column: columnName,
      min: bound.optional(),
      max: bound.optional(),
      /** Default true. */
      minInclusive: z.boolean().optional(),
      /** Default true. */
      maxInclusive: z.boolean().optional(),
      nullable,
    })
    .strict()
    .refine((r) => r.min !== undefined || r.max !== undefined, 'a range needs min and/or max'),
  z
    .object({
      ...base,
      expect: z.literal('accepted_values'),
      column: columnName,
      values: z.array(literal).min(1).max(10_000),
      nullable,
    })
    .strict(),
  z
    .object({
      ...base,
      expect: z.literal('regex'),
      column: columnName,
      /** RE2 syntax, matched anywhere in the value (anchor with ^…$ for a full match). */
      pattern: z.string().min(1).max(limits.qualityPatternLengthMax),
      nullable,
    })
    .strict(),
  z
    .object({
      ...base,
      expect: z.literal('max_age'),
      column: columnName,
      maxAgeMs: z.number().int().positive(),
      /**
       * How the column holds time: `timestamp` (default: a TIMESTAMP or DATE column, or ISO-8601
       * text), or a number of milliseconds / seconds since the epoch (stream records' `ts`).
       */
      unit: z.enum(['timestamp', 'epoch_ms', 'epoch_s']).optional(),
      nullable,
    })
    .strict(),
  z
    .object({
      ...base,
      expect: z.literal('row_count'),
      min: z.number().int().min(0).optional(),
      max: z.number().int().min(0).optional(),
    })
    .strict()
    .refine((r) => r.min !== undefined || r.max !== undefined, 'row_count needs min and/or max')
    .refine((r) => r.min === undefined || r.max === undefined || r.min <= r.max, 'row_count min > max'),
  z
    .object({
      ...base,
      expect: z.literal('sql'),
      /** A boolean SQL expression over the row's columns (DuckDB); the row fails when it is not true. */
      predicate: z.string().min(1).max(limits.qualityPredicateLengthMax),
    })
    .strict(),
]);

export type QualityRule = z.input<typeof ruleSchema>;
type CheckedRule = z.output<typeof ruleSchema>;

/**
 * Regex constructs RE2 does not run (DuckDB's regexp functions are RE2, linear in the input, so a
 * value cannot make a pattern backtrack): refused when the rule is declared, with a clear message,
 * rather than when the first batch arrives.
 */
const unsupportedRegex: [RegExp, string][] = [
  [/\\[1-9]|\\k</, 'backreferences'],
  [/\(\?<?[=!]/, 'lookaround'],
  [/\(\?>/, 'atomic groups'],
  [/(?<!\\)[*+?}]\+/, 'possessive quantifiers'],
];

function refuse(rule: string, message: string): never {
  throw new TributaryError('INVALID_ARGUMENT', `quality rule ${rule}: ${message}`, { details: { rule } });
}

/**
 * Checks rule declarations (shape, unique names, regex syntax RE2 accepts, no statement breaks in
 * SQL predicates) and returns them validated. Call it where rules are declared, so a mistake fails
 * at startup, not at the first batch.
 */
export function qualityRules(rules: readonly QualityRule[]): QualityRule[] {
  if (rules.length === 0)
    throw new TributaryError('INVALID_ARGUMENT', 'quality rules: declare at least one rule');
  const names = new Set<string>();
  return rules.map((raw, index) => {
    const parsed = ruleSchema.safeParse(raw);
    const declared = (raw as { name?: unknown } | null)?.name;
    const label = typeof declared === 'string' ? declared : `#${index + 1}`;
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      refuse(label, `${issue?.path.join('.') || 'rule'}: ${issue?.message ?? 'invalid'}`);
    }
    const rule = parsed.data;
    if (names.has(rule.name)) refuse(rule.name, 'the name is used twice');
    names.add(rule.name);
    if (rule.expect === 'regex') {
      for (const [pattern, what] of unsupportedRegex) {
        if (pattern.test(rule.pattern))
          refuse(rule.name, `${what} are not supported (patterns run in RE2, which matches in linear time)`);
      }
    }
    if (rule.expect === 'sql' && /;|--|\/\*/.test(rule.predicate))
      refuse(rule.name, 'the SQL predicate must be one expression (no ;, no comments)');
    return raw;
  });
}

/** The columns rules read (a stream batch must have them even when every row lacks one). */
export function ruleColumns(rules: readonly QualityRule[]): string[] {
  const out = new Set<string>();
  for (const rule of rules) {
    if ('column' in rule)
      for (const c of typeof rule.column === 'string' ? [rule.column] : rule.column) out.add(c);
  }
  return [...out];
}

export interface CompileOptions {
  /** A SELECT producing the rows to check. */
  input: string;
  /**
   * The table (`layer.name`) whose committed rows `unique` rules also check against; null when
   * there is none (the table does not exist yet, or the batch replaces it).
   */
  existingTable: string | null;
  /** Reference time of `max_age` (the run's clock), so the check is reproducible. */
  nowMs: number;
}

export interface CompiledQuality {
  /** The input's columns, plus quality_flags (when a flag rule exists), quality_rule, quality_reason and `_quality_fail_<i>`. */
  evaluatedSql: string;
  /** Rows to keep (passed and flagged): the input's columns (+ quality_flags). */
  passedSql: string;
  /** Quarantined rows: the input's columns (+ quality_flags), quality_rule, quality_reason. */
  quarantineSql: string;
  /** One row: rows_in, rows_flagged, rows_quarantined, failed_<i> per rule. */
  countsSql: string;
  /** Whether kept rows carry quality_flags. */
  hasFlags: boolean;
}

/** Name of rule i's failure column in `evaluatedSql`. */
export function failColumn(index: number): string {
  return `_quality_fail_${index}`;
}

const inputAlias = '_quality_in';

function sqlValue(value: string | number | boolean): string {
  if (typeof value === 'string') return quoteLiteral(value);
  return String(value);
}

/** Text of a value for a reason: at most reasonValueChars characters, 'null' for NULL. */
function shown(expression: string): string {
  return `coalesce(left(CAST(${expression} AS VARCHAR), ${reasonValueChars}), 'null')`;
}

function keyList(rule: { column: string | string[] }): string[] {
  return typeof rule.column === 'string' ? [rule.column] : rule.column;
}

/** Failure (a boolean that is never NULL) and reason (VARCHAR) expressions of one rule. */
function ruleSql(rule: CheckedRule, options: CompileOptions): { fail: string; reason: string } {
  const failOnNull = (column: string, check: string) =>
    `CASE WHEN ${column} IS NULL THEN ${'nullable' in rule && rule.nullable === true ? 'false' : 'true'} ELSE NOT (${check}) END`;
  switch (rule.expect) {
    case 'not_null': {
      const keys = keyList(rule);
      return {
        fail: `(${keys.map((k) => `${quoteIdentifier(k)} IS NULL`).join(' OR ')})`,
        reason: `CASE ${keys.map((k) => `WHEN ${quoteIdentifier(k)} IS NULL THEN ${quoteLiteral(`${k} is null`)}`).join(' ')} END`,
      };
    }
    case 'unique': {
      const keys = keyList(rule).map(quoteIdentifier);
      const anyNull = keys.map((k) => `${k} IS NULL`).join(' OR ');
      const inBatch = `count(*) OVER (PARTITION BY ${keys.join(', ')}) > 1`;
      const existing =
        rule.againstTable !== false && options.existingTable !== null
          ? `EXISTS (SELECT 1 FROM ${options.existingTable} AS _quality_existing WHERE ${keys.map((k) => `_quality_existing.${k} = ${inputAlias}.${k}`).join(' AND ')})`
          : 'false';
      const value =
        keys.length === 1
          ? `${quoteLiteral(`${keyList(rule)[0]} = `)} || ${shown(keys[0])}`
          : `${quoteLiteral(`(${keyList(rule).join(', ')}) = (`)} || concat_ws(', ', ${keys.map(shown).join(', ')}) || ')'`;
      return {
        fail: `CASE WHEN ${anyNull} THEN false ELSE (${inBatch}) OR ${existing} END`,
        reason: `${value} || CASE WHEN ${inBatch} THEN ' is repeated in the batch' ELSE ${quoteLiteral(` is already in ${options.existingTable ?? 'the table'}`)} END`,
      };
    }
    case 'range': {
      const column = quoteIdentifier(rule.column);
      const conditions: string[] = [];
      if (rule.min !== undefined)
        conditions.push(`${column} ${rule.minInclusive === false ? '>' : '>='} ${sqlValue(rule.min)}`);
      if (rule.max !== undefined)
        conditions.push(`${column} ${rule.maxInclusive === false ? '<' : '<='} ${sqlValue(rule.max)}`);
      const interval = `${rule.minInclusive === false ? '(' : '['}${rule.min ?? '-inf'}, ${rule.max ?? '+inf'}${rule.maxInclusive === false ? ')' : ']'}`;
      return {
        fail: failOnNull(column, conditions.join(' AND ')),
        reason: `${quoteLiteral(`${rule.column} = `)} || ${shown(column)} || ${quoteLiteral(` is outside ${interval}`)}`,
      };
    }
    case 'accepted_values': {
      const column = quoteIdentifier(rule.column);
      const listed = rule.values.slice(0, 5).map(String).join(', ') + (rule.values.length > 5 ? ', …' : '');
      return {
        fail: failOnNull(column, `${column} IN (${rule.values.map(sqlValue).join(', ')})`),
        reason: `${quoteLiteral(`${rule.column} = `)} || ${shown(column)} || ${quoteLiteral(` is not one of (${listed})`)}`,
      };
    }
    case 'regex': {
      const column = quoteIdentifier(rule.column);
      return {
        fail: failOnNull(column, `regexp_matches(CAST(${column} AS VARCHAR), ${quoteLiteral(rule.pattern)})`),
        reason: `${quoteLiteral(`${rule.column} = `)} || ${shown(column)} || ${quoteLiteral(` does not match /${rule.pattern.slice(0, 60)}/`)}`,
      };
    }
    case 'max_age': {
      const column = quoteIdentifier(rule.column);
      const cutoff = new Date(options.nowMs - rule.maxAgeMs).toISOString().replace('T', ' ').replace('Z', '');
      const time =
        rule.unit === 'epoch_ms'
          ? `epoch_ms(TRY_CAST(${column} AS BIGINT))`
          : rule.unit === 'epoch_s'
            ? `epoch_ms(TRY_CAST(TRY_CAST(${column} AS DOUBLE) * 1000 AS BIGINT))`
            : `TRY_CAST(${column} AS TIMESTAMP)`;
      // Unparseable values count as too old: TRY_CAST gives NULL, and NOT NULL is not true.
      return {
        fail: failOnNull(column, `coalesce(${time} >= TIMESTAMP ${quoteLiteral(cutoff)}, false)`),
        reason: `${quoteLiteral(`${rule.column} = `)} || ${shown(column)} || ${quoteLiteral(` is older than ${rule.maxAgeMs} ms`)}`,
      };
    }
    case 'row_count': {
      const count = 'count(*) OVER ()';
      const conditions: string[] = [];
      if (rule.min !== undefined) conditions.push(`${count} >= ${rule.min}`);
      if (rule.max !== undefined) conditions.push(`${count} <= ${rule.max}`);
      return {
        fail: `NOT (${conditions.join(' AND ')})`,
        reason: `'the batch has ' || ${count} || ${quoteLiteral(` rows, expected ${rule.min ?? 0}…${rule.max ?? '∞'}`)}`,
      };
    }
    case 'sql':
      return {
        fail: `((${rule.predicate}) IS NOT TRUE)`,
        reason: quoteLiteral(`not true: ${rule.predicate.slice(0, 200)}`),
      };
  }
}

/**
 * Compiles validated rules over `options.input` into the queries a run needs. All four share one
 * evaluation, so what is counted is what is written.
 */
export function compileQuality(rules: readonly QualityRule[], options: CompileOptions): CompiledQuality {
  const checked = qualityRules(rules).map((r) => ruleSchema.parse(r));
  const parts = checked.map((rule) => ruleSql(rule, options));
  const fails = parts.map((p, i) => `${p.fail} AS ${failColumn(i)}`);
  const failCols = checked.map((_, i) => failColumn(i));
  const byAction = (action: QualityAction) => checked.flatMap((r, i) => (r.action === action ? [i] : []));
  const quarantine = byAction('quarantine');
  const flags = byAction('flag');
  const hasFlags = flags.length > 0;
  const reasonOf = (i: number) => {
    const fixed = checked[i].reason;
    return fixed === undefined ? parts[i].reason : quoteLiteral(fixed);
  };
  // quality_rule / quality_reason: the first failing quarantine rule, in declaration order.
  const ruleCase =
    quarantine.length === 0
      ? 'CAST(NULL AS VARCHAR)'
      : `CASE ${quarantine.map((i) => `WHEN ${failColumn(i)} THEN ${quoteLiteral(checked[i].name)}`).join(' ')} END`;
  const reasonCase =
    quarantine.length === 0
      ? 'CAST(NULL AS VARCHAR)'
      : `CASE ${quarantine.map((i) => `WHEN ${failColumn(i)} THEN ${reasonOf(i)}`).join(' ')} END`;
  const flagList = `list_filter([${flags.map((i) => `CASE WHEN ${failColumn(i)} THEN ${quoteLiteral(checked[i].name)} END`).join(', ')}], f -> f IS NOT NULL)`;
  const evaluatedSql = `WITH _quality_input AS (${options.input}),
_quality_checked AS (SELECT ${inputAlias}.*, ${fails.join(', ')} FROM _quality_input AS ${inputAlias})
SELECT *${hasFlags ? `, CAST(${flagList} AS VARCHAR[]) AS ${qualityColumns.flags}` : ''}, ${ruleCase} AS ${qualityColumns.rule}, ${reasonCase} AS ${qualityColumns.reason}
FROM _quality_checked`;
  const exclude = failCols.join(', ');
  const passedSql = `SELECT * EXCLUDE (${exclude}, ${qualityColumns.rule}, ${qualityColumns.reason}) FROM (${evaluatedSql}) AS _quality_evaluated WHERE ${qualityColumns.rule} IS NULL`;
  const quarantineSql = `SELECT * EXCLUDE (${exclude}) FROM (${evaluatedSql}) AS _quality_evaluated WHERE ${qualityColumns.rule} IS NOT NULL`;
  const flagged = hasFlags ? `len(${qualityColumns.flags}) > 0` : 'false';
  const countsSql = `SELECT count(*) AS rows_in,
  count(*) FILTER (WHERE ${qualityColumns.rule} IS NULL AND ${flagged}) AS rows_flagged,
  count(*) FILTER (WHERE ${qualityColumns.rule} IS NOT NULL) AS rows_quarantined${failCols.map((c, i) => `,\n  count(*) FILTER (WHERE ${c}) AS failed_${i}`).join('')}
FROM (${evaluatedSql}) AS _quality_evaluated`;
  return { evaluatedSql, passedSql, quarantineSql, countsSql, hasFlags };
}

/** A rule as declared, validated (for callers that need its fields: action, bounds). */
export function parseRule(rule: QualityRule): CheckedRule {
  return ruleSchema.parse(rule);
}
