import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/**
 * The real platform as a user starts it: the compiled CLI's `tributary up` in a child process with
 * a fresh data dir, found through the `up.json` and `local-admin.key` files it writes.
 */
export interface PlatformProcess {
  url: string;
  /** The local admin key `up` created in the fresh data dir. */
  adminKey: string;
  dataDir: string;
  child: ChildProcess;
  /** Everything the process wrote to stdout / stderr so far (for failure messages). */
  stdout(): string;
  stderr(): string;
  /** GET/POST a JSON API route with the admin key; throws with the body on a non-2xx answer. */
  api<T>(route: string, init?: { method?: string; body?: unknown }): Promise<T>;
  /** Sends `signal` and resolves with the exit code (or signal) and how long the exit took. */
  terminate(
    signal: NodeJS.Signals,
    timeoutMs: number,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null; elapsedMs: number }>;
  /** Kills whatever is left (SIGKILL) and removes the data dir; safe to call twice. */
  dispose(): Promise<void>;
}

const repoRoot = path.resolve(import.meta.dirname, '../..');
export const cliPath = path.join(repoRoot, 'bin', 'tributary.js');
export const builtEntry = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const pollIntervalMs = 200;

/** A port the OS just handed out and released (another process could take it first; rare on 127.0.0.1). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Polls `probe` every 200 ms until it returns a value other than undefined, failing after
 * `timeoutMs` with `what` and the last error (probes may throw while the thing is not there yet).
 */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
  abortWhen?: () => string | undefined,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    const reason = abortWhen?.();
    if (reason !== undefined) throw new Error(`${what}: ${reason}`);
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const detail = lastError instanceof Error ? `; last error: ${lastError.message}` : '';
      throw new Error(`${what}: not within ${timeoutMs} ms${detail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, pollIntervalMs));
  }
}

/**
 * Spawns `node bin/tributary.js --data-dir <fresh tmp dir> up --port <free port>` and waits (up
 * to `startTimeoutMs`) for `<dataDir>/up.json`, the admin key file and `GET /health` = 200.
 */
export async function startPlatform(options: {
  startTimeoutMs: number;
  /** The `tributary` entry to run; default this checkout's `bin/tributary.js` (an installed package's in the pack test). */
  cliPath?: string;
}): Promise<PlatformProcess> {
  if (options.cliPath === undefined && !existsSync(builtEntry)) {
    throw new Error(`the build is missing (${builtEntry}); run \`npm run build\` first`);
  }
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'tributary-e2e-'));
  const port = await freePort();
  // A clean environment for the platform: no TRIBUTARY_* settings leak in from the shell running
  // the tests (they could point it at another data dir, log backend or admin key).
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('TRIBUTARY_')),
  );
  const child = spawn(
    process.execPath,
    [
      options.cliPath ?? cliPath,
      '--data-dir',
      dataDir,
      'up',
      '--port',
      String(port),
      '--host',
      '127.0.0.1',
      '--kafka-port',
      '0',
    ],
    { cwd: dataDir, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void exited.then((e) => (exit = e));
  const exitedEarly = () =>
    exit === undefined
      ? undefined
      : `the platform exited (code ${exit.code}, signal ${exit.signal})\nstdout:\n${out}\nstderr:\n${err.slice(-4000)}`;

  // If the test runner itself goes away, the platform must not outlive it.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  void exited.then(() => process.off('exit', killOnExit));

  let disposed = false;
  const dispose = async () => {
    if (disposed) return;
    disposed = true;
    if (exit === undefined) {
      child.kill('SIGKILL');
      await exited;
    }
    await rm(dataDir, { recursive: true, force: true });
  };

  try {
    const state = await waitFor(
      'up.json',
      options.startTimeoutMs,
      async () => JSON.parse(await readFile(path.join(dataDir, 'up.json'), 'utf8')) as { url: string },
      exitedEarly,
    );
    const adminKey = (await readFile(path.join(dataDir, 'local-admin.key'), 'utf8')).trim();
    await waitFor(
      'GET /health',
      10_000,
      async () => ((await fetch(`${state.url}/health`)).status === 200 ? true : undefined),
      exitedEarly,
    );
    const api = async <T>(route: string, init: { method?: string; body?: unknown } = {}): Promise<T> => {
      const response = await fetch(`${state.url}${route}`, {
        method: init.method ?? 'GET',
        headers: {
          authorization: `Bearer ${adminKey}`,
          accept: 'application/json',
          ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
      });
      const text = await response.text();
      if (!response.ok) throw new Error(`${init.method ?? 'GET'} ${route}: HTTP ${response.status} ${text}`);
      return JSON.parse(text) as T;
    };
    return {
      url: state.url,
      adminKey,
      dataDir,
      child,
      stdout: () => out,
      stderr: () => err,
      api,
      async terminate(signal, timeoutMs) {
        const startMs = Date.now();
        child.kill(signal);
        let timer: NodeJS.Timeout | undefined;
        const result = await Promise.race([
          exited,
          new Promise<'timeout'>((resolve) => {
            timer = setTimeout(() => resolve('timeout'), timeoutMs);
          }),
        ]).finally(() => clearTimeout(timer));
        if (result === 'timeout') {
          throw new Error(
            `the platform did not exit within ${timeoutMs} ms after ${signal}\nstdout:\n${out}`,
          );
        }
        return { ...result, elapsedMs: Date.now() - startMs };
      },
      dispose,
    };
  } catch (error) {
    await dispose();
    throw error;
  }
}
