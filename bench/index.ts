import type { Benchmark } from './types.js';
import { connectorBenchmarks } from './connectors.js';
import { documentsBenchmarks } from './documents.js';
import { kafkaBenchmarks } from './kafka.js';
import { lakeBenchmarks } from './lake.js';
import { lakeSinkBenchmarks } from './lake-sink.js';
import { latencyBenchmarks } from './latency.js';
import { lineageBenchmarks } from './lineage.js';
import { logBenchmarks } from './log.js';
import { mlBenchmarks } from './ml.js';
import { moviesBenchmarks } from './movies.js';
import { northwindBenchmarks } from './northwind.js';
import { qualityBenchmarks } from './quality.js';
import { reviewsBenchmarks } from './reviews.js';
import { viewingBenchmarks } from './viewing.js';
import { schemaBenchmarks } from './schemas.js';
import { serveBenchmarks } from './serve.js';
import { streamBenchmarks } from './stream.js';

/** The one list of benchmarks; each layer adds its module's entries. */
export const benchmarks: Benchmark[] = [
  ...logBenchmarks,
  ...latencyBenchmarks,
  ...kafkaBenchmarks,
  ...lakeBenchmarks,
  ...lakeSinkBenchmarks,
  ...streamBenchmarks,
  ...qualityBenchmarks,
  ...mlBenchmarks,
  ...northwindBenchmarks,
  ...connectorBenchmarks,
  ...serveBenchmarks,
  ...documentsBenchmarks,
  ...lineageBenchmarks,
  ...reviewsBenchmarks,
  ...viewingBenchmarks,
  ...moviesBenchmarks,
  ...schemaBenchmarks,
];
