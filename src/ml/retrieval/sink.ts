import type { Sink } from '../../stream/index.js';
import type { IndexRecord } from '../index/hybrid.js';
import type { IndexWriter } from './store.js';

/**
 * A stream-job sink that feeds a retrieval index: records are upserted after every input batch
 * (searchable at once in this process) and the index is saved before each checkpoint is
 * recorded, so a restart from that checkpoint never finds the index behind its input. Upserts
 * are by id, so the batch a restart replays replaces itself instead of duplicating.
 *
 * `toRecord` maps a job's value to what the writer takes: `{id, text, metadata}` for a
 * `RetrievalIndex` (which chunks long texts when built with `chunk`).
 *
 * @example
 * stream('reviews.index').from(log, { topics: ['reviews.clean'] })
 *   .to(indexSink(reviewsIndex, (r: Review) => ({ id: r.review_id, text: r.text, metadata: { product: r.product } })));
 */
export function indexSink<T, R = IndexRecord>(
  writer: IndexWriter<R>,
  toRecord: (value: T) => R,
  name = 'index',
): Sink<T> {
  let buffer: R[] = [];
  const flush = async () => {
    if (buffer.length === 0) return;
    const out = buffer;
    buffer = [];
    await writer.upsert(out);
  };
  return {
    name,
    async open() {},
    write(value) {
      buffer.push(toRecord(value));
    },
    // Upserts are by the record's own id; the engine's output ids are not needed.
    usesIds: false,
    flush,
    async preCommit() {
      await flush();
      await writer.save();
      return null;
    },
    async commit() {},
    async close() {
      await flush();
      await writer.save();
    },
  };
}
