// Tributary's public API. Each layer is also importable on its own door; names that two layers
// both define are reachable through the layer namespaces below.

// ---- core: errors, configuration, clock, logging, metrics
export * from './core/index.js';
// ---- log: the Log interface and its backends
export * from './log/index.js';
// ---- stream: jobs, windows, sinks, checkpoints, batch DAG
export * from './stream/index.js';

// ---- the other layers as namespaces (core, log and stream are flat above)
export * as lake from './lake/index.js';
export * as sql from './sql/index.js';
export * as connectors from './connectors/index.js';
export * as ml from './ml/index.js';
export * as serve from './serve/index.js';
export * as pipelines from './pipelines/index.js';
