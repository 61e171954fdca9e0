import { z } from 'zod';
import { Throttle, TributaryError } from '../../core/index.js';
import { quoteLiteral, type LakeTable } from '../../lake/index.js';
import type { Log, ProducerRecord } from '../../log/index.js';
import {
  lakeSink,
  lakeTableTarget,
  stream,
  tumbling,
  type ProcessContext,
  type Sink,
  type SinkContext,
  type StreamJob,
} from '../../stream/index.js';
import { canonicalCountry } from './countries.js';
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
export const liveHistoryJobName = 'northwind.live_sales_history';
export const liveHistoryTable = 'bronze.live_sales';
/** The windowed live view: revenue per country and event-time minute; late sales go to `<job>.late`. */
export const liveWindowsJobName = 'northwind.live_sales_by_minute';
export const liveWindowsTable = 'gold.live_sales_by_minute';
/** Event-time window of the windowed view, and how far out of order a sale may arrive. */
export const liveWindowMs = 60_000;
export const liveOutOfOrdernessMs = 5_000;
/**
 * A sale seen again (same `order_id`: re-sent by the shop, or replayed into the topic) within this
 * much event time of its first sighting counts once; the seen-ids state expires after it, so the
 * state stays bounded by a day of sales.
 */
export const saleDedupTtlMs = 24 * 60 * 60 * 1000;

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

/** Keyed by order_id: passes a sale on the first time its order_id is seen (see `saleDedupTtlMs`). */
function firstSightingOfOrder(event: SaleEvent, ctx: ProcessContext<SaleEvent>): void {
  const seen = ctx.valueState<true>('seen');
  if (seen.get() !== undefined) return;
  seen.set(true);
  ctx.emit(event);
}

/**
 * The live job: decode + validate each event (bad ones go to `ventes-temps-reel.dlq`), count each
 * `order_id` once, key by canonical country, keep `[cents, count]` per country in keyed state,
 * emit the new totals.
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
    .keyBy((event) => event.order_id)
    .process<SaleEvent>(firstSightingOfOrder, { ttlMs: saleDedupTtlMs })
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
        `(${quoteLiteral(r.pays)}, CAST(${Math.trunc(r.totalCents)} AS DECIMAL(18,0)) * 0.01, ${Math.trunc(r.nb_transactions)}, make_timestamp(${Math.trunc(r.updatedAtMs) * 1000}))`,
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

/** A row of bronze.live_sales (plus `_ingestion_timestamp` and `_source`, and the partition columns). */
export interface LiveSaleRow {
  order_id: number;
  product_id: number;
  /** Canonical country (also a partition column). */
  pays: string;
  /** The country as the event spelled it. */
  pays_source: string;
  montant: number;
  /** Event time, epoch ms (stored as TIMESTAMP). */
  sold_at: number;
}

/** JSON sale events that pass the schema; anything else is null (the live job dead-letters it). */
function decodeSaleOrNull(record: { value: Uint8Array | null }): SaleEvent | null {
  if (record.value === null) return null;
  try {
    const parsed = saleEventSchema.safeParse(JSON.parse(new TextDecoder().decode(record.value)));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/**
 * Every live sale, kept: `ventes-temps-reel` → `bronze.live_sales`, Hive-partitioned by sale day
 * (event time) and canonical country, `sale_date=2026-11-22/pays=France/part-….parquet`, with the
 * stream lake sink's two-phase commit (a restart neither loses nor repeats a sale). Records the live
 * job refuses are skipped here, not dead-lettered a second time: `northwind.live_sales` owns the
 * topic's DLQ.
 *
 * @example
 * await runJob(liveHistoryJob(log, lake.table(liveHistoryTable)), { dataDir, once: true });
 */
export function liveHistoryJob(
  log: Log,
  table: LakeTable,
  options: { checkpointIntervalMs?: number } = {},
): StreamJob {
  return stream(liveHistoryJobName, { checkpointIntervalMs: options.checkpointIntervalMs ?? 2_000 })
    .from<SaleEvent | null>(log, {
      topics: [liveTopic],
      decode: decodeSaleOrNull,
      timestamp: (event, record) => (event === null ? record.timestamp : eventTimeMs(event)),
    })
    .flatMap((event): LiveSaleRow[] =>
      event === null
        ? []
        : [
            {
              order_id: event.order_id,
              product_id: event.product_id,
              pays: canonicalCountry(event.pays) ?? event.pays,
              pays_source: event.pays,
              montant: event.montant,
              sold_at: eventTimeMs(event),
            },
          ],
    )
    .to(
      lakeSink<LiveSaleRow>(
        lakeTableTarget(table, {
          source: liveTopic,
          types: { sale_date: 'DATE', montant: 'DECIMAL(18,2)', sold_at: 'TIMESTAMP' },
        }),
        {
          row: (sale) => ({ ...sale }),
          pathFormat: 'sale_date=YYYY-MM-dd',
          partitionBy: ['pays'],
          flushSize: 10_000,
          // A minute of sales per file and country, so the history is queryable a minute behind
          // (the sink compacts a partition's small files every 10).
          rotateIntervalMs: 60_000,
          idleMs: 60_000,
        },
      ),
    );
}

/** A row of gold.live_sales_by_minute (plus the partition column `window_date`). */
export interface LiveWindowRow {
  pays: string;
  /** Window bounds, epoch ms (stored as TIMESTAMP): [start, end). */
  window_start: number;
  window_end: number;
  /** Exact: integer cents over 100 (stored as DECIMAL(18,2)). */
  total_ventes: number;
  nb_transactions: number;
}

/**
 * The windowed live view seed 001 asks for ("micro-batch processing with watermarking"): valid
 * sales, each `order_id` once, per canonical country and 1-minute event-time window, with the
 * watermark `liveOutOfOrdernessMs` behind the newest sale. A window fires once when the watermark
 * passes its end; a sale arriving after that goes to `northwind.live_sales_by_minute.late`
 * (counted as `late` in the job's `in = accepted + filtered + dlq + late`). Each fired window
 * appends one row per country to `gold.live_sales_by_minute`, partitioned `window_date=YYYY-MM-DD`,
 * exactly once (the stream lake sink's two-phase commit). Invalid events are skipped here: the
 * live job owns the topic's DLQ.
 *
 * @example
 * await runJob(liveWindowsJob(log, lake.table(liveWindowsTable)), { dataDir, once: true });
 */
export function liveWindowsJob(
  log: Log,
  table: LakeTable,
  options: { checkpointIntervalMs?: number } = {},
): StreamJob {
  return stream(liveWindowsJobName, { checkpointIntervalMs: options.checkpointIntervalMs ?? 2_000 })
    .from<SaleEvent | null>(log, {
      topics: [liveTopic],
      decode: decodeSaleOrNull,
      timestamp: (event, record) => (event === null ? record.timestamp : eventTimeMs(event)),
      outOfOrdernessMs: liveOutOfOrdernessMs,
    })
    .flatMap((event): SaleEvent[] => (event === null ? [] : [event]))
    .keyBy((event) => event.order_id)
    .process<SaleEvent>(firstSightingOfOrder, { ttlMs: saleDedupTtlMs })
    .keyBy((event) => canonicalCountry(event.pays) ?? event.pays.trim())
    .window(tumbling({ sizeMs: liveWindowMs }))
    .aggregate<{ cents: number; count: number }, LiveWindowRow>({
      init: () => ({ cents: 0, count: 0 }),
      add: (acc, sale) => ({ cents: acc.cents + Math.round(sale.montant * 100), count: acc.count + 1 }),
      merge: (a, b) => ({ cents: a.cents + b.cents, count: a.count + b.count }),
      result: (acc, key, windowStart, windowEnd) => ({
        pays: String(key),
        window_start: windowStart,
        window_end: windowEnd,
        total_ventes: acc.cents / 100,
        nb_transactions: acc.count,
      }),
    })
    .map((w) => w.value)
    .to(
      lakeSink<LiveWindowRow>(
        lakeTableTarget(table, {
          source: liveTopic,
          types: {
            window_date: 'DATE',
            window_start: 'TIMESTAMP',
            window_end: 'TIMESTAMP',
            total_ventes: 'DECIMAL(18,2)',
          },
        }),
        {
          row: (w) => ({ ...w }),
          pathFormat: 'window_date=YYYY-MM-dd',
          flushSize: 10_000,
          rotateIntervalMs: 60_000,
          idleMs: 60_000,
        },
      ),
    );
}
