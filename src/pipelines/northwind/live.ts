import { z } from 'zod';
import { Throttle, TributaryError } from '../../core/index.js';
import type { Log, ProducerRecord } from '../../log/index.js';
import { stream, type Sink, type SinkContext, type StreamJob } from '../../stream/index.js';
import { canonicalCountry, sqlString } from './countries.js';
import { createRandom } from './generate.js';
import * as ref from './reference.js';

/**
 * Live sales (seed 001's Kafka topic `ventes-temps-reel`): JSON sale events
 * `{order_id, product_id, pays, montant, ts}` from the simulator or the ingest endpoint, and the
 * stream job that keeps revenue and transaction counts per country in
 * `gold.live_sales_by_country`.
 */
export const liveTopic = 'ventes-temps-reel';
export const liveJobName = 'northwind.live_sales';
export const liveTable = 'gold.live_sales_by_country';

/**
 * One sale. `montant` is the sale amount in currency units with at most cents precision (it is
 * counted in integer cents, rounded half up); `ts` is epoch milliseconds or an ISO-8601 string;
 * `pays` is any spelling of a country (canonicalised with the batch mapping).
 */
export const saleEventSchema = z.object({
  order_id: z.number().int().nonnegative(),
  product_id: z.number().int().positive(),
  pays: z.string().trim().min(1).max(60),
  montant: z.number().finite().nonnegative().max(1e9),
  ts: z.union([z.number().int().nonnegative(), z.iso.datetime({ offset: true })]),
});
export type SaleEvent = z.infer<typeof saleEventSchema>;

export function eventTimeMs(event: SaleEvent): number {
  return typeof event.ts === 'number' ? event.ts : Date.parse(event.ts);
}

/** "1000/s", "60/m", "5/ms" or a bare number (per second) → events per second. */
export function parseRate(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(?:\/\s*(ms|s|m|min|h))?\s*$/.exec(text);
  if (!match)
    throw new TributaryError(
      'USAGE',
      `--rate must look like 1000/s, 60/m or 5/ms, got ${JSON.stringify(text)}`,
    );
  const value = Number(match[1]);
  const perSecond =
    { ms: 1000, s: 1, m: 1 / 60, min: 1 / 60, h: 1 / 3600 }[
      (match[2] ?? 's') as 'ms' | 's' | 'm' | 'min' | 'h'
    ] * value;
  if (!(perSecond > 0) || perSecond > 10_000_000)
    throw new TributaryError('USAGE', `--rate must be between 0 and 10,000,000 events/s, got ${text}`);
  return perSecond;
}

/** "10s", "500ms", "2m", "1h" → milliseconds. */
export function parseDurationMs(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (!match)
    throw new TributaryError(
      'USAGE',
      `--duration must look like 10s, 500ms, 2m or 1h, got ${JSON.stringify(text)}`,
    );
  return (
    Number(match[1]) *
    { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(match[2] ?? 's') as 'ms' | 's' | 'm' | 'h']
  );
}

/** Spellings the simulator sends for a minority of events, as a French-speaking producer would. */
const liveVariants: Record<string, string[]> = {
  USA: ['Etats-Unis', 'U.S.A.', 'United States'],
  UK: ['Royaume-Uni', 'United Kingdom'],
  Germany: ['Allemagne', 'Deutschland'],
  Brazil: ['Brésil', 'Brasil'],
  Spain: ['Espagne'],
  Italy: ['Italie'],
  Mexico: ['Mexique'],
};

/** Deterministic sale events: country mix of the customer base, product list prices, quantities. */
export function createSaleEventSource(seed = 7, firstOrderId = 1_000_000): (tsMs: number) => SaleEvent {
  const random = createRandom(seed);
  const countries: string[] = [];
  for (const entry of ref.customerCountries)
    for (let i = 0; i < entry.customers; i += 1) countries.push(entry.country);
  let orderId = firstOrderId;
  return (tsMs) => {
    const base = countries[Math.floor(random() * countries.length)];
    const variants = liveVariants[base];
    const pays =
      variants !== undefined && random() < 0.15 ? variants[Math.floor(random() * variants.length)] : base;
    const productIndex = Math.floor(random() * ref.products.length);
    const price = ref.products[productIndex][4];
    const quantity = 1 + Math.floor(random() * 40);
    const discount = random() < 0.6 ? 0 : [0.05, 0.1, 0.15, 0.2][Math.floor(random() * 4)];
    const cents = Math.round(price * 100 * quantity * (1 - discount));
    return { order_id: orderId++, product_id: productIndex + 1, pays, montant: cents / 100, ts: tsMs };
  };
}

export interface SimulateOptions {
  /** Events per second, never exceeded over a window longer than a batch. */
  ratePerSecond: number;
  /** Stop after this many events… */
  count?: number;
  /** …or after this long (whichever comes first; at least one must be given). */
  durationMs?: number;
  seed?: number;
  firstOrderId?: number;
  signal?: AbortSignal;
  /** Called about once a second with the events sent so far. */
  progress?: (sent: number, elapsedMs: number) => void;
  /** Called after every append with its size and the last order id in it. */
  onAppended?: (events: number, lastOrderId: number) => void;
}

export interface SimulateReport {
  events: number;
  elapsedMs: number;
  ratePerSecond: number;
}

/**
 * Appends simulated sales to `ventes-temps-reel`, paced by core's `Throttle`: a batch (about
 * 1/20 s of events, at most 1,000) may start `ratePerSecond / batch` times a second, so the rate
 * is never exceeded over any window longer than a batch.
 */
export async function simulateSales(log: Log, options: SimulateOptions): Promise<SimulateReport> {
  if (options.count === undefined && options.durationMs === undefined) {
    throw new TributaryError('USAGE', 'simulate sales needs --count or --duration');
  }
  const rate = options.ratePerSecond;
  const limit = options.count ?? Number.POSITIVE_INFINITY;
  const durationMs = options.durationMs ?? Number.POSITIVE_INFINITY;
  const batchMax = Math.max(1, Math.min(1000, Math.floor(rate / 20)));
  const throttle = new Throttle({ ratePerSecond: rate / batchMax });
  await log.ensureTopic(liveTopic, { partitions: 1 });
  const next = createSaleEventSource(options.seed, options.firstOrderId);
  const started = performance.now();
  let sent = 0;
  let lastProgress = started;
  const stopped = () => options.signal?.aborted === true;
  for (;;) {
    if (sent >= limit || performance.now() - started >= durationMs || stopped()) break;
    try {
      await throttle.take(options.signal);
    } catch (error) {
      if (stopped()) break;
      throw error;
    }
    const size = Math.min(batchMax, limit - sent);
    const ts = Date.now();
    const records: ProducerRecord[] = [];
    let lastOrderId = 0;
    for (let i = 0; i < size; i += 1) {
      const event = next(ts);
      lastOrderId = event.order_id;
      records.push({
        topic: liveTopic,
        key: String(event.order_id),
        value: JSON.stringify(event),
        timestamp: ts,
      });
    }
    await log.append(records);
    sent += size;
    options.onAppended?.(size, lastOrderId);
    const now = performance.now();
    if (options.progress !== undefined && now - lastProgress >= 1000) {
      lastProgress = now;
      options.progress(sent, now - started);
    }
  }
  return { events: sent, elapsedMs: performance.now() - started, ratePerSecond: rate };
}

/** A row of gold.live_sales_by_country. `total_ventes_live` is exact: kept as integer cents. */
export interface LiveCountryTotals {
  pays: string;
  totalCents: number;
  nb_transactions: number;
  updatedAtMs: number;
}

/**
 * The live job: decode + validate each event (bad ones go to `ventes-temps-reel.dlq`), key by
 * canonical country, keep `[cents, count]` per country in keyed state, emit the new totals.
 * State and offsets are checkpointed together, so a restart neither loses nor double-counts.
 *
 * @example
 * const job = liveSalesJob(log, liveTotalsSink({ write: (rows) => writeLiveTable(lake, rows) }));
 * await runJob(job, { dataDir, once: true });
 */
export function liveSalesJob(
  log: Log,
  sink: Sink<LiveCountryTotals>,
  options: { checkpointIntervalMs?: number } = {},
): StreamJob {
  return stream(liveJobName, { checkpointIntervalMs: options.checkpointIntervalMs ?? 2_000 })
    .from<SaleEvent>(log, {
      topics: [liveTopic],
      decode: 'json',
      validate: (v) => saleEventSchema.parse(v),
      timestamp: eventTimeMs,
    })
    .keyBy((event) => canonicalCountry(event.pays) as string)
    .process<LiveCountryTotals>((event, ctx) => {
      const totals = ctx.valueState<[number, number]>('totals');
      const [cents, count] = totals.get() ?? [0, 0];
      const next: [number, number] = [cents + Math.round(event.montant * 100), count + 1];
      totals.set(next);
      ctx.emit({
        pays: String(ctx.key),
        totalCents: next[0],
        nb_transactions: next[1],
        updatedAtMs: ctx.timestamp,
      });
    })
    .to(sink);
}

/** SQL that yields gold.live_sales_by_country's rows (typed even when empty). */
export function liveTableSql(rows: readonly LiveCountryTotals[]): string {
  const typed = `SELECT CAST(NULL AS VARCHAR) AS pays, CAST(NULL AS DECIMAL(18,2)) AS total_ventes_live, CAST(NULL AS BIGINT) AS nb_transactions, CAST(NULL AS TIMESTAMP) AS updated_at WHERE false`;
  if (rows.length === 0) return typed;
  const values = [...rows]
    .sort((a, b) => b.totalCents - a.totalCents || (a.pays < b.pays ? -1 : 1))
    .map(
      (r) =>
        `(${sqlString(r.pays)}, CAST(${Math.trunc(r.totalCents)} AS DECIMAL(18,0)) * 0.01, ${Math.trunc(r.nb_transactions)}, make_timestamp(${Math.trunc(r.updatedAtMs) * 1000}))`,
    );
  return `SELECT pays, CAST(total_ventes_live AS DECIMAL(18,2)) AS total_ventes_live, CAST(nb_transactions AS BIGINT) AS nb_transactions, updated_at
FROM (VALUES ${values.join(', ')}) AS t(pays, total_ventes_live, nb_transactions, updated_at)`;
}

export interface LiveTotalsSinkOptions {
  /** Replaces the live table with these rows (all countries); must be idempotent. */
  write(rows: LiveCountryTotals[]): Promise<void>;
  /** Fresh totals after each input batch, before they are committed (for the dashboard's SSE). */
  onUpdate?(rows: LiveCountryTotals[]): void;
  /** Tables `write` writes, for lineage; default the live table. */
  datasets?: string[];
}

/**
 * Keeps the latest totals of every country and, at each checkpoint, replaces the live table with
 * them. The totals are part of the checkpoint (preCommit's state), so the table written by
 * `commit` always matches the offsets checkpointed with it; a restart re-commits that state.
 */
export function liveTotalsSink(options: LiveTotalsSinkOptions): Sink<LiveCountryTotals> {
  const latest = new Map<string, LiveCountryTotals>();
  let changed = false;
  return {
    name: 'live-totals',
    datasets: options.datasets ?? [liveTable],
    open(context: SinkContext) {
      latest.clear();
      const restored = context.restored as { rows?: LiveCountryTotals[] } | undefined | null;
      for (const row of restored?.rows ?? []) latest.set(row.pays, row);
      return Promise.resolve();
    },
    write(value) {
      latest.set(value.pays, value);
      changed = true;
    },
    flush() {
      if (changed && options.onUpdate !== undefined) options.onUpdate([...latest.values()]);
      changed = false;
      return Promise.resolve();
    },
    preCommit() {
      return Promise.resolve({ rows: [...latest.values()] });
    },
    async commit(_checkpointId, state) {
      const rows = (state as { rows?: LiveCountryTotals[] } | null)?.rows ?? [];
      await options.write(rows);
    },
    async close() {},
  };
}
