import { existsSync } from 'node:fs';
import {
  appendFile,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ManualClock, rootLogger, TributaryError } from '../../src/core/index.js';

/** Refused files are expected here; keep their warnings out of the test output. */
const logger = rootLogger.child({}, { level: 'silent' });
import {
  createMemoryLog,
  type AppendResult,
  type Log,
  type LogRecord,
  type ProducerRecord,
} from '../../src/log/index.js';
import { createSpoolSource, spoolHeaders, type SpoolOptionsInput } from '../../src/connectors/index.js';
import { LocalStorage, openLake } from '../../src/lake/index.js';
import { readTable, tableTypes } from './lake-helpers.js';

let dir: string;
let outside: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'spool-'));
  outside = await mkdtemp(path.join(tmpdir(), 'spool-outside-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
  await rm(outside, { recursive: true, force: true });
});

async function readAll(log: Log, topic: string): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  const description = await log.describeTopic(topic);
  for (const p of description.partitions) {
    let offset = p.startOffset;
    for (;;) {
      const batch = await log.fetch(topic, p.partition, offset, { maxRecords: 10_000 });
      if (batch.length === 0) break;
      out.push(...batch);
      offset = batch[batch.length - 1].offset + 1;
    }
  }
  return out;
}
/** A log whose `append` is replaced (fault injection); every other method is the base's. */
function wrapLog(base: Log, append: (records: ProducerRecord[]) => Promise<AppendResult[]>): Log {
  return new Proxy(base, {
    get(target, property) {
      if (property === 'append') return append;
      const value = Reflect.get(target, property) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
const text = (b: Uint8Array | null) => (b === null ? null : Buffer.from(b).toString('utf8'));
const values = (records: LogRecord[]) => records.map((r) => text(r.value));

function setup(options: Partial<SpoolOptionsInput> = {}, log: Log = createMemoryLog()) {
  const clock = new ManualClock(1_000_000);
  const source = createSpoolSource({ dir, topic: 'in', stableMs: 1000, ...options }, { log, clock, logger });
  return { clock, source, log };
}

/** Two polls with the clock moved past stableMs: the first observes, the second delivers. */
async function settle(setupResult: ReturnType<typeof setup>) {
  await setupResult.source.poll();
  setupResult.clock.advance(1001);
  return setupResult.source.poll();
}

describe('spool directory source', () => {
  it('delivers every format (txt, ndjson, csv with quotes, json array, gz) and renames .COMPLETED', async () => {
    await writeFile(path.join(dir, 'a.txt'), 'one\ntwo\r\n\nthree');
    await writeFile(path.join(dir, 'b.ndjson'), '{"n":1}\n{"n":2}\n');
    await writeFile(path.join(dir, 'c.csv'), 'id,text\n1,"hello, ""world"""\n2,"multi\nline"\n');
    await writeFile(path.join(dir, 'd.json'), '[{"x":1},{"x":2}]');
    await writeFile(path.join(dir, 'e.jsonl.gz'), gzipSync('{"g":1}\n{"g":2}\n'));
    const s = setup();
    const report = await settle(s);
    expect(report.files.map((f) => [f.name, f.outcome, f.records]).sort()).toEqual([
      ['a.txt', 'completed', 3],
      ['b.ndjson', 'completed', 2],
      ['c.csv', 'completed', 2],
      ['d.json', 'completed', 2],
      ['e.jsonl.gz', 'completed', 2],
    ]);
    const got = values(await readAll(s.log, 'in'));
    expect(got).toEqual(
      expect.arrayContaining([
        'one',
        'two',
        'three',
        '{"n":1}',
        '{"id":"1","text":"hello, \\"world\\""}',
        '{"id":"2","text":"multi\\nline"}',
        '{"x":2}',
        '{"g":2}',
      ]),
    );
    expect(got).toHaveLength(11);
    const files = (await readdir(dir)).filter((f) => !f.startsWith('.')).sort();
    expect(files).toEqual([
      'a.txt.COMPLETED',
      'b.ndjson.COMPLETED',
      'c.csv.COMPLETED',
      'd.json.COMPLETED',
      'e.jsonl.gz.COMPLETED',
    ]);
  });

  it('ignores dotfiles and *.tmp, and waits for a partially copied file to stop growing', async () => {
    await writeFile(path.join(dir, '.hidden.txt'), 'x\n');
    await writeFile(path.join(dir, 'upload.txt.tmp'), 'x\n');
    await writeFile(path.join(dir, 'growing.txt'), 'part1\n');
    const s = setup();
    await s.source.poll();
    s.clock.advance(600);
    await appendFile(path.join(dir, 'growing.txt'), 'part2\n');
    let report = await s.source.poll();
    expect(report.waiting).toEqual(['growing.txt']);
    s.clock.advance(600);
    report = await s.source.poll();
    expect(report.waiting).toEqual(['growing.txt']);
    expect(report.files).toEqual([]);
    s.clock.advance(500);
    report = await s.source.poll();
    expect(report.files).toEqual([{ name: 'growing.txt', outcome: 'completed', records: 2 }]);
    expect(values(await readAll(s.log, 'in'))).toEqual(['part1', 'part2']);
    expect(existsSync(path.join(dir, '.hidden.txt'))).toBe(true);
    expect(existsSync(path.join(dir, 'upload.txt.tmp'))).toBe(true);
  });

  it('moves zero-byte, undecodable, unknown-format and symlink-out files to failed/ and keeps flowing', async () => {
    await writeFile(path.join(dir, 'empty.txt'), '');
    await writeFile(path.join(dir, 'bad.ndjson'), '{"ok":1}\n{broken\n');
    await writeFile(path.join(dir, 'latin1.txt'), Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a]));
    await writeFile(path.join(dir, 'bad.csv'), 'a,b\n1,"unterminated\n');
    await writeFile(path.join(dir, 'corrupt.txt.gz'), Buffer.from('not gzip at all'));
    await writeFile(path.join(dir, 'data.bin'), 'x');
    await writeFile(path.join(outside, 'secret.txt'), 'secret\n');
    await symlink(path.join(outside, 'secret.txt'), path.join(dir, 'link.txt'));
    await writeFile(path.join(dir, 'good.txt'), 'fine\n');
    const s = setup();
    await settle(s);
    // The bad line is in the first batch, so nothing of bad.ndjson reached the log.
    expect(values(await readAll(s.log, 'in')).sort()).toEqual(['fine']);
    const failed = (await readdir(path.join(dir, 'failed'))).sort();
    expect(failed).toEqual(
      ['bad.csv', 'bad.ndjson', 'corrupt.txt.gz', 'data.bin', 'empty.txt', 'latin1.txt', 'link.txt']
        .flatMap((n) => [n, `${n}.reason`])
        .sort(),
    );
    const reason = (n: string) => readFile(path.join(dir, 'failed', `${n}.reason`), 'utf8');
    expect(await reason('empty.txt')).toMatch(/zero-byte/);
    expect(await reason('bad.ndjson')).toMatch(/bad\.ndjson line 2: not valid JSON/);
    expect(await reason('bad.ndjson')).toMatch(/recordsDelivered: 0/);
    expect(await reason('latin1.txt')).toMatch(/UTF-8/);
    expect(await reason('bad.csv')).toMatch(/never closed/);
    expect(await reason('corrupt.txt.gz')).toMatch(/gzip/);
    expect(await reason('data.bin')).toMatch(/unknown file format/);
    expect(await reason('link.txt')).toMatch(/outside/);
    expect(existsSync(path.join(dir, 'good.txt.COMPLETED'))).toBe(true);
  });

  it('refuses a reused file name but delivers the original once', async () => {
    const s = setup();
    await writeFile(path.join(dir, 'r.txt'), 'first\n');
    await settle(s);
    await writeFile(path.join(dir, 'r.txt'), 'second\n');
    s.clock.advance(10);
    await settle(s);
    expect(values(await readAll(s.log, 'in'))).toEqual(['first']);
    expect(await readFile(path.join(dir, 'failed', 'r.txt.reason'), 'utf8')).toMatch(/already delivered/);
  });

  it('detects a file modified after pickup (between batches) and moves it to failed/', async () => {
    const base = createMemoryLog();
    let appends = 0;
    const file = path.join(dir, 'm.txt');
    const log = wrapLog(base, async (records) => {
      const result = await base.append(records);
      if (++appends === 1) {
        await appendFile(file, 'late line\n');
        await utimes(file, new Date(), new Date(Date.now() + 5000));
      }
      return result;
    });
    await writeFile(file, Array.from({ length: 10 }, (_, i) => `line${i}`).join('\n') + '\n');
    await writeFile(path.join(dir, 'n.txt'), 'other\n');
    const s = setup({ batchRecords: 3 }, log);
    const report = await settle(s);
    const m = report.files.find((f) => f.name === 'm.txt')!;
    expect(m.outcome).toBe('failed');
    expect(m.reason).toMatch(/modified after pickup/);
    expect(await readFile(path.join(dir, 'failed', 'm.txt.reason'), 'utf8')).toMatch(/recordsDelivered: 3/);
    expect(existsSync(path.join(dir, 'n.txt.COMPLETED'))).toBe(true);
  });

  it('resumes after a crash mid-file without loss or duplicates (append lands, state write does not)', async () => {
    const base = createMemoryLog();
    const lines = Array.from({ length: 25 }, (_, i) => `r${i}`);
    await writeFile(path.join(dir, 'big.txt'), lines.join('\n') + '\n');
    let appends = 0;
    const crashing = wrapLog(base, async (records) => {
      appends++;
      if (appends === 3) {
        // Half the batch reaches the log, then the process "dies" before the state is updated.
        await base.append(records.slice(0, 2));
        throw new Error('simulated crash during append');
      }
      return base.append(records);
    });
    const first = setup({ batchRecords: 4, stableMs: 0 }, crashing);
    await expect(first.source.poll()).rejects.toThrow(/simulated crash/);
    expect(values(await readAll(base, 'in'))).toHaveLength(10);
    // A new process with the same state file and the same log.
    const second = setup({ batchRecords: 4, stableMs: 0 }, base);
    const report = await second.source.poll();
    expect(report.files).toEqual([{ name: 'big.txt', outcome: 'completed', records: 25 }]);
    const records = await readAll(base, 'in');
    expect(values(records)).toEqual(lines);
    const ids = records.map((r) => text(r.headers[spoolHeaders.recordId]));
    expect(new Set(ids).size).toBe(25);
  });

  it('survives a second crash right after recovering from a first one (no duplicates)', async () => {
    const base = createMemoryLog();
    const lines = Array.from({ length: 20 }, (_, i) => `r${i}`);
    await writeFile(path.join(dir, 'twice.txt'), lines.join('\n') + '\n');
    let appends = 0;
    // Crash 1: half of batch 2 lands. Crash 2: the first batch after recovery half lands.
    const crashing = wrapLog(base, async (records) => {
      appends++;
      if (appends === 2 || appends === 3) {
        await base.append(records.slice(0, 2));
        throw new Error(`simulated crash ${appends}`);
      }
      return base.append(records);
    });
    const options = { batchRecords: 5, stableMs: 0 };
    await expect(setup(options, crashing).source.poll()).rejects.toThrow(/crash 2/);
    await expect(setup(options, crashing).source.poll()).rejects.toThrow(/crash 3/);
    const report = await setup(options, crashing).source.poll();
    expect(report.files).toEqual([{ name: 'twice.txt', outcome: 'completed', records: 20 }]);
    expect(values(await readAll(base, 'in'))).toEqual(lines);
  });

  it('pauses for retryAfterMs when the log pushes back, then resumes without loss or duplicates', async () => {
    const base = createMemoryLog();
    const lines = Array.from({ length: 12 }, (_, i) => `b${i}`);
    await writeFile(path.join(dir, 'bp.txt'), lines.join('\n') + '\n');
    let appends = 0;
    const log = wrapLog(base, async (records) => {
      if (++appends === 2) throw new TributaryError('BACKPRESSURE', 'log is behind', { retryAfterMs: 5000 });
      return base.append(records);
    });
    const s = setup({ batchRecords: 5, stableMs: 0, pollIntervalMs: 100 }, log);
    const controller = new AbortController();
    const running = s.source.run(controller.signal);
    await vi.waitFor(async () => expect(values(await readAll(base, 'in'))).toEqual(lines.slice(0, 5)), {
      timeout: 5000,
    });
    // The pause has begun: the refused append happened and the source sleeps until 5 s from then
    // (moving time before the sleep starts would leave it 5 s away still).
    const pausedAtMs = s.clock.now();
    await vi.waitFor(() => expect(s.clock.sleepingUntilMs).toContain(pausedAtMs + 5000), { timeout: 5000 });
    expect(appends).toBe(2);
    s.clock.advance(4999);
    await new Promise((r) => setTimeout(r, 200));
    expect(values(await readAll(base, 'in'))).toHaveLength(5);
    s.clock.advance(1);
    await vi.waitFor(async () => expect(values(await readAll(base, 'in'))).toEqual(lines), { timeout: 5000 });
    controller.abort();
    // ManualClock sleeps ignore the signal: move time until the loop notices the abort.
    let done = false;
    void running.then(() => (done = true));
    while (!done) {
      s.clock.advance(100);
      await new Promise((r) => setTimeout(r, 10));
    }
    await running;
  });

  it('supports onComplete delete and move, and keyField keys', async () => {
    await writeFile(path.join(dir, 'k.jsonl'), '{"user":"u1","v":1}\n{"user":"u2","v":2}\n');
    const s = setup({ onComplete: 'move', keyField: 'user', stableMs: 0 });
    await s.source.poll();
    expect(existsSync(path.join(dir, 'completed', 'k.jsonl'))).toBe(true);
    expect((await readAll(s.log, 'in')).map((r) => text(r.key))).toEqual(['u1', 'u2']);
    await writeFile(path.join(dir, 'd.txt'), 'x\n');
    const d = setup({ onComplete: 'delete', stateFile: path.join(outside, 'state.json'), stableMs: 0 });
    await d.source.poll();
    expect(existsSync(path.join(dir, 'd.txt'))).toBe(false);
  });

  it('rejects invalid options with CONFIG_INVALID', () => {
    expect(() => createSpoolSource({ dir, topic: '', batchRecords: 0 }, { log: createMemoryLog() })).toThrow(
      /topic.*batchRecords|batchRecords.*topic/,
    );
  });
});

describe('spool directory source into a lake table', () => {
  it('types NDJSON table columns as DuckDB detects them, nested values, odd names and late fields included', async () => {
    const lakeDir = await mkdtemp(path.join(tmpdir(), 'spool-lake-'));
    const lake = await openLake({ storage: new LocalStorage(lakeDir) });
    try {
      const lines = [
        { id: 1, 'odd name': 'x', score: 1.5, tags: ['a'], meta: { k: 1, when: '2024-01-02' }, ok: true },
        {
          id: 2,
          'odd name': null,
          score: 2,
          tags: [],
          meta: { k: 2, when: '2024-01-03' },
          ok: false,
          late: 'l',
        },
      ];
      await writeFile(path.join(dir, 'n.ndjson'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
      const source = createSpoolSource({ dir, table: 'bronze.typed', stableMs: 0 }, { lake, logger });
      const report = await source.poll();
      expect(Object.fromEntries(report.files.map((f) => [f.name, f.outcome]))).toEqual({
        'n.ndjson': 'completed',
      });
      expect(await tableTypes(lake, 'bronze.typed')).toMatchObject({
        id: 'BIGINT',
        'odd name': 'VARCHAR',
        score: 'DOUBLE',
        tags: 'VARCHAR[]',
        // The lake's schema spells types in upper case; the data keeps the fields' own names.
        meta: expect.stringMatching(/^STRUCT\("?k"? BIGINT, "when" DATE\)$/i) as unknown,
        ok: 'BOOLEAN',
        late: 'VARCHAR',
      });
      const rows = await readTable(lake, 'bronze.typed', 'id');
      expect(rows[0].meta).toEqual({ k: '1', when: '2024-01-02' });
      expect(rows.map((r) => [r.id, r['odd name'], r.score, r.late])).toEqual([
        ['1', 'x', 1.5, null],
        ['2', null, 2, 'l'],
      ]);
    } finally {
      await lake.close();
      await rm(lakeDir, { recursive: true, force: true });
    }
  });

  it('commits each file atomically (ndjson, gz csv, txt), refuses undecodable files, and a re-run adds nothing twice', async () => {
    const lakeDir = await mkdtemp(path.join(tmpdir(), 'spool-lake-'));
    const lake = await openLake({ storage: new LocalStorage(lakeDir) });
    try {
      await writeFile(path.join(dir, 'a.ndjson'), '{"id":1,"text":"good"}\n{"id":2,"text":"fine"}\n');
      await writeFile(path.join(dir, 'b.csv.gz'), gzipSync('id,text\n3,"x, y"\n'));
      await writeFile(path.join(dir, 'c.txt'), 'plain line\n');
      await writeFile(path.join(dir, 'd.ndjson'), '{"id":4}\n{not json\n');
      const clock = new ManualClock(0);
      const source = createSpoolSource(
        { dir, table: 'bronze.reviews', stableMs: 0 },
        { lake, clock, logger },
      );
      const report = await source.poll();
      const outcomes = Object.fromEntries(report.files.map((f) => [f.name, [f.outcome, f.records]]));
      expect(outcomes).toEqual({
        'a.ndjson': ['completed', 2],
        'b.csv.gz': ['completed', 1],
        'c.txt': ['completed', 1],
        'd.ndjson': ['failed', 0],
      });
      const rows = await readTable(lake, 'bronze.reviews');
      expect(rows.map((r) => [r.id, r.text, r.line]).sort()).toEqual(
        [
          ['1', 'good', null],
          ['2', 'fine', null],
          ['3', 'x, y', null],
          [null, null, 'plain line'],
        ].sort(),
      );
      expect(await readFile(path.join(dir, 'failed', 'd.ndjson.reason'), 'utf8')).toMatch(/undecodable/);
      // A crash after the commit but before the state said so: the same file, same commit id.
      await writeFile(path.join(dir, 'e.ndjson'), '{"id":5}\n');
      const stateFile = path.join(dir, '.tributary-spool.state.json');
      const before = await readFile(stateFile, 'utf8');
      const again = createSpoolSource({ dir, table: 'bronze.reviews', stableMs: 0 }, { lake, clock, logger });
      await again.poll();
      expect(await readTable(lake, 'bronze.reviews')).toHaveLength(5);
      // Put the file and the old state back: the replay is recognised by its commit id.
      await rename(path.join(dir, 'e.ndjson.COMPLETED'), path.join(dir, 'e.ndjson'));
      await writeFile(stateFile, before);
      const replay = createSpoolSource(
        { dir, table: 'bronze.reviews', stableMs: 0 },
        { lake, clock, logger },
      );
      await replay.poll();
      expect(await readTable(lake, 'bronze.reviews')).toHaveLength(5);
    } finally {
      await lake.close();
      await rm(lakeDir, { recursive: true, force: true });
    }
  });
});

describe('spool source: malformed records forwarded for quarantine', () => {
  it('forwards bad JSON lines and CSV rows with the reason and line, delivers the rest of the file', async () => {
    await writeFile(
      path.join(dir, 'a.jsonl'),
      '{"asin":"P1","text":"good"}\nnot json at all\n{"ProductId":"P2","text":"also good"}\n',
    );
    await writeFile(path.join(dir, 'b.csv'), 'ProductId,Text\nP3,"fine, quoted"\nP4,too,many\n');
    const s = setup({ badRecords: 'forward', keyField: 'asin,ProductId' });
    const report = await settle(s);
    expect(report.files.map((f) => [f.name, f.outcome, f.records])).toEqual([
      ['a.jsonl', 'completed', 3],
      ['b.csv', 'completed', 2],
    ]);
    const records = await readAll(s.log, 'in');
    const seen = records.map((r) => ({
      key: text(r.key),
      value: text(r.value),
      line: text(r.headers[spoolHeaders.line] ?? null),
      error: text(r.headers[spoolHeaders.decodeError] ?? null),
    }));
    expect(seen).toEqual([
      { key: 'P1', value: '{"asin":"P1","text":"good"}', line: '1', error: null },
      {
        key: null,
        value: 'not json at all',
        line: '2',
        error: expect.stringMatching(/^a\.jsonl line 2: not valid JSON/),
      },
      { key: 'P2', value: '{"ProductId":"P2","text":"also good"}', line: '3', error: null },
      { key: 'P3', value: '{"ProductId":"P3","Text":"fine, quoted"}', line: '2', error: null },
      {
        key: null,
        value: 'P4,too,many',
        line: '3',
        error: 'b.csv line 3: CSV row has 3 fields, header has 2',
      },
    ]);
  });

  it('refuses the whole file on a malformed record by default (Flume), and goes on', async () => {
    await writeFile(path.join(dir, 'bad.jsonl'), '{"a":1}\n{oops\n');
    await writeFile(path.join(dir, 'good.jsonl'), '{"a":2}\n');
    const s = setup();
    const report = await settle(s);
    expect(report.files.map((f) => [f.name, f.outcome])).toEqual([
      ['bad.jsonl', 'failed'],
      ['good.jsonl', 'completed'],
    ]);
    expect(values(await readAll(s.log, 'in'))).toEqual(['{"a":2}']);
  });
});
