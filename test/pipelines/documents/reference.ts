import {
  windowCountPayload,
  windowSizeMs,
  windowStartOf,
  watermarkOutOfOrdernessMs,
  type WindowCount,
} from '../../../src/pipelines/documents/payloads.js';

export interface ReferenceEvent {
  company_id: string;
  ts: number;
}

export interface ReferenceResult {
  windows: WindowCount[];
  late: ReferenceEvent[];
}

/**
 * Batch recomputation of the analytics job over events in arrival order (one partition), with
 * Flink's semantics: watermark = max event time seen so far - 5 s (updated as each record is
 * read); a record is late when its window's last millisecond is at or before the watermark
 * (end - 1 <= watermark); every other record counts in its 1-minute window.
 */
export function referenceWindowCounts(
  events: readonly ReferenceEvent[],
  outOfOrdernessMs = watermarkOutOfOrdernessMs,
): ReferenceResult {
  let maxTs = -Infinity;
  const counts = new Map<string, number>();
  const late: ReferenceEvent[] = [];
  for (const event of events) {
    const start = windowStartOf(event.ts);
    const watermark = maxTs - outOfOrdernessMs;
    if (start + windowSizeMs - 1 <= watermark) {
      late.push(event);
      continue;
    }
    maxTs = Math.max(maxTs, event.ts);
    const key = `${event.company_id}\u0000${start}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const windows = [...counts.entries()].map(([key, count]) => {
    const [company, start] = key.split('\u0000') as [string, string];
    return windowCountPayload(company, Number(start), count);
  });
  return { windows: sortWindows(windows), late };
}

export function sortWindows(windows: WindowCount[]): WindowCount[] {
  return [...windows].sort(
    (a, b) => a.window_start.localeCompare(b.window_start) || a.company_id.localeCompare(b.company_id),
  );
}
