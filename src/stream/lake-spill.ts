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
 * of a buffer rolled since is dead). Bytes past the length, appended by a run that died before its
 * next checkpoint, are cut off. When dead lines outnumber live rows, the next checkpoint writes a
 * new generation holding only the live rows; the older generations are deleted once a checkpoint
 * naming the new one is durable (`collect`, from the sink's commit), and on restore.
 */
import { constants } from 'node:fs';
import { open, readdir, readFile, rm, truncate } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDirectory, TributaryError } from '../core/index.js';

/** What a checkpoint records of the spill file. */
export interface SpillRef {
  /** File name inside the checkpoint directory. */
  file: string;
  /** Length the checkpoint covers; later bytes are not part of it. */
  bytes: number;
}

/** A buffer's rows as the spill sees them: `spilled` rows of `rows` are in the file already. */
export interface SpillBuffer {
  id: number;
  rows: Record<string, unknown>[];
  spilled: number;
}

/** Live rows under this many never trigger a rewrite (small files are cheap to keep). */
const rewriteSlackLines = 10_000;

/** Bytes of spill lines encoded before each write (one reused buffer). */
const spillChunkBytes = 1 << 20;

export class LakeSpill {
  readonly #dir: string;
  readonly #stem: string;
  #generation = 0;
  #bytes = 0;
  #lines = 0;
  /** Whether the current generation's file exists (its directory entry fsync'd). */
  #created = false;

  constructor(dir: string, sinkIndex: number) {
    this.#dir = dir;
    this.#stem = `lake-sink-${sinkIndex}.`;
  }

  #name(generation: number): string {
    return `${this.#stem}${String(generation).padStart(6, '0')}.spill`;
  }

  #generationOf(name: string): number | null {
    if (!name.startsWith(this.#stem) || !name.endsWith('.spill')) return null;
    const digits = name.slice(this.#stem.length, -'.spill'.length);
    return /^\d+$/.test(digits) ? Number(digits) : null;
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
    const keep = ref === null ? null : this.#generationOf(ref.file);
    if (ref !== null && keep === null)
      throw new TributaryError(
        'CORRUPT_DATA',
        `lake sink spill file name ${JSON.stringify(ref.file)} is not one of its own`,
      );
    await this.collect(ref);
    if (ref === null || keep === null) return rows;
    const file = path.join(this.#dir, ref.file);
    let data: Buffer;
    try {
      data = await readFile(file);
    } catch (error) {
      throw new TributaryError(
        'CORRUPT_DATA',
        `lake sink spill file ${file} named by the checkpoint is missing`,
        {
          cause: error,
        },
      );
    }
    if (data.length < ref.bytes)
      throw new TributaryError(
        'CORRUPT_DATA',
        `lake sink spill file ${file} holds ${data.length} bytes; the checkpoint covers ${ref.bytes}`,
      );
    if (data.length > ref.bytes) await truncate(file, ref.bytes);
    for (const id of wanted.keys()) rows.set(id, []);
    let lines = 0;
    for (let start = 0; start < ref.bytes;) {
      let end = data.indexOf(0x0a, start);
      if (end < 0 || end >= ref.bytes) end = ref.bytes;
      const tab = data.indexOf(0x09, start);
      if (tab < 0 || tab > end)
        throw new TributaryError(
          'CORRUPT_DATA',
          `lake sink spill file ${file}: line at byte ${start} has no buffer id`,
        );
      const target = rows.get(Number(data.toString('latin1', start, tab)));
      if (target !== undefined)
        target.push(JSON.parse(data.toString('utf8', tab + 1, end)) as Record<string, unknown>);
      lines++;
      start = end + 1;
    }
    for (const [id, count] of wanted) {
      const found = rows.get(id)!.length;
      if (found !== count)
        throw new TributaryError(
          'CORRUPT_DATA',
          `lake sink spill file ${file}: buffer ${id} has ${found} rows, the checkpoint says ${count}`,
        );
    }
    this.#generation = keep;
    this.#bytes = ref.bytes;
    this.#lines = lines;
    this.#created = true;
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
    const rewrite = this.#lines + fresh > 2 * live + rewriteSlackLines;
    if (rewrite) {
      this.#generation++;
      this.#bytes = 0;
      this.#lines = 0;
      this.#created = false;
      for (const buffer of buffers) buffer.spilled = 0;
    }
    const name = this.#name(this.#generation);
    if (fresh > 0 || rewrite) {
      const handle = await open(
        path.join(this.#dir, name),
        constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND,
        0o644,
      );
      let written = 0;
      try {
        // Lines are encoded into one reused chunk and written as it fills: the new rows of a
        // checkpoint are often hundreds of thousands (tens of MB of JSON), and joining them into
        // one string, then one Buffer, cost more than encoding them and touched that much fresh
        // memory at every checkpoint.
        const chunk = Buffer.allocUnsafe(spillChunkBytes);
        let used = 0;
        const writeOut = async (bytes: Buffer, length: number) => {
          for (let at = 0; at < length;) at += (await handle.write(bytes, at, length - at)).bytesWritten;
          written += length;
        };
        for (const buffer of buffers) {
          const prefix = `${buffer.id}\t`;
          for (let i = buffer.spilled; i < buffer.rows.length; i++) {
            const line = `${prefix}${JSON.stringify(buffer.rows[i])}\n`;
            // UTF-8 takes at most 3 bytes per UTF-16 code unit.
            if (used + line.length * 3 > chunk.length) {
              await writeOut(chunk, used);
              used = 0;
              if (line.length * 3 > chunk.length) {
                const bytes = Buffer.from(line, 'utf8');
                await writeOut(bytes, bytes.length);
                continue;
              }
            }
            used += chunk.write(line, used, 'utf8');
          }
          this.#lines += buffer.rows.length - buffer.spilled;
          buffer.spilled = buffer.rows.length;
        }
        await writeOut(chunk, used);
        await handle.sync();
      } finally {
        await handle.close();
      }
      if (!this.#created) {
        await fsyncDirectory(this.#dir);
        this.#created = true;
      }
      this.#bytes += written;
    }
    return { file: name, bytes: this.#bytes };
  }

  /**
   * Deletes this sink's spill files other than the one `ref` names (all of them for null): call it
   * once a checkpoint naming `ref` is durable.
   */
  async collect(ref: SpillRef | null): Promise<void> {
    const keep = ref === null ? null : this.#generationOf(ref.file);
    let names: string[];
    try {
      names = await readdir(this.#dir);
    } catch {
      return;
    }
    for (const name of names) {
      const generation = this.#generationOf(name);
      if (generation !== null && generation !== keep) await rm(path.join(this.#dir, name), { force: true });
    }
    if (keep === null) {
      this.#bytes = 0;
      this.#lines = 0;
      this.#created = false;
    }
  }
}
