/**
 * Incremental checkpoints of a `process` step's keyed state: instead of every key's state in
 * every checkpoint (a de-duplication over millions of ids re-encoded its whole seen-set every
 * couple of seconds), each checkpoint appends the keys changed since the previous one to a
 * changelog beside it, and the checkpoint names the changelog by length (side-file.ts).
 *
 * `<checkpoint dir>/keyed-state-<process step index>.<generation>.changelog`, UTF-8 lines:
 *
 *   <key as JSON>\t<the key's state as JSON>\n      (written or changed)
 *   <key as JSON>\t\n                              (deleted, e.g. expired by TTL)
 *
 * A restore replays the lines up to the checkpoint's length, the last line of a key winning, and
 * checks the number of keys against the checkpoint's. When dead lines outnumber live keys, the
 * next checkpoint writes a new generation holding only the live keys.
 */
import { TributaryError } from '../core/index.js';
import { CheckpointSideFile, type SideFileRef } from './side-file.js';
import type { KeyedStateSnapshot, KeyState, ProcessOperator } from './state.js';
import type { Key } from './types.js';

export type ChangelogRef = NonNullable<KeyedStateSnapshot['changelog']>;

/** Live keys under this many never trigger a rewrite (small files are cheap to keep). */
const rewriteSlackLines = 10_000;

export class KeyedStateChangelog {
  readonly #file: CheckpointSideFile;

  constructor(dir: string, processIndex: number) {
    this.#file = new CheckpointSideFile(
      dir,
      `keyed-state-${processIndex}.`,
      '.changelog',
      'keyed state changelog',
    );
  }

  /**
   * Every key's state from the changelog `snapshot` names; every other generation is deleted.
   * A snapshot without a changelog (an older checkpoint, or no keys) keeps its own `keys`.
   */
  async restore(snapshot: KeyedStateSnapshot | null): Promise<[Key, KeyState][]> {
    const ref = snapshot?.changelog ?? null;
    const data = await this.#file.read(ref);
    if (ref === null || data === null) return snapshot?.keys ?? [];
    const file = this.#file.pathOf(ref);
    const state = new Map<Key, KeyState>();
    for (const { start, tab, end } of this.#file.tabbedLines(data, ref)) {
      try {
        const key = JSON.parse(data.toString('utf8', start, tab)) as Key;
        if (tab + 1 === end) state.delete(key);
        else state.set(key, JSON.parse(data.toString('utf8', tab + 1, end)) as KeyState);
      } catch (error) {
        throw new TributaryError(
          'CORRUPT_DATA',
          `keyed state changelog ${file}: line at byte ${start} is not JSON`,
          {
            cause: error,
          },
        );
      }
    }
    if (state.size !== ref.keys)
      throw new TributaryError(
        'CORRUPT_DATA',
        `keyed state changelog ${file} holds ${state.size} keys; the checkpoint says ${ref.keys}`,
      );
    return [...state];
  }

  /**
   * Makes the step's state durable: appends the keys changed since the last call (or writes every
   * live key into a new generation when dead lines dominate, or the changelog is empty) and
   * returns what the checkpoint records; null when the step holds no keys.
   */
  async write(step: ProcessOperator): Promise<ChangelogRef | null> {
    const live = step.stateSize();
    if (live === 0) {
      step.clearChanges();
      return null;
    }
    const changed = step.changedKeys;
    const lines = this.#file.lines;
    const rewrite = lines === 0 || lines + changed > 2 * live + rewriteSlackLines;
    let ref: SideFileRef;
    if (rewrite) ref = await this.#file.append(lineOfEach(step.entries()), true);
    else if (changed > 0) ref = await this.#file.append(lineOfEach(step.changes()), false);
    else ref = this.#file.current();
    step.clearChanges();
    return { ...ref, keys: live };
  }

  /** Deletes the generations the checkpoint just made durable does not name. */
  collect(ref: ChangelogRef | null): Promise<void> {
    return this.#file.collect(ref);
  }
}

function* lineOfEach(entries: Iterable<[Key, KeyState | undefined]>): Generator<string> {
  for (const [key, state] of entries)
    yield state === undefined
      ? `${JSON.stringify(key)}\t\n`
      : `${JSON.stringify(key)}\t${JSON.stringify(state)}\n`;
}
