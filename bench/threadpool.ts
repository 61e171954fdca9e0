// Imported first by run.ts: the benchmarks run with libuv's thread pool sized as `tributary` sizes
// it (bin/tributary.js), which must happen before the pool's first use.
process.env.UV_THREADPOOL_SIZE ??= '16';
