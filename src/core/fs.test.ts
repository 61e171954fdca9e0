import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openDataDir } from './datadir.js';
import { resolveInside, writeFileAtomic } from './fs.js';

describe('writeFileAtomic', () => {
  it('replaces content and leaves no temp files behind', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tributary-fs-'));
    const file = path.join(dir, 'nested', 'a.json');
    await writeFileAtomic(file, 'one');
    await writeFileAtomic(file, 'two');
    expect(readFileSync(file, 'utf8')).toBe('two');
    expect(readdirSync(path.dirname(file))).toEqual(['a.json']);
  });
});

describe('resolveInside', () => {
  it('keeps paths inside the root', () => {
    expect(resolveInside('/data', 'a/b.txt')).toBe(path.resolve('/data/a/b.txt'));
  });
  it.each(['../etc/passwd', '/etc/passwd', 'a/../../x', 'a\0b'])('refuses %j', (relative) => {
    expect(() => resolveInside('/data', relative)).toThrow(/PATH|escapes|NUL/);
  });
});

describe('openDataDir', () => {
  it('writes the format version and refuses a newer one', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tributary-dd-'));
    const paths = await openDataDir(dir);
    expect(readFileSync(paths.formatFile, 'utf8')).toBe('tributary-data-dir 1\n');
    await writeFileAtomic(paths.formatFile, 'tributary-data-dir 99\n');
    await expect(openDataDir(dir)).rejects.toThrow(/newer Tributary \(format 99/);
  });
});
