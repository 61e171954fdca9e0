import { TributaryError } from '../core/index.js';
import type { Bytes } from './types.js';

/**
 * Kafka's murmur2 (org.apache.kafka.common.utils.Utils#murmur2), bit for bit: the 32-bit signed
 * result the Java client computes for the same bytes. Keeping the exact function means a topic moved
 * from the embedded log to Kafka keeps every key on the same partition number.
 */
export function murmur2(data: Bytes): number {
  const length = data.length;
  const seed = 0x9747b28c;
  const m = 0x5bd1e995;
  const r = 24;
  let h = (seed ^ length) | 0;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k = data[i4] | (data[i4 + 1] << 8) | (data[i4 + 2] << 16) | (data[i4 + 3] << 24);
    k = Math.imul(k, m);
    k ^= k >>> r;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  const tail = length & ~3;
  // The Java original is a switch with fall-through over the 1-3 tail bytes.
  const rest = length & 3;
  if (rest === 3) h ^= data[tail + 2] << 16;
  if (rest >= 2) h ^= data[tail + 1] << 8;
  if (rest >= 1) {
    h ^= data[tail];
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/** Kafka's Utils#toPositive: clears the sign bit (not Math.abs, which differs for MIN_VALUE). */
export function toPositive(n: number): number {
  return n & 0x7fffffff;
}

/** The partition Kafka's default partitioner picks for a non-null key. */
export function partitionForKey(key: Bytes, numPartitions: number): number {
  if (!Number.isInteger(numPartitions) || numPartitions < 1) {
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `numPartitions must be a positive integer, got ${numPartitions}`,
    );
  }
  return toPositive(murmur2(key)) % numPartitions;
}

/**
 * Chooses partitions for records of one producer. Keyed records go by murmur2; records without a
 * key stick to one partition for the whole `append` call (Kafka's sticky partitioner, KIP-480:
 * fuller batches) and the next call moves to the next partition, so null keys spread round-robin
 * across calls.
 */
export class Partitioner {
  readonly #sticky = new Map<string, number>();
  readonly #next = new Map<string, number>();

  /** Starts a new `append` call: null-key records of each topic move on to the next partition. */
  beginBatch(): void {
    this.#sticky.clear();
  }

  partition(topic: string, key: Bytes | null, numPartitions: number): number {
    if (key !== null) return partitionForKey(key, numPartitions);
    let chosen = this.#sticky.get(topic);
    if (chosen === undefined || chosen >= numPartitions) {
      const next = this.#next.get(topic) ?? 0;
      chosen = next % numPartitions;
      this.#next.set(topic, (chosen + 1) % numPartitions);
      this.#sticky.set(topic, chosen);
    }
    return chosen;
  }
}
