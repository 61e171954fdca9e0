import type { Benchmark } from './types.js';

/** The one list of benchmarks; each layer adds its module's entries. */
export const benchmarks: Benchmark[] = [];
