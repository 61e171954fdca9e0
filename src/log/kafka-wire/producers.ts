import { errorCodes } from './errors.js';
import { limits } from '../../core/index.js';

/**
 * Idempotent producers (KIP-98): each batch of a producer id carries its epoch and the sequence
 * number of its first record, per partition. A batch that repeats one of the last five batches
 * (a retry after a lost answer) is answered with the original base offset and not appended again;
 * a gap or step back in the sequence is OUT_OF_ORDER_SEQUENCE_NUMBER; an older epoch is
 * INVALID_PRODUCER_EPOCH.
 *
 * The state lives in memory: after a restart a producer's next batch is accepted whatever its
 * sequence (Kafka restores it from snapshots), so a retry that crosses a restart can duplicate.
 */

/** Kafka keeps the metadata of the last five batches per producer and partition. */
const rememberedBatches = 5;

interface BatchEntry {
  firstSequence: number;
  lastSequence: number;
  baseOffset: Promise<number>;
}

interface PartitionState {
  lastSequence: number;
  batches: BatchEntry[];
}

interface ProducerState {
  epoch: number;
  partitions: Map<string, PartitionState>;
  lastUsedMs: number;
}

export type SequenceCheck =
  | { kind: 'append'; record: (baseOffset: Promise<number>) => void }
  | { kind: 'duplicate'; baseOffset: Promise<number> }
  | { kind: 'error'; errorCode: number; message: string };

/** Producer ids unused this long are forgotten (Kafka: transactional.id.expiration.ms, 7 days). */
const producerIdleMs = 7 * 24 * 3600_000;

export class ProducerStates {
  readonly #producers = new Map<number, ProducerState>();
  #nextId: number;

  constructor() {
    // Ids must not collide with ones handed out before a restart (whose state is gone): start
    // from the clock in microseconds, far below 2^53.
    this.#nextId = Date.now() * 1000;
  }

  /** InitProducerId: a new id with epoch 0, or the same id with the next epoch (KIP-360). */
  init(producerId: number, epoch: number): { producerId: number; epoch: number } {
    if (producerId >= 0) {
      const state = this.#producers.get(producerId);
      if (state !== undefined && state.epoch === epoch) {
        state.epoch++;
        state.partitions.clear();
        return { producerId, epoch: state.epoch };
      }
    }
    const id = this.#nextId++;
    this.#remember(id, { epoch: 0, partitions: new Map(), lastUsedMs: Date.now() });
    return { producerId: id, epoch: 0 };
  }

  #remember(id: number, state: ProducerState): void {
    this.#producers.delete(id);
    this.#producers.set(id, state);
    const now = Date.now();
    for (const [oldId, old] of this.#producers) {
      if (this.#producers.size <= limits.kafkaProducersMax && now - old.lastUsedMs < producerIdleMs) break;
      this.#producers.delete(oldId);
    }
  }

  /**
   * Checks a batch's sequence synchronously, in the order batches arrive, so appends started right
   * after keep that order. On `append` call `record` with the promise of the batch's base offset.
   */
  check(
    producerId: number,
    epoch: number,
    partitionKey: string,
    baseSequence: number,
    count: number,
  ): SequenceCheck {
    let state = this.#producers.get(producerId);
    if (state === undefined) {
      state = { epoch, partitions: new Map(), lastUsedMs: Date.now() };
      this.#remember(producerId, state);
    }
    state.lastUsedMs = Date.now();
    if (epoch < state.epoch) {
      return {
        kind: 'error',
        errorCode: errorCodes.INVALID_PRODUCER_EPOCH,
        message: `producer ${producerId} epoch ${epoch} is older than ${state.epoch}`,
      };
    }
    if (epoch > state.epoch) {
      state.epoch = epoch;
      state.partitions.clear();
    }
    const lastSequence = (baseSequence + count - 1) % 2 ** 31;
    const partition = state.partitions.get(partitionKey);
    if (partition !== undefined) {
      const duplicate = partition.batches.find(
        (b) => b.firstSequence === baseSequence && b.lastSequence === lastSequence,
      );
      if (duplicate !== undefined) return { kind: 'duplicate', baseOffset: duplicate.baseOffset };
      const expected = (partition.lastSequence + 1) % 2 ** 31;
      if (baseSequence !== expected) {
        return {
          kind: 'error',
          errorCode: errorCodes.OUT_OF_ORDER_SEQUENCE_NUMBER,
          message: `producer ${producerId} sent sequence ${baseSequence} to ${partitionKey}, expected ${expected}`,
        };
      }
    }
    return {
      kind: 'append',
      record: (baseOffset) => {
        let p = state.partitions.get(partitionKey);
        if (p === undefined) state.partitions.set(partitionKey, (p = { lastSequence: -1, batches: [] }));
        p.lastSequence = lastSequence;
        p.batches.push({ firstSequence: baseSequence, lastSequence, baseOffset });
        if (p.batches.length > rememberedBatches) p.batches.shift();
        // A failed append leaves no records: forget the sequence so the producer's retry is taken.
        baseOffset.catch(() => state.partitions.delete(partitionKey));
      },
    };
  }
}
