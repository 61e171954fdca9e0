import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { isTributaryError } from '../../core/index.js';
import type { LogRecord } from '../types.js';
import { checkBatch, decodeBatchInto, encodeBatch, segmentFileName, type EncodableRecord } from './format.js';
import { PartitionStore } from './partition.js';

const bytes = (s: string) => new TextEncoder().encode(s);
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-format-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

function decodeAll(buf: Buffer): LogRecord[] {
  const out: LogRecord[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const check = checkBatch(buf, pos, true);
    if (!check.ok) throw new Error(check.reason);
    decodeBatchInto(buf, pos, check.header, 't', 0, 0, Infinity, Infinity, out);
    pos += check.header.batchBytes;
  }
  return out;
}

describe('segment batch format', () => {
  it('encodes one record byte for byte as documented', () => {
    const batch = encodeBatch(
      [{ timestamp: 1000, key: bytes('k'), value: bytes('v'), headers: { h: bytes('x') } }],
      5,
    );
    const body =
      '01' +
      '00' +
      '0000' + // version, flags, reserved
      '0000000000001440' + // baseOffset 5 (f64 LE)
      '0000000000408f40' + // maxTimestamp 1000
      '0000000000408f40' + // minTimestamp 1000
      '01000000' + // recordCount
      '20000000' + // recordBytes 32
      '0000000000408f40' + // timestamp 1000
      '01000000' +
      '6b' + // key "k"
      '01000000' +
      '76' + // value "v"
      '0100' +
      '0100' +
      '68' +
      '01000000' +
      '78'; // 1 header: "h" = "x"
    const crc = crc32(Buffer.from(body, 'hex'));
    const crcHex = Buffer.alloc(4);
    crcHex.writeUInt32LE(crc);
    const expected = '54524231' + '4c000000' + crcHex.toString('hex') + body; // magic "TRB1", batchBytes 76
    expect(batch.toString('hex')).toBe(expected);
  });

  it('encodes null key and value as length -1 and no headers as count 0', () => {
    const batch = encodeBatch([{ timestamp: 0, key: null, value: null, headers: {} }], 0);
    expect(batch.subarray(44 + 12).toString('hex')).toBe('ffffffff' + 'ffffffff' + '0000');
    const [record] = decodeAll(batch);
    expect(record).toMatchObject({ offset: 0, timestamp: 0, key: null, value: null, headers: {} });
  });

  const recordArb: fc.Arbitrary<EncodableRecord> = fc.record({
    timestamp: fc.integer({ min: 0, max: 2 ** 50 }),
    key: fc.option(fc.uint8Array({ maxLength: 20 }), { nil: null }),
    value: fc.option(fc.uint8Array({ maxLength: 300 }), { nil: null }),
    headers: fc.dictionary(fc.string({ maxLength: 8 }), fc.uint8Array({ maxLength: 10 }), { maxKeys: 3 }),
  });

  it('property: decode(encode(records)) returns the records with consecutive offsets', () => {
    fc.assert(
      fc.property(
        fc.array(recordArb, { minLength: 1, maxLength: 20 }),
        fc.integer({ min: 0, max: 2 ** 40 }),
        (records, base) => {
          const decoded = decodeAll(encodeBatch(records, base));
          expect(decoded).toHaveLength(records.length);
          decoded.forEach((r, i) => {
            const original = records[i];
            expect(r.offset).toBe(base + i);
            expect(r.timestamp).toBe(original.timestamp);
            expect(r.key === null ? null : [...r.key]).toEqual(
              original.key === null ? null : [...original.key],
            );
            expect(r.value === null ? null : [...r.value]).toEqual(
              original.value === null ? null : [...original.value],
            );
            expect(Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, [...v]]))).toEqual(
              Object.fromEntries(Object.entries(original.headers).map(([k, v]) => [k, [...v]])),
            );
          });
        },
      ),
      { seed: 42, numRuns: 200 },
    );
  });

  it('property: any flipped byte is caught by the checksum or the framing checks', () => {
    fc.assert(
      fc.property(
        fc.array(recordArb, { minLength: 1, maxLength: 5 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (records, at, xor) => {
          const batch = encodeBatch(records, 0);
          const i = at % batch.length;
          batch[i] = batch[i] ^ xor;
          expect(checkBatch(batch, 0, true).ok).toBe(false);
        },
      ),
      { seed: 43, numRuns: 300 },
    );
  });

  it('property: a segment cut at any byte recovers to exactly the whole batches before the cut', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(recordArb, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 6 }),
        fc.nat(),
        async (batches, cutSeed) => {
          const dir = path.join(root, `cut-${run++}`);
          fs.mkdirSync(dir, { recursive: true });
          let offset = 0;
          const encoded = batches.map((records) => {
            const b = encodeBatch(records, offset);
            offset += records.length;
            return b;
          });
          const whole = Buffer.concat(encoded);
          const cut = cutSeed % (whole.length + 1);
          fs.writeFileSync(path.join(dir, segmentFileName(0)), whole.subarray(0, cut));
          let complete = 0;
          let completeRecords = 0;
          for (const b of encoded) {
            if (complete + b.length > cut) break;
            complete += b.length;
            completeRecords += b.readUInt32LE(40);
          }
          const store = await PartitionStore.open('t', 0, dir, 1 << 20);
          try {
            expect(store.endOffset).toBe(completeRecords);
            expect(fs.statSync(path.join(dir, segmentFileName(0))).size).toBe(complete);
            const records = await store.read(0, 10_000, 1 << 30);
            expect(records.map((r) => r.offset)).toEqual(
              Array.from({ length: completeRecords }, (_, i) => i),
            );
          } finally {
            await store.close();
          }
        },
      ),
      { seed: 44, numRuns: 60 },
    );
  });

  it('corruption before the tail is CORRUPT_DATA naming the file and position, not a silent cut', async () => {
    const dir = path.join(root, 'middle');
    fs.mkdirSync(dir, { recursive: true });
    const first = encodeBatch([{ timestamp: 1, key: null, value: bytes('one'), headers: {} }], 0);
    const second = encodeBatch([{ timestamp: 2, key: null, value: bytes('two'), headers: {} }], 1);
    const third = encodeBatch([{ timestamp: 3, key: null, value: bytes('three'), headers: {} }], 2);
    const file = path.join(dir, segmentFileName(0));
    const data = Buffer.concat([first, second, third]);
    data[first.length + 50] = data[first.length + 50] ^ 0xff; // inside the second batch
    fs.writeFileSync(file, data);
    try {
      await PartitionStore.open('t', 0, dir, 1 << 20);
      throw new Error('expected CORRUPT_DATA');
    } catch (error) {
      expect(isTributaryError(error, 'CORRUPT_DATA')).toBe(true);
      expect((error as Error).message).toContain(file);
      expect((error as Error).message).toContain(`byte ${first.length}`);
    }
    expect(fs.statSync(file).size).toBe(data.length);
  });
});
