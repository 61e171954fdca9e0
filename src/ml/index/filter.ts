import { TributaryError } from '../../core/index.js';

/** A metadata value: flat strings and finite numbers only, so every field can be filtered on. */
export type MetadataValue = string | number;

/** The metadata of one indexed passage, e.g. `{company_id: 'acme', document_id: 'd1', page: 2}`. */
export type Metadata = Readonly<Record<string, MetadataValue>>;

/**
 * Inclusive bounds. A number field compares numerically (a bound that is not a number matches
 * nothing); a text field compares as text, prefix-aware, so `{from: '2024-03', to: '2024-04'}`
 * covers every date of March and April.
 */
export interface RangeCondition {
  from?: MetadataValue | undefined;
  to?: MetadataValue | undefined;
}

/** A value (equal), a list of values (any of them) or a range. */
export type FilterCondition = MetadataValue | readonly MetadataValue[] | RangeCondition;

/** Conditions on metadata fields, all of which must hold. */
export type MetadataFilter = Readonly<Record<string, FilterCondition>>;

/** Field names: what a CLI `--filter key=value` and a JSON key can both carry without quoting. */
export const metadataFieldPattern = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

/**
 * The text form two values are compared by for equality: `2` equals `'2'` (a CLI argument or a
 * query string carries text), and a posting list is keyed by it.
 */
export function valueKey(value: MetadataValue): string {
  return typeof value === 'number' ? String(value) : value;
}

function isValue(value: unknown): value is MetadataValue {
  return typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value));
}

/** `Array.isArray` narrows a readonly array to `any[]`; this keeps the element type. */
function isValueList(condition: FilterCondition): condition is readonly MetadataValue[] {
  return Array.isArray(condition);
}

function isRange(condition: FilterCondition): condition is RangeCondition {
  return typeof condition === 'object' && !isValueList(condition);
}

/** Checks a record's metadata; `where` names the record in the error (`record 3 (id "x")`). */
export function validateMetadata(metadata: unknown, where: string): Metadata {
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw new TributaryError('BAD_RECORD', `${where}: metadata must be an object of string/number fields`);
  }
  for (const [field, value] of Object.entries(metadata)) {
    if (!metadataFieldPattern.test(field))
      throw new TributaryError(
        'BAD_RECORD',
        `${where}: metadata field name ${JSON.stringify(field)} is invalid`,
      );
    if (!isValue(value))
      throw new TributaryError(
        'BAD_RECORD',
        `${where}: metadata field "${field}" must be a string or a finite number, got ${value === null ? 'null' : typeof value}`,
      );
  }
  return metadata as Metadata;
}

/** Checks a filter as it comes from an API body or the CLI; errors name `filters.<field>`. */
export function validateFilter(filter: unknown): MetadataFilter {
  if (filter === undefined) return {};
  if (typeof filter !== 'object' || filter === null || Array.isArray(filter))
    throw new TributaryError('INVALID_ARGUMENT', 'filters must be an object of field → condition');
  for (const [field, condition] of Object.entries(filter as Record<string, unknown>)) {
    const where = `filters.${field}`;
    if (!metadataFieldPattern.test(field))
      throw new TributaryError('INVALID_ARGUMENT', `${where}: not a valid field name`);
    if (isValue(condition)) continue;
    if (Array.isArray(condition)) {
      if (condition.length === 0 || !condition.every(isValue))
        throw new TributaryError(
          'INVALID_ARGUMENT',
          `${where}: a list must hold at least one string or number`,
        );
      continue;
    }
    if (typeof condition === 'object' && condition !== null) {
      const { from, to, ...rest } = condition as Record<string, unknown>;
      const extra = Object.keys(rest);
      if (extra.length > 0)
        throw new TributaryError(
          'INVALID_ARGUMENT',
          `${where}: unknown key ${extra[0]} (a range has from and to)`,
        );
      if ((from === undefined && to === undefined) || ![from, to].every((b) => b === undefined || isValue(b)))
        throw new TributaryError(
          'INVALID_ARGUMENT',
          `${where}: a range needs a string or number from and/or to`,
        );
      continue;
    }
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `${where}: expected a value, a list of values or {from, to}`,
    );
  }
  return filter as MetadataFilter;
}

function withinBound(value: MetadataValue, bound: MetadataValue, side: 'from' | 'to'): boolean {
  if (typeof value === 'number') {
    const limit = typeof bound === 'number' ? bound : bound.trim() === '' ? Number.NaN : Number(bound);
    if (!Number.isFinite(limit)) return false;
    return side === 'from' ? value >= limit : value <= limit;
  }
  const text = valueKey(bound);
  const prefix = value.slice(0, text.length);
  return side === 'from' ? prefix >= text : prefix <= text;
}

/** Whether one stored value (undefined when the record lacks the field) meets a condition. */
export function conditionHolds(value: MetadataValue | undefined, condition: FilterCondition): boolean {
  if (value === undefined) return false;
  if (isValue(condition)) return valueKey(value) === valueKey(condition);
  if (isValueList(condition)) return condition.some((c) => valueKey(c) === valueKey(value));
  const range = condition;
  if (range.from !== undefined && !withinBound(value, range.from, 'from')) return false;
  if (range.to !== undefined && !withinBound(value, range.to, 'to')) return false;
  return true;
}

/** Whether a record's metadata meets every condition of the filter. */
export function matchesFilter(metadata: Metadata, filter: MetadataFilter): boolean {
  for (const field in filter) {
    if (!conditionHolds(metadata[field], filter[field])) return false;
  }
  return true;
}

/** The values an equality or any-of condition accepts (their text forms); undefined for ranges. */
export function equalityKeys(condition: FilterCondition): string[] | undefined {
  if (isValue(condition)) return [valueKey(condition)];
  if (isValueList(condition)) return condition.map(valueKey);
  return undefined;
}

/**
 * Parses CLI filter arguments: `field=value` (repeat a field for "any of"), `field>=value` and
 * `field<=value` (inclusive bounds, combinable into one range). Values stay text; they compare
 * with number fields numerically (see `conditionHolds`).
 *
 * @example
 * parseFilterArguments(['product=router', 'date>=2024-03']) // {product: 'router', date: {from: '2024-03'}}
 */
export function parseFilterArguments(args: readonly string[]): Record<string, FilterCondition> {
  const filter: Record<string, FilterCondition> = {};
  for (const arg of args) {
    const match = /^([^=<>]+?)(>=|<=|=)(.*)$/s.exec(arg);
    if (!match || !metadataFieldPattern.test(match[1]))
      throw new TributaryError(
        'USAGE',
        `--filter ${JSON.stringify(arg)}: expected field=value, field>=value or field<=value`,
      );
    const [, field, op, value] = match;
    const existing = filter[field];
    if (op === '=') {
      if (existing !== undefined && isRange(existing))
        throw new TributaryError('USAGE', `--filter ${field}: cannot combine = with >= or <=`);
      filter[field] =
        existing === undefined ? value : [...(isValueList(existing) ? existing : [existing]), value];
      continue;
    }
    if (existing !== undefined && !isRange(existing))
      throw new TributaryError('USAGE', `--filter ${field}: cannot combine = with >= or <=`);
    const range: RangeCondition = { ...(existing as RangeCondition | undefined) };
    if (op === '>=') range.from = value;
    else range.to = value;
    filter[field] = range;
  }
  return filter;
}
