import type { PGlite } from '@electric-sql/pglite';
import type pg from 'pg';
import { TributaryError } from '../../core/index.js';
import {
  generateNorthwind,
  northwindSchema,
  primaryKeysDdl,
  schemaDdl,
  type Cell,
  type GenerateOptions,
  type Row,
  type TableSpec,
} from './generate.js';

/**
 * Bulk loading of a generated Northwind database into PostgreSQL: embedded PGlite (COPY FROM a
 * CSV blob, its fastest path) or a real server through `pg` (multi-row INSERT … SELECT FROM
 * unnest($1::text[], …): one statement and a handful of parameters per 20,000 rows, without the
 * 65,535-parameter limit of VALUES lists).
 */
export interface NorthwindTarget {
  readonly kind: 'pglite' | 'postgres';
  exec(sql: string): Promise<void>;
  insert(table: TableSpec, rows: Row[]): Promise<void>;
}

const hex = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function byteaText(bytes: Uint8Array): string {
  let s = '\\x';
  for (const b of bytes) s += hex[b];
  return s;
}

/** PostgreSQL's text input form of a cell (bytea in hex form); null stays null. */
function cellText(cell: Cell): string | null {
  if (cell === null) return null;
  if (cell instanceof Uint8Array) return byteaText(cell);
  return String(cell);
}

/**
 * CSV as PostgreSQL's `COPY … (FORMAT csv)` reads it: comma-separated, `\n`-terminated; NULL is an
 * empty unquoted field; every string is double-quoted with inner quotes doubled (so an empty
 * string stays distinct from NULL); numbers unquoted; bytea as its `\x…` hex text.
 */
export function encodeCsv(rows: Row[]): string {
  const parts: string[] = [];
  for (const row of rows) {
    let line = '';
    for (let i = 0; i < row.length; i += 1) {
      if (i > 0) line += ',';
      const cell = row[i];
      if (cell === null) continue;
      if (typeof cell === 'number') line += String(cell);
      else if (cell instanceof Uint8Array) line += byteaText(cell);
      else line += `"${cell.replaceAll('"', '""')}"`;
    }
    parts.push(line);
  }
  return parts.length === 0 ? '' : `${parts.join('\n')}\n`;
}

export function pgliteTarget(db: PGlite): NorthwindTarget {
  return {
    kind: 'pglite',
    async exec(sql) {
      await db.exec(sql);
    },
    async insert(table, rows) {
      if (rows.length === 0) return;
      const columns = table.columns.map((c) => c.name).join(', ');
      await db.query(`COPY ${table.name} (${columns}) FROM '/dev/blob' WITH (FORMAT csv)`, [], {
        blob: new Blob([encodeCsv(rows)]),
      });
    },
  };
}

export function postgresTarget(client: pg.ClientBase): NorthwindTarget {
  return {
    kind: 'postgres',
    async exec(sql) {
      await client.query(sql);
    },
    async insert(table, rows) {
      if (rows.length === 0) return;
      const names = table.columns.map((c) => c.name);
      // varchar/text columns take text by assignment (which still rejects over-long values);
      // every other type needs an explicit cast from text.
      const select = table.columns
        .map((c) => (/^(varchar|text)/.test(c.pgType) ? c.name : `${c.name}::${c.pgType}`))
        .join(', ');
      const params = table.columns.map((_, i) => rows.map((row) => cellText(row[i])));
      const unnest = table.columns.map((_, i) => `$${i + 1}::text[]`).join(', ');
      await client.query(
        `INSERT INTO ${table.name} (${names.join(', ')}) SELECT ${select} FROM unnest(${unnest}) AS u(${names.join(', ')})`,
        params,
      );
    },
  };
}

export interface LoadReport {
  scale: number;
  seed: number;
  rows: Record<string, number>;
  elapsedMs: number;
}

export interface LoadOptions extends GenerateOptions {
  /** Orders per generated batch (their lines go with them); default 20,000. */
  ordersPerBatch?: number;
  progress?: (message: string) => void;
}

/**
 * Creates the Northwind schema in the target (dropping the 14 Northwind tables if they exist),
 * loads generated data and adds the primary keys, in one transaction so a failed load leaves no
 * half database.
 *
 * @example
 * const db = new PGlite();
 * const report = await loadNorthwind(pgliteTarget(db), { scale: 1 });
 * // report.rows.orders === 830
 */
export async function loadNorthwind(target: NorthwindTarget, options: LoadOptions): Promise<LoadReport> {
  const started = performance.now();
  const data = generateNorthwind(options);
  const specs = new Map(northwindSchema(options.scale).map((t) => [t.name, t]));
  const spec = (name: string): TableSpec => {
    const s = specs.get(name);
    if (s === undefined) throw new TributaryError('INTERNAL', `no schema for table ${name}`);
    return s;
  };
  const rows: Record<string, number> = {};
  await target.exec('BEGIN');
  try {
    await target.exec(schemaDdl(options.scale));
    for (const [name, tableRows] of data.tables) {
      await target.insert(spec(name), tableRows);
      rows[name] = tableRows.length;
    }
    rows.orders = 0;
    rows.order_details = 0;
    for (const batch of data.orderBatches(options.ordersPerBatch ?? 20_000)) {
      await target.insert(spec('orders'), batch.orders);
      await target.insert(spec('order_details'), batch.details);
      rows.orders += batch.orders.length;
      rows.order_details += batch.details.length;
      options.progress?.(`northwind: ${rows.orders}/${data.orderCount} orders loaded`);
    }
    await target.exec(primaryKeysDdl(options.scale));
    await target.exec('COMMIT');
  } catch (error) {
    await target.exec('ROLLBACK').catch(() => undefined);
    throw new TributaryError(
      'EXTERNAL',
      `loading Northwind (scale ${options.scale}) into ${target.kind} failed: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  return { scale: data.scale, seed: data.seed, rows, elapsedMs: performance.now() - started };
}
