import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTributaryError } from '../core/index.js';
import type { LakeStorage } from './types.js';

export interface StorageFixture {
  storage: LakeStorage;
  close(): Promise<void>;
}

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array) => new TextDecoder().decode(data);

/**
 * The storage contract every backend passes. `open` returns a fresh, empty storage.
 */
export function storageContract(name: string, open: () => Promise<StorageFixture>): void {
  describe(`Storage contract: ${name}`, () => {
    let fixture: StorageFixture;
    let storage: LakeStorage;
    let scratch: string;
    beforeAll(async () => {
      fixture = await open();
      storage = fixture.storage;
      scratch = await mkdtemp(path.join(os.tmpdir(), 'tributary-storage-case-'));
    });
    afterAll(async () => {
      await fixture.close();
      await rm(scratch, { recursive: true, force: true });
    });

    it('put then get returns the same bytes; put replaces', async () => {
      await storage.put('a/b/one.txt', bytes('first'));
      expect(text(await storage.get('a/b/one.txt'))).toBe('first');
      await storage.put('a/b/one.txt', bytes('second'));
      expect(text(await storage.get('a/b/one.txt'))).toBe('second');
    });

    it('get of a missing object is NOT_FOUND; stat is null', async () => {
      await expect(storage.get('missing/x')).rejects.toSatisfy((e) => isTributaryError(e, 'NOT_FOUND'));
      expect(await storage.stat('missing/x')).toBeNull();
    });

    it('stat reports size', async () => {
      await storage.put('s/x.bin', new Uint8Array(1234));
      const info = await storage.stat('s/x.bin');
      expect(info?.sizeBytes).toBe(1234);
      expect(info?.path).toBe('s/x.bin');
      expect(info?.modifiedMs).toBeGreaterThan(0);
    });

    it('putIfAbsent writes once and refuses the second time, keeping the first content', async () => {
      expect(await storage.putIfAbsent('c/_log/1.json', bytes('winner'))).toBe(true);
      expect(await storage.putIfAbsent('c/_log/1.json', bytes('loser'))).toBe(false);
      expect(text(await storage.get('c/_log/1.json'))).toBe('winner');
    });

    it('exactly one of many racing putIfAbsent calls wins', async () => {
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => storage.putIfAbsent('race/_log/7.json', bytes(`writer-${i}`))),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
      const winner = results.indexOf(true);
      expect(text(await storage.get('race/_log/7.json'))).toBe(`writer-${winner}`);
    });

    it('list returns objects under a prefix sorted by key, without temp objects', async () => {
      await storage.put('l/t/p=2/b.parquet', bytes('b'));
      await storage.put('l/t/p=1/a.parquet', bytes('a'));
      await storage.put('l/t/p=10/c.parquet', bytes('c'));
      await storage.put('l/u/z.parquet', bytes('z'));
      const listed = await storage.list('l/t/');
      expect(listed.map((o) => o.path)).toEqual([
        'l/t/p=1/a.parquet',
        'l/t/p=10/c.parquet',
        'l/t/p=2/b.parquet',
      ]);
      expect((await storage.list('l/t/p=1')).map((o) => o.path)).toEqual([
        'l/t/p=1/a.parquet',
        'l/t/p=10/c.parquet',
      ]);
      expect(await storage.list('nothing/here/')).toEqual([]);
    });

    it('delete removes an object and is a no-op when absent', async () => {
      await storage.put('d/x', bytes('x'));
      await storage.delete('d/x');
      expect(await storage.stat('d/x')).toBeNull();
      await storage.delete('d/x');
      expect(await storage.list('d/')).toEqual([]);
    });

    it('putFile uploads a local file and keeps it; moveFile publishes and removes it', async () => {
      const local = path.join(scratch, 'f.parquet');
      await writeFile(local, 'parquet-bytes');
      await storage.putFile('f/kept.parquet', local);
      expect(await readFile(local, 'utf8')).toBe('parquet-bytes');
      await storage.moveFile('f/moved.parquet', local);
      await expect(readFile(local)).rejects.toThrow();
      expect(text(await storage.get('f/kept.parquet'))).toBe('parquet-bytes');
      expect(text(await storage.get('f/moved.parquet'))).toBe('parquet-bytes');
    });

    it('getFile downloads into a local file', async () => {
      await storage.put('g/obj', bytes('download me'));
      const local = path.join(scratch, 'sub', 'g.bin');
      await storage.getFile('g/obj', local);
      expect(await readFile(local, 'utf8')).toBe('download me');
      await expect(storage.getFile('g/none', local)).rejects.toSatisfy((e) =>
        isTributaryError(e, 'NOT_FOUND'),
      );
    });

    it('keeps unicode, spaces and percent signs in keys', async () => {
      const key = 'u/date=2026-11-22/city=S%C3%A3o Paulo é/file.parquet';
      await storage.put(key, bytes('u'));
      expect((await storage.list('u/')).map((o) => o.path)).toEqual([key]);
    });

    it('refuses keys that escape or are malformed', async () => {
      for (const bad of ['../x', '/abs', 'a//b', 'a/./b', 'a/../b', '', 'nul\0x']) {
        await expect(storage.put(bad, bytes('x'))).rejects.toSatisfy((e) =>
          isTributaryError(e, 'PATH_REFUSED'),
        );
      }
    });

    it('localPath is a readable file path for local storage and null otherwise', async () => {
      await storage.put('lp/x', bytes('lp'));
      const local = storage.localPath('lp/x');
      if (storage.kind === 'local') expect(await readFile(local!, 'utf8')).toBe('lp');
      else expect(local).toBeNull();
    });
  });
}
