import { describe, expect, it } from 'vitest';
import { createMemoryLog, type Log } from '../../src/log/index.js';

/** One source under the shared contract: put records where it reads them, run it once. */
export interface SourceUnderTest {
  /** Makes `records` (JSON object texts) available to the source through its own medium. */
  offer(records: Record<string, unknown>[]): Promise<void>;
  /** Runs the source once (a poll, a request…) into `topic` of `log`. */
  runOnce(): Promise<void>;
  close(): Promise<void>;
}

export type SourceFactory = (log: Log, topic: string) => Promise<SourceUnderTest>;

async function topicObjects(log: Log, topic: string): Promise<Record<string, unknown>[]> {
  if (!(await log.listTopics()).includes(topic)) return [];
  const description = await log.describeTopic(topic);
  const out: Record<string, unknown>[] = [];
  for (const p of description.partitions) {
    const records = await log.fetch(topic, p.partition, p.startOffset, { maxRecords: 100_000 });
    out.push(
      ...records.map((r) => JSON.parse(Buffer.from(r.value!).toString('utf8')) as Record<string, unknown>),
    );
  }
  return out.sort((a, b) => Number(a.id) - Number(b.id));
}

/**
 * The connector contract every source meets: what it is offered reaches the topic exactly once and
 * unchanged (keys, unicode, nesting), running it again without new input adds nothing, and new
 * input after that is delivered too.
 */
export function sourceContract(name: string, factory: SourceFactory): void {
  describe(`source contract: ${name}`, () => {
    it('delivers offered records exactly once and unchanged; a re-run adds nothing; later input flows', async () => {
      const log = createMemoryLog();
      const source = await factory(log, 'contract');
      try {
        const first = Array.from({ length: 25 }, (_, i) => ({
          id: i,
          text: `héllo ${i} "quoted", comma`,
          nested: { n: i, tags: ['a', 'b'] },
        }));
        await source.offer(first);
        await source.runOnce();
        expect(await topicObjects(log, 'contract')).toEqual(first);
        await source.runOnce();
        expect(await topicObjects(log, 'contract')).toEqual(first);
        const second = [{ id: 100, text: 'later', nested: { n: 100, tags: [] } }];
        await source.offer(second);
        await source.runOnce();
        expect(await topicObjects(log, 'contract')).toEqual([...first, ...second]);
      } finally {
        await source.close();
      }
    });
  });
}
