import { describe, expect, it } from 'vitest';
import { decodeManifest, encodeManifest, manifestPath, type Manifest } from './manifest.js';

const manifest: Manifest = {
  table: 'bronze.orders',
  version: 2,
  commitId: 'c-2',
  operation: 'append',
  committedAtMs: 1763769600000,
  partitionColumns: ['date'],
  schema: [
    { name: 'id', type: 'BIGINT' },
    { name: 'date', type: 'VARCHAR' },
  ],
  files: [
    {
      path: 'date=2026-11-23/part-b-0.parquet',
      partition: 'date=2026-11-23',
      rows: 5,
      bytes: 400,
      commitId: 'c-2',
    },
    {
      path: 'date=2026-11-22/part-a-0.parquet',
      partition: 'date=2026-11-22',
      rows: 10,
      bytes: 812,
      commitId: 'c-1',
    },
  ],
  recentCommitIds: ['c-1', 'c-2'],
};

describe('manifest encoding', () => {
  it('is byte for byte the documented format', () => {
    const expected =
      '{"format":"tributary.lake.manifest","formatVersion":1,"table":"bronze.orders","version":2,"commitId":"c-2","operation":"append",' +
      '"committedAtMs":1763769600000,"partitionColumns":["date"],"schema":[{"name":"id","type":"BIGINT"},{"name":"date","type":"VARCHAR"}],' +
      '"files":[{"path":"date=2026-11-22/part-a-0.parquet","partition":"date=2026-11-22","rows":10,"bytes":812,"commitId":"c-1"},' +
      '{"path":"date=2026-11-23/part-b-0.parquet","partition":"date=2026-11-23","rows":5,"bytes":400,"commitId":"c-2"}],' +
      '"recentCommitIds":["c-1","c-2"]}\n';
    expect(Buffer.from(encodeManifest(manifest)).toString('utf8')).toBe(expected);
  });

  it('round-trips', () => {
    const decoded = decodeManifest(encodeManifest(manifest), 'test');
    expect(decoded).toEqual({ ...manifest, files: [manifest.files[1], manifest.files[0]] });
  });

  it('names manifests with zero-padded versions that sort', () => {
    expect(manifestPath(1)).toBe('_manifests/00000000000000000001.json');
    expect(manifestPath(12) > manifestPath(9)).toBe(true);
  });

  it('refuses a newer format version and corrupt manifests', () => {
    const newer = new TextEncoder().encode(
      JSON.stringify({ format: 'tributary.lake.manifest', formatVersion: 2 }),
    );
    expect(() => decodeManifest(newer, 'm')).toThrow(/format version 2/);
    expect(() =>
      decodeManifest(new TextEncoder().encode('{"format":"tributary.lake.manifest","formatVersion":1}'), 'm'),
    ).toThrow(/field operation/);
    expect(() => decodeManifest(new TextEncoder().encode('{"format":'), 'm')).toThrow(/not valid JSON/);
  });
});
