import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, readFile, realpath, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import {
  childLogger,
  counter,
  systemClock,
  toTributaryError,
  TributaryError,
  writeFileAtomic,
  type Clock,
  type Logger,
} from '../../core/index.js';
import { quoteLiteral, type Lake, type LakeTable, type PendingFiles } from '../../lake/index.js';
import type { Log, ProducerRecord } from '../../log/index.js';
import { decodeFile, decodeFileBatches, formatFromName, type RecordFormat } from '../formats/decode.js';
import { spoolOptionsSchema, type SpoolOptions, type SpoolOptionsInput } from './options.js';
import { checkConnectorOptions } from '../options-check.js';

const recordsCounter = counter('tributary_spool_records_total', 'Records appended by spool sources', [
  'topic',
]);
const filesCounter = counter('tributary_spool_files_total', 'Files finished by spool sources', [
  'topic',
  'outcome',
]);

/** Header names every spool record carries; `record-id` is deterministic (file id + index). */
export const spoolHeaders = {
  recordId: 'tributary.record-id',
  file: 'tributary.file',
  /** 1-based line of the file the record starts on (so a row can be traced to its source line). */
  line: 'tributary.line',
  /** With `badRecords: 'forward'`: why the record could not be decoded. */
  decodeError: 'tributary.decode-error',
} as const;

/** What identifies one file version: a new version with the same name is a different file. */
export interface FileIdentity {
  size: number;
  mtimeMs: number;
  ino: number;
  /** sha256 (hex) of the first KiB. */
  headSha256: string;
}

interface PendingBatch {
  /** Records [from, to) were being appended. */
  from: number;
  to: number;
  /** End offset of every partition before that append; recovery scans from here. */
  endOffsets: Record<string, number>;
}

interface CurrentFile {
  name: string;
  fileId: string;
  identity: FileIdentity;
  recordsDone: number;
  pending: PendingBatch | null;
  delivered: boolean;
}

/**
 * Spool state file, JSON, replaced atomically (write temp + fsync + rename + fsync dir):
 *
 *   { "version": 1,
 *     "current": null | { "name", "fileId", "identity": {size, mtimeMs, ino, headSha256},
 *                         "recordsDone", "pending": null | {from, to, endOffsets: {partition: offset}},
 *                         "delivered" },
 *     "completed": [[name, fileId], ...] }      // oldest first, at most completedNamesMax
 *
 * Exactly-once resume: before each append the state records the batch range and the topic's end
 * offsets (write-ahead). After a crash, the records of that batch that reached the log are found
 * by their deterministic `tributary.record-id` header at or after those offsets, and only the
 * missing ones are appended again. Records before `from` are known to be in the log.
 */
interface SpoolState {
  version: 1;
  current: CurrentFile | null;
  completed: [string, string][];
}

export interface SpoolFileOutcome {
  name: string;
  outcome: 'completed' | 'failed';
  records: number;
  reason?: string;
}

export interface SpoolPollReport {
  files: SpoolFileOutcome[];
  /** Files seen but not yet stable (still being written). */
  waiting: string[];
  records: number;
}

/** One complete file handed whole to `SpoolSourceDeps.deliverFile`. */
export interface SpoolFile {
  name: string;
  /** Absolute path; the file does not change while it is handed over (else it is refused). */
  path: string;
  /** Stable id of this file version (name, size, mtime, inode), for idempotent handlers. */
  fileId: string;
  sizeBytes: number;
}

export interface SpoolSourceDeps {
  /**
   * Whole-file delivery: instead of decoding records, each complete file is handed to this
   * function (any format: PDFs, images). It resolves to the records it produced; a TributaryError
   * of the user domain (bad input) refuses the file to failed/ with its message, anything else is
   * retried next round. At least once: a crash after it returned and before the file is marked
   * delivered hands the same file (same `fileId`) over again.
   */
  deliverFile?: (file: SpoolFile) => Promise<number>;
  /** Needed for a topic target. */
  log?: Log;
  /** Needed for a table target. */
  lake?: Lake;
  clock?: Clock;
  logger?: Logger;
}

const stateVersion = 1;

class FileRefused extends Error {
  constructor(
    readonly reason: string,
    readonly recordsDelivered = 0,
  ) {
    super(reason);
  }
}

/**
 * Spooling-directory source: delivers every complete file in `dir` to a topic exactly once, then
 * renames (or deletes, or moves) it. Unlike Flume's, a bad file is moved to `failed/` with a
 * `<name>.reason` file and the source carries on with the others.
 *
 * @example
 * const source = createSpoolSource({ dir: '/data/incoming', topic: 'reviews' }, { log });
 * const controller = new AbortController();
 * await source.run(controller.signal); // or `await source.poll()` once
 */
export class SpoolSource {
  readonly options: SpoolOptions;
  readonly #log: Log | null;
  readonly #lakeTable: LakeTable | null;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #deliverFile: ((file: SpoolFile) => Promise<number>) | null;
  readonly #dir: string;
  readonly #stateFile: string;
  #state: SpoolState | null = null;
  /** Last observed size/mtime per candidate and since when it has been unchanged. */
  readonly #observed = new Map<string, { size: number; mtimeMs: number; ino: number; sinceMs: number }>();
  #topicReady = false;
  /** DuckDB used to detect JSON columns; opened on demand, closed at the end of `poll()`. */
  #duck: Promise<DuckDBInstance> | null = null;

  constructor(options: SpoolOptionsInput, deps: SpoolSourceDeps) {
    this.options = checkConnectorOptions('spool source', spoolOptionsSchema, options);
    if (this.options.topic !== undefined && !deps.log)
      throw new TributaryError('USAGE', 'a spool source with a topic needs deps.log');
    if (this.options.table !== undefined && !deps.lake)
      throw new TributaryError('USAGE', 'a spool source with a table needs deps.lake');
    this.#log = this.options.topic !== undefined ? deps.log! : null;
    this.#lakeTable = this.options.table !== undefined ? deps.lake!.table(this.options.table) : null;
    this.#clock = deps.clock ?? systemClock;
    this.#deliverFile = deps.deliverFile ?? null;
    this.#dir = path.resolve(this.options.dir);
    this.#logger =
      deps.logger ??
      childLogger('spool', { dir: this.#dir, target: this.options.topic ?? this.options.table });
    this.#stateFile = this.options.stateFile ?? path.join(this.#dir, '.tributary-spool.state.json');
  }

  get #target(): string {
    return this.options.topic ?? this.options.table!;
  }

  /** Polls until `signal` aborts; errors of one round are logged and the next round retries. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let pauseMs = this.options.pollIntervalMs;
      try {
        await this.poll();
      } catch (error) {
        if (error instanceof TributaryError && error.code === 'BACKPRESSURE') {
          // The log is behind: wait as long as it asks, then resume the file where it stopped.
          pauseMs = error.retryAfterMs ?? pauseMs;
          this.#logger.debug({ retryAfterMs: pauseMs }, 'log is behind; spool pauses');
        } else {
          this.#logger.error({ err: error }, 'spool poll failed; retrying next round');
        }
      }
      try {
        await this.#clock.sleep(pauseMs, signal);
      } catch {
        return;
      }
    }
  }

  /** One scan: resumes an interrupted file, then delivers every file that is complete now. */
  async poll(): Promise<SpoolPollReport> {
    try {
      return await this.#pollOnce();
    } finally {
      const duck = this.#duck;
      this.#duck = null;
      if (duck) (await duck.catch(() => null))?.closeSync();
    }
  }

  async #pollOnce(): Promise<SpoolPollReport> {
    const report: SpoolPollReport = { files: [], waiting: [], records: 0 };
    const state = await this.#loadState();
    if (!this.#topicReady && this.#log) {
      await this.#log.ensureTopic(this.options.topic!, { partitions: 1 });
      this.#topicReady = true;
    }
    if (state.current) {
      const outcome = await this.#resumeCurrent(state);
      if (outcome) {
        report.files.push(outcome);
        report.records += outcome.records;
      }
    }
    const ready = await this.#scan(report);
    for (const name of ready) {
      const outcome = await this.#deliverNew(state, name);
      report.files.push(outcome);
      report.records += outcome.records;
    }
    return report;
  }

  /** Names of files that are complete and eligible, oldest first. Refuses bad ones on the way. */
  async #scan(report: SpoolPollReport): Promise<string[]> {
    const entries = await readdir(this.#dir, { withFileTypes: true });
    const now = this.#clock.now();
    const seen = new Set<string>();
    const ready: { name: string; mtimeMs: number }[] = [];
    for (const entry of entries) {
      const name = entry.name;
      if (!this.#isCandidateName(name) || entry.isDirectory()) continue;
      const full = path.join(this.#dir, name);
      if (entry.isSymbolicLink()) {
        const target = await realpath(full).catch(() => null);
        if (target === null || !isInside(await realpath(this.#dir), target)) {
          await this.#refuse(
            name,
            new FileRefused(`symlink ${name} points outside ${this.#dir} (or nowhere); refused`),
          );
          report.files.push({
            name,
            outcome: 'failed',
            records: 0,
            reason: 'symlink outside the spool directory',
          });
          continue;
        }
      } else if (!entry.isFile()) {
        continue;
      }
      const info = await stat(full).catch(() => null);
      if (info === null || !info.isFile()) continue;
      seen.add(name);
      const previous = this.#observed.get(name);
      if (
        !previous ||
        previous.size !== info.size ||
        previous.mtimeMs !== info.mtimeMs ||
        previous.ino !== info.ino
      ) {
        this.#observed.set(name, { size: info.size, mtimeMs: info.mtimeMs, ino: info.ino, sinceMs: now });
        if (this.options.stableMs > 0) {
          report.waiting.push(name);
          continue;
        }
      } else if (now - previous.sinceMs < this.options.stableMs) {
        report.waiting.push(name);
        continue;
      }
      ready.push({ name, mtimeMs: info.mtimeMs });
    }
    for (const name of this.#observed.keys()) if (!seen.has(name)) this.#observed.delete(name);
    ready.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return ready.map((r) => r.name);
  }

  #isCandidateName(name: string): boolean {
    if (name.startsWith('.') || name.endsWith('.tmp')) return false;
    if (this.options.onComplete === 'rename' && name.endsWith(this.options.completedSuffix)) return false;
    if (name.endsWith('.reason')) return false;
    return true;
  }

  async #deliverNew(state: SpoolState, name: string): Promise<SpoolFileOutcome> {
    const full = path.join(this.#dir, name);
    this.#observed.delete(name);
    try {
      const identity = await fileIdentity(full);
      if (identity.size === 0) throw new FileRefused('zero-byte file');
      const fileId = identityHash(name, identity);
      const reused = state.completed.find(([completedName]) => completedName === name);
      if (
        reused ||
        (this.options.onComplete === 'rename' && existsSync(full + this.options.completedSuffix))
      ) {
        throw new FileRefused(
          `file name ${name} was already delivered (file id ${reused?.[1] ?? 'unknown'}); a reused name is refused so the earlier delivery is not confused with this one`,
        );
      }
      if (this.#deliverFile === null && this.#formatOf(name) === null)
        throw new FileRefused(
          `unknown file format for ${name}; expected .txt .log .jsonl .ndjson .csv .json (optionally .gz)`,
        );
      state.current = { name, fileId, identity, recordsDone: 0, pending: null, delivered: false };
      await this.#saveState(state);
      return await this.#deliver(state, state.current, new Set());
    } catch (error) {
      return await this.#failCurrentOrNew(state, name, error);
    }
  }

  async #resumeCurrent(state: SpoolState): Promise<SpoolFileOutcome | null> {
    const current = state.current!;
    const full = path.join(this.#dir, current.name);
    try {
      const identity = await fileIdentity(full).catch(() => null);
      if (identity === null && current.delivered) {
        // Crashed after the completion rename but before the state said so: it is done.
        state.current = null;
        await this.#saveState(state);
        return { name: current.name, outcome: 'completed', records: current.recordsDone };
      }
      if (identity === null) {
        // The file went away under us (deleted by an operator); nothing left to deliver.
        this.#logger.warn(
          { file: current.name, recordsDone: current.recordsDone },
          'in-progress spool file disappeared',
        );
        state.current = null;
        await this.#saveState(state);
        return null;
      }
      if (!sameIdentity(identity, current.identity)) {
        throw new FileRefused(
          `file was modified after pickup (${describeChange(current.identity, identity)})`,
          current.recordsDone,
        );
      }
      if (current.delivered) return await this.#complete(state, current, current.recordsDone);
      const already = current.pending
        ? await this.#recoverPending(current.fileId, current.pending)
        : new Set<number>();
      return await this.#deliver(state, current, already);
    } catch (error) {
      return await this.#failCurrentOrNew(state, current.name, error);
    }
  }

  /** Which records of the interrupted batch reached the log (found by their record-id header). */
  async #recoverPending(fileId: string, pending: PendingBatch): Promise<Set<number>> {
    const found = new Set<number>();
    const log = this.#log!;
    const topic = this.options.topic!;
    const description = await log.describeTopic(topic);
    const prefix = `${fileId}:`;
    for (const partition of description.partitions) {
      let offset = Math.max(pending.endOffsets[String(partition.partition)] ?? 0, partition.startOffset);
      while (offset < partition.endOffset) {
        const records = await log.fetch(topic, partition.partition, offset, { maxRecords: 10_000 });
        if (records.length === 0) break;
        for (const record of records) {
          const id = record.headers[spoolHeaders.recordId];
          if (!id) continue;
          const text = Buffer.from(id).toString('utf8');
          if (text.startsWith(prefix)) found.add(Number(text.slice(prefix.length)));
        }
        offset = records[records.length - 1].offset + 1;
      }
    }
    return found;
  }

  #formatOf(name: string): { format: RecordFormat; gzip: boolean } | null {
    const byName = formatFromName(name);
    if (this.options.format === 'auto') return byName;
    return { format: this.options.format, gzip: name.toLowerCase().endsWith('.gz') };
  }

  async #deliver(
    state: SpoolState,
    current: CurrentFile,
    alreadyInLog: Set<number>,
  ): Promise<SpoolFileOutcome> {
    const full = path.join(this.#dir, current.name);
    if (this.#deliverFile !== null) return this.#deliverWhole(state, current, this.#deliverFile);
    const format = this.#formatOf(current.name);
    if (format === null)
      throw new FileRefused(`unknown file format for ${current.name}`, current.recordsDone);
    if (this.#lakeTable) return this.#deliverToLake(state, current, this.#lakeTable, format);
    const log = this.#log!;
    const topic = this.options.topic!;
    const keyFields = this.options.keyField?.split(',').map((f) => f.trim());
    const fileHeader = Buffer.from(current.name);
    const resumeFrom = current.pending ? current.pending.from : current.recordsDone;
    let batch: ProducerRecord[] = [];
    let batchBytes = 0;
    let batchFrom = resumeFrom;
    let next = resumeFrom;
    let appended = 0;

    // After a recovery, the first batch keeps the interrupted batch's offsets: its range starts at
    // the old `from`, and records of it that reached the log before the crash sit before today's
    // end offsets, so a second crash must still scan from where the first batch began.
    let carriedOffsets =
      current.pending !== null && alreadyInLog.size > 0 ? current.pending.endOffsets : null;
    const flush = async () => {
      let endOffsets: Record<string, number> = {};
      if (carriedOffsets !== null) {
        endOffsets = carriedOffsets;
        carriedOffsets = null;
      } else {
        const description = await log.describeTopic(topic);
        for (const p of description.partitions) endOffsets[String(p.partition)] = p.endOffset;
      }
      current.recordsDone = batchFrom;
      current.pending = { from: batchFrom, to: next, endOffsets };
      await this.#saveState(state);
      if (batch.length > 0) await log.append(batch);
      appended += batch.length;
      recordsCounter.inc({ topic }, batch.length);
      current.recordsDone = next;
      current.pending = null;
      batch = [];
      batchBytes = 0;
      batchFrom = next;
      // A cheap check between batches: size/mtime/inode changes mean the writer is not done.
      const now = await stat(full).catch(() => null);
      if (
        now === null ||
        now.size !== current.identity.size ||
        now.mtimeMs !== current.identity.mtimeMs ||
        now.ino !== current.identity.ino
      ) {
        throw new FileRefused(
          'file was modified after pickup (size, mtime or inode changed while reading)',
          current.recordsDone,
        );
      }
    };

    try {
      // Batches of records (one asynchronous step each, not one per record).
      for await (const records of decodeFileBatches(full, {
        ...format,
        name: current.name,
        parse: keyFields !== undefined,
        jsonFileBytesMax: this.options.jsonFileBytesMax,
        csvDelimiter: this.options.csvDelimiter,
        badRecords: this.options.badRecords === 'forward' ? 'yield' : 'throw',
      })) {
        for (const record of records) {
          if (record.index < resumeFrom) continue;
          next = record.index + 1;
          if (alreadyInLog.has(record.index)) continue;
          let key: string | null = null;
          if (keyFields !== undefined && record.parsed !== null && typeof record.parsed === 'object') {
            for (const field of keyFields) {
              const value = (record.parsed as Record<string, unknown>)[field];
              if (value === undefined || value === null || value === '') continue;
              key = typeof value === 'string' ? value : JSON.stringify(value);
              break;
            }
          }
          batch.push({
            topic,
            key,
            // The line's bytes as read when the decoder has them: not encoded a second time.
            value: record.bytes ?? record.value,
            headers: {
              [spoolHeaders.recordId]: `${current.fileId}:${record.index}`,
              [spoolHeaders.file]: fileHeader,
              [spoolHeaders.line]: String(record.line),
              ...(record.error === undefined ? {} : { [spoolHeaders.decodeError]: record.error }),
            },
          });
          batchBytes += record.value.length + 64;
          if (batch.length >= this.options.batchRecords || batchBytes >= this.options.batchBytes)
            await flush();
        }
      }
      if (batch.length > 0 || next > current.recordsDone) await flush();
    } catch (error) {
      // A record over its size limit refuses the file like bad bytes do (quarantined with the
      // reason naming the line), so it is not retried forever.
      if (
        error instanceof TributaryError &&
        (error.code === 'DECODE_FAILED' || error.code === 'PAYLOAD_TOO_LARGE')
      ) {
        throw new FileRefused(`undecodable: ${error.message}`, current.recordsDone);
      }
      throw error;
    }
    const finalIdentity = await fileIdentity(full).catch(() => null);
    if (finalIdentity === null || !sameIdentity(finalIdentity, current.identity)) {
      throw new FileRefused(
        `file was modified after pickup (${finalIdentity ? describeChange(current.identity, finalIdentity) : 'it disappeared'})`,
        current.recordsDone,
      );
    }
    if (current.recordsDone === 0 && appended === 0 && alreadyInLog.size === 0) {
      throw new FileRefused('file holds no records');
    }
    return this.#markDelivered(state, current);
  }

  /** Whole-file delivery (`deps.deliverFile`): the handler takes the file, then it is completed. */
  async #deliverWhole(
    state: SpoolState,
    current: CurrentFile,
    deliverFile: (file: SpoolFile) => Promise<number>,
  ): Promise<SpoolFileOutcome> {
    const full = path.join(this.#dir, current.name);
    let records: number;
    try {
      records = await deliverFile({
        name: current.name,
        path: full,
        fileId: current.fileId,
        sizeBytes: current.identity.size,
      });
    } catch (error) {
      if (error instanceof TributaryError && error.domain === 'user') throw new FileRefused(error.message);
      throw error;
    }
    const finalIdentity = await fileIdentity(full).catch(() => null);
    if (finalIdentity === null || !sameIdentity(finalIdentity, current.identity)) {
      throw new FileRefused(
        `file was modified after pickup (${finalIdentity ? describeChange(current.identity, finalIdentity) : 'it disappeared'})`,
      );
    }
    current.recordsDone = records;
    return this.#markDelivered(state, current);
  }

  async #markDelivered(state: SpoolState, current: CurrentFile): Promise<SpoolFileOutcome> {
    current.delivered = true;
    state.completed.push([current.name, current.fileId]);
    while (state.completed.length > this.options.completedNamesMax) state.completed.shift();
    await this.#saveState(state);
    return await this.#complete(state, current, current.recordsDone);
  }

  /**
   * Table target: the whole file becomes one lake commit whose id is derived from the file id, so
   * a restart after a crash re-stages the file (same deterministic file names) and the commit is
   * recognised if it already happened — exactly once without per-record positions. NDJSON, JSON
   * arrays and CSV are parsed by DuckDB straight from the file (gzip included); text files go
   * through the JS decoder as rows {line}.
   */
  async #deliverToLake(
    state: SpoolState,
    current: CurrentFile,
    table: LakeTable,
    format: { format: RecordFormat; gzip: boolean },
  ): Promise<SpoolFileOutcome> {
    const full = path.join(this.#dir, current.name);
    const stem = `spool-${current.fileId}`;
    const pendings: PendingFiles[] = [];
    const source = `spool:${current.name}`;
    try {
      if (format.format === 'txt') {
        let rows: Record<string, unknown>[] = [];
        for await (const record of decodeFile(full, { ...format, name: current.name })) {
          rows.push({ line: record.value });
          if (rows.length >= 100_000) {
            pendings.push(await table.stage(rows, { source, fileName: `${stem}-${pendings.length}` }));
            rows = [];
          }
        }
        if (rows.length > 0)
          pendings.push(await table.stage(rows, { source, fileName: `${stem}-${pendings.length}` }));
      } else {
        const literal = quoteLiteral(full);
        const compression = format.gzip ? `, compression = 'gzip'` : '';
        let reader: string;
        if (format.format === 'csv') {
          reader = `read_csv(${literal}, header = true, delim = ${quoteLiteral(this.options.csvDelimiter)}${compression})`;
        } else {
          const json = `${literal}, format = '${format.format === 'json' ? 'array' : 'newline_delimited'}'${compression}`;
          // DuckDB detects the columns from a sample once, here; the staging query then names
          // them, so the lake's describe passes and the COPY skip detection (it was more than
          // half of the staging time for NDJSON) while the types are exactly what it detects.
          const columns = await this.#describe(`SELECT * FROM read_json(${json})`);
          const list = columns.map((c) => `${quoteLiteral(c.name)}: ${quoteLiteral(c.type)}`).join(', ');
          reader = `read_json(${json}, columns = {${list}})`;
        }
        pendings.push(await table.stageQuery(`SELECT * FROM ${reader}`, { source, fileName: stem }));
      }
    } catch (error) {
      for (const pending of pendings) await table.abort(pending).catch(() => undefined);
      const failure = error as Error & { code?: string };
      // Transient failures propagate (the next round retries); anything about the file's content
      // (DuckDB parse errors, schema mismatches) refuses the file.
      if (
        failure instanceof TributaryError &&
        ['IO', 'UNAVAILABLE', 'CLOSED', 'TIMEOUT', 'EXTERNAL', 'INTERNAL'].includes(failure.code)
      )
        throw error;
      throw new FileRefused(`undecodable: ${failure.message}`);
    }
    const rows = pendings.reduce((sum, p) => sum + p.files.reduce((n, f) => n + f.rows, 0), 0);
    if (rows === 0) {
      for (const pending of pendings) await table.abort(pending).catch(() => undefined);
      throw new FileRefused('file holds no records');
    }
    const finalIdentity = await fileIdentity(full).catch(() => null);
    if (finalIdentity === null || !sameIdentity(finalIdentity, current.identity)) {
      for (const pending of pendings) await table.abort(pending).catch(() => undefined);
      throw new FileRefused(
        `file was modified after pickup (${finalIdentity ? describeChange(current.identity, finalIdentity) : 'it disappeared'})`,
      );
    }
    await table.commit({ commitId: stem, add: pendings });
    recordsCounter.inc({ topic: table.qualifiedName }, rows);
    current.recordsDone = rows;
    return this.#markDelivered(state, current);
  }

  /** Column names and DuckDB types of a query (a private single-thread DuckDB, opened per poll). */
  async #describe(sql: string): Promise<{ name: string; type: string }[]> {
    this.#duck ??= DuckDBInstance.create(':memory:', { threads: '1' });
    const connection = await (await this.#duck).connect();
    try {
      const result = await connection.run(`SELECT * FROM (${sql}) AS detected LIMIT 0`);
      const types = result.columnTypes();
      return result.columnNames().map((name, i) => ({ name, type: types[i].toString() }));
    } finally {
      connection.closeSync();
    }
  }

  async #complete(state: SpoolState, current: CurrentFile, records: number): Promise<SpoolFileOutcome> {
    const full = path.join(this.#dir, current.name);
    if (existsSync(full)) {
      if (this.options.onComplete === 'delete') {
        await rm(full, { force: true });
      } else if (this.options.onComplete === 'move') {
        const target = path.resolve(this.#dir, this.options.completedDir);
        await mkdir(target, { recursive: true });
        await rename(full, uniquePath(path.join(target, current.name)));
      } else {
        await rename(full, full + this.options.completedSuffix);
      }
    }
    state.current = null;
    await this.#saveState(state);
    filesCounter.inc({ topic: this.#target, outcome: 'completed' });
    this.#logger.info({ file: current.name, records }, 'spool file delivered');
    return { name: current.name, outcome: 'completed', records };
  }

  /** A refused file goes to failed/; an I/O or log failure propagates so the next round retries. */
  async #failCurrentOrNew(state: SpoolState, name: string, error: unknown): Promise<SpoolFileOutcome> {
    if (!(error instanceof FileRefused)) throw toTributaryError(error, 'IO');
    await this.#refuse(name, error);
    if (state.current?.name === name) {
      state.current = null;
      await this.#saveState(state);
    }
    return { name, outcome: 'failed', records: error.recordsDelivered, reason: error.reason };
  }

  /**
   * Moves `name` to failed/ beside `<name>.reason`. Reason file, UTF-8 text lines:
   * `reason: <text>` / `recordsDelivered: <n>` / `failedAt: <ISO time>`.
   */
  async #refuse(name: string, refusal: FileRefused): Promise<void> {
    const failedDir = path.resolve(this.#dir, this.options.failedDir);
    await mkdir(failedDir, { recursive: true });
    const target = uniquePath(path.join(failedDir, name));
    await rename(path.join(this.#dir, name), target).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
    const reasonText = `reason: ${refusal.reason}\nrecordsDelivered: ${refusal.recordsDelivered}\nfailedAt: ${new Date(this.#clock.now()).toISOString()}\n`;
    await writeFileAtomic(`${target}.reason`, reasonText);
    filesCounter.inc({ topic: this.#target, outcome: 'failed' });
    this.#logger.warn({ file: name, reason: refusal.reason }, 'spool file refused');
  }

  async #loadState(): Promise<SpoolState> {
    if (this.#state) return this.#state;
    let state: SpoolState = { version: stateVersion, current: null, completed: [] };
    const text = await readFile(this.#stateFile, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return null;
      throw error;
    });
    if (text !== null) {
      let parsed: SpoolState;
      try {
        parsed = JSON.parse(text) as SpoolState;
      } catch (error) {
        throw new TributaryError('CORRUPT_DATA', `spool state ${this.#stateFile} is not valid JSON`, {
          cause: error,
        });
      }
      if (parsed.version !== stateVersion) {
        throw new TributaryError(
          'FORMAT_VERSION',
          `spool state ${this.#stateFile} has version ${JSON.stringify((parsed as { version?: unknown }).version)}; this build reads ${JSON.stringify(stateVersion)}`,
        );
      }
      state = parsed;
    }
    this.#state = state;
    return state;
  }

  async #saveState(state: SpoolState): Promise<void> {
    await writeFileAtomic(this.#stateFile, JSON.stringify(state));
  }
}

export function createSpoolSource(options: SpoolOptionsInput, deps: SpoolSourceDeps): SpoolSource {
  return new SpoolSource(options, deps);
}

async function fileIdentity(file: string): Promise<FileIdentity> {
  const handle = await open(file, 'r');
  try {
    const info = await handle.stat();
    const head = Buffer.alloc(Math.min(1024, info.size));
    if (head.length > 0) await handle.read(head, 0, head.length, 0);
    return {
      size: info.size,
      mtimeMs: info.mtimeMs,
      ino: info.ino,
      headSha256: createHash('sha256').update(head).digest('hex'),
    };
  } finally {
    await handle.close();
  }
}

function identityHash(name: string, identity: FileIdentity): string {
  return createHash('sha256')
    .update(`${name}\0${identity.size}\0${identity.mtimeMs}\0${identity.ino}\0${identity.headSha256}`)
    .digest('hex')
    .slice(0, 20);
}

function sameIdentity(a: FileIdentity, b: FileIdentity): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino && a.headSha256 === b.headSha256;
}

function describeChange(before: FileIdentity, after: FileIdentity): string {
  const changes: string[] = [];
  if (before.size !== after.size) changes.push(`size ${before.size} → ${after.size}`);
  if (before.mtimeMs !== after.mtimeMs) changes.push('mtime changed');
  if (before.ino !== after.ino) changes.push('inode changed (replaced)');
  if (before.headSha256 !== after.headSha256) changes.push('first KiB changed');
  return changes.join(', ');
}

function isInside(dir: string, target: string): boolean {
  return target === dir || target.startsWith(dir + path.sep);
}

function uniquePath(target: string): string {
  if (!existsSync(target) && !existsSync(`${target}.reason`)) return target;
  for (let n = 1; ; n++) {
    const candidate = `${target}.${n}`;
    if (!existsSync(candidate) && !existsSync(`${candidate}.reason`)) return candidate;
  }
}

/** Exposed for tests: rejects state files that are not the documented format. */
export const spoolStateVersion = stateVersion;
