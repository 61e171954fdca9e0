import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { loadConfig, seededRandom } from '../../src/core/index.js';
import { openLakeFromConfig } from '../../src/lake/index.js';
import { openSqlEngine } from '../../src/sql/index.js';
import { checkpointDir } from '../../src/stream/index.js';

/**
 * The compiled CLI's `tributary run <pipeline>` for crash tests: a bounded run to the end, and an
 * unbounded one killed with SIGKILL once a job has checkpointed (at a seeded moment after that).
 */
const bin = path.resolve('bin/tributary.js');

/** The environment of a run on `dataDir`: no TRIBUTARY_* settings leak in from the shell. */
export function runEnv(dataDir: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TRIBUTARY_')));
  return { ...base, TRIBUTARY_DATA_DIR: dataDir, TRIBUTARY_LOG_LEVEL: 'error', ...extra };
}

/** `run <pipeline> --once`; its stdout (the run's report), or an error with its stderr. */
export function runOnce(pipeline: string, env: NodeJS.ProcessEnv): string {
  const result = spawnSync(process.execPath, [bin, 'run', pipeline, '--once'], {
    env,
    encoding: 'utf8',
    timeout: 180_000,
  });
  if (result.status !== 0)
    throw new Error(`run ${pipeline} --once exited ${result.status}: ${result.stderr}`);
  return result.stdout;
}

/**
 * `run <pipeline> --once` without blocking this process (for a test that serves the run itself,
 * e.g. an API simulator): its stdout, or an error with its stdout and stderr.
 */
export async function runOnceAsync(pipeline: string, env: NodeJS.ProcessEnv): Promise<string> {
  const child = spawn(process.execPath, [bin, 'run', pipeline, '--once'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearTimeout(timer);
  if (code !== 0) throw new Error(`run ${pipeline} --once exited ${code}: ${stdout}${stderr}`);
  return stdout;
}

/**
 * Starts `run <pipeline>` and kills it with SIGKILL after `job` took its first checkpoint and
 * `options.after` (when given) holds, at a seeded moment within 300 ms of that.
 */
export async function killRunAfterCheckpoint(
  pipeline: string,
  job: string,
  env: NodeJS.ProcessEnv,
  seed: number,
  options: { after?: () => boolean } = {},
): Promise<void> {
  const child = spawn(process.execPath, [bin, 'run', pipeline], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_c, s) => resolve(s)));
  const current = path.join(checkpointDir(String(env.TRIBUTARY_DATA_DIR), job), 'CURRENT');
  const deadline = Date.now() + 60_000;
  while (!existsSync(current) || (options.after !== undefined && !options.after())) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`run ${pipeline}: ${job} never checkpointed (or the condition never held): ${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await new Promise((resolve) => setTimeout(resolve, Math.floor(seededRandom(seed)() * 300)));
  child.kill('SIGKILL');
  const signal = await exited;
  if (signal !== 'SIGKILL') throw new Error(`run ${pipeline} ended before the kill (${signal}): ${stderr}`);
}

/**
 * The rows of each query over the lake of `dataDir` (opened as the CLI opens it), each row as its
 * JSON text, so two runs' tables compare with one `toEqual`.
 */
export async function lakeRows<K extends string>(
  dataDir: string,
  queries: Record<K, string>,
): Promise<Record<K, string[]>> {
  const lake = await openLakeFromConfig(loadConfig({ env: {}, dotenv: false, overrides: { dataDir } }));
  const sql = await openSqlEngine(lake);
  try {
    const result = {} as Record<K, string[]>;
    for (const key of Object.keys(queries) as K[])
      result[key] = (await sql.query(queries[key])).map((row) => JSON.stringify(row));
    return result;
  } finally {
    sql.close();
    await lake.close();
  }
}
