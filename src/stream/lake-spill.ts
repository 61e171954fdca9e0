/**
 * Where a lake sink keeps the rows of its open partition buffers across checkpoints, so that a
 * checkpoint costs the rows that arrived since the previous one, not every row still buffered.
 *
 * Spill file, `<checkpoint dir>/lake-sink-<sink index>.<generation>.spill`, UTF-8 lines:
 *
 *   <buffer id>\t<row as JSON>\n
 *
 * At each checkpoint the sink appends the rows its open buffers got since the previous one and
 * fsyncs the file before the checkpoint manifest is written. The checkpoint names the file, its
 * length in bytes and every open buffer's id and row count (see `LakeSinkState` in sinks.ts); a
 * restore reads the file up to that length and keeps the lines of those ids, in file order (a line
 * of a buffer rolled since is dead). When dead lines outnumber live rows, the next checkpoint
 * writes a new generation holding only the live rows. Lengths, generations and their collection
 * are side-file.ts's.
 */
import { TributaryError } from '../core/index.js';
import { CheckpointSideFile, type SideFileRef } from './side-file.js';

/** What a checkpoint records of the spill file. */
export type SpillRef = SideFileRef;

/** A buffer's rows as the spill sees them: `spilled` rows of `rows` are in the file already. */
export interface SpillBuffer {
  id: number;
  rows: Record<string, unknown>[];
  spilled: number;
}

/** Live rows under this many never trigger a rewrite (small files are cheap to keep). */
const rewriteSlackLines = 10_000;

export class LakeSpill {
  readonly #file: CheckpointSideFile;

  constructor(dir: string, sinkIndex: number) {
    this.#file = new CheckpointSideFile(dir, `lake-sink-${sinkIndex}.`, '.spill', 'lake sink spill file');
  }

  /**
   * Rows of the buffers `wanted` (id → row count) from the file `ref` names, cut to its length;
   * every other generation of this sink is deleted. Null `ref`: nothing spilled, all deleted.
   */
  async restore(
    ref: SpillRef | null,
    wanted: ReadonlyMap<number, number>,
  ): Promise<Map<number, Record<string, unknown>[]>> {
    const rows = new Map<number, Record<string, unknown>[]>();
    const data = await this.#file.read(ref);
    if (ref === null || data === null) return rows;
    const file = this.#file.pathOf(ref);
    for (const id of wanted.keys()) rows.set(id, []);
    for (const { start, tab, end } of this.#file.tabbedLines(data, ref)) {
      const target = rows.get(Number(data.toString('latin1', start, tab)));
      if (target !== undefined)
        target.push(JSON.parse(data.toString('utf8', tab + 1, end)) as Record<string, unknown>);
    }
    for (const [id, count] of wanted) {
      const found = rows.get(id)!.length;
      if (found !== count)
        throw new TributaryError(
          'CORRUPT_DATA',
          `lake sink spill file ${file}: buffer ${id} has ${found} rows, the checkpoint says ${count}`,
        );
    }
    return rows;
  }

  /**
   * Makes every row of `buffers` durable in the spill file (appending what is new, or rewriting
   * the live rows into a new generation when dead lines dominate) and returns what the checkpoint
   * records; null when no buffer holds rows.
   */
  async write(buffers: readonly SpillBuffer[]): Promise<SpillRef | null> {
    let live = 0;
    let fresh = 0;
    for (const buffer of buffers) {
      live += buffer.rows.length;
      fresh += buffer.rows.length - buffer.spilled;
    }
    if (live === 0) return null;
    const rewrite = this.#file.lines + fresh > 2 * live + rewriteSlackLines;
    if (rewrite) for (const buffer of buffers) buffer.spilled = 0;
    if (fresh === 0 && !rewrite) return this.#file.current();
    const ref = await this.#file.append(linesOf(buffers), rewrite);
    for (const buffer of buffers) buffer.spilled = buffer.rows.length;
    return ref;
  }

  /**
   * Deletes this sink's spill files other than the one `ref` names (all of them for null): call it
   * once a checkpoint naming `ref` is durable.
   */
  collect(ref: SpillRef | null): Promise<void> {
    return this.#file.collect(ref);
  }
}

/** The spill lines of the rows each buffer got since it was last spilled. */
function* linesOf(buffers: readonly SpillBuffer[]): Generator<string> {
  for (const buffer of buffers) {
    const prefix = `${buffer.id}\t`;
    for (let i = buffer.spilled; i < buffer.rows.length; i++)
      yield `${prefix}${JSON.stringify(buffer.rows[i])}\n`;
  }
}
