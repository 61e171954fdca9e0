import type { Benchmark } from './types.js';
import { connectorBenchmarks } from './connectors.js';
import { documentsBenchmarks } from './documents.js';
import { lakeBenchmarks } from './lake.js';
import { lineageBenchmarks } from './lineage.js';
import { logBenchmarks } from './log.js';
import { mlBenchmarks } from './ml.js';
import { northwindBenchmarks } from './northwind.js';
import { serveBenchmarks } from './serve.js';
import { streamBenchmarks } from './stream.js';

/** The one list of benchmarks; each layer adds its module's entries. */
export const benchmarks: Benchmark[] = [
  ...logBenchmarks,
  ...lakeBenchmarks,
  ...streamBenchmarks,
  ...mlBenchmarks,
  ...northwindBenchmarks,
  ...connectorBenchmarks,
  ...serveBenchmarks,
  ...documentsBenchmarks,
  ...lineageBenchmarks,
];
