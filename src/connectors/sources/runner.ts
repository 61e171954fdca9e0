/**
 * Sources a pipeline declares and the platform runs: `tributary up` starts each one under core's
 * supervisor (restart with capped, jittered backoff; a failure never ends `up`), shows its state,
 * records/s, last error and position in status, and stops it gracefully; `tributary run <pipeline>
 * --once` drains each one (reads what is there now) before the pipeline's stages run.
 */
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import {
  childLogger,
  dataDirPaths,
  RateBudgets,
  supervise,
  systemClock,
  toTributaryError,
  TributaryError,
  type Clock,
  type Logger,
  type Supervised,
  type SupervisedState,
  type Throttle,
} from '../../core/index.js';
import type { Lake } from '../../lake/index.js';
import type { Log, PartitionOffsetRange } from '../../log/index.js';
import { importFile, type FileImportOptionsInput } from '../files/import.js';
import { createHttpPoller, type HttpPoller } from '../http/poller.js';
import type { HttpPollerOptionsInput } from '../http/options.js';
import { openPgClient } from '../postgres/client.js';
import {
  copyPostgresToLake,
  createPostgresSource,
  type PostgresSourceOptionsInput,
} from '../postgres/source.js';
import { createSpoolSource, type SpoolFile } from '../spool/source.js';
import type { SpoolOptionsInput } from '../spool/options.js';
import { createFileStateStore, type ConnectorStateStore } from '../state.js';

/** What a custom source reports as it goes (shown in status). */
export interface SourceProgress {
  /** Records delivered since the last report. */
  records?: number;
  /** Where the source stands (a file name, a cursor, an offset), as the operator should read it. */
  position?: string;
  /** Input refused without stopping the source (a file moved to failed/, a row quarantined). */
  refused?: { count: number; reason: string };
}

/** Handed to a custom source's `run` / `drain`. */
export interface SourceContext {
  signal: AbortSignal;
  clock: Clock;
  logger: Logger;
  report(progress: SourceProgress): void;
  /** The rate budget the declaration names (`rateBudget`), shared with every other user of it. */
  throttle?: Throttle;
}

interface SourceCommon {
  /** Unique within the pipeline; shown as `<pipeline>/<name>`. */
  name: string;
  /** Restart backoff after a failure (default 1 s doubling to 60 s, jittered). */
  restart?: { baseMs: number; maxMs: number };
}

/**
 * One long-running source of a pipeline (see `PipelineDefinition.sources`):
 * - `spool`: a directory; complete files go to a topic or table (or whole, to `deliverFile`), a
 *   file that cannot be read goes to `failed/` with a `.reason` and the source carries on.
 * - `http`: the HTTP poller, every `pollIntervalMs`; `rateBudget` names a budget the pipeline
 *   declares in `rateBudgets`, shared by every source calling that API.
 * - `file-import`: a file imported once (again only when its size or mtime change).
 * - `postgres`: a table copied into a lake table every `intervalMs` (incremental by cursor when
 *   the options say so); `url` default the embedded PGlite of the data dir.
 * - `ingest`: the platform's HTTP ingest endpoint for these topics; it runs with the API, the
 *   source counts what clients post and where it landed (nothing to drain in bounded runs).
 * - `custom`: code of the pipeline (a simulator, an API client): `run` until the signal aborts;
 *   `drain` (optional) reads what is there once for `run --once` (without it the source is left
 *   out of bounded runs).
 */
export type SourceDeclaration =
  | (SourceCommon & {
      kind: 'spool';
      options: SpoolOptionsInput;
      /** Whole-file delivery (documents, images): see `SpoolSourceDeps.deliverFile`. */
      deliverFile?: (file: SpoolFile) => Promise<number>;
    })
  | (SourceCommon & { kind: 'http'; options: HttpPollerOptionsInput; rateBudget?: string })
  | (SourceCommon & { kind: 'file-import'; options: FileImportOptionsInput })
  | (SourceCommon & {
      kind: 'postgres';
      options: PostgresSourceOptionsInput;
      /** Lake table, e.g. bronze.orders. */
      into: string;
      url?: string;
      /** Pause between copies (default 60 s). */
      intervalMs?: number;
    })
  | (SourceCommon & {
      kind: 'ingest';
      /** Topics outside clients may post to (`POST /api/ingest/topics/<topic>/records`). */
      topics: string[];
    })
  | (SourceCommon & {
      kind: 'custom';
      /** A budget the pipeline declares in `rateBudgets`, handed to the code as `context.throttle`. */
      rateBudget?: string;
      run(context: SourceContext): Promise<void>;
      drain?(context: SourceContext): Promise<void>;
    });

export type SourceKind = SourceDeclaration['kind'];

export interface SourceStatus {
  /** `<pipeline>/<name>`. */
  name: string;
  pipeline: string;
  kind: SourceKind;
  state: SupervisedState;
  records: number;
  recordsPerSecond: number;
  /** Records or files refused without stopping the source. */
  refused: number;
  lastError: string | null;
  lastErrorAtMs: number | null;
  position: string | null;
  restarts: number;
}

export interface SourceDrainReport {
  name: string;
  kind: SourceKind;
  /**
   * `skipped`: a custom source without `drain` (demo traffic) and an ingest endpoint (it holds
   * nothing to read) are not part of bounded runs.
   */
  outcome: 'drained' | 'failed' | 'skipped';
  records: number;
  refused: number;
  position: string | null;
  error?: string;
}

export interface SourceRunnerDeps {
  log: Log;
  lake: Lake;
  dataDir: string;
  /** The process's named rate budgets (one per external API). */
  budgets?: RateBudgets;
  clock?: Clock;
}

export interface PipelineSources {
  pipeline: string;
  sources: readonly SourceDeclaration[];
}

interface Counters {
  records: number;
  refused: number;
  position: string | null;
  /** A refusal reason, kept as the last error while the source runs on. */
  lastRefusal: { reason: string; atMs: number } | null;
}

interface Entry {
  pipeline: string;
  declaration: SourceDeclaration;
  counters: Counters;
  supervised: Supervised | null;
  poller?: HttpPoller;
  sample: { atMs: number; records: number; perSecond: number } | null;
}

const sourceNamePattern = /^[A-Za-z0-9_.-]{1,100}$/;

/**
 * Runs declared sources. One runner per process (`tributary up`, `tributary run`).
 *
 * @example
 * const runner = new SourceRunner([{ pipeline: 'reviews', sources: reviews.sources(services) }], { log, lake, dataDir });
 * runner.start();            // supervised, until stop()
 * runner.status();           // [{ name: 'reviews/inbox', state: 'running', records: 1200, ... }]
 * await runner.stop();
 * // or, bounded: await runner.drain();
 */
export class SourceRunner {
  readonly #entries: Entry[] = [];
  readonly #deps: SourceRunnerDeps;
  readonly #clock: Clock;
  readonly #budgets: RateBudgets;
  #state: ConnectorStateStore | null = null;

  constructor(pipelines: readonly PipelineSources[], deps: SourceRunnerDeps) {
    this.#deps = deps;
    this.#clock = deps.clock ?? systemClock;
    this.#budgets = deps.budgets ?? new RateBudgets(this.#clock);
    const seen = new Set<string>();
    for (const { pipeline, sources } of pipelines) {
      for (const declaration of sources) {
        const full = `${pipeline}/${declaration.name}`;
        if (!sourceNamePattern.test(declaration.name))
          throw new TributaryError('CONFIG_INVALID', `source ${full}: a name is 1-100 of A-Z a-z 0-9 _ . -`);
        if (seen.has(full)) throw new TributaryError('CONFIG_INVALID', `source ${full} is declared twice`);
        seen.add(full);
        if (
          (declaration.kind === 'http' || declaration.kind === 'custom') &&
          declaration.rateBudget !== undefined
        )
          this.#budgets.get(declaration.rateBudget); // refuses an undeclared budget now, not at first poll
        this.#entries.push({
          pipeline,
          declaration,
          counters: { records: 0, refused: 0, position: null, lastRefusal: null },
          supervised: null,
          sample: null,
        });
      }
    }
  }

  get #connectorState(): ConnectorStateStore {
    this.#state ??= createFileStateStore(path.join(dataDirPaths(this.#deps.dataDir).state, 'sources.json'));
    return this.#state;
  }

  /** Starts every source under the supervisor. */
  start(): void {
    for (const entry of this.#entries) {
      if (entry.supervised) continue;
      const name = `${entry.pipeline}/${entry.declaration.name}`;
      const logger = childLogger('source', { source: name, kind: entry.declaration.kind });
      entry.supervised = supervise({
        name: `source ${name}`,
        clock: this.#clock,
        logger,
        ...(entry.declaration.restart ? { backoff: entry.declaration.restart } : {}),
        run: (signal) => this.#run(entry, { signal, once: false, logger }),
      });
    }
  }

  /** Stops every source gracefully (each finishes its current file, page or batch). */
  async stop(): Promise<void> {
    await Promise.all(this.#entries.map((e) => e.supervised?.stop() ?? Promise.resolve()));
  }

  /** Each source reads what is there now, one after the other; a failure is reported, not thrown. */
  async drain(signal: AbortSignal = new AbortController().signal): Promise<SourceDrainReport[]> {
    const reports: SourceDrainReport[] = [];
    for (const entry of this.#entries) {
      const { declaration, counters } = entry;
      const name = `${entry.pipeline}/${declaration.name}`;
      const base = { name, kind: declaration.kind };
      if ((declaration.kind === 'custom' && !declaration.drain) || declaration.kind === 'ingest') {
        reports.push({ ...base, outcome: 'skipped', records: 0, refused: 0, position: null });
        continue;
      }
      const before = { records: counters.records, refused: counters.refused };
      const logger = childLogger('source', { source: name, kind: declaration.kind });
      const report = (outcome: 'drained' | 'failed', error?: unknown): SourceDrainReport => ({
        ...base,
        outcome,
        records: counters.records - before.records,
        refused: counters.refused - before.refused,
        position: counters.position,
        ...(error === undefined ? {} : { error: toTributaryError(error).message }),
      });
      try {
        await this.#run(entry, { signal, once: true, logger });
        reports.push(report('drained'));
      } catch (error) {
        reports.push(report('failed', error));
      }
    }
    return reports;
  }

  /** Records the HTTP ingest endpoint appended (wired to `createIngestRoutes({ onAppended })`). */
  ingestAppended(topic: string, records: number, offsets: readonly PartitionOffsetRange[]): void {
    for (const entry of this.#entries) {
      if (entry.declaration.kind !== 'ingest' || !entry.declaration.topics.includes(topic)) continue;
      entry.counters.records += records;
      entry.counters.position = `${topic} ${offsets.map((o) => `p${o.partition}@${o.last}`).join(' ')}`;
    }
  }

  status(): SourceStatus[] {
    const nowMs = this.#clock.now();
    return this.#entries.map((entry) => {
      const { counters } = entry;
      const supervised = entry.supervised?.status();
      const previous = entry.sample;
      let perSecond = previous?.perSecond ?? 0;
      if (previous && nowMs - previous.atMs >= 500)
        perSecond = ((counters.records - previous.records) * 1000) / (nowMs - previous.atMs);
      if (!previous || nowMs - previous.atMs >= 500)
        entry.sample = { atMs: nowMs, records: counters.records, perSecond };
      const failure =
        supervised?.lastErrorAtMs != null &&
        (counters.lastRefusal === null || supervised.lastErrorAtMs >= counters.lastRefusal.atMs)
          ? { reason: supervised.lastError!, atMs: supervised.lastErrorAtMs }
          : counters.lastRefusal;
      return {
        name: `${entry.pipeline}/${entry.declaration.name}`,
        pipeline: entry.pipeline,
        kind: entry.declaration.kind,
        state: supervised?.state ?? 'stopped',
        records: counters.records,
        recordsPerSecond: Math.max(0, perSecond),
        refused: counters.refused,
        lastError: failure?.reason ?? null,
        lastErrorAtMs: failure?.atMs ?? null,
        position: counters.position,
        restarts: supervised?.restarts ?? 0,
      };
    });
  }

  /** One run of a source: until `signal` aborts, or (once) after reading what is there. */
  async #run(entry: Entry, run: { signal: AbortSignal; once: boolean; logger: Logger }): Promise<void> {
    const { declaration, counters } = entry;
    const { signal, once } = run;
    const { log, lake } = this.#deps;
    const pause = async (ms: number) => {
      await this.#clock.sleep(ms, signal).catch(() => undefined);
    };
    const refuse = (count: number, reason: string) => {
      counters.refused += count;
      counters.lastRefusal = { reason, atMs: this.#clock.now() };
    };
    switch (declaration.kind) {
      case 'spool': {
        // A declared drop folder exists from the start, so operators know where to put files.
        await mkdir(path.resolve(declaration.options.dir), { recursive: true });
        // Drain reads every file that is there: the caller says they are complete.
        const source = createSpoolSource(
          once ? { ...declaration.options, stableMs: 0 } : declaration.options,
          {
            log,
            lake,
            clock: this.#clock,
            logger: run.logger,
            ...(declaration.deliverFile ? { deliverFile: declaration.deliverFile } : {}),
          },
        );
        const intervalMs = source.options.pollIntervalMs;
        while (!signal.aborted) {
          let waitMs = intervalMs;
          try {
            const report = await source.poll();
            counters.records += report.records;
            for (const file of report.files) {
              if (file.outcome === 'failed') refuse(1, `${file.name}: ${file.reason ?? 'refused'}`);
              else counters.position = file.name;
            }
          } catch (error) {
            // The log is behind: wait as long as it asks; the file resumes where it stopped.
            if (!(error instanceof TributaryError && error.code === 'BACKPRESSURE')) throw error;
            waitMs = error.retryAfterMs ?? intervalMs;
          }
          if (once) return;
          await pause(waitMs);
        }
        return;
      }
      case 'http': {
        // One poller per source for the whole run of the process, so its throttle (and a 429's
        // pause) outlives a restart.
        const poller = (entry.poller ??= createHttpPoller(declaration.options, {
          log,
          state: this.#connectorState,
          clock: this.#clock,
          logger: run.logger,
          ...(declaration.rateBudget !== undefined
            ? { throttle: this.#budgets.get(declaration.rateBudget) }
            : {}),
        }));
        while (!signal.aborted) {
          const report = await poller.poll(signal);
          counters.records += report.records;
          counters.position =
            report.cursor ?? `${report.pages} page(s) at ${new Date(this.#clock.now()).toISOString()}`;
          if (once) return;
          await pause(poller.options.pollIntervalMs);
        }
        return;
      }
      case 'file-import': {
        const file = path.resolve(declaration.options.path);
        const info = await stat(file);
        const identity = `${info.size}:${info.mtimeMs}`;
        const key = `file-import:${entry.pipeline}/${declaration.name}:${file}`;
        const done = await this.#connectorState.get<{ identity: string; rows: number }>(key);
        if (done?.identity === identity) {
          counters.position = `${path.basename(file)} (imported, unchanged)`;
          return;
        }
        const report = await importFile(declaration.options, { log, lake });
        counters.records += report.rows;
        if (report.quarantined > 0)
          refuse(
            report.quarantined,
            `${report.quarantined} row(s) quarantined to ${report.quarantineFile ?? '-'}`,
          );
        counters.position = path.basename(file);
        await this.#connectorState.set(key, { identity, rows: report.rows });
        return;
      }
      case 'postgres': {
        const client = await openPgClient({
          url: declaration.url,
          pgliteDir: dataDirPaths(this.#deps.dataDir).pglite,
        });
        try {
          const source = createPostgresSource(declaration.options, { client, state: this.#connectorState });
          const table = lake.table(declaration.into);
          while (!signal.aborted) {
            const result = await copyPostgresToLake(source, table);
            counters.records += result.rows;
            counters.position =
              result.cursor ?? `version ${result.commit?.version ?? '-'} of ${declaration.into}`;
            if (once) return;
            await pause(declaration.intervalMs ?? 60_000);
          }
        } finally {
          await client.close();
        }
        return;
      }
      case 'ingest': {
        // Passive: the API's ingest route does the work; the source is "running" while up runs.
        if (!once && !signal.aborted)
          await new Promise<void>((resolve) =>
            signal.addEventListener('abort', () => resolve(), { once: true }),
          );
        return;
      }
      case 'custom': {
        const context: SourceContext = {
          signal,
          clock: this.#clock,
          logger: run.logger,
          report: (progress) => {
            if (progress.records !== undefined) counters.records += progress.records;
            if (progress.position !== undefined) counters.position = progress.position;
            if (progress.refused !== undefined) refuse(progress.refused.count, progress.refused.reason);
          },
          ...(declaration.rateBudget === undefined
            ? {}
            : { throttle: this.#budgets.get(declaration.rateBudget) }),
        };
        if (once) await declaration.drain?.(context);
        else await declaration.run(context);
        return;
      }
    }
  }
}
