import { z } from 'zod';
import { TributaryError } from '../../core/index.js';
import { quoteIdentifier } from '../../lake/index.js';
import { checkConnectorOptions } from '../options-check.js';
import type { PgClient, PgSession } from './client.js';

const identifier = /^[A-Za-z_][A-Za-z0-9_$]*$/;

/** Options of the PostgreSQL upsert sink. */
export const postgresSinkOptionsSchema = z
  .object({
    url: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'postgres://user@host:port/db')
      .optional()
      .describe('PostgreSQL URL; without one the embedded PGlite database is written.'),
    table: z
      .string()
      .regex(/^([A-Za-z_][A-Za-z0-9_$]*\.)?[A-Za-z_][A-Za-z0-9_$]*$/)
      .describe('Target table (must exist, with a unique constraint on keyColumns).'),
    keyColumns: z.array(z.string().regex(identifier)).min(1).describe('Columns of the ON CONFLICT key.'),
    columns: z.array(z.string().regex(identifier)).min(1).describe('Columns written (key columns included).'),
    sinkId: z
      .string()
      .min(1)
      .max(200)
      .describe('Identity of this sink in _tributary_sink_offsets (one per job and sink).'),
    rowsPerStatement: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .default(1000)
      .describe('Rows per INSERT statement (bounded by 65535 parameters).'),
    bufferRowsMax: z
      .number()
      .int()
      .min(1)
      .default(1_000_000)
      .describe('Buffered rows before add() refuses with BACKPRESSURE.'),
  })
  .strict()
  .refine((o) => o.keyColumns.every((k) => o.columns.includes(k)), {
    message: 'keyColumns must be among columns',
    path: ['keyColumns'],
  });

export type PostgresSinkOptions = z.infer<typeof postgresSinkOptionsSchema>;
export type PostgresSinkOptionsInput = z.input<typeof postgresSinkOptionsSchema>;

const quoteQualified = (name: string) => name.split('.').map(quoteIdentifier).join('.');

/**
 * Offsets table, one row per sink:
 *   _tributary_sink_offsets(sink_id text PRIMARY KEY, checkpoint_id bigint NOT NULL, updated_at timestamptz)
 * `checkpoint_id` is the last checkpoint whose rows are committed; it is written in the same
 * transaction as the rows, so after a crash the job replays from its last checkpoint and flushes
 * of checkpoints ≤ the stored id are skipped (idempotent replay).
 */
export const sinkOffsetsDdl = `CREATE TABLE IF NOT EXISTS _tributary_sink_offsets (
  sink_id text PRIMARY KEY,
  checkpoint_id bigint NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
)`;

export interface SinkFlushResult {
  checkpointId: number;
  rows: number;
  /** True when this checkpoint was already committed (a replay), so nothing was written. */
  skipped: boolean;
}

/**
 * Batched `INSERT … ON CONFLICT (key) DO UPDATE` into PostgreSQL, committed together with the job
 * checkpoint. Two-phase friendly: `add()` only buffers (rows with the same key keep the last one),
 * `flush(checkpointId)` writes everything and the checkpoint id in one transaction; a failed
 * flush rolls back and keeps the buffer, so the checkpoint can be retried or aborted.
 *
 * @example
 * const sink = createPostgresUpsertSink({ table: 'public.totals', keyColumns: ['id'], columns: ['id', 'n'], sinkId: 'job1/totals' }, { client });
 * sink.add([{ id: 1, n: 5 }]);
 * await sink.flush(42); // rows and checkpoint 42 commit atomically
 */
export class PostgresUpsertSink {
  readonly options: PostgresSinkOptions;
  readonly #client: PgClient;
  #buffer = new Map<string, Record<string, unknown>>();
  #prepared = false;

  constructor(options: PostgresSinkOptionsInput, deps: { client: PgClient }) {
    this.options = checkConnectorOptions('postgres sink', postgresSinkOptionsSchema, options);
    this.#client = deps.client;
  }

  get bufferedRows(): number {
    return this.#buffer.size;
  }

  /** Buffers rows; a later row with the same key replaces an earlier one (ON CONFLICT can't update a row twice per statement). */
  add(rows: readonly Record<string, unknown>[]): void {
    if (this.#buffer.size + rows.length > this.options.bufferRowsMax) {
      throw new TributaryError(
        'BACKPRESSURE',
        `postgres sink ${this.options.sinkId}: buffer holds ${this.#buffer.size} rows; flush first`,
        {
          retryAfterMs: 100,
        },
      );
    }
    for (const [index, row] of rows.entries()) {
      const key = this.options.keyColumns.map((k) => {
        const value = row[k];
        if (value === undefined || value === null) {
          throw new TributaryError(
            'BAD_RECORD',
            `postgres sink ${this.options.sinkId}: record ${index} has no value for key column ${k}`,
            {
              details: { record: index, field: k },
            },
          );
        }
        return typeof value === 'bigint' ? value.toString() : JSON.stringify(value);
      });
      this.#buffer.set(key.join('\u0000'), row);
    }
  }

  /** Last committed checkpoint id of this sink (-1 when none). */
  async committedCheckpoint(session: PgSession = this.#client): Promise<number> {
    await this.#prepare();
    const result = await session.query(
      'SELECT checkpoint_id FROM _tributary_sink_offsets WHERE sink_id = $1',
      [this.options.sinkId],
    );
    return result.rows.length === 0 ? -1 : Number(result.rows[0][0]);
  }

  async #prepare(): Promise<void> {
    if (this.#prepared) return;
    await this.#client.query(sinkOffsetsDdl);
    this.#prepared = true;
  }

  /** Writes the buffer and `checkpointId` in one transaction; skips checkpoints already committed. */
  async flush(checkpointId: number): Promise<SinkFlushResult> {
    if (!Number.isSafeInteger(checkpointId) || checkpointId < 0) {
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `checkpoint id must be a non-negative integer, got ${checkpointId}`,
      );
    }
    await this.#prepare();
    const rows = [...this.#buffer.values()];
    const o = this.options;
    const result = await this.#client.transaction(async (session) => {
      // Lock this sink's offsets row so two flushes of one sink never interleave.
      await session.query(
        'INSERT INTO _tributary_sink_offsets (sink_id, checkpoint_id) VALUES ($1, -1) ON CONFLICT (sink_id) DO NOTHING',
        [o.sinkId],
      );
      const current = await session.query(
        'SELECT checkpoint_id FROM _tributary_sink_offsets WHERE sink_id = $1 FOR UPDATE',
        [o.sinkId],
      );
      const committed = Number(current.rows[0][0]);
      if (checkpointId <= committed) return { checkpointId, rows: 0, skipped: true };
      const columns = o.columns.map(quoteIdentifier).join(', ');
      const updates = o.columns.filter((c) => !o.keyColumns.includes(c));
      const conflict = `ON CONFLICT (${o.keyColumns.map(quoteIdentifier).join(', ')}) ${
        updates.length === 0
          ? 'DO NOTHING'
          : `DO UPDATE SET ${updates.map((c) => `${quoteIdentifier(c)} = EXCLUDED.${quoteIdentifier(c)}`).join(', ')}`
      }`;
      const perStatement = Math.min(o.rowsPerStatement, Math.floor(65_535 / o.columns.length));
      for (let start = 0; start < rows.length; start += perStatement) {
        const slice = rows.slice(start, start + perStatement);
        const params: unknown[] = [];
        const tuples = slice.map((row) => {
          const placeholders = o.columns.map((c) => {
            const value = row[c];
            params.push(
              value === undefined
                ? null
                : typeof value === 'bigint'
                  ? value.toString()
                  : value instanceof Date
                    ? value.toISOString()
                    : value instanceof Uint8Array
                      ? Buffer.from(value)
                      : value,
            );
            return `$${params.length}`;
          });
          return `(${placeholders.join(', ')})`;
        });
        await session.query(
          `INSERT INTO ${quoteQualified(o.table)} (${columns}) VALUES ${tuples.join(', ')} ${conflict}`,
          params,
        );
      }
      await session.query(
        'UPDATE _tributary_sink_offsets SET checkpoint_id = $2, updated_at = now() WHERE sink_id = $1',
        [o.sinkId, checkpointId],
      );
      return { checkpointId, rows: rows.length, skipped: false };
    });
    this.#buffer = new Map();
    return result;
  }

  /** Drops buffered rows (the checkpoint was aborted; the job replays from the previous one). */
  abort(): void {
    this.#buffer = new Map();
  }
}

export function createPostgresUpsertSink(
  options: PostgresSinkOptionsInput,
  deps: { client: PgClient },
): PostgresUpsertSink {
  return new PostgresUpsertSink(options, deps);
}
