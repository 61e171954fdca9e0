/**
 * The q-quantile (q from 0 to 1) of `values` by nearest rank: the smallest sample that has at
 * least a q share of the samples at or below it; NaN when there are none. Sorts a copy.
 *
 * @example
 * percentile([5, 1, 4, 2, 3], 0.5) // 3
 */
export function percentile(values: ArrayLike<number>, q: number): number {
  return percentileOfSorted(Float64Array.from(values).sort(), q);
}

/** percentile() of samples already sorted ascending, for several quantiles of one sort. */
export function percentileOfSorted(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** The median of `values` by nearest rank (the lower middle of an even count); NaN when empty. */
export function median(values: ArrayLike<number>): number {
  return percentile(values, 0.5);
}
