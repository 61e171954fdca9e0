import './threadpool.js';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchmarks } from './index.js';
import type { Benchmark, BenchResult } from './types.js';

/** Runs the named benchmarks in this process: what a child started by runBenchmarks does. */
const childFlag = '--child';

/**
 * `npm run bench [-- --json] [-- --only name[,name]]`: runs benchmarks one after another (never in
 * parallel: they share two cores) and prints a table, or one JSON object keyed by name.
 *
 * Each benchmark runs in a Node process of its own, with this process's flags (as JMH forks a JVM
 * per benchmark; those sharing one measurement share one, see sharedProcess): in one process, the heap an earlier benchmark left shaped the next one's
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
  for (const group of processGroups(selected)) {
    const groupResults = await runInChild(group.map((b) => b.name));
    for (const benchmark of group) {
      results[benchmark.name] = groupResults[benchmark.name];
      if (!json) printRow(benchmark.name, results[benchmark.name]);
    }
  }
  if (json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
}

/** `selected` in order, cut into the runs of one process: neighbours naming one sharedProcess share it. */
function processGroups(selected: Benchmark[]): Benchmark[][] {
  const groups: Benchmark[][] = [];
  for (const benchmark of selected) {
    const last = groups.at(-1);
    if (benchmark.sharedProcess !== undefined && last?.[0].sharedProcess === benchmark.sharedProcess)
      last.push(benchmark);
    else groups.push([benchmark]);
  }
  return groups;
}

/** Runs `names` in a new Node process with this one's flags; its progress goes to this stderr. */
function runInChild(names: string[]): Promise<Record<string, BenchResult>> {
  const script = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, [...process.execArgv, script, childFlag, names.join(',')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const stdout: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code !== 0) {
        reject(
          new Error(`benchmark ${names.join(', ')} failed (exit ${code ?? signal}); its error is above`),
        );
        return;
      }
      resolve(JSON.parse(Buffer.concat(stdout).toString('utf8')) as Record<string, BenchResult>);
    });
  });
}

/** The child's side: each benchmark in a fresh directory, the results as one JSON object on stdout. */
async function runInThisProcess(selected: Benchmark[]): Promise<void> {
  const results: Record<string, BenchResult> = {};
  for (const benchmark of selected) {
    process.stderr.write(`▶ ${benchmark.name}: ${benchmark.description}\n`);
    const dir = await mkdtemp(
      path.join(os.tmpdir(), `tributary-bench-${benchmark.name.replace(/\W/g, '_')}-`),
    );
    try {
      results[benchmark.name] = await benchmark.run({
        dir,
        progress: (m) => process.stderr.write(`  ${m}\n`),
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  process.stdout.write(JSON.stringify(results));
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
  const names = (args[1] ?? '').split(',');
  await runInThisProcess(names.map((name) => benchmarks.find((b) => b.name === name)!));
} else await runBenchmarks(args);
