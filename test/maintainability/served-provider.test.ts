import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';

/**
 * Issue 19: the API tests and the `api.gold_read` benchmark read tables through a provider of their
 * own (`ParquetTableProvider`) while `tributary up` serves `createLakeTableProvider`. They now
 * exercise the provider `up` runs, and no second provider is left to drift.
 */
const root = path.resolve(import.meta.dirname, '../..');
const read = (relative: string) => readFileSync(path.join(root, relative), 'utf8');

function files(dir: string): string[] {
  return readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    const relative = path.join(dir, entry.name);
    if (entry.isDirectory()) return files(relative);
    return entry.name.endsWith('.ts') ? [relative] : [];
  });
}

it('one TableProvider implementation in src: the lake one `up` serves', () => {
  const implementations = files('src').filter((file) =>
    /implements TableProvider\b|\): TableProvider \{/.test(read(file)),
  );
  expect(implementations).toEqual([path.join('src', 'serve', 'lake-tables.ts')]);
  // `up` serves its pipelines through pipelineAppOptions, which reads tables with it.
  expect(read('src/cli/up-plan.ts')).toContain('...pipelineAppOptions({');
  expect(read('src/pipelines/app.ts')).toContain('createLakeTableProvider({ lake: services.lake, sql })');
});

it('the API test fixture and the api.gold_read benchmark serve through it', () => {
  for (const file of ['test/serve/fixture.ts', 'bench/serve.ts']) {
    expect(read(file), file).toContain('createLakeTableProvider({ lake, sql })');
  }
  const others = [...files('src'), ...files('test'), ...files('bench')].filter(
    (file) => !file.endsWith('served-provider.test.ts') && read(file).includes('ParquetTableProvider'),
  );
  expect(others).toEqual([]);
});
