import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';

/** What the HTTP benchmarks read from autocannon's JSON report. */
export interface HttpLoadResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; average: number };
  non2xx: number;
  errors: number;
  timeouts: number;
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

/**
 * Drives `load` with autocannon in a process of its own, as real clients are: in a worker thread of
 * the served process, its request buffers and the server's shared one address space and a fifth
 * of the served figure went to that (measured on the Kafka listener, see bench/kafka-clients.ts).
 */
export async function httpLoad(load: HttpLoad): Promise<HttpLoadResult> {
  const args = ['-j', '-c', String(load.connections), '-d', String(load.durationSeconds)];
  if (load.method !== undefined) args.push('-m', load.method);
  for (const [name, value] of Object.entries(load.headers ?? {})) args.push('-H', `${name}=${value}`);
  if (load.body !== undefined) {
    await writeFile(load.body.file, load.body.text);
    args.push('-i', load.body.file);
  }
  const { stdout } = await run(process.execPath, [autocannonCli, ...args, load.url], {
    maxBuffer: 16 * 1024 * 1024,
  });
  return JSON.parse(stdout) as HttpLoadResult;
}
