import './threadpool.js';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { benchmarks } from './index.js';
import type { BenchResult } from './types.js';

/**
 * `npm run bench [-- --json] [-- --only name[,name]]`: runs benchmarks one after another (never in
 * parallel: they share two cores) and prints a table, or one JSON object keyed by name.
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
    `node ${process.version} ${process.execArgv.join(' ') || '(no flags)'}; ${os.cpus().length} cores\n`,
  );
  for (const benchmark of selected) {
    const dir = await mkdtemp(
      path.join(os.tmpdir(), `tributary-bench-${benchmark.name.replace(/\W/g, '_')}-`),
    );
    process.stderr.write(`▶ ${benchmark.name}: ${benchmark.description}\n`);
    try {
      results[benchmark.name] = await benchmark.run({
        dir,
        progress: (m) => process.stderr.write(`  ${m}\n`),
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    if (!json) printRow(benchmark.name, results[benchmark.name]);
  }
  if (json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
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

await runBenchmarks(process.argv.slice(2));
