import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { TributaryError, childLogger, limits, type ErrorCode } from '../../core/index.js';
import type { Chunk, ChunkOptions } from './chunk.js';
import { defaultExtractLimits, type ExtractLimits } from './extract.js';
import type { DocumentFormat } from './filetype.js';

const logger = childLogger('ml.extract');

/**
 * What extracting and chunking one document may cost. Size limits are checked inside the worker
 * as text is produced; CPU time and heap are enforced from outside, by terminating the worker.
 */
export interface DocumentBudget extends ExtractLimits {
  /** Bytes of chunk text (plus ids) one document may produce. */
  outputBytesMax: number;
  /**
   * Busy time of the worker's event loop for one document: CPU time plus any time the OS did not
   * schedule the thread, so it is never less than the CPU time used.
   */
  cpuMsMax: number;
  /** Old-generation heap of a worker thread (V8 `resourceLimits`). */
  heapMbMax: number;
}

export const defaultDocumentBudget: DocumentBudget = {
  ...defaultExtractLimits,
  outputBytesMax: limits.documentOutputBytesMax,
  cpuMsMax: limits.documentCpuMsMax,
  heapMbMax: limits.documentHeapMbMax,
};

/** One document to extract; `data` is copied to the worker. */
export interface ExtractionInput {
  documentId: string;
  filename: string;
  data: Uint8Array;
  mediaType?: string;
}

export interface ExtractedChunks {
  format: DocumentFormat;
  /** Pages read (1 for formats without pages). */
  pages: number;
  chunks: Chunk[];
}

/** Message to a worker (worker.ts). */
export interface ExtractionRequest {
  id: number;
  documentId: string;
  filename: string;
  data: Uint8Array;
  mediaType?: string;
  limits: ExtractLimits;
  chunk: ChunkOptions;
  outputBytesMax: number;
}

/** Message from a worker: the chunks, or the error as code, message and details. */
export type ExtractionReply =
  | { id: number; ok: true; format: DocumentFormat; pages: number; chunks: Chunk[] }
  | {
      id: number;
      ok: false;
      error: { code: ErrorCode; message: string; details: Record<string, unknown> };
    };

export interface DocumentExtractorOptions {
  budget?: Partial<DocumentBudget>;
  chunk?: ChunkOptions;
  /** Worker threads at most (documents extracted at once). Default 2. */
  workersMax?: number;
}

interface Job {
  request: ExtractionRequest;
  resolve: (result: ExtractedChunks) => void;
  reject: (error: TributaryError) => void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  job: Job | null;
  monitor: NodeJS.Timeout | null;
}

/**
 * A TypeScript source tree (tests, `vitest`) has no compiled worker next to this module: the
 * worker thread then registers a loader that transpiles `.ts` with the TypeScript compiler (a dev
 * dependency, present wherever sources run). Compiled code (`dist/`) starts `worker.js` directly.
 */
function workerScript(): { script: string | URL; eval: boolean; workerData?: unknown } {
  const self = import.meta.url;
  if (!self.endsWith('.ts')) return { script: new URL('./worker.js', self), eval: false };
  const typescript = pathToFileURL(createRequire(self).resolve('typescript')).href;
  const hooks = `
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
let ts;
export async function resolve(specifier, context, next) {
  if (specifier.startsWith('.') && specifier.endsWith('.js') && context.parentURL?.endsWith('.ts')) {
    const url = new URL(specifier.slice(0, -3) + '.ts', context.parentURL);
    if (existsSync(fileURLToPath(url))) return { url: url.href, format: 'module', shortCircuit: true };
  }
  return next(specifier, context);
}
export async function load(url, context, next) {
  if (!url.endsWith('.ts')) return next(url, context);
  ts ??= (await import(${JSON.stringify(typescript)})).default;
  const source = await readFile(fileURLToPath(url), 'utf8');
  const output = ts.transpileModule(source, {
    fileName: fileURLToPath(url),
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
  });
  return { format: 'module', source: output.outputText, shortCircuit: true };
}`;
  const boot = `const { register } = require('node:module');
const { workerData } = require('node:worker_threads');
register(workerData.hooks);
import(workerData.entry);`;
  return {
    script: boot,
    eval: true,
    workerData: {
      hooks: `data:text/javascript,${encodeURIComponent(hooks)}`,
      entry: new URL('./worker.ts', self).href,
    },
  };
}

function budgetError(filename: string, what: string, limit: keyof DocumentBudget, max: number) {
  return new TributaryError(
    'PAYLOAD_TOO_LARGE',
    `${filename}: extraction exceeded its ${what} budget (${limit} ${max}) and was stopped`,
    { details: { file: filename, limit, max } },
  );
}

/**
 * Extracts and chunks documents in worker threads, off the caller's event loop, each document
 * within a `DocumentBudget`: pages, archive entries, inflated bytes, characters and output are
 * counted inside the worker; CPU time is watched from here (the worker's event-loop busy time)
 * and the worker terminated past it; the heap is capped by V8 `resourceLimits`. Every refusal is
 * a `PAYLOAD_TOO_LARGE` naming the file and the limit (user domain: dead-letter, never retry);
 * an unreadable document is `DECODE_FAILED`. Workers are reused and do not keep the process alive
 * while idle.
 *
 * @example
 * const extractor = new DocumentExtractor({ budget: { cpuMsMax: 10_000 } });
 * const { chunks } = await extractor.extract({ documentId: 'd1', filename: 'a.pdf', data });
 * await extractor.close();
 */
export class DocumentExtractor {
  readonly budget: DocumentBudget;
  readonly #chunk: ChunkOptions;
  readonly #workersMax: number;
  readonly #slots: Slot[] = [];
  readonly #queue: Job[] = [];
  #nextId = 1;
  #closing = false;

  constructor(options: DocumentExtractorOptions = {}) {
    this.budget = { ...defaultDocumentBudget, ...options.budget };
    this.#chunk = options.chunk ?? {};
    this.#workersMax = options.workersMax ?? 2;
  }

  /** Extracts and chunks one document in a worker, within the budget. */
  extract(input: ExtractionInput): Promise<ExtractedChunks> {
    const { outputBytesMax, cpuMsMax: _cpu, heapMbMax: _heap, ...extractLimits } = this.budget;
    const request: ExtractionRequest = {
      id: this.#nextId++,
      documentId: input.documentId,
      filename: input.filename,
      data: input.data,
      ...(input.mediaType === undefined ? {} : { mediaType: input.mediaType }),
      limits: extractLimits,
      chunk: this.#chunk,
      outputBytesMax,
    };
    return new Promise((resolve, reject) => {
      this.#queue.push({ request, resolve, reject });
      this.#dispatch();
    });
  }

  /**
   * Terminates every worker; documents queued or in flight fail with CLOSED. A later `extract`
   * starts new workers (idle workers never hold the process open, so closing is for tidiness).
   */
  async close(): Promise<void> {
    this.#closing = true;
    try {
      const closed = () => new TributaryError('CLOSED', 'the document extractor was closed');
      for (const job of this.#queue.splice(0)) job.reject(closed());
      await Promise.all([...this.#slots].map((slot) => this.#retire(slot, closed())));
    } finally {
      this.#closing = false;
    }
  }

  #dispatch(): void {
    while (this.#queue.length > 0) {
      const slot = this.#slots.find((s) => s.ready && s.job === null);
      if (slot === undefined) {
        if (this.#slots.length < this.#workersMax) this.#spawn();
        return;
      }
      this.#start(slot, this.#queue.shift()!);
    }
  }

  #spawn(): void {
    const { script, eval: isEval, workerData } = workerScript();
    const worker = new Worker(script, {
      eval: isEval,
      ...(workerData === undefined ? {} : { workerData }),
      resourceLimits: {
        maxOldGenerationSizeMb: this.budget.heapMbMax,
        maxYoungGenerationSizeMb: Math.max(4, Math.min(32, Math.floor(this.budget.heapMbMax / 8))),
        stackSizeMb: 4,
      },
      stdout: false,
      stderr: false,
    });
    const slot: Slot = { worker, ready: false, job: null, monitor: null };
    this.#slots.push(slot);
    worker.on('message', (message: ExtractionReply | { ready: true }) => {
      if ('ready' in message) {
        slot.ready = true;
        worker.unref();
        this.#dispatch();
        return;
      }
      const job = slot.job;
      if (job === null || job.request.id !== message.id) return;
      this.#finish(slot);
      if (message.ok) job.resolve({ format: message.format, pages: message.pages, chunks: message.chunks });
      else
        job.reject(
          new TributaryError(message.error.code, message.error.message, { details: message.error.details }),
        );
      this.#dispatch();
    });
    worker.on('error', (error: Error & { code?: string }) => {
      const job = slot.job;
      const filename = job?.request.filename ?? 'document';
      const reason =
        error.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? budgetError(filename, 'memory', 'heapMbMax', this.budget.heapMbMax)
          : new TributaryError('INTERNAL', `${filename}: the extraction worker failed: ${error.message}`, {
              cause: error,
            });
      if (job === null) logger.error({ err: error }, 'extraction worker failed while idle');
      void this.#retire(slot, reason);
    });
    worker.on('exit', (code) => {
      void this.#retire(
        slot,
        new TributaryError('INTERNAL', `the extraction worker exited with code ${code}`),
      );
    });
  }

  #start(slot: Slot, job: Job): void {
    slot.job = job;
    slot.worker.ref();
    const started = slot.worker.performance.eventLoopUtilization();
    const cpuMsMax = this.budget.cpuMsMax;
    // Checked often enough that a document stops within ~10% past its budget.
    const everyMs = Math.max(10, Math.min(250, Math.floor(cpuMsMax / 10)));
    slot.monitor = setInterval(() => {
      const busyMs = slot.worker.performance.eventLoopUtilization(started).active;
      if (busyMs > cpuMsMax) {
        void this.#retire(slot, budgetError(job.request.filename, 'CPU-time', 'cpuMsMax', cpuMsMax));
      }
    }, everyMs);
    slot.monitor.unref();
    // The worker gets its own copy; the caller keeps `data`.
    slot.worker.postMessage(job.request);
  }

  #finish(slot: Slot): void {
    if (slot.monitor !== null) clearInterval(slot.monitor);
    slot.monitor = null;
    slot.job = null;
    slot.worker.unref();
  }

  /** Stops a worker for good: its document (if any) fails with `reason`; a new worker takes over. */
  async #retire(slot: Slot, reason: TributaryError): Promise<void> {
    const index = this.#slots.indexOf(slot);
    if (index === -1) return;
    this.#slots.splice(index, 1);
    const job = slot.job;
    this.#finish(slot);
    if (job !== null) {
      logger.warn({ file: job.request.filename, reason: reason.message }, 'document extraction stopped');
      job.reject(reason);
    }
    await slot.worker.terminate();
    if (!this.#closing) this.#dispatch();
  }
}
