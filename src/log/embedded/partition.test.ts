import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { isTributaryError } from '../../core/index.js';
import type { LogRecord } from '../types.js';
import {
  batchHeaderBytes,
  checkBatch,
  decodeBatchInto,
  encodeBatch,
  segmentFileName,
  type BatchHeader,
  type DecodeCursor,
  type EncodableRecord,
} from './format.js';
import { PartitionStore } from './partition.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-partition-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** Record `offset` of the test data: its value names its offset, so any mix-up is visible. */
function recordAt(offset: number, valueBytes: number): EncodableRecord {
  const value = Buffer.alloc(valueBytes, offset % 251);
  value.write(`#${offset}#`);
  return {
    timestamp: 1000 + offset,
    key: offset % 3 === 0 ? null : Buffer.from(`k${offset}`),
    value,
    headers: {},
  };
}

function valueText(record: LogRecord): string {
  const value = Buffer.from(record.value!);
  return value.toString('latin1', 0, value.indexOf('#', 1) + 1);
}

/** Writes one segment file of batches of the given record counts; returns the file and batch sizes. */
function writeSegment(
  dir: string,
  batchRecords: number[],
  valueBytes: number,
): { file: string; batches: Buffer[] } {
  fs.mkdirSync(dir, { recursive: true });
  let offset = 0;
  const batches = batchRecords.map((count) => {
    const records = Array.from({ length: count }, (_, i) => recordAt(offset + i, valueBytes));
    const batch = encodeBatch(records, offset);
    offset += count;
    return batch;
  });
  const file = path.join(dir, segmentFileName(0));
  fs.writeFileSync(file, Buffer.concat(batches));
  return { file, batches };
}

function decodeAll(batch: Buffer, header: BatchHeader): LogRecord[] {
  const out: LogRecord[] = [];
  decodeBatchInto(batch, 0, header, 't', 0, 0, Infinity, Infinity, out);
  return out;
}

let dirs = 0;
const nextDir = () => path.join(root, `p-${dirs++}`);

describe('decodeBatchInto with a cursor', () => {
  it('property: decoding a batch in pieces, carrying the cursor, gives the records of one decode', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 60 }),
        fc.array(fc.integer({ min: 1, max: 25 }), { minLength: 1, maxLength: 10 }),
        (count, pieces) => {
          const batch = encodeBatch(
            Array.from({ length: count }, (_, i) => recordAt(100 + i, 1 + (i % 7))),
            100,
          );
          const check = checkBatch(batch, 0, true);
          if (!check.ok) throw new Error(check.reason);
          const whole: LogRecord[] = [];
          decodeBatchInto(batch, 0, check.header, 't', 0, 0, Infinity, Infinity, whole);
          const pieced: LogRecord[] = [];
          const cursor: DecodeCursor = { offset: 100, position: batchHeaderBytes, payloadBytes: 0 };
          for (let i = 0; pieced.length < count; i++) {
            const before = pieced.length;
            const limit = pieces[i % pieces.length];
            decodeBatchInto(batch, 0, check.header, 't', 0, cursor.offset, Infinity, limit, pieced, cursor);
            const added = pieced.slice(before);
            expect(cursor.offset).toBe(100 + pieced.length);
            expect(cursor.payloadBytes).toBe(
              added.reduce((n, r) => n + r.value!.length + (r.key?.length ?? 0), 0),
            );
          }
          expect(pieced).toEqual(whole);
        },
      ),
      { seed: 45, numRuns: 100 },
    );
  });
});

describe('decoded headers', () => {
  it('each record gets its own plain headers object, empty or not, that the caller may change', () => {
    const batch = encodeBatch(
      [
        { timestamp: 1, key: null, value: null, headers: {} },
        { timestamp: 2, key: null, value: null, headers: {} },
        { timestamp: 3, key: null, value: null, headers: { h: Buffer.from('x') } },
      ],
      0,
    );
    const check = checkBatch(batch, 0, true);
    if (!check.ok) throw new Error(check.reason);
    const [a, b, c] = decodeAll(batch, check.header);
    for (const r of [a, b, c]) expect(Object.getPrototypeOf(r.headers)).toBe(Object.prototype);
    expect(a.headers).toEqual({});
    expect(a.headers).not.toBe(b.headers);
    a.headers.added = Buffer.from('y');
    expect(Object.keys(a.headers)).toEqual(['added']);
    expect(b.headers).toEqual({});
    expect(JSON.stringify(b.headers)).toBe('{}');
    expect(Buffer.from(c.headers.h).toString()).toBe('x');
  });
});

describe('PartitionStore reads', () => {
  it('property: fetches of any size, continuing or jumping, return exactly the records asked for', async () => {
    // Batches from a few hundred bytes to well over the 256 KiB minimum read, so reads end inside
    // batches, batches continue in the next chunk, and reads ahead are used and discarded.
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 2000 }), { minLength: 1, maxLength: 10 }),
        fc.array(
          fc.record({
            maxRecords: fc.integer({ min: 1, max: 5000 }),
            jumpTo: fc.option(fc.nat(), { nil: undefined }),
          }),
          { minLength: 1, maxLength: 40 },
        ),
        async (batchRecords, fetches) => {
          const dir = path.join(root, `fetches-${run++}`);
          writeSegment(dir, batchRecords, 200);
          const total = batchRecords.reduce((a, b) => a + b, 0);
          const store = await PartitionStore.open('t', 0, dir, 1 << 30);
          try {
            expect(store.endOffset).toBe(total);
            let offset = 0;
            for (const { maxRecords, jumpTo } of fetches) {
              if (jumpTo !== undefined) offset = jumpTo % total;
              const records = await store.read(offset, maxRecords, 64 * 1024 * 1024);
              const expected = Math.min(maxRecords, total - offset);
              expect(records.length).toBe(expected);
              records.forEach((r, i) => {
                expect(r.offset).toBe(offset + i);
                expect(valueText(r)).toBe(`#${offset + i}#`);
                expect(r.timestamp).toBe(1000 + offset + i);
              });
              offset = offset + expected === total ? 0 : offset + expected;
            }
          } finally {
            await store.close();
          }
        },
      ),
      { seed: 46, numRuns: 20 },
    );
  });

  it('records kept by the caller do not change while later fetches read further', async () => {
    const dir = nextDir();
    writeSegment(dir, [4000, 4000, 4000], 100);
    const store = await PartitionStore.open('t', 0, dir, 1 << 30);
    try {
      const kept: LogRecord[] = [];
      for (let offset = 0; offset < 12_000; offset += 700)
        kept.push(...(await store.read(offset, 700, 1 << 30)));
      expect(kept).toHaveLength(12_000);
      kept.forEach((r, i) => expect(valueText(r)).toBe(`#${i}#`));
    } finally {
      await store.close();
    }
  });

  it('a damaged batch further on is CORRUPT_DATA when a sequential reader reaches it', async () => {
    // A sealed segment is not checksummed at open, so the damage is found by the fetch that reads
    // it, also when the bytes came from a read ahead started by an earlier fetch.
    const dir = nextDir();
    const { file, batches } = writeSegment(dir, [2000, 2000, 2000, 2000], 200);
    const damagedAt = batches[0].length + batches[1].length + batches[2].length;
    const data = fs.readFileSync(file);
    data[damagedAt + 5000] ^= 0x40;
    fs.writeFileSync(file, data);
    // A second, empty segment makes the first one sealed.
    fs.writeFileSync(path.join(dir, segmentFileName(8000)), '');
    const store = await PartitionStore.open('t', 0, dir, 1 << 30);
    try {
      let offset = 0;
      let error: unknown;
      try {
        for (;;) {
          const records = await store.read(offset, 500, 1 << 30);
          if (records.length === 0) break;
          offset = records[records.length - 1].offset + 1;
        }
      } catch (e) {
        error = e;
      }
      expect(offset).toBe(6000);
      expect(isTributaryError(error, 'CORRUPT_DATA')).toBe(true);
      expect((error as Error).message).toContain(file);
      expect((error as Error).message).toContain(`byte ${damagedAt}`);
    } finally {
      await store.close();
    }
  });

  it('shows only published records, and the rest once they are published', async () => {
    const dir = nextDir();
    PartitionStore.create(dir);
    const store = await PartitionStore.open('t', 0, dir, 1 << 30);
    try {
      const first = encodeBatch(
        Array.from({ length: 3000 }, (_, i) => recordAt(i, 200)),
        0,
      );
      await store.write([first]);
      store.publish(store.mark());
      const second = encodeBatch(
        Array.from({ length: 3000 }, (_, i) => recordAt(3000 + i, 200)),
        3000,
      );
      await store.write([second]);
      // Written but not yet durable: invisible, however the reads go.
      const early = await store.read(2500, 10_000, 1 << 30);
      expect(early.map((r) => r.offset)).toEqual(Array.from({ length: 500 }, (_, i) => 2500 + i));
      expect(await store.read(3000, 10_000, 1 << 30)).toEqual([]);
      store.publish(store.mark());
      const later = await store.read(3000, 10_000, 1 << 30);
      expect(later).toHaveLength(3000);
      later.forEach((r, i) => expect(valueText(r)).toBe(`#${3000 + i}#`));
    } finally {
      await store.close();
    }
  });
});
