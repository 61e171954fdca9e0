import { readFile } from 'node:fs/promises';
import { TributaryError, writeFileAtomic } from '../core/index.js';

/** Where a connector keeps its small state (cursors, positions) between runs. */
export interface ConnectorStateStore {
  get<T>(key: string): Promise<T | undefined>;
  set(key: string, value: unknown): Promise<void>;
}

/** In-memory store (tests, one-shot runs). */
export function createMemoryStateStore(): ConnectorStateStore {
  const values = new Map<string, string>();
  return {
    get: <T>(key: string) =>
      Promise.resolve(values.has(key) ? (JSON.parse(values.get(key)!) as T) : undefined),
    set: (key, value) => {
      values.set(key, JSON.stringify(value));
      return Promise.resolve();
    },
  };
}

/**
 * A JSON file holding `{ "version": 1, "values": { key: value } }`, replaced atomically on every
 * `set` (write temp, fsync, rename, fsync dir), so a crash leaves the old or the new state.
 */
export function createFileStateStore(file: string): ConnectorStateStore {
  let cache: Record<string, unknown> | null = null;
  let chain: Promise<unknown> = Promise.resolve();
  const load = async () => {
    if (cache) return cache;
    const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return null;
      throw error;
    });
    if (text === null) return (cache = {});
    let parsed: { version?: number; values?: Record<string, unknown> };
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch (error) {
      throw new TributaryError('CORRUPT_DATA', `connector state ${file} is not valid JSON`, { cause: error });
    }
    if (parsed.version !== 1 || typeof parsed.values !== 'object' || parsed.values === null) {
      throw new TributaryError(
        'FORMAT_VERSION',
        `connector state ${file} has an unknown format (version ${parsed.version})`,
      );
    }
    return (cache = parsed.values);
  };
  return {
    async get<T>(key: string) {
      const values = await load();
      return values[key] as T | undefined;
    },
    set(key, value) {
      // Serialised so two quick sets never race on the temp file and the last one wins.
      const run = chain.then(async () => {
        const values = await load();
        values[key] = value;
        await writeFileAtomic(file, JSON.stringify({ version: 1, values }));
      });
      chain = run.catch(() => undefined);
      return run;
    },
  };
}
