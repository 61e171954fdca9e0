// Core: errors, configuration, clock, logging, metrics, file-system primitives. Depends on nothing
// else in Tributary; every other layer may depend on it.
export * from './errors.js';
export * from './config.js';
export * from './clock.js';
export * from './limits.js';
export * from './json.js';
export * from './fs.js';
export * from './logger.js';
export * from './metrics.js';
export * from './datadir.js';
export * from './random.js';
export * from './process.js';
export * from './retry.js';
export * from './throttle.js';
export * from './supervise.js';
export * from './concurrency.js';
export * from './http.js';
