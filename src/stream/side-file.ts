/**
 * A file beside a job's checkpoints that a checkpoint names by length, so a checkpoint writes
 * only what changed since the previous one instead of everything it covers: the lake sink's
 * spill file (lake-spill.ts) and the keyed state changelog (state-changelog.ts).
 *
 * `<dir>/<stem><generation, 6 digits><extension>` holds UTF-8 lines. A checkpoint appends lines,
 * fsyncs the file before its manifest is written and records `{ file, bytes }`; a restore reads
 * the file up to `bytes` and cuts off what a run that died before its next checkpoint appended.
 * When most lines are dead the owner starts a new generation holding only the live ones; older
 * generations are deleted once a checkpoint naming the new one is durable (`collect`), and on
 * restore.
 */
import { constants } from 'node:fs';
import { open, readdir, readFile, rm, truncate } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDirectory, TributaryError } from '../core/index.js';

/** What a checkpoint records of a side file. */
export interface SideFileRef {
  /** File name inside the checkpoint directory. */
  file: string;
  /** Length the checkpoint covers; later bytes are not part of it. */
  bytes: number;
}

/** Bytes of lines encoded before each write (one reused buffer). */
const chunkBytes = 1 << 20;

export class CheckpointSideFile {
  readonly #dir: string;
  readonly #stem: string;
  readonly #extension: string;
  /** What the file is, for error messages ("lake sink spill file"). */
  readonly #what: string;
  #generation = 0;
  #bytes = 0;
  #lines = 0;
  /** Whether the current generation's file exists (its directory entry fsync'd). */
  #created = false;

  constructor(dir: string, stem: string, extension: string, what: string) {
    this.#dir = dir;
    this.#stem = stem;
    this.#extension = extension;
    this.#what = what;
  }

  /** Lines in the current generation (live and dead): the owner's measure for starting a new one. */
  get lines(): number {
    return this.#lines;
  }

  #name(generation: number): string {
    return `${this.#stem}${String(generation).padStart(6, '0')}${this.#extension}`;
  }

  #generationOf(name: string): number | null {
    if (!name.startsWith(this.#stem) || !name.endsWith(this.#extension)) return null;
    const digits = name.slice(this.#stem.length, -this.#extension.length);
    return /^\d+$/.test(digits) ? Number(digits) : null;
  }

  /**
   * The bytes `ref` covers of the file it names (later bytes are cut off the file); every other
   * generation is deleted. Null `ref`: nothing was written, all generations are deleted.
   */
  async read(ref: SideFileRef | null): Promise<Buffer | null> {
    const keep = ref === null ? null : this.#generationOf(ref.file);
    if (ref !== null && keep === null)
      throw new TributaryError(
        'CORRUPT_DATA',
        `${this.#what} name ${JSON.stringify(ref.file)} is not one of its own`,
      );
    await this.collect(ref);
    if (ref === null || keep === null) return null;
    const file = path.join(this.#dir, ref.file);
    let data: Buffer;
    try {
      data = await readFile(file);
    } catch (error) {
      throw new TributaryError('CORRUPT_DATA', `${this.#what} ${file} named by the checkpoint is missing`, {
        cause: error,
      });
    }
    if (data.length < ref.bytes)
      throw new TributaryError(
        'CORRUPT_DATA',
        `${this.#what} ${file} holds ${data.length} bytes; the checkpoint covers ${ref.bytes}`,
      );
    if (data.length > ref.bytes) await truncate(file, ref.bytes);
    const covered = data.subarray(0, ref.bytes);
    let lines = 0;
    for (let at = covered.indexOf(0x0a); at >= 0; at = covered.indexOf(0x0a, at + 1)) lines++;
    this.#generation = keep;
    this.#bytes = ref.bytes;
    this.#lines = lines;
    this.#created = true;
    return covered;
  }

  /** Where the file named by a checkpoint is, for error messages about its content. */
  pathOf(ref: SideFileRef): string {
    return path.join(this.#dir, ref.file);
  }

  /**
   * The lines of `data` (as `read` returned it for `ref`) in the owners' shape, `<head>\t<body>`:
   * each line's byte offsets, its head ending at `tab`, its body running to `end`.
   */
  *tabbedLines(data: Buffer, ref: SideFileRef): Generator<{ start: number; tab: number; end: number }> {
    for (let start = 0; start < data.length;) {
      let end = data.indexOf(0x0a, start);
      if (end < 0) end = data.length;
      const tab = data.indexOf(0x09, start);
      if (tab < 0 || tab > end)
        throw new TributaryError(
          'CORRUPT_DATA',
          `${this.#what} ${this.pathOf(ref)}: line at byte ${start} has no tab after its head`,
        );
      yield { start, tab, end };
      start = end + 1;
    }
  }

  /**
   * Appends `lines` (each ending in `\n`) to the current generation, or writes them as a new
   * generation when `fresh`, fsyncs, and returns what the checkpoint records.
   */
  async append(lines: Iterable<string>, fresh: boolean): Promise<SideFileRef> {
    if (fresh) {
      this.#generation++;
      this.#bytes = 0;
      this.#lines = 0;
      this.#created = false;
    }
    const name = this.#name(this.#generation);
    const handle = await open(
      path.join(this.#dir, name),
      constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND,
      0o644,
    );
    let written = 0;
    let count = 0;
    try {
      // Lines are encoded into one reused chunk and written as it fills: a checkpoint's new lines
      // are often hundreds of thousands (tens of MB), and joining them into one string, then one
      // Buffer, cost more than encoding them and touched that much fresh memory every checkpoint.
      const chunk = Buffer.allocUnsafe(chunkBytes);
      let used = 0;
      const writeOut = async (bytes: Buffer, length: number) => {
        for (let at = 0; at < length;) at += (await handle.write(bytes, at, length - at)).bytesWritten;
        written += length;
      };
      for (const line of lines) {
        count++;
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
    this.#lines += count;
    return { file: name, bytes: this.#bytes };
  }

  /** What the checkpoint records when nothing was appended since the last one. */
  current(): SideFileRef {
    return { file: this.#name(this.#generation), bytes: this.#bytes };
  }

  /**
   * Deletes the generations other than the one `ref` names (all of them for null): call it once
   * a checkpoint naming `ref` is durable.
   */
  async collect(ref: SideFileRef | null): Promise<void> {
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
