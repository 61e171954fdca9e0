#!/usr/bin/env node
// The compiled CLI lives in dist/; `npm start`, `npm test` and `npm run bench` build it first.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('tributary: the build is missing; run `npm run build` first.\n');
  process.exit(1);
}
await import(entry.href);
