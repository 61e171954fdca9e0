import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import * as northwindLive from '../../src/pipelines/northwind/live.js';
import { pipelineDefinitions } from '../../src/pipelines/index.js';

/**
 * Issue 19, "docs that match the code": statements of README.md and ARCHITECTURE.md that name
 * code are checked against it, so they cannot drift silently again.
 */
const root = path.resolve(import.meta.dirname, '../..');
const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
const architecture = readFileSync(path.join(root, 'ARCHITECTURE.md'), 'utf8');
const names = pipelineDefinitions.map((d) => d.name);
const numberWords = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];

it('ARCHITECTURE lists the pipelines that exist, and counts them right', () => {
  const match = /(\w+) pipelines from the\s+seed documents \(([^)]*)\)/.exec(architecture);
  expect(match, 'the pipelines sentence of ARCHITECTURE.md').not.toBeNull();
  const listed = [...match![2].matchAll(/`(\w+)`/g)].map((m) => m[1]);
  expect([...listed].sort()).toEqual([...names].sort());
  expect(match![1].toLowerCase()).toBe(numberWords[names.length]);
});

it('the README pipelines table has one row per pipeline', () => {
  const section = readme.slice(readme.indexOf('## Pipelines'), readme.indexOf('### Reviews'));
  const rows = [...section.matchAll(/^\| `(\w+)` \| \d{3} \|/gm)].map((m) => m[1]);
  expect([...rows].sort()).toEqual([...names].sort());
});

it('the README example stream job names the shipped job it resembles, which exists', () => {
  const start = readme.indexOf('## An example stream job');
  const section = readme.slice(start, readme.indexOf('```ts', start));
  const named = /`(\w+)` in\s+`src\/pipelines\/northwind\/live\.ts`/.exec(section);
  expect(named, 'the function the README points to').not.toBeNull();
  expect(typeof (northwindLive as Record<string, unknown>)[named![1]]).toBe('function');
  // The shipped job is a windowed one, as the README's example is.
  const source = readFileSync(path.join(root, 'src/pipelines/northwind/live.ts'), 'utf8');
  const body = source.slice(source.indexOf(`export function ${named![1]}(`));
  expect(body.slice(0, body.indexOf('\n}\n'))).toContain('.window(tumbling(');
});

it('gold and silver tables are not called views in the docs (they are Parquet tables)', () => {
  const northwindReadme = readFileSync(path.join(root, 'src/pipelines/northwind/README.md'), 'utf8');
  for (const [file, text] of [
    ['README.md', readme],
    ['src/pipelines/northwind/README.md', northwindReadme],
  ] as const) {
    expect(text, file).not.toMatch(/(combined batch \+ live|the windowed) view\b/);
  }
});
