/**
 * Lineage benchmark (issue 12, part 6):
 * - stream.lineage_events: OpenLineage run events built, emitted and appended to the lineage file
 *   (`runEvent` + `LineageEmitter.emit` + encode + append, 2 inputs / 2 outputs), against the
 *   durable write a stream checkpoint makes anyway (`writeFileAtomic` of a ~1 KB manifest). It
 *   shows what an event per checkpoint would add; the runner still coalesces them to one RUNNING
 *   event per `limits.lineageRunningIntervalMs`.
 */
import path from 'node:path';
import { writeFileAtomic } from '../src/core/index.js';
import { datasetOf, LineageEmitter, runEvent } from '../src/stream/index.js';
import type { Benchmark, BenchContext, BenchResult } from './types.js';

const events = 20_000;
const checkpoints = 300;

async function lineageEvents(context: BenchContext): Promise<BenchResult> {
  const emitter = new LineageEmitter({ dataDir: context.dir });
  const inputs = [datasetOf('orders'), datasetOf('bronze.customers')];
  const outputs = [datasetOf('topic:orders.enriched'), datasetOf('gold.sales_by_country')];
  const t0 = performance.now();
  for (let i = 0; i < events; i++) {
    emitter.emit(
      runEvent({
        eventType: 'RUNNING',
        eventTimeMs: Date.UTC(2026, 11, 3) + i,
        runId: '0c7a0b8e-5a0b-4c1e-9d1f-2b7f0d7e9a10',
        job: 'bench.enrich',
        processingType: 'STREAMING',
        inputs,
        outputs,
        details: { checkpointId: i, recordsIn: i * 1000, outputs: i * 990 },
      }),
    );
  }
  await emitter.flush(120_000);
  const eventsPerSecond = events / ((performance.now() - t0) / 1000);

  const manifest = JSON.stringify({ format: 'tributary.stream.checkpoint', pad: 'x'.repeat(900) });
  const t1 = performance.now();
  for (let i = 0; i < checkpoints; i++) await writeFileAtomic(path.join(context.dir, 'CURRENT'), manifest);
  const checkpointsPerSecond = checkpoints / ((performance.now() - t1) / 1000);
  context.progress(
    `${Math.round(eventsPerSecond)} lineage events/s; ${Math.round(checkpointsPerSecond)} checkpoint manifests/s`,
  );
  return {
    value: eventsPerSecond,
    unit: 'events/s',
    baseline: checkpointsPerSecond,
    baseline_name: 'checkpoint manifest writes/s (writeFileAtomic, ~1 KB)',
    ratio: eventsPerSecond / checkpointsPerSecond,
    goal: 'ratio >= 10 (an event costs a tenth of the checkpoint write it would ride on, or less)',
  };
}

export const lineageBenchmarks: Benchmark[] = [
  {
    name: 'stream.lineage_events',
    description:
      'OpenLineage events built, emitted and written to the lineage file, vs checkpoint manifest writes',
    run: lineageEvents,
  },
];
