import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

/** What the HTTP benchmarks read from autocannon's JSON report. */
export interface HttpLoadResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; average: number };
  non2xx: number;
  errors: number;
  timeouts: number;
  /** CPU time of the load generator's process from its first connection to its exit (µs, user + system). */
  clientCpuUs: number;
}

export interface HttpLoad {
  url: string;
  connections: number;
  durationSeconds: number;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  /** A request body, written to `file` and sent from there. */
  body?: { text: string; file: string };
}

const autocannonCli = path.join(
  path.dirname(createRequire(import.meta.url).resolve('autocannon/package.json')),
  'autocannon.js',
);
const run = promisify(execFile);
/** Precedes the load generator's CPU time on its stderr (written by load-cpu.ts). */
export const loadCpuMarker = 'tributary-load-cpu-us:';
const loadCpuModule = pathToFileURL(
  path.join(path.dirname(fileURLToPath(import.meta.url)), 'load-cpu.js'),
).href;

/**
 * Drives `load` with autocannon in a process of its own, as real clients are: in a worker thread of
 * the served process, its request buffers and the server's shared one address space and a fifth
 * of the served figure went to that (measured on the Kafka listener, see bench/kafka-clients.ts).
 * The process reports its CPU time from its first connection on (clientCpuUs): on a machine the
 * server shares, what the client burns is taken from the server.
 */
export async function httpLoad(load: HttpLoad): Promise<HttpLoadResult> {
  const args = ['-j', '-c', String(load.connections), '-d', String(load.durationSeconds)];
  if (load.method !== undefined) args.push('-m', load.method);
  for (const [name, value] of Object.entries(load.headers ?? {})) args.push('-H', `${name}=${value}`);
  if (load.body !== undefined) {
    await writeFile(load.body.file, load.body.text);
    args.push('-i', load.body.file);
  }
  const { stdout, stderr } = await run(
    process.execPath,
    ['--import', loadCpuModule, autocannonCli, ...args, load.url],
    {
      maxBuffer: 16 * 1024 * 1024,
    },
  );
  const cpu = stderr.lastIndexOf(loadCpuMarker);
  if (cpu < 0) throw new Error(`autocannon did not report its CPU time: ${stderr.slice(-500)}`);
  const clientCpuUs = Number.parseInt(stderr.slice(cpu + loadCpuMarker.length), 10);
  return { ...(JSON.parse(stdout) as Omit<HttpLoadResult, 'clientCpuUs'>), clientCpuUs };
}
