import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { createMemoryLog, runJob, stream, topicSink, tumbling } from '../src/index.js';

interface Sale {
  pays: string;
  montant: number;
  ts: number;
}
const canonicalCountry = (name: string) => (/^(usa|u\.s\.a\.|united states)$/i.test(name) ? 'USA' : name);

// The stream job shown in README.md ("An example stream job"), run as written.
it('runs the README example job: per-country 1-minute totals, bad records to the DLQ', async () => {
  const log = createMemoryLog();
  const minute = Date.UTC(2026, 10, 22, 10, 0, 0);
  const sales = [
    { pays: 'USA', montant: 10, ts: minute + 1_000 },
    { pays: 'U.S.A.', montant: 5, ts: minute + 2_000 },
    { pays: 'France', montant: 7, ts: minute + 3_000 },
    { pays: 'France', montant: -1, ts: minute + 4_000 },
    { pays: 'France', montant: 3, ts: minute + 61_000 },
  ];
  await log.createTopic('ventes-temps-reel', { partitions: 1 });
  await log.append([
    ...sales.map((s) => ({ topic: 'ventes-temps-reel', value: JSON.stringify(s), timestamp: s.ts })),
    { topic: 'ventes-temps-reel', value: '{not json', timestamp: minute },
  ]);

  const job = stream('sales-per-country', { onError: 'dlq', checkpointIntervalMs: 10_000 })
    .from<Sale>(log, {
      topics: ['ventes-temps-reel'],
      decode: 'json',
      timestamp: (s) => s.ts,
      outOfOrdernessMs: 5_000,
    })
    .filter((s) => s.montant > 0)
    .keyBy((s) => canonicalCountry(s.pays))
    .window(tumbling({ sizeMs: 60_000 }), { allowedLatenessMs: 30_000 })
    .aggregate({
      init: () => ({ total: 0, count: 0 }),
      add: (a, s) => ({ total: a.total + s.montant, count: a.count + 1 }),
      result: (a) => a,
    })
    .map((w) => ({ country: String(w.key), window_start: new Date(w.windowStart).toISOString(), ...w.value }))
    .to(topicSink('sales.per_country', { key: (r) => r.country }));

  const status = await runJob(job, {
    dataDir: mkdtempSync(path.join(os.tmpdir(), 'tributary-readme-')),
    once: true,
  });
  expect(status.counters).toMatchObject({ in: 6, filtered: 1, dlq: 1, late: 0 });

  const out = await log.fetch('sales.per_country', 0, 0, { maxRecords: 100 });
  const rows = out.map((r) => JSON.parse(new TextDecoder().decode(r.value!)) as Record<string, unknown>);
  expect(
    rows.sort((a, b) =>
      `${String(a.window_start)}${String(a.country)}`.localeCompare(
        `${String(b.window_start)}${String(b.country)}`,
      ),
    ),
  ).toEqual([
    { country: 'France', window_start: '2026-11-22T10:00:00.000Z', total: 7, count: 1 },
    { country: 'USA', window_start: '2026-11-22T10:00:00.000Z', total: 15, count: 2 },
    { country: 'France', window_start: '2026-11-22T10:01:00.000Z', total: 3, count: 1 },
  ]);
  expect((await log.fetch('ventes-temps-reel.dlq', 0, 0)).length).toBe(1);
});
