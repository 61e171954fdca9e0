import type { AppendResult } from './types.js';

export interface PartitionOffsetRange {
  partition: number;
  first: number;
  last: number;
}

/**
 * What an append wrote, per partition: first and last offset, sorted by partition. Answers of the
 * ingest endpoint and the topics API report this instead of one offset per record.
 *
 * @example
 * offsetRanges(await log.append(records)) // [{ partition: 0, first: 41, last: 57 }]
 */
export function offsetRanges(results: readonly AppendResult[]): PartitionOffsetRange[] {
  const ranges = new Map<number, PartitionOffsetRange>();
  for (const { partition, offset } of results) {
    const range = ranges.get(partition);
    if (!range) ranges.set(partition, { partition, first: offset, last: offset });
    else {
      range.first = Math.min(range.first, offset);
      range.last = Math.max(range.last, offset);
    }
  }
  return [...ranges.values()].sort((a, b) => a.partition - b.partition);
}
