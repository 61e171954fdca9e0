/**
 * Partition columns of the lake sink (sinks.ts): which Hive partition a row lands in, from its own
 * columns and from its event time.
 *
 * Why raw high-cardinality ids must be bucketed: every distinct partition value is a directory,
 * an open buffer in the sink (rows held in memory and in every checkpoint until the file rolls) and
 * at least one Parquet file per roll. Partitioning by `user_id` with 100k users writes 100k tiny
 * files per day, each with its own footer and manifest entry, and DuckDB must list and open all of
 * them to answer any query; the sink's bound on open partitions (LRU roll) keeps memory safe but
 * cannot make those files larger. `bucket(user_id, 16)` keeps 16 directories per day and type, each
 * file holding a slice of the users, and a query for one user still prunes to 1/16 of the data
 * (`WHERE user_bucket = <bucket of that id>`).
 */
import { TributaryError, limits } from '../core/index.js';
import {
  checkPartitionColumn,
  encodePartitionValue,
  hiveNullValue,
  partitionValueOf,
  type PartitionValues,
} from '../lake/index.js';
import { partitionForKey } from '../log/index.js';

/**
 * A partition column of a lake sink: a column of the row by name, or one computed from the row
 * and its event time (the computed value is also stored in the row under `name`, so the lake knows
 * its type).
 */
export type LakePartitionColumn =
  | string
  | {
      name: string;
      value: (row: Record<string, unknown>, timestampMs: number) => unknown;
    };

const utf8 = new TextEncoder();
/** Reused for the UTF-8 bytes of a bucketed string (one allocation, not one per record). */
let scratch = new Uint8Array(256);

/**
 * The bucket of `value` among `buckets`: Kafka's default partitioner (murmur2 of the UTF-8 bytes,
 * sign bit cleared, modulo `buckets`), so `bucket(userId, 16)` is also the partition of key
 * `userId` in a 16-partition topic, in Tributary's log and in Kafka alike. Numbers and bigints are
 * hashed as their decimal text (`bucket(42, n) === bucket('42', n)`). Null and undefined have no
 * bucket (null: the row lands in the NULL partition).
 *
 * @example
 * bucket('user-42', 16) // → 0‥15, the same for every run and every process
 */
export function bucket(
  value: string | number | bigint | Uint8Array | null | undefined,
  buckets: number,
): number | null {
  if (!Number.isInteger(buckets) || buckets < 1 || buckets > 2 ** 31 - 1) {
    throw new TributaryError('INVALID_ARGUMENT', `bucket count must be a positive integer, got ${buckets}`);
  }
  if (value === null || value === undefined) return null;
  if (value instanceof Uint8Array) return partitionForKey(value, buckets);
  const text = String(value);
  // UTF-8 takes at most 3 bytes per UTF-16 code unit.
  if (scratch.length < text.length * 3) scratch = new Uint8Array(text.length * 3);
  const { written } = utf8.encodeInto(text, scratch);
  return partitionForKey(scratch.subarray(0, written), buckets);
}

/**
 * A partition column holding `bucket(row[sourceColumn], buckets)`.
 *
 * @example
 * lakeSink(target, { partitionBy: ['show_type', bucketColumn('user_bucket', 'user_id', 16)] })
 */
export function bucketColumn(name: string, sourceColumn: string, buckets: number): LakePartitionColumn {
  bucket('', buckets);
  return {
    name,
    value: (row) => {
      const source = row[sourceColumn];
      if (
        source === null ||
        source === undefined ||
        typeof source === 'string' ||
        typeof source === 'number' ||
        typeof source === 'bigint' ||
        source instanceof Uint8Array
      )
        return bucket(source, buckets);
      throw new TributaryError(
        'BAD_RECORD',
        `column ${sourceColumn} must be a string or number to be bucketed, got ${typeof source}`,
      );
    },
  };
}

/** Characters a Hive partition value keeps as they are (see `encodePartitionValue`). */
const plainValue = /^[A-Za-z0-9_.~-]+$/;

/**
 * Computes a row's partition columns. Values go through the lake's Hive encoding (escaped, so no
 * value can name another directory: `../x` becomes `..%2Fx` under its `col=` segment). Refused as
 * bad records (the job's DLQ) rather than failing the file write later: a value longer than
 * `limits.lakePartitionValueBytesMax` once escaped (path segments have a length limit), the string
 * `__HIVE_DEFAULT_PARTITION__` (it would read back as NULL), and objects.
 */
export class RowPartitioner {
  readonly columns: readonly string[];
  readonly #plain: boolean[];
  readonly #compute: (LakePartitionColumn & object)['value'][];
  readonly #table: string;

  constructor(table: string, columns: readonly LakePartitionColumn[], reserved: readonly string[]) {
    this.#table = table;
    const names = columns.map((c) => checkPartitionColumn(typeof c === 'string' ? c : c.name));
    const all = [...reserved, ...names];
    const duplicate = all.find((name, i) => all.indexOf(name) !== i);
    if (duplicate !== undefined) {
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `lake sink ${table}: partition column ${duplicate} is named twice (time partitions: ${reserved.join(', ') || 'none'})`,
      );
    }
    this.columns = names;
    this.#plain = columns.map((c) => typeof c === 'string');
    this.#compute = columns.map((c) => (typeof c === 'string' ? () => undefined : c.value));
  }

  /**
   * Values of the columns the last `apply` computed, or found missing (null), by column: they are
   * the same for every row of a partition, so the sink adds them to the rows when it rolls the
   * file instead of copying each row. A column the row holds itself is absent.
   */
  readonly added: Record<string, unknown> = {};

  /**
   * Partition values of `row` (into `values`, as text) and its path suffix (`col=v/…`, '' with no
   * columns); `added` then holds the computed and missing columns. The row is not modified.
   */
  apply(row: Record<string, unknown>, timestampMs: number, values: PartitionValues): string {
    let path = '';
    const added = this.added;
    for (let i = 0; i < this.columns.length; i++) {
      const name = this.columns[i];
      let value: unknown;
      try {
        if (this.#plain[i]) {
          value = row[name];
          if (value === undefined) {
            value = null;
            added[name] = null;
          } else {
            delete added[name];
            if (
              typeof value === 'string' &&
              value.length <= limits.lakePartitionValueBytesMax &&
              plainValue.test(value) &&
              value !== hiveNullValue
            ) {
              values[name] = value;
              path += `${path === '' ? '' : '/'}${name}=${value}`;
              continue;
            }
          }
        } else {
          value = this.#compute[i](row, timestampMs) ?? null;
          added[name] = value;
        }
        if (typeof value === 'number' && Number.isSafeInteger(value)) {
          // Digits and '-' need no escaping (bucket numbers take this path).
          const text = String(value);
          values[name] = text;
          path += `${path === '' ? '' : '/'}${name}=${text}`;
          continue;
        }
        const text = partitionValueOf(value);
        if (text === hiveNullValue) {
          // DuckDB writes this string as the directory of NULL and reads it back as NULL.
          throw new TributaryError('BAD_RECORD', `${hiveNullValue} is the Hive spelling of NULL`);
        }
        const encoded = encodePartitionValue(text);
        if (encoded.length > limits.lakePartitionValueBytesMax) {
          throw new TributaryError(
            'BAD_RECORD',
            `its value is ${encoded.length} bytes once escaped, more than the ${limits.lakePartitionValueBytesMax} a path segment may hold`,
          );
        }
        values[name] = text;
        path += `${path === '' ? '' : '/'}${name}=${encoded}`;
      } catch (error) {
        throw new TributaryError(
          'BAD_RECORD',
          `lake sink ${this.#table}: partition column ${name}: ${(error as Error).message}`,
          { cause: error },
        );
      }
    }
    return path;
  }
}
