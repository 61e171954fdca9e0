import type { PGlite, Transaction } from '@electric-sql/pglite';
import { Socket } from 'node:net';
import pg from 'pg';
import { toTributaryError, TributaryError } from '../../core/index.js';

export interface PgField {
  name: string;
  dataTypeID: number;
}

/** Rows come back as arrays (column order of the statement), values as the driver parsed them. */
export interface PgResult {
  rows: unknown[][];
  fields: PgField[];
}

/** One session: every query of a `transaction` callback runs on the same connection. */
export interface PgSession {
  query(sql: string, params?: unknown[]): Promise<PgResult>;
  /**
   * Runs `COPY (<select>) TO STDOUT (<options>)` and hands the output bytes to `write` in chunks
   * of about `copyChunkBytes` (the next chunk waits for the previous write, and the socket pauses
   * meanwhile, so memory stays bounded); resolves with the number of rows copied.
   */
  copyOut?(select: string, options: string, write: (chunk: Buffer) => Promise<void>): Promise<number>;
}

/** Size of the chunks `copyOut` hands to its writer. */
export const copyChunkBytes = 4 << 20;

/**
 * The small PostgreSQL surface connectors use, implemented over `pg` (a real server) and over
 * PGlite (embedded, in-process), so the source and the sink run one code path on both.
 */
export interface PgClient extends PgSession {
  readonly kind: 'pg' | 'pglite';
  /** Runs `action` inside BEGIN … COMMIT (ROLLBACK when it throws), exclusively. */
  transaction<T>(
    action: (session: PgSession) => Promise<T>,
    options?: { readOnly?: boolean; isolation?: 'repeatable read' | 'read committed' | 'serializable' },
  ): Promise<T>;
  close(): Promise<void>;
}

function beginStatement(options: { readOnly?: boolean; isolation?: string } = {}): string {
  return `BEGIN ISOLATION LEVEL ${(options.isolation ?? 'read committed').toUpperCase()}${options.readOnly ? ' READ ONLY' : ''}`;
}

/** Text results are left as text (no Date/number parsing): connectors map types themselves. */
const rawTypes = { getTypeParser: () => (value: string) => value };

function wrapPgError(error: unknown): TributaryError {
  if (error instanceof TributaryError) return error;
  const pgError = error as { code?: string; message?: string };
  const message = pgError.message ?? String(error);
  // Connection-level failures are worth retrying; SQL errors (class 42 etc.) are the user's.
  const connection = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|Connection terminated|EHOSTUNREACH/.test(message);
  return new TributaryError(connection ? 'UNAVAILABLE' : 'EXTERNAL', `PostgreSQL: ${message}`, {
    cause: error,
    details: pgError.code ? { sqlstate: pgError.code } : {},
    domain: connection ? 'external' : pgError.code?.startsWith('42') ? 'user' : 'external',
  });
}

class Mutex {
  #tail: Promise<void> = Promise.resolve();
  async run<T>(action: () => Promise<T>): Promise<T> {
    const previous = this.#tail;
    let release!: () => void;
    this.#tail = new Promise((resolve) => (release = resolve));
    await previous;
    try {
      return await action();
    } finally {
      release();
    }
  }
}

/**
 * A `pg` custom query (the "submittable" protocol pg-cursor uses) for `COPY … TO STDOUT`: pg
 * itself ignores CopyData messages, so this collects them. PostgreSQL sends one CopyData message
 * per row; they are gathered into chunks of `copyChunkBytes`, and while a chunk is being written
 * the socket is paused so a slow writer holds back the server instead of filling memory.
 */
class CopyOutQuery {
  readonly text: string;
  readonly #write: (chunk: Buffer) => Promise<void>;
  readonly #resolve: (rows: number) => void;
  readonly #reject: (error: unknown) => void;
  #parts: Buffer[] = [];
  #bytes = 0;
  #writing: Promise<void> = Promise.resolve();
  #failure: unknown = null;
  #rows = 0;
  #settled = false;

  constructor(
    text: string,
    write: (chunk: Buffer) => Promise<void>,
    resolve: (rows: number) => void,
    reject: (error: unknown) => void,
  ) {
    this.text = text;
    this.#write = write;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  submit(connection: { query(text: string): void }): void {
    connection.query(this.text);
  }

  #flush(connection: { stream: { pause(): void; resume(): void } } | null): void {
    if (this.#bytes === 0) return;
    // Parser buffers are reused, so the pieces are copied out now.
    const chunk = Buffer.concat(this.#parts, this.#bytes);
    this.#parts = [];
    this.#bytes = 0;
    connection?.stream.pause();
    this.#writing = this.#writing
      .then(() => (this.#failure === null ? this.#write(chunk) : undefined))
      .catch((error: unknown) => {
        this.#failure ??= error;
      })
      .finally(() => connection?.stream.resume());
  }

  handleCopyData(
    message: { chunk: Buffer },
    connection: { stream: { pause(): void; resume(): void } },
  ): void {
    this.#parts.push(Buffer.from(message.chunk));
    this.#bytes += message.chunk.length;
    if (this.#bytes >= copyChunkBytes) this.#flush(connection);
  }

  handleCommandComplete(message: { text?: string }): void {
    const match = /^COPY (\d+)/.exec(message.text ?? '');
    if (match) this.#rows = Number(match[1]);
  }

  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handleCopyInResponse(connection: { sendCopyFail(message: string): void }): void {
    connection.sendCopyFail('tributary: COPY FROM is not supported here');
  }

  handleReadyForQuery(): void {
    this.#flush(null);
    // A writer failure is the caller's (disk, scratch file), not PostgreSQL's: typed as such here
    // so the PostgreSQL error wrapping leaves it alone.
    void this.#writing.then(() =>
      this.#settle(this.#failure === null ? null : toTributaryError(this.#failure, 'IO')),
    );
  }

  handleError(error: unknown): void {
    void this.#writing.then(() => this.#settle(error));
  }

  #settle(error: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    if (error === null) this.#resolve(this.#rows);
    else this.#reject(error);
  }
}

/** A `PgClient` over one `pg.Client` connection (the caller's or a new one from `url`). */
export async function connectPg(urlOrClient: string | pg.Client): Promise<PgClient> {
  const client =
    typeof urlOrClient === 'string'
      ? new pg.Client({ connectionString: urlOrClient, types: rawTypes })
      : urlOrClient;
  if (typeof urlOrClient === 'string') {
    try {
      await client.connect();
    } catch (error) {
      throw wrapPgError(error);
    }
  }
  // A connection error after connect would otherwise be an unhandled 'error' event.
  client.on('error', () => undefined);
  const mutex = new Mutex();
  const run = async (sql: string, params?: unknown[]): Promise<PgResult> => {
    try {
      const result = await client.query<unknown[]>({
        text: sql,
        values: params ?? [],
        rowMode: 'array',
        types: rawTypes,
      });
      return {
        rows: result.rows,
        fields: result.fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID })),
      };
    } catch (error) {
      throw wrapPgError(error);
    }
  };
  const copyOut = async (
    select: string,
    options: string,
    write: (chunk: Buffer) => Promise<void>,
  ): Promise<number> => {
    try {
      return await new Promise<number>((resolve, reject) => {
        client.query(new CopyOutQuery(`COPY (${select}) TO STDOUT (${options})`, write, resolve, reject));
      });
    } catch (error) {
      throw wrapPgError(error);
    }
  };
  return {
    kind: 'pg',
    query: (sql, params) => mutex.run(() => run(sql, params)),
    copyOut: (select, options, write) => mutex.run(() => copyOut(select, options, write)),
    transaction: (action, options) =>
      mutex.run(async () => {
        await run(beginStatement(options));
        try {
          const result = await action({ query: run, copyOut });
          await run('COMMIT');
          return result;
        } catch (error) {
          await run('ROLLBACK').catch(() => undefined);
          throw error;
        }
      }),
    close: async () => {
      if (typeof urlOrClient === 'string') await client.end();
    },
  };
}

/** A `PgClient` over an embedded PGlite database (its transactions are exclusive already). */
export function pgliteClient(db: PGlite, options: { closeDb?: boolean } = {}): PgClient {
  const wrap =
    (target: PGlite | Transaction) =>
    async (sql: string, params?: unknown[]): Promise<PgResult> => {
      try {
        const result = await target.query<unknown[]>(sql, params ?? [], { rowMode: 'array' });
        return {
          rows: result.rows,
          fields: result.fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID })),
        };
      } catch (error) {
        throw wrapPgError(error);
      }
    };
  const copyOut =
    (target: PGlite | Transaction) =>
    async (select: string, options: string, write: (chunk: Buffer) => Promise<void>): Promise<number> => {
      let result;
      try {
        // PGlite runs in this process: COPY writes its whole output into one in-memory blob.
        result = await target.query(`COPY (${select}) TO '/dev/blob' (${options})`);
      } catch (error) {
        throw wrapPgError(error);
      }
      if (result.blob) {
        const bytes = Buffer.from(await result.blob.arrayBuffer());
        for (let at = 0; at < bytes.length; at += copyChunkBytes)
          await write(bytes.subarray(at, at + copyChunkBytes));
      }
      return result.affectedRows ?? 0;
    };
  return {
    kind: 'pglite',
    query: wrap(db),
    copyOut: copyOut(db),
    transaction: (action, txOptions) =>
      db.transaction(async (tx) => {
        // PGlite opened the transaction with a plain BEGIN; set its characteristics first.
        await tx.query(
          `SET TRANSACTION ISOLATION LEVEL ${(txOptions?.isolation ?? 'read committed').toUpperCase()}${txOptions?.readOnly ? ' READ ONLY' : ''}`,
        );
        return action({ query: wrap(tx), copyOut: copyOut(tx) });
      }),
    close: async () => {
      if (options.closeDb) await db.close();
    },
  };
}

/** Opens PGlite (in memory, or persisted under `dataDir`) as a `PgClient`. */
export async function openPglite(dataDir?: string): Promise<PgClient & { db: PGlite }> {
  const { PGlite } = await import('@electric-sql/pglite');
  const db = dataDir === undefined ? await PGlite.create() : await PGlite.create(dataDir);
  return Object.assign(pgliteClient(db, { closeDb: true }), { db });
}

/** A `PgClient` for a URL (`postgres://…` → pg) or, without one, embedded PGlite at `pgliteDir`. */
export async function openPgClient(options: {
  url?: string | undefined;
  pgliteDir?: string | undefined;
}): Promise<PgClient> {
  if (options.url) return connectPg(options.url);
  return openPglite(options.pgliteDir);
}

/**
 * True when something accepts TCP connections at a postgres URL's host and port within
 * `timeoutMs`: a cheap probe before opening a real client (tests and benchmarks skip the real
 * server when it is absent, instead of waiting for pg's connection timeout).
 */
export function pgReachable(url: string, timeoutMs = 1000): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(Number(port || 5432), hostname, () => done(true));
  });
}
