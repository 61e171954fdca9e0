import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { limits } from '../../src/core/index.js';

/**
 * Issue 19: ARCHITECTURE says `src/core/limits.ts` holds every bound, while 21 `…Max` constants
 * lived elsewhere. A bound is a name ending in (or containing) `Max` set to a number; outside
 * `core/limits.ts` and a pipeline's own `limits.ts` none may be defined. The dashboard's browser
 * code (`src/ui/client`) is bundled for the browser without core and keeps its display limits.
 */
const srcRoot = path.resolve(import.meta.dirname, '../../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return /\.ts$/.test(entry.name) && !/\.(test|case)\.ts$/.test(entry.name) ? [full] : [];
  });
}

const allowed = (relative: string) =>
  relative === 'core/limits.ts' ||
  /^pipelines\/[a-z]+\/limits\.ts$/.test(relative) ||
  relative.startsWith('ui/client/');

it('no `…Max = <number>` bound is defined outside the limits files', () => {
  const strays: string[] = [];
  for (const file of sourceFiles(srcRoot)) {
    const relative = path.relative(srcRoot, file).split(path.sep).join('/');
    if (allowed(relative)) continue;
    readFileSync(file, 'utf8')
      .split('\n')
      .forEach((line, index) => {
        // A name containing Max assigned a number (const, field or default parameter); `==`, `>=` do not match.
        if (/\b[\w#]*Max\w*\s*=\s*[\d(]/.test(line)) strays.push(`${relative}:${index + 1}: ${line.trim()}`);
      });
  }
  expect(strays).toEqual([]);
});

it('every bound in core/limits.ts is a positive number with its unit or count last', () => {
  for (const [name, value] of Object.entries(limits)) {
    expect(typeof value, name).toBe('number');
    expect(value, name).toBeGreaterThan(0);
    expect(name, name).toMatch(/(Max|Min|Bytes|Ms|Mb)$/);
  }
});
