import { describe, expect, it } from 'vitest';
import { isTributaryError } from '../core/index.js';
import { partitionForKey } from './partitioner.js';
import type { Consumer, Log, LogRecord, TopicPartition } from './types.js';

/**
 * The one `Log` contract suite. Every backend runs it through a `*.test.ts` that supplies a
 * harness: memory (`test/log/memory.test.ts`), embedded (`test/log/embedded.test.ts`) and Kafka
 * (`test/log/kafka.test.ts`, only with KAFKA_BROKERS).
 */
export interface LogHarness {
  /** Opens a fresh, empty log. */
  open: () => Promise<Log>;
  /** Closes `log` and opens the same storage again; absent for backends that keep nothing. */
  reopen?: (log: Log) => Promise<Log>;
  /** Applies retention now; absent when the backend only enforces it on its own schedule (Kafka). */
  enforceRetention?: (log: Log) => Promise<void>;
  /** Unique topic names, for backends whose topics outlive a test (Kafka). */
  topicName?: (base: string) => string;
}

const text = (bytes: Uint8Array | null) => (bytes === null ? null : new TextDecoder().decode(bytes));

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  try {
    await promise;
  } catch (error) {
    if (isTributaryError(error)) {
      expect(error.code).toBe(code);
      return;
    }
    throw error;
  }
  throw new Error(`expected a TributaryError ${code}, but the call succeeded`);
}

/** Reads a whole partition from `from` to its end offset. */
async function readAll(log: Log, topic: string, partition: number, from = 0): Promise<LogRecord[]> {
  const end = (await log.describeTopic(topic)).partitions[partition].endOffset;
  const out: LogRecord[] = [];
  let offset = from;
  while (offset < end) {
    const batch = await log.fetch(topic, partition, offset, { maxRecords: 500 });
    if (batch.length === 0) break;
    out.push(...batch);
    offset = batch[batch.length - 1].offset + 1;
  }
  return out;
}

/**
 * Rounds of polling a test waits through for records or a rebalance. Counted in polls, not in
 * wall-clock time: a loaded machine makes each round slower, not fewer (each waits up to 20 ms).
 */
const pollRoundsMax = 500;

/** Polls `consumers` round-robin until `count` records arrived in total (or the rounds run out). */
async function drain(consumers: Consumer[], count: number): Promise<LogRecord[]> {
  const got: LogRecord[] = [];
  for (let round = 0; got.length < count && round < pollRoundsMax; round++) {
    for (const c of consumers) got.push(...(await c.poll({ waitMs: 20, maxRecords: 100 })));
  }
  return got;
}

export function logContract(name: string, harness: LogHarness): void {
  const topicName = (base: string) => harness.topicName?.(base) ?? base;

  describe(`Log contract: ${name}`, () => {
    it('creates, lists, describes and deletes topics', async () => {
      const log = await harness.open();
      try {
        const t = topicName('topics-a');
        await log.createTopic(t, { partitions: 3 });
        expect(await log.listTopics()).toContain(t);
        const description = await log.describeTopic(t);
        expect(description.name).toBe(t);
        expect(description.partitions.map((p) => [p.partition, p.startOffset, p.endOffset])).toEqual([
          [0, 0, 0],
          [1, 0, 0],
          [2, 0, 0],
        ]);
        await expectCode(log.createTopic(t, { partitions: 3 }), 'ALREADY_EXISTS');
        await log.createTopic(t, { partitions: 3 }, { ifNotExists: true });
        await log.ensureTopic(t, { partitions: 5 });
        expect((await log.describeTopic(t)).partitions).toHaveLength(3);
        await expectCode(log.createTopic('bad/name', { partitions: 1 }), 'INVALID_ARGUMENT');
        await expectCode(log.createTopic(topicName('zero'), { partitions: 0 }), 'INVALID_ARGUMENT');
        await log.deleteTopic(t);
        expect(await log.listTopics()).not.toContain(t);
        await expectCode(log.describeTopic(t), 'NOT_FOUND');
      } finally {
        await log.close();
      }
    });

    it('keeps order and gives contiguous offsets per partition', async () => {
      const log = await harness.open();
      try {
        const t = topicName('order');
        await log.createTopic(t, { partitions: 2 });
        const first = await log.append(
          Array.from({ length: 50 }, (_, i) => ({ topic: t, partition: i % 2, value: `v${i}` })),
        );
        const second = await log.append(
          Array.from({ length: 10 }, (_, i) => ({ topic: t, partition: 0, value: `w${i}` })),
        );
        expect(first.filter((r) => r.partition === 0).map((r) => r.offset)).toEqual(
          Array.from({ length: 25 }, (_, i) => i),
        );
        expect(second.map((r) => r.offset)).toEqual(Array.from({ length: 10 }, (_, i) => 25 + i));
        const p0 = await readAll(log, t, 0);
        expect(p0.map((r) => r.offset)).toEqual(Array.from({ length: 35 }, (_, i) => i));
        expect(p0.map((r) => text(r.value))).toEqual([
          ...Array.from({ length: 25 }, (_, i) => `v${i * 2}`),
          ...Array.from({ length: 10 }, (_, i) => `w${i}`),
        ]);
        const middle = await log.fetch(t, 0, 30, { maxRecords: 3 });
        expect(middle.map((r) => r.offset)).toEqual([30, 31, 32]);
        expect(await log.fetch(t, 0, 35)).toEqual([]);
        const description = await log.describeTopic(t);
        expect(description.partitions.map((p) => p.endOffset)).toEqual([35, 25]);
      } finally {
        await log.close();
      }
    });

    it('places keys with murmur2 like Kafka and spreads null keys', async () => {
      const log = await harness.open();
      try {
        const t = topicName('keys');
        await log.createTopic(t, { partitions: 7 });
        const keys = Array.from({ length: 40 }, (_, i) => `customer-${i}`);
        const results = await log.append(keys.map((key) => ({ topic: t, key, value: key })));
        results.forEach((r, i) =>
          expect(r.partition).toBe(partitionForKey(new TextEncoder().encode(keys[i]), 7)),
        );
        const spread = new Set<number>();
        for (let i = 0; i < 14; i++)
          spread.add((await log.append([{ topic: t, value: `n${i}` }]))[0].partition);
        expect(spread.size).toBeGreaterThan(1);
      } finally {
        await log.close();
      }
    });

    it('round-trips keys, values, headers and timestamps (including nulls and binary)', async () => {
      const log = await harness.open();
      try {
        const t = topicName('roundtrip');
        await log.createTopic(t, { partitions: 1 });
        const binary = Uint8Array.from([0, 255, 1, 254, 10, 13]);
        const before = Date.now();
        await log.append([
          {
            topic: t,
            key: 'k1',
            value: 'héllo ✓',
            headers: { source: 'test', bin: binary },
            timestamp: 1_700_000_000_123,
          },
          { topic: t, key: null, value: null },
          { topic: t, key: binary, value: binary, headers: {} },
        ]);
        const after = Date.now();
        const [a, b, c] = await log.fetch(t, 0, 0);
        expect(a.topic).toBe(t);
        expect(a.partition).toBe(0);
        expect(text(a.key)).toBe('k1');
        expect(text(a.value)).toBe('héllo ✓');
        expect(text(a.headers.source)).toBe('test');
        expect([...a.headers.bin]).toEqual([...binary]);
        expect(a.timestamp).toBe(1_700_000_000_123);
        expect(b.key).toBeNull();
        expect(b.value).toBeNull();
        expect(b.headers).toEqual({});
        expect(b.timestamp).toBeGreaterThanOrEqual(before - 1);
        expect(b.timestamp).toBeLessThanOrEqual(after + 1);
        expect([...c.key!]).toEqual([...binary]);
        expect([...c.value!]).toEqual([...binary]);
      } finally {
        await log.close();
      }
    });

    it('rejects a bad batch without appending any of it', async () => {
      const log = await harness.open();
      try {
        const t = topicName('atomic');
        await log.createTopic(t, { partitions: 2 });
        await expectCode(
          log.append([
            { topic: t, value: 'ok' },
            { topic: topicName('missing-topic'), value: 'x' },
          ]),
          'NOT_FOUND',
        );
        await expectCode(
          log.append([
            { topic: t, value: 'ok' },
            { topic: t, partition: 9, value: 'x' },
          ]),
          'INVALID_ARGUMENT',
        );
        const description = await log.describeTopic(t);
        expect(description.partitions.map((p) => p.endOffset)).toEqual([0, 0]);
      } finally {
        await log.close();
      }
    });

    it('long-polls: a fetch with waitMs returns records appended while it waits', async () => {
      const log = await harness.open();
      try {
        const t = topicName('longpoll');
        await log.createTopic(t, { partitions: 1 });
        const started = Date.now();
        expect(await log.fetch(t, 0, 0, { waitMs: 50 })).toEqual([]);
        expect(Date.now() - started).toBeGreaterThanOrEqual(40);
        // Only the append can end this fetch before its wait runs out (below the Kafka client's 30 s
        // request timeout), and the test's own timeout (below) is shorter than that wait: no clock is
        // read, and a fetch that answered only when its wait ran out would fail the test. The append
        // is given a head start so it usually lands while the fetch waits (if not, the fetch finds
        // the record at once: also correct).
        const waiting = log.fetch(t, 0, 0, { waitMs: 25_000 });
        setTimeout(() => void log.append([{ topic: t, value: 'late' }]), 30);
        const got = await waiting;
        expect(got.map((r) => text(r.value))).toEqual(['late']);
      } finally {
        await log.close();
      }
    }, 20_000);

    it('finds offsets by timestamp', async () => {
      const log = await harness.open();
      try {
        const t = topicName('times');
        await log.createTopic(t, { partitions: 1 });
        await log.append(
          [1000, 2000, 3000, 4000].map((timestamp) => ({ topic: t, value: String(timestamp), timestamp })),
        );
        expect(await log.offsetForTimestamp(t, 0, 0)).toBe(0);
        expect(await log.offsetForTimestamp(t, 0, 2000)).toBe(1);
        expect(await log.offsetForTimestamp(t, 0, 2500)).toBe(2);
        expect(await log.offsetForTimestamp(t, 0, 9999)).toBe(4);
      } finally {
        await log.close();
      }
    });

    it('commits, lists and resets group offsets (earliest, latest, timestamp)', async () => {
      const log = await harness.open();
      try {
        const t = topicName('offsets');
        const g = topicName('g-offsets');
        await log.createTopic(t, { partitions: 2 });
        await log.append(
          [1, 2, 3].map((i) => ({ topic: t, partition: 0, value: `a${i}`, timestamp: i * 1000 })),
        );
        await log.append(
          [1, 2].map((i) => ({ topic: t, partition: 1, value: `b${i}`, timestamp: i * 1000 })),
        );
        expect((await log.committedOffsets(g, t)).size).toBe(0);
        await log.commitOffsets(g, [{ topic: t, partition: 0, offset: 2 }]);
        expect([...(await log.committedOffsets(g, t))]).toEqual([[0, 2]]);
        expect(await log.listGroups()).toContain(g);
        await log.resetOffsets(g, t, 'latest');
        expect(new Map(await log.committedOffsets(g, t))).toEqual(
          new Map([
            [0, 3],
            [1, 2],
          ]),
        );
        await log.resetOffsets(g, t, 'earliest');
        expect(new Map(await log.committedOffsets(g, t))).toEqual(
          new Map([
            [0, 0],
            [1, 0],
          ]),
        );
        await log.resetOffsets(g, t, { timestamp: 2000 });
        expect(new Map(await log.committedOffsets(g, t))).toEqual(
          new Map([
            [0, 1],
            [1, 1],
          ]),
        );
      } finally {
        await log.close();
      }
    });

    it('a consumer resumes from the committed offset; `from` applies only without one', async () => {
      const log = await harness.open();
      try {
        const t = topicName('resume');
        const g = topicName('g-resume');
        await log.createTopic(t, { partitions: 1 });
        await log.append(Array.from({ length: 10 }, (_, i) => ({ topic: t, value: `r${i}` })));
        const latest = log.consumer({ group: topicName('g-latest'), topics: [t], from: 'latest' });
        expect(await latest.poll({ waitMs: 20 })).toEqual([]);
        await latest.close();
        const first = log.consumer({ group: g, topics: [t] });
        const got = await drain([first], 4);
        expect(got.length).toBeGreaterThanOrEqual(4);
        first.seek({ topic: t, partition: 0 }, 4);
        await first.commit();
        await first.close();
        const second = log.consumer({ group: g, topics: [t], from: 'latest' });
        const rest = await drain([second], 6);
        expect(rest.map((r) => text(r.value))).toEqual(['r4', 'r5', 'r6', 'r7', 'r8', 'r9']);
        expect(second.position({ topic: t, partition: 0 })).toBe(10);
        await second.close();
        const byTime = log.consumer({ group: topicName('g-time'), topics: [t], from: { timestamp: 0 } });
        expect((await drain([byTime], 10)).length).toBe(10);
        await byTime.close();
      } finally {
        await log.close();
      }
    });

    it('members of one group share partitions, rebalance on join and leave, and read each record once', async () => {
      const log = await harness.open();
      try {
        const t = topicName('shared');
        const g = topicName('g-shared');
        await log.createTopic(t, { partitions: 4 });
        const events: string[] = [];
        const a = log.consumer({
          group: g,
          topics: [t],
          onAssignment: (assigned, revoked) => {
            events.push(`a+${assigned.length}-${revoked.length}`);
          },
        });
        await a.poll({ waitMs: 0 });
        expect(a.assignment()).toHaveLength(4);
        const b = log.consumer({ group: g, topics: [t] });
        await b.poll({ waitMs: 0 });
        for (
          let round = 0;
          a.assignment().length + b.assignment().length !== 4 || b.assignment().length === 0;
          round++
        ) {
          if (round >= pollRoundsMax) throw new Error(`rebalance did not happen in ${round} polls`);
          await a.poll({ waitMs: 20 });
          await b.poll({ waitMs: 20 });
        }
        const key = (tp: TopicPartition) => `${tp.topic}/${tp.partition}`;
        const owned = [...a.assignment(), ...b.assignment()].map(key).sort();
        expect(owned).toEqual([0, 1, 2, 3].map((p) => `${t}/${p}`));
        expect(a.assignment()).toHaveLength(2);
        await log.append(Array.from({ length: 200 }, (_, i) => ({ topic: t, key: `k${i}`, value: `v${i}` })));
        const got = await drain([a, b], 200);
        expect(got).toHaveLength(200);
        expect(new Set(got.map((r) => `${r.partition}:${r.offset}`)).size).toBe(200);
        await a.commit();
        await b.commit();
        await b.close();
        for (let round = 0; a.assignment().length !== 4; round++) {
          if (round >= pollRoundsMax)
            throw new Error(`rebalance after leave did not happen in ${round} polls`);
          await a.poll({ waitMs: 20 });
        }
        expect(events[0]).toBe('a+4-0');
        expect(events).toContain('a+0-2');
        expect(events).toContain('a+2-0');
        await log.append([{ topic: t, key: 'after', value: 'after' }]);
        const after = await drain([a], 1);
        expect(after.map((r) => text(r.value))).toEqual(['after']);
        await a.close();
      } finally {
        await log.close();
      }
    });

    it('pause stops fetching from a partition until resume', async () => {
      const log = await harness.open();
      try {
        const t = topicName('pause');
        await log.createTopic(t, { partitions: 2 });
        await log.append([
          { topic: t, partition: 0, value: 'p0' },
          { topic: t, partition: 1, value: 'p1' },
        ]);
        const c = log.consumer({ group: topicName('g-pause'), topics: [t] });
        // Kafka assigns on the first polls (which may already read); local backends assign at once.
        while (c.assignment().length < 2) await c.poll({ waitMs: 20 });
        c.seek({ topic: t, partition: 0 }, 0);
        c.seek({ topic: t, partition: 1 }, 0);
        c.pause([{ topic: t, partition: 0 }]);
        const got = await drain([c], 1);
        expect(got.map((r) => r.partition)).toEqual([1]);
        expect(await c.poll({ waitMs: 20 })).toEqual([]);
        c.resume([{ topic: t, partition: 0 }]);
        expect((await drain([c], 1)).map((r) => r.partition)).toEqual([0]);
        await c.close();
      } finally {
        await log.close();
      }
    });

    if (harness.enforceRetention) {
      const enforce = harness.enforceRetention;
      it('retention by size and by time removes old records and moves the start offset', async () => {
        const log = await harness.open();
        try {
          const bySize = topicName('retention-size');
          await log.createTopic(bySize, { partitions: 1, retentionBytes: 20_000, retentionMs: -1 });
          const value = 'x'.repeat(100);
          for (let i = 0; i < 20; i++) {
            await log.append(
              Array.from({ length: 50 }, (_, j) => ({ topic: bySize, value: `${i * 50 + j}:${value}` })),
            );
          }
          await enforce(log);
          const [p] = (await log.describeTopic(bySize)).partitions;
          expect(p.endOffset).toBe(1000);
          expect(p.startOffset).toBeGreaterThan(0);
          expect(p.sizeBytes).toBeLessThan(60_000);
          const fromZero = await log.fetch(bySize, 0, 0, { maxRecords: 1 });
          expect(fromZero[0].offset).toBe(p.startOffset);
          expect(text(fromZero[0].value)!.startsWith(`${p.startOffset}:`)).toBe(true);

          const byTime = topicName('retention-time');
          await log.createTopic(byTime, { partitions: 1, retentionMs: 60_000 });
          const old = Date.now() - 3_600_000;
          for (let i = 0; i < 10; i++) {
            await log.append(
              Array.from({ length: 100 }, (_, j) => ({
                topic: byTime,
                value: value,
                timestamp: old + i * 100 + j,
              })),
            );
          }
          await log.append([{ topic: byTime, value: 'fresh' }]);
          await enforce(log);
          const [q] = (await log.describeTopic(byTime)).partitions;
          expect(q.startOffset).toBeGreaterThan(0);
          expect(q.endOffset).toBe(1001);
          const last = await log.fetch(byTime, 0, 1000);
          expect(text(last[0].value)).toBe('fresh');
        } finally {
          await log.close();
        }
      });
    }

    if (harness.reopen) {
      const reopen = harness.reopen;
      it('recovers topics, records and committed offsets after reopen', async () => {
        let log = await harness.open();
        const t = topicName('durable');
        const g = topicName('g-durable');
        await log.createTopic(t, { partitions: 3, retentionMs: -1 });
        const results = await log.append(
          Array.from({ length: 300 }, (_, i) => ({
            topic: t,
            key: `k${i}`,
            value: `v${i}`,
            headers: { i: String(i) },
          })),
        );
        await log.commitOffsets(g, [{ topic: t, partition: 1, offset: 7 }]);
        const expected = [0, 1, 2].map((p) => results.filter((r) => r.partition === p).length);
        log = await reopen(log);
        try {
          expect(await log.listTopics()).toContain(t);
          const description = await log.describeTopic(t);
          expect(description.partitions.map((p) => p.endOffset)).toEqual(expected);
          expect(description.retentionMs).toBe(-1);
          for (let p = 0; p < 3; p++) {
            const records = await readAll(log, t, p);
            expect(records.map((r) => r.offset)).toEqual(Array.from({ length: expected[p] }, (_, i) => i));
            for (const r of records) expect(text(r.value)).toBe(`v${text(r.headers.i)}`);
          }
          expect([...(await log.committedOffsets(g, t))]).toEqual([[1, 7]]);
          const more = await log.append([{ topic: t, partition: 2, value: 'after-reopen' }]);
          expect(more[0].offset).toBe(expected[2]);
        } finally {
          await log.close();
        }
      });
    }

    it('refuses use after close', async () => {
      const log = await harness.open();
      await log.close();
      await expectCode(log.listTopics(), 'CLOSED');
    });
  });
}
