import { existsSync, readdirSync, rmSync, statfsSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { dataDirPaths, isNoSpaceError, TributaryError, type TributaryConfig } from '../../core/index.js';
import { pgliteReader, postgresReader, type PostgresTableReader } from './extract.js';
import { loadNorthwind, pgliteTarget, postgresTarget, type LoadReport } from './load.js';

/**
 * The Northwind source database: a real PostgreSQL when the pipeline's `sourceUrl` setting is
 * set (`run northwind --source-url` / `NORTHWIND_PG_URL`), else the embedded PGlite database under the data dir
 * (`<dataDir>/pglite`), which the generator fills (scale 1 on first use when it is empty).
 */
export interface NorthwindSource {
  readonly kind: 'pglite' | 'postgres';
  /** Where the data comes from, without credentials (`_source` of bronze rows). */
  readonly label: string;
  readonly reader: PostgresTableReader;
  close(): Promise<void>;
}

/** A PostgreSQL URL without its password, for logs and `_source`. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.password = '';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return 'postgres://(unparsable url)';
  }
}

/** Free bytes a fresh PGlite database needs: initdb writes about 40 MiB before any data. */
const pgliteCreateBytesMin = 64 * 1024 * 1024;

/**
 * PGlite runs PostgreSQL in WebAssembly: its file errors are Emscripten's `ErrnoError` objects
 * (not Error instances, no message), where ENOSPC is errno 51; PostgreSQL's own errors say
 * "No space left on device".
 */
function pgliteNoSpace(error: unknown): boolean {
  if (isNoSpaceError(error)) return true;
  const errno = error as { name?: unknown; errno?: unknown } | null;
  return errno !== null && typeof errno === 'object' && errno.name === 'ErrnoError' && errno.errno === 51;
}

/** Bytes free on the file system holding `dir` (or its nearest existing parent). */
function freeBytesAt(dir: string): number | undefined {
  for (let at = dir; ; at = path.dirname(at)) {
    try {
      const stats = statfsSync(at);
      return stats.bavail * stats.bsize;
    } catch {
      if (path.dirname(at) === at) return undefined;
    }
  }
}

function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  const errno = (error as { errno?: unknown } | null)?.errno;
  return typeof errno === 'number' ? `file system error (Emscripten errno ${errno})` : String(error);
}

/** Opens the embedded PGlite database of a data dir (created when missing). */
export async function openEmbeddedNorthwind(dataDir: string): Promise<PGlite> {
  const dir = dataDirPaths(dataDir).pglite;
  const created = !existsSync(dir);
  try {
    return await PGlite.create(dir);
  } catch (error) {
    // A database that initdb could not finish is never opened later as if it were whole.
    const noSpace = pgliteNoSpace(error);
    if (created && noSpace) rmSync(dir, { recursive: true, force: true });
    const freeBytes = freeBytesAt(dir);
    const mib = (bytes: number) => `${Math.floor(bytes / (1024 * 1024))} MiB`;
    if (noSpace || (created && freeBytes !== undefined && freeBytes < pgliteCreateBytesMin)) {
      if (created) rmSync(dir, { recursive: true, force: true });
      const room =
        freeBytes === undefined
          ? ''
          : ` (${mib(freeBytes)} free${created ? `; a new database needs about ${mib(pgliteCreateBytesMin)}` : ''})`;
      throw new TributaryError(
        'STORAGE_FULL',
        `cannot ${created ? 'create' : 'open'} the embedded PostgreSQL (PGlite) at ${dir}: no space left on its disk${room}. Free space or point --data-dir at a larger disk.`,
        { cause: error },
      );
    }
    throw new TributaryError(
      'IO',
      `cannot open the embedded PostgreSQL (PGlite) at ${dir}: ${describeError(error)}; is another tributary process using it?`,
      { cause: error },
    );
  }
}

export async function hasNorthwindTables(
  query: (sql: string) => Promise<{ present: boolean }[]>,
): Promise<boolean> {
  const rows = await query(
    `SELECT to_regclass('orders') IS NOT NULL AND to_regclass('order_details') IS NOT NULL AS present`,
  );
  return rows[0]?.present === true;
}

export async function openNorthwindSource(
  config: Pick<TributaryConfig, 'dataDir'> & { sourceUrl?: string | undefined },
  options: { seedIfEmpty?: boolean; progress?: (message: string) => void } = {},
): Promise<NorthwindSource> {
  if (config.sourceUrl !== undefined) {
    const label = redactUrl(config.sourceUrl);
    const client = new pg.Client({
      connectionString: config.sourceUrl,
      connectionTimeoutMillis: 10_000,
    });
    try {
      await client.connect();
    } catch (error) {
      await client.end().catch(() => undefined);
      throw new TributaryError(
        'UNAVAILABLE',
        `cannot connect to the Northwind source ${label}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    client.on('error', () => undefined);
    return { kind: 'postgres', label, reader: postgresReader(client, label), close: () => client.end() };
  }
  const dir = dataDirPaths(config.dataDir).pglite;
  const fresh = !existsSync(dir) || readdirSync(dir).length === 0;
  const db = await openEmbeddedNorthwind(config.dataDir);
  try {
    const present =
      !fresh && (await hasNorthwindTables(async (sql) => (await db.query<{ present: boolean }>(sql)).rows));
    if (!present) {
      if (options.seedIfEmpty !== true) {
        throw new TributaryError(
          'NOT_FOUND',
          `the embedded Northwind database at ${dir} is empty; run \`tributary generate northwind\` first`,
        );
      }
      options.progress?.('northwind: seeding the embedded database (scale 1)');
      await loadNorthwind(pgliteTarget(db), {
        scale: 1,
        ...(options.progress ? { progress: options.progress } : {}),
      });
    }
  } catch (error) {
    await db.close();
    throw error;
  }
  return {
    kind: 'pglite',
    label: `pglite:${dir}`,
    reader: pgliteReader(db, `pglite:${dir}`),
    close: () => db.close(),
  };
}

/** `tributary generate northwind`: (re)creates the Northwind tables in the target database. */
export async function generateNorthwindDatabase(options: {
  dataDir: string;
  pgUrl?: string;
  scale: number;
  seed?: number;
  progress?: (message: string) => void;
}): Promise<LoadReport & { target: string }> {
  const common = {
    scale: options.scale,
    ...(options.seed === undefined ? {} : { seed: options.seed }),
    ...(options.progress ? { progress: options.progress } : {}),
  };
  if (options.pgUrl !== undefined) {
    const client = new pg.Client({ connectionString: options.pgUrl, connectionTimeoutMillis: 10_000 });
    try {
      await client.connect();
    } catch (error) {
      await client.end().catch(() => undefined);
      throw new TributaryError(
        'UNAVAILABLE',
        `cannot connect to ${redactUrl(options.pgUrl)}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    try {
      return { ...(await loadNorthwind(postgresTarget(client), common)), target: redactUrl(options.pgUrl) };
    } finally {
      await client.end();
    }
  }
  const db = await openEmbeddedNorthwind(options.dataDir);
  try {
    return {
      ...(await loadNorthwind(pgliteTarget(db), common)),
      target: `pglite:${dataDirPaths(options.dataDir).pglite}`,
    };
  } finally {
    await db.close();
  }
}
