/** One benchmark figure and the same-run baseline it is compared with. */
export interface BenchResult {
  value: number;
  unit: string;
  baseline: number;
  baseline_name: string;
  /** ours / baseline for throughputs; for latencies the benchmark says how it is formed. */
  ratio: number;
  /** Goal text printed beside the figure, e.g. ">= 1,000,000 records/s and ratio >= 0.5". */
  goal?: string;
  [extra: string]: unknown;
}

export interface Benchmark {
  name: string;
  description: string;
  /**
   * Benchmarks that name the same process run, one after another, in one Node process (they share
   * one measurement); every other benchmark runs in a process of its own (see bench/run.ts).
   */
  sharedProcess?: string;
  run(context: BenchContext): Promise<BenchResult>;
}

export interface BenchContext {
  /** A fresh scratch directory for this benchmark, removed afterwards. */
  dir: string;
  /** Progress lines go to stderr so `--json` output stays parseable. */
  progress(message: string): void;
}
