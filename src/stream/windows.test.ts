import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../core/index.js';
import { createMemoryLog } from '../log/index.js';
import {
  callbackSink,
  hopping,
  session,
  stream,
  tumbling,
  type WindowResult,
  type WindowSpec,
} from './index.js';
import { JobTask } from './runtime.js';

/** TRIBUTARY_SLOW=1 runs many more cases (same seeds). */
const slow = process.env.TRIBUTARY_SLOW === '1';

interface Ev {
  key: number;
  ts: number;
  amount: number;
  seq: number;
}

type Sum = { count: number; sum: number };

function runTask(spec: WindowSpec, events: Ev[], outOfOrdernessMs: number, allowedLatenessMs: number) {
  const results: WindowResult<Sum>[] = [];
  const job = stream('prop')
    .from<Ev>(createMemoryLog(), { topics: ['t'], outOfOrdernessMs })
    .keyBy((e) => e.key)
    .window(spec, { allowedLatenessMs })
    .aggregate<Sum>({
      init: () => ({ count: 0, sum: 0 }),
      add: (a, e) => {
        a.count++;
        a.sum += e.amount;
        return a;
      },
      merge: (a, b) => ({ count: a.count + b.count, sum: a.sum + b.sum }),
    })
    .to(callbackSink((w) => void results.push(structuredClone(w))));
  const task = new JobTask(job, { clock: new ManualClock(), bounded: true });
  const part = task.partitionClock('t', 0);
  for (const e of events) task.pushValue(e, e.ts, part);
  const lateSeqs = task.sideOutputs.map((r) => (JSON.parse(r.value as string) as Ev).seq);
  task.endOfInput();
  return { results, lateSeqs, counters: task.counters };
}

/** Batch recomputation of fixed windows with the same watermark rule (watermark after each record). */
function recompute(spec: { sizeMs: number; slideMs: number }, events: Ev[], ooo: number, lateness: number) {
  let wm = -Infinity;
  const windows = new Map<string, Sum>();
  const late: number[] = [];
  let lateInputs = 0;
  for (const e of events) {
    let accepted = false;
    const lastStart = e.ts - (((e.ts % spec.slideMs) + spec.slideMs) % spec.slideMs);
    for (let start = lastStart; start > e.ts - spec.sizeMs; start -= spec.slideMs) {
      if (start + spec.sizeMs - 1 + lateness <= wm) {
        // One late side-output record per closed window.
        late.push(e.seq);
        continue;
      }
      accepted = true;
      const id = `${e.key}|${start}`;
      const acc = windows.get(id) ?? { count: 0, sum: 0 };
      acc.count++;
      acc.sum += e.amount;
      windows.set(id, acc);
    }
    if (!accepted) lateInputs++;
    wm = Math.max(wm, e.ts - ooo);
  }
  return { windows, late, lateInputs };
}

const eventsArb = fc
  .array(
    fc.record({
      key: fc.integer({ min: 0, max: 5 }),
      // Mostly increasing time with jitter: out-of-order and some very late records.
      step: fc.integer({ min: 0, max: 400 }),
      jitter: fc.integer({ min: -3000, max: 200 }),
      amount: fc.integer({ min: -50, max: 1000 }),
    }),
    { maxLength: 300 },
  )
  .map((raw) => {
    let t = 1_000_000;
    return raw.map((r, seq) => {
      t += r.step;
      return { key: r.key, ts: t + r.jitter, amount: r.amount, seq };
    });
  });

describe('window operator vs batch recomputation', () => {
  for (const [name, spec] of [
    ['tumbling', { sizeMs: 1000, slideMs: 1000 }],
    ['hopping', { sizeMs: 3000, slideMs: 1000 }],
  ] as const) {
    it(`${name}: last emission per window equals the batch aggregate; late records go to the side output`, () => {
      fc.assert(
        fc.property(
          eventsArb,
          fc.integer({ min: 0, max: 1500 }),
          fc.constantFrom(0, 500, 2000),
          (events, ooo, lateness) => {
            const windowSpec =
              name === 'tumbling'
                ? tumbling({ sizeMs: spec.sizeMs })
                : hopping({ sizeMs: spec.sizeMs, slideMs: spec.slideMs });
            const { results, lateSeqs, counters } = runTask(windowSpec, events, ooo, lateness);
            const expected = recompute(spec, events, ooo, lateness);
            const last = new Map<string, WindowResult<Sum>>();
            const finals = new Map<string, number>();
            for (const r of results) {
              const id = `${r.key}|${r.windowStart}`;
              last.set(id, r);
              if (r.kind === 'final') finals.set(id, (finals.get(id) ?? 0) + 1);
            }
            expect([...last.keys()].sort()).toEqual([...expected.windows.keys()].sort());
            for (const [id, acc] of expected.windows) {
              expect(last.get(id)!.value).toEqual(acc);
              expect(last.get(id)!.count).toBe(acc.count);
              expect(finals.get(id)).toBe(1);
            }
            expect(lateSeqs).toEqual(expected.late);
            expect(counters.in).toBe(counters.accepted + counters.filtered + counters.dlq + counters.late);
            expect(counters.late).toBe(expected.lateInputs);
          },
        ),
        { seed: 42, numRuns: slow ? 3000 : 200 },
      );
    });
  }

  it('session windows equal a batch sessionisation when nothing is late', () => {
    fc.assert(
      fc.property(eventsArb, (events) => {
        const gap = 700;
        const { results, lateSeqs } = runTask(session({ gapMs: gap }), events, 1_000_000, 0);
        expect(lateSeqs).toEqual([]);
        const byKey = new Map<number, Ev[]>();
        for (const e of events) byKey.set(e.key, [...(byKey.get(e.key) ?? []), e]);
        const expected: string[] = [];
        for (const [key, list] of byKey) {
          list.sort((a, b) => a.ts - b.ts);
          let cur: { start: number; end: number; count: number; sum: number } | null = null;
          for (const e of list) {
            if (cur !== null && e.ts <= cur.end) {
              cur.end = Math.max(cur.end, e.ts + gap);
              cur.count++;
              cur.sum += e.amount;
            } else {
              if (cur !== null) expected.push(`${key}|${cur.start}|${cur.end}|${cur.count}|${cur.sum}`);
              cur = { start: e.ts, end: e.ts + gap, count: 1, sum: e.amount };
            }
          }
          if (cur !== null) expected.push(`${key}|${cur.start}|${cur.end}|${cur.count}|${cur.sum}`);
        }
        const got = results
          .filter((r) => r.kind === 'final')
          .map((r) => `${r.key}|${r.windowStart}|${r.windowEnd}|${r.value.count}|${r.value.sum}`);
        expect(got.sort()).toEqual(expected.sort());
      }),
      { seed: 7, numRuns: slow ? 2000 : 150 },
    );
  });

  it('several partitions, one idle: outputs equal a batch over the non-late records, late ones in the side output', async () => {
    await fc.assert(
      fc.asyncProperty(eventsArb, fc.integer({ min: 0, max: 1000 }), async (events, ooo) => {
        const clock = new ManualClock(0);
        const results: WindowResult<Sum>[] = [];
        const job = stream('prop-partitions')
          .from<Ev>(createMemoryLog(), {
            topics: ['t'],
            timestamp: (e) => e.ts,
            outOfOrdernessMs: ooo,
            idleTimeoutMs: 1000,
          })
          .keyBy((e) => e.key)
          .window(tumbling({ sizeMs: 1000 }))
          .aggregate<Sum>({
            init: () => ({ count: 0, sum: 0 }),
            add: (a, e) => ({ count: a.count + 1, sum: a.sum + e.amount }),
          })
          .to(callbackSink((w) => void results.push(w)));
        const task = new JobTask(job, { clock, bounded: false });
        // Partition 2 never gets a record: once idle it must not hold the watermark back.
        task.partitionClock('t', 2);
        clock.advance(2000);
        task.tracker.tick(clock.now(), (id) => id === 't/2');
        const records = events.map((e, i) => ({
          topic: 't',
          partition: e.seq % 2,
          offset: i,
          timestamp: e.ts,
          key: null,
          value: new TextEncoder().encode(JSON.stringify(e)),
          headers: {},
        }));
        await task.processRecords(records);
        const finalsBeforeEnd = results.filter((r) => r.kind === 'final').length;
        const lateSeqs = new Set(
          task.takeSideOutputs().map((r) => (JSON.parse(r.value as string) as Ev).seq),
        );
        task.endOfInput();
        const expected = recompute(
          { sizeMs: 1000, slideMs: 1000 },
          events.filter((e) => !lateSeqs.has(e.seq)),
          Infinity,
          0,
        );
        const last = new Map(results.map((r) => [`${r.key}|${r.windowStart}`, r.value]));
        expect(last).toEqual(expected.windows);
        expect(task.counters.late).toBe(lateSeqs.size);
        expect(task.counters.in).toBe(task.counters.accepted + task.counters.late);
        // Event time spans many windows: without idleness detection nothing would fire before the end.
        if (events.length > 0 && events[events.length - 1].ts - events[0].ts > 5000 + ooo)
          expect(finalsBeforeEnd).toBeGreaterThan(0);
      }),
      { seed: 1234, numRuns: slow ? 1500 : 100 },
    );
  });

  it('window results are identified deterministically and snapshots round-trip', () => {
    const events: Ev[] = Array.from({ length: 50 }, (_, i) => ({
      key: i % 3,
      ts: 1000 + i * 97,
      amount: i,
      seq: i,
    }));
    const a = runTask(tumbling({ sizeMs: 1000 }), events, 0, 0);
    const b = runTask(tumbling({ sizeMs: 1000 }), events, 0, 0);
    expect(a.results).toEqual(b.results);
    expect(a.results.length).toBeGreaterThan(5);
  });
});
