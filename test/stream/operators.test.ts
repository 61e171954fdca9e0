import { describe, expect, it } from 'vitest';
import { createMemoryLog, type LogRecord } from '../../src/log/index.js';
import {
  callbackSink,
  dlqHeaders,
  runJob,
  stream,
  tumbling,
  type JobStatus,
} from '../../src/stream/index.js';

interface Click {
  user: string;
  page: string;
  ts: number;
}

async function logWith(topics: Record<string, unknown[]>) {
  const log = createMemoryLog();
  for (const [topic, values] of Object.entries(topics)) {
    await log.createTopic(topic, { partitions: 1 });
    await log.append(values.map((v) => ({ topic, value: typeof v === 'string' ? v : JSON.stringify(v) })));
  }
  return log;
}

const reconciled = (s: JobStatus) =>
  s.counters.in === s.counters.accepted + s.counters.filtered + s.counters.dlq + s.counters.late;

describe('operators', () => {
  it('process keeps keyed value and map state, expiring entries by event-time TTL', async () => {
    const clicks: Click[] = [
      { user: 'a', page: '/1', ts: 1000 },
      { user: 'a', page: '/2', ts: 2000 },
      { user: 'b', page: '/1', ts: 2500 },
      { user: 'a', page: '/1', ts: 3000 },
      // TTL is measured against the watermark: when b's record at 20 s arrives the watermark is
      // still 3 s, so b's state lives; it moves the watermark to 20 s, so a's state (written at 3 s)
      // has expired when a comes back.
      { user: 'b', page: '/3', ts: 20_000 },
      { user: 'a', page: '/9', ts: 20_500 },
    ];
    const log = await logWith({ clicks });
    const out: { user: string; n: number; pages: number }[] = [];
    const status = await runJob(
      stream('sessions')
        .from<Click>(log, { topics: ['clicks'], timestamp: (c) => c.ts })
        .keyBy((c) => c.user)
        .process<{ user: string; n: number; pages: number }>(
          (click, ctx) => {
            const count = ctx.valueState<number>('count');
            const pages = ctx.mapState<number>('pages');
            count.set((count.get() ?? 0) + 1);
            pages.set(click.page, (pages.get(click.page) ?? 0) + 1);
            ctx.emit({ user: String(ctx.key), n: count.get()!, pages: pages.entries().length });
          },
          { ttlMs: 10_000 },
        )
        .to(callbackSink((v) => void out.push(v))),
      { once: true },
    );
    expect(out).toEqual([
      { user: 'a', n: 1, pages: 1 },
      { user: 'a', n: 2, pages: 2 },
      { user: 'b', n: 1, pages: 1 },
      { user: 'a', n: 3, pages: 2 },
      { user: 'b', n: 2, pages: 2 },
      { user: 'a', n: 1, pages: 1 },
    ]);
    expect(reconciled(status)).toBe(true);
  });

  it('mapAsync keeps input order under concurrency, sends failures to the DLQ and reconciles', async () => {
    const values = Array.from({ length: 40 }, (_, i) => ({ user: `u${i % 4}`, page: String(i), ts: i }));
    const log = await logWith({ clicks: values });
    const out: string[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const status = await runJob(
      stream('enrich')
        .from<Click>(log, { topics: ['clicks'] })
        .mapAsync(
          async (c) => {
            inFlight++;
            maxInFlight = Math.max(maxInFlight, inFlight);
            await new Promise((r) => setTimeout(r, (Number(c.page) * 7) % 5));
            inFlight--;
            if (c.page === '13') throw new Error('enrichment service said no');
            return `${c.user}:${c.page}`;
          },
          { concurrency: 4 },
        )
        .filter((s) => !s.endsWith(':20'))
        .to(callbackSink((v) => void out.push(v))),
      { once: true },
    );
    expect(out).toEqual(
      values.filter((v) => v.page !== '13' && v.page !== '20').map((v) => `${v.user}:${v.page}`),
    );
    expect(maxInFlight).toBeLessThanOrEqual(4);
    expect(maxInFlight).toBeGreaterThan(1);
    expect(status.counters).toMatchObject({ in: 40, dlq: 1, filtered: 1, accepted: 38 });
    const dlq: LogRecord[] = await log.fetch('clicks.dlq', 0, 0);
    expect(dlq).toHaveLength(1);
  });

  it('mapBatchAsync calls once per batch in input order; a failed call dead-letters its whole batch', async () => {
    const values = Array.from({ length: 40 }, (_, i) => ({ user: `u${i % 4}`, page: String(i), ts: i }));
    const log = await logWith({ clicks: values });
    const out: string[] = [];
    const calls: { pages: string[]; offsets: number[] }[] = [];
    const status = await runJob(
      stream('enrich-batches')
        .from<Click>(log, { topics: ['clicks'] })
        .filter((c) => c.page !== '5')
        .mapBatchAsync(
          async (clicks, metas) => {
            calls.push({ pages: clicks.map((c) => c.page), offsets: metas.map((m) => m.offset) });
            // Later batches answer first: order must come from the batch positions, not timing.
            await new Promise((r) => setTimeout(r, 20 - calls.length * 3));
            if (clicks.some((c) => c.page === '13')) throw new Error('enrichment service said no');
            return clicks.map((c) => `${c.user}:${c.page}`);
          },
          { batchSizeMax: 8, concurrency: 3 },
        )
        .to(callbackSink((v) => void out.push(v))),
      { once: true },
    );
    const passed = values.filter((v) => v.page !== '5');
    // Batches of up to 8 in input order, each value with its own record's metadata.
    expect(calls.flatMap((c) => c.pages)).toEqual(passed.map((v) => v.page));
    expect(calls.every((c) => c.pages.length >= 1 && c.pages.length <= 8)).toBe(true);
    expect(calls.flatMap((c) => c.offsets)).toEqual(passed.map((v) => Number(v.page)));
    const failed = calls.find((c) => c.pages.includes('13'))!.pages;
    expect(out).toEqual(passed.filter((v) => !failed.includes(v.page)).map((v) => `${v.user}:${v.page}`));
    expect(status.counters).toMatchObject({
      in: 40,
      filtered: 1,
      dlq: failed.length,
      accepted: 39 - failed.length,
    });
    expect(reconciled(status)).toBe(true);
    const dlq: LogRecord[] = await log.fetch('clicks.dlq', 0, 0);
    expect(dlq.map((r) => Number(Buffer.from(r.headers[dlqHeaders.offset]).toString()))).toEqual(
      failed.map(Number),
    );
  });

  it('mapBatchAsync refuses an answer of the wrong length for that batch only', async () => {
    const log = await logWith({ clicks: [1, 2, 3].map((i) => ({ user: 'a', page: String(i), ts: i })) });
    const out: string[] = [];
    const status = await runJob(
      stream('short-answer')
        .from<Click>(log, { topics: ['clicks'] })
        .mapBatchAsync((clicks) => Promise.resolve(clicks.slice(1).map((c) => c.page)), { batchSizeMax: 2 })
        .to(callbackSink((v) => void out.push(v))),
      { once: true },
    );
    // [1, 2] answers one result (refused); [3] answers none (refused too).
    expect(out).toEqual([]);
    expect(status.counters).toMatchObject({ in: 3, dlq: 3 });
    expect(() =>
      stream('bad')
        .from(log, { topics: ['clicks'] })
        .mapBatchAsync((v) => Promise.resolve(v), { batchSizeMax: 0 }),
    ).toThrow(/batchSizeMax must be >= 1/);
  });

  it('a step failing on one window result sends it to <job>.dlq; the other keys are still emitted', async () => {
    const log = await logWith({
      clicks: ['a', 'b', 'c', 'b'].map((user, i) => ({ user, page: '/', ts: i })),
    });
    const out: string[] = [];
    const status = await runJob(
      stream('poison-window')
        .from<Click>(log, { topics: ['clicks'], timestamp: (c) => c.ts })
        .keyBy((c) => c.user)
        .window(tumbling({ sizeMs: 1000 }))
        .count()
        .map((w) => {
          if (w.key === 'b') throw new Error('cannot format b');
          return `${w.key}=${w.value}`;
        })
        .to(callbackSink((v) => void out.push(v))),
      { once: true },
    );
    expect(out.sort()).toEqual(['a=1', 'c=1']);
    expect(status.counters).toMatchObject({ in: 4, accepted: 4, failedOutputs: 1, dlq: 0 });
    const dlq = await log.fetch('poison-window.dlq', 0, 0);
    expect(dlq.map((r) => Buffer.from(r.value!).toString())).toEqual([
      'final result of window [0, 1000) for key "b"',
    ]);
  });

  it('joinTable enriches from a lookup table; inner joins count misses as filtered', async () => {
    const log = await logWith({
      clicks: [
        { user: 'a', page: '/', ts: 1 },
        { user: 'zz', page: '/', ts: 2 },
      ],
    });
    const users = new Map<string | number, { country: string }>([['a', { country: 'FR' }]]);
    const out: unknown[] = [];
    const status = await runJob(
      stream('enrich-table')
        .from<Click>(log, { topics: ['clicks'] })
        .keyBy((c) => c.user)
        .joinTable(users, (c, u) => ({ ...c, country: u!.country }), { inner: true })
        .to(callbackSink((v) => void out.push(v))),
      { once: true },
    );
    expect(out).toEqual([{ user: 'a', page: '/', ts: 1, country: 'FR' }]);
    expect(status.counters).toMatchObject({ in: 2, accepted: 1, filtered: 1 });
  });

  it('joinWindow pairs records of two topics with the same key in the same window', async () => {
    const log = await logWith({
      orders: [
        { id: 1, ts: 100 },
        { id: 2, ts: 200 },
        { id: 3, ts: 1500 },
      ],
      payments: [
        { order: 1, amount: 10, ts: 300 },
        { order: 3, amount: 30, ts: 900 }, // different window than order 3
        { order: 2, amount: 20, ts: 999 },
        { order: 2, amount: 5, ts: 950 },
      ],
    });
    const job = stream('orders-payments');
    const orders = job
      .from<{ id: number; ts: number }>(log, { topics: ['orders'], timestamp: (o) => o.ts })
      .keyBy((o) => o.id);
    const payments = job
      .from<{ order: number; amount: number; ts: number }>(log, {
        topics: ['payments'],
        timestamp: (p) => p.ts,
        outOfOrdernessMs: 100,
      })
      .keyBy((p) => p.order);
    const out: string[] = [];
    const status = await runJob(
      orders
        .joinWindow(payments, tumbling({ sizeMs: 1000 }))
        .map((p) => `${p.key}@${p.windowStart}:${p.right.amount}`)
        .to(callbackSink((v) => void out.push(v))),
      { once: true },
    );
    expect(out.sort()).toEqual(['1@0:10', '2@0:20', '2@0:5']);
    expect(status.counters.in).toBe(7);
    expect(reconciled(status)).toBe(true);
  });
});
