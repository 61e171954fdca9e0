import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TributaryError } from '../../src/core/index.js';
import {
  HttpPoller,
  importFile,
  PostgresUpsertSink,
  PostgresSource,
  SpoolSource,
} from '../../src/connectors/index.js';
import { englishStopwords, wordTokens } from '../../src/ml/embed/embedder.js';
import { bm25Terms } from '../../src/ml/index/bm25.js';

/**
 * Issue 19, "one way to do a thing": each of these had several copies that drifted apart. The
 * behaviour checks say the copies agree; the source checks keep a new copy from creeping back.
 */
const srcRoot = path.resolve(import.meta.dirname, '../../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [full] : [];
  });
}

/** Files under src/ whose text matches `pattern`, relative to src/. */
function definitionsOf(pattern: RegExp): string[] {
  return sourceFiles(srcRoot)
    .filter((file) => pattern.test(readFileSync(file, 'utf8')))
    .map((file) => path.relative(srcRoot, file));
}

const fakePg = { query: () => Promise.reject(new Error('not connected')) } as never;

async function optionsError(make: () => unknown): Promise<TributaryError> {
  try {
    await make();
  } catch (error) {
    return error as TributaryError;
  }
  throw new Error('bad options were accepted');
}

describe('one way to do a thing', () => {
  it('one toJsonValue (the SQL layer’s)', () => {
    expect(definitionsOf(/export function toJsonValue\(/)).toEqual(['sql/convert.ts']);
  });

  it('one SQL identifier quoter (the lake’s)', () => {
    // A function or arrow that wraps a name in double quotes, doubling inner quotes.
    expect(
      definitionsOf(
        /=>\s*`"\$\{\w+\.replace\(\/"\/g, '""'\)\}"`|return `"\$\{\w+\.replace\(\/"\/g, '""'\)\}"`/,
      ),
    ).toEqual(['lake/schema.ts']);
  });

  it('one stop-word list: BM25 drops every word the embedder weighs down', () => {
    expect(definitionsOf(/new Set\(\s*\(\s*'a about|new Set\(\s*\(\s*'a an and/)).toEqual([
      'ml/embed/embedder.ts',
    ]);
    expect(englishStopwords.size).toBeGreaterThan(100);
    // Words the tokenizer keeps as they are (it folds some plurals, e.g. "ourselves").
    const kept = [...englishStopwords].filter((word) => wordTokens(word).join(' ') === word);
    expect(kept.length).toBeGreaterThan(100);
    for (const word of kept) expect(bm25Terms(word), word).toEqual([]);
    expect(bm25Terms('The warranty lasts only two years')).toEqual(['warranty', 'last', 'two', 'year']);
  });

  it('one connector options error: CONFIG_INVALID naming the connector, every issue with its path', async () => {
    const errors = await Promise.all([
      optionsError(() => new PostgresSource({ table: '' }, { client: fakePg })),
      optionsError(() => new PostgresUpsertSink({ table: '' } as never, { client: fakePg })),
      optionsError(() => new HttpPoller({ url: 'not a url' } as never)),
      optionsError(() => new SpoolSource({ dir: '' }, {})),
      optionsError(() => importFile({ path: '' }, {})),
    ]);
    const connectors = errors.map((e) => (e.details as { connector?: string } | undefined)?.connector);
    expect(connectors).toEqual([
      'postgres source',
      'postgres sink',
      'http poller',
      'spool source',
      'file import',
    ]);
    for (const error of errors) {
      expect(error).toBeInstanceOf(TributaryError);
      expect(error.code).toBe('CONFIG_INVALID');
      const issues = (error.details as { issues: { path: string; message: string }[] }).issues;
      expect(issues.length).toBeGreaterThan(0);
      for (const issue of issues) expect(error.message).toContain(issue.message);
    }
    // The message built from zod issues lives in one place.
    expect(definitionsOf(/options: \$\{[\w.]*issues\.map/)).toEqual(['connectors/options-check.ts']);
  });

  it('one loop that rebuilds gold tables from their queries (reviews, viewing and movies shared copies)', () => {
    // One overwrite commit per table, named `<prefix>:<table>`.
    expect(definitionsOf(/commitId: `\$\{\w+\}:\$\{\w+\.table\}`/)).toEqual(['pipelines/tables.ts']);
  });

  it('one zero JobCounters (task and run) and one list of the documents pipeline’s topics', () => {
    expect(definitionsOf(/failedOutputs: 0/)).toEqual(['stream/runtime.ts']);
    expect(definitionsOf(/topics\.rawDlq,\s*analyticsLateTopic,/)).toEqual(['pipelines/documents/stats.ts']);
  });
});
