import './threadpool.js';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchmarks } from './index.js';
import type { Benchmark, BenchResult } from './types.js';

/** Runs one benchmark in this process: what a child started by runBenchmarks does. */
const childFlag = '--child';

/**
 * `npm run bench [-- --json] [-- --only name[,name]]`: runs benchmarks one after another (never in
 * parallel: they share two cores) and prints a table, or one JSON object keyed by name.
 *
 * Each benchmark runs in a Node process of its own, with this process's flags (as JMH forks a JVM
 * per benchmark): in one shared process, the heap an earlier benchmark left shaped the next one's
 * garbage collection. After log.remote_fetch (500,000 records through the log server),
 * log.remote_latency_p99_ms measured a served p99 of 20–25 ms instead of 3.5–4.5 ms: V8 ran a
 * mark-compact every 0.5–2 s with incremental steps of up to 10 ms (December 2026, 2 cores).
 */
async function runBenchmarks(argv: string[]): Promise<void> {
  const json = argv.includes('--json');
  const onlyIndex = argv.indexOf('--only');
  const only = onlyIndex >= 0 ? (argv[onlyIndex + 1] ?? '').split(',').filter(Boolean) : [];
  const unknown = only.filter((name) => !benchmarks.some((b) => b.name === name));
  if (unknown.length > 0) {
    process.stderr.write(
      `unknown benchmark(s): ${unknown.join(', ')}; known: ${benchmarks.map((b) => b.name).join(', ')}\n`,
    );
    process.exitCode = 2;
    return;
  }
  const selected = only.length > 0 ? benchmarks.filter((b) => only.includes(b.name)) : benchmarks;
  const results: Record<string, BenchResult> = {};
  // The runtime flags matter to the figures (npm run bench sets the same young-generation size as npm start).
  process.stderr.write(
    `node ${process.version} ${process.execArgv.join(' ') || '(no flags)'}; ${os.cpus().length} cores; each benchmark in a process of its own\n`,
  );
  for (const benchmark of selected) {
    process.stderr.write(`▶ ${benchmark.name}: ${benchmark.description}\n`);
    results[benchmark.name] = await runInChild(benchmark.name);
    if (!json) printRow(benchmark.name, results[benchmark.name]);
  }
  if (json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
}

/** Runs `name` in a new Node process with this one's flags; its progress goes to this stderr. */
function runInChild(name: string): Promise<BenchResult> {
  const script = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, [...process.execArgv, script, childFlag, name], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const stdout: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code !== 0) {
        reject(new Error(`benchmark ${name} failed (exit ${code ?? signal}); its error is above`));
        return;
      }
      resolve(JSON.parse(Buffer.concat(stdout).toString('utf8')) as BenchResult);
    });
  });
}

/** The child's side: one benchmark in a fresh directory, its result as JSON on stdout. */
async function runOne(benchmark: Benchmark): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `tributary-bench-${benchmark.name.replace(/\W/g, '_')}-`));
  try {
    const result = await benchmark.run({
      dir,
      progress: (m) => process.stderr.write(`  ${m}\n`),
    });
    process.stdout.write(JSON.stringify(result));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function printRow(name: string, r: BenchResult): void {
  const fmt = (n: number) => (Math.abs(n) >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(3));
  const extras = Object.entries(r)
    .filter(([k]) => !['value', 'unit', 'baseline', 'baseline_name', 'ratio', 'goal'].includes(k))
    .map(([k, v]) => `${k}=${typeof v === 'number' ? fmt(v) : String(v)}`)
    .join(' ');
  process.stdout.write(
    `${name.padEnd(36)} ${fmt(r.value).padStart(14)} ${r.unit.padEnd(12)} baseline ${r.baseline_name}: ${fmt(r.baseline)}  ratio ${r.ratio.toFixed(2)}${r.goal ? `  goal ${r.goal}` : ''}${extras ? `  ${extras}` : ''}\n`,
  );
}

const args = process.argv.slice(2);
if (args[0] === childFlag) {
  const benchmark = benchmarks.find((b) => b.name === args[1]);
  if (benchmark === undefined) throw new Error(`no benchmark ${args[1]}`);
  await runOne(benchmark);
} else await runBenchmarks(args);
