#!/usr/bin/env node
// The compiled CLI lives in dist/; `npm start`, `npm test` and `npm run bench` build it first.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// libuv's thread pool runs every fsync: a lake commit publishes hundreds of partition files and
// markers at once, and overlapping fsyncs share the disk's journal commits (4 threads, the
// default, serialise them into a few times more flushes). Read once, when the pool first starts.
process.env.UV_THREADPOOL_SIZE ??= '16';
const entry = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('tributary: the build is missing; run `npm run build` first.\n');
  process.exit(1);
}
await import(entry.href);
