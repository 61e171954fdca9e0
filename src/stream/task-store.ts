/**
 * Checkpoints and leases of the tasks of a scaled-out job (scale.ts), kept in a lake `Storage`:
 * local disk under `<dataDir>/checkpoints/` by default, or the lake's S3 bucket under
 * `<prefix>/_checkpoints/` (`storage s3://…`), so that workers on different machines share nothing
 * but the log and object storage.
 *
 * Object keys, relative to that root (`<task>` is `s0-<topic>-<p>` or `s1-p<p>`):
 *
 *   <job>/<task>/lease/<generation, 10 digits>.json   one per owner, created exclusively
 *     {"format":"tributary.stream.lease","version":1,"job":"sales","task":"s1-p2","generation":3,
 *      "owner":"worker-7/4242/9f2c1a0b","host":"worker-7","pid":4242,"ttlMs":15000,
 *      "renewals":17,"renewedAtMs":1795380000000,"expiresAtMs":1795380015000,"released":false}
 *   <job>/<task>/state/<checkpoint id, 10 digits>-g<generation>.json   state file (checkpoint.ts)
 *   <job>/<task>/manifest/<checkpoint id, 10 digits>.json   manifest, created exclusively; the
 *      checkpoint.ts manifest plus `"generation"`
 *   <job>/<task>/INTENT                                sink intent (checkpoint.ts)
 *   <job>/bounded-<n>.json                             bounded runs (scale.ts), created exclusively
 *
 * "Created exclusively" is `Storage.putIfAbsent`: `link()` on disk, `If-None-Match: *` on S3
 * (AWS S3, MinIO and R2 honour it). On a store that ignores it, `S3Storage` falls back to HEAD then
 * PUT, which is exclusive only inside one process, and logs a warning: run scaled-out workers on
 * such a store only on one machine.
 *
 * Lease: the owner of generation g renews its record every ttl/4 (a plain PUT of its own key; no
 * other writer ever writes that key after creating it). A waiting worker takes the task over by
 * creating generation g+1 when the latest record is released, or belongs to a dead process on this
 * host (local storage only: a pid means nothing across machines), or has not changed for the
 * record's `ttlMs` as measured by the waiting worker's own clock. Measuring the silence locally,
 * instead of comparing `expiresAtMs` with another machine's clock, makes takeover independent of
 * clock skew; `expiresAtMs` is for people reading the record. The owner considers the lease held
 * only until `ttlMs` after it started its last successful renewal: with clocks of equal rate, it
 * stops writing before anyone can take over (the classic lease argument; `held()`).
 *
 * Fencing, so that a hung owner that wakes up cannot write over its successor:
 * - before every checkpoint (and intent) write the writer lists the lease records: a generation
 *   above its own means it was superseded, and the write is refused with FENCED;
 * - the manifest is created exclusively under the next checkpoint id. Every new owner restores the
 *   latest manifest and continues its ids, so a stale owner that passed the check just before it
 *   hung collides with its successor on the same id; exactly one wins, the loser gets FENCED. The
 *   manifests are one linear history, never two;
 * - after creating a manifest the writer lists the manifests once more: one with a higher id means
 *   its id had been deleted as old and its write is refused too (its manifest is removed).
 * A taker also lists the lease records after creating its generation and backs off when a higher
 * one exists (old generations are deleted, so a long-stalled taker could re-create one).
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import {
  childLogger,
  dataDirPaths,
  isRetryable,
  limits,
  processAlive,
  retry,
  systemClock,
  TributaryError,
  type Clock,
} from '../core/index.js';
import {
  LocalStorage,
  openStorage,
  type LakeStorage,
  type Storage,
  type StorageConfig,
} from '../lake/index.js';
import {
  checkCheckpointManifest,
  checkpointManifest,
  decodeCheckpointState,
  decodeSinkIntent,
  encodeCheckpointState,
  encodeSinkIntent,
  type CheckpointManifest,
  type CheckpointState,
  type SinkIntent,
} from './checkpoint.js';

export const leaseFormatVersion = 1;

export interface LeaseRecord {
  format: 'tributary.stream.lease';
  version: number;
  job: string;
  task: string;
  generation: number;
  /** `<host>/<pid>/<random>`: one acquisition, so two workers of one process are told apart. */
  owner: string;
  host: string;
  pid: number;
  ttlMs: number;
  /** Incremented by every renewal: what a waiting worker watches. */
  renewals: number;
  renewedAtMs: number;
  /** The owner's clock: informative only (takeover is decided on the taker's clock). */
  expiresAtMs: number;
  /** Set by a graceful release: the next owner takes over at once. */
  released: boolean;
}

/** Encodes a lease record (bytes exactly as stored). */
export function encodeLeaseRecord(record: LeaseRecord): Uint8Array {
  return Buffer.from(`${JSON.stringify(record)}\n`, 'utf8');
}

const pad = (n: number) => String(n).padStart(10, '0');
const logger = childLogger('stream.task-store', {});

/**
 * The storage a task store works through: every call retried on transient failures (an object
 * store answers 500/503 now and then, a connection drops), since a failed lease renewal or
 * checkpoint write would otherwise stop a healthy task. `create` is the exclusive create that
 * stays exact under retries: when a retried create finds the key taken, it reads the object back,
 * and identical bytes mean the first attempt succeeded and only its answer was lost.
 */
class RetryingStorage {
  constructor(readonly inner: Storage) {}

  get kind(): Storage['kind'] {
    return this.inner.kind;
  }

  get root(): string {
    return this.inner.root;
  }

  #retry<T>(what: string, action: () => Promise<T>): Promise<T> {
    return retry(action, {
      attemptsMax: limits.retryAttemptsMax,
      baseMs: 50,
      maxMs: 2_000,
      retryable: (error) =>
        isRetryable(error) && !(error instanceof TributaryError && error.code === 'FENCED'),
      onRetry: ({ attempt, error }) =>
        logger.warn({ err: error, attempt, what }, 'checkpoint storage call failed; retrying'),
    });
  }

  list(prefix: string) {
    return this.#retry(`list ${prefix}`, () => this.inner.list(prefix));
  }

  get(path: string) {
    return this.#retry(`get ${path}`, () => this.inner.get(path));
  }

  stat(path: string) {
    return this.#retry(`stat ${path}`, () => this.inner.stat(path));
  }

  put(path: string, data: Uint8Array) {
    return this.#retry(`put ${path}`, () => this.inner.put(path, data));
  }

  delete(path: string) {
    return this.#retry(`delete ${path}`, () => this.inner.delete(path));
  }

  async create(path: string, data: Uint8Array): Promise<boolean> {
    let attempts = 0;
    const created = await this.#retry(`create ${path}`, () => {
      attempts++;
      return this.inner.putIfAbsent(path, data);
    });
    if (created || attempts === 1) return created;
    const existing = await this.get(path).catch(() => null);
    return existing !== null && Buffer.from(existing).equals(Buffer.from(data));
  }
}
const utf8 = (data: Uint8Array) => Buffer.from(data).toString('utf8');

export interface TaskStoreOptions {
  clock?: Clock;
  /** Default `limits.taskLeaseTtlMs`. */
  leaseTtlMs?: number;
  /**
   * The storage is one machine's disk: a lease whose owner pid is dead on this host is free at
   * once (a `kill -9` costs no wait). Default: `storage.kind === 'local'`.
   */
  sameHost?: boolean;
}

/**
 * Where scaled-out tasks keep checkpoints and leases: `<dataDir>/checkpoints` for local lake
 * storage, `<lake prefix>/_checkpoints` in the lake's bucket for `storage s3://…`.
 *
 * @example
 * const storage = openCheckpointStorage(loadConfig()); // s3://lake/prod → s3://lake/prod/_checkpoints
 */
export function openCheckpointStorage(config: StorageConfig): LakeStorage {
  if (config.storage === 'local') return new LocalStorage(dataDirPaths(config.dataDir).checkpoints);
  return openStorage({ ...config, storage: `${config.storage.replace(/\/+$/, '')}/_checkpoints` });
}

/**
 * The checkpoint storage of one scaled-out job: its tasks' stores and its bounded-run files.
 *
 * @example
 * const checkpoints = new JobCheckpoints(openCheckpointStorage(config), 'sales');
 * const task = checkpoints.task('s1-p2');
 * if (await task.acquire(() => false)) await task.write(state, Date.now());
 */
export class JobCheckpoints {
  readonly #storage: RetryingStorage;

  constructor(
    readonly storage: Storage,
    readonly job: string,
    readonly options: TaskStoreOptions = {},
  ) {
    this.#storage = new RetryingStorage(storage);
  }

  task(task: string): TaskStore {
    return new TaskStore(this.storage, this.job, task, this.options);
  }

  /** Numbers of the bounded runs recorded (`bounded-<n>.json`), ascending. */
  async boundedRuns(): Promise<number[]> {
    return (await this.#storage.list(`${this.job}/bounded-`))
      .map((o) => /\/bounded-(\d+)\.json$/.exec(o.path))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
  }

  async readBoundedRun(run: number): Promise<unknown> {
    return JSON.parse(utf8(await this.#storage.get(`${this.job}/bounded-${run}.json`)));
  }

  /** Creates `bounded-<n>.json` unless it exists; false when another worker created it first. */
  createBoundedRun(run: number, value: unknown): Promise<boolean> {
    return this.#storage.create(
      `${this.job}/bounded-${run}.json`,
      Buffer.from(`${JSON.stringify(value)}\n`, 'utf8'),
    );
  }
}

/**
 * One task's lease and checkpoints. A store is used by one run of the task: `acquire`, then
 * `read`/`write`/intents while `held()`, then `release`. Reading without the lease is allowed
 * (scale.ts reads every task's last checkpoint to tell whether a bounded run finished).
 */
export class TaskStore {
  readonly #storage: RetryingStorage;
  readonly #clock: Clock;
  readonly #ttlMs: number;
  readonly #sameHost: boolean;
  readonly #base: string;
  readonly #host = os.hostname();
  readonly #owner: string;
  #record: LeaseRecord | null = null;
  /** When the last successful renewal (or the take) started, on this process's clock. */
  #heldSinceMs = -Infinity;
  #fenced: TributaryError | null = null;
  /** What a waiting worker last saw of the latest lease, and since when (its own clock). */
  #observed: { generation: number; text: string; sinceMs: number } | null = null;

  constructor(
    storage: Storage,
    readonly job: string,
    readonly task: string,
    options: TaskStoreOptions = {},
  ) {
    this.#storage = new RetryingStorage(storage);
    this.#clock = options.clock ?? systemClock;
    this.#ttlMs = options.leaseTtlMs ?? limits.taskLeaseTtlMs;
    this.#sameHost = options.sameHost ?? storage.kind === 'local';
    this.#base = `${job}/${task}`;
    this.#owner = `${this.#host}/${process.pid}/${randomBytes(4).toString('hex')}`;
  }

  /** The generation this store holds, or 0. */
  get generation(): number {
    return this.#record?.generation ?? 0;
  }

  get ttlMs(): number {
    return this.#ttlMs;
  }

  #leaseKey(generation: number): string {
    return `${this.#base}/lease/${pad(generation)}.json`;
  }

  /** Lease generations present, ascending. */
  async #generations(): Promise<number[]> {
    return (await this.#storage.list(`${this.#base}/lease/`))
      .map((o) => /\/lease\/(\d{10})\.json$/.exec(o.path))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
  }

  /**
   * The latest lease object as stored, with its record, or null when absent. `record` is null
   * when the text does not parse: S3 replaces objects atomically, but a store that does not (or a
   * writer killed mid-upload on one) can leave a torn object. It is then judged by its bytes alone.
   */
  async #readLease(generation: number): Promise<{ text: string; record: LeaseRecord | null } | null> {
    let text: string;
    try {
      text = utf8(await this.#storage.get(this.#leaseKey(generation)));
    } catch (error) {
      if (error instanceof TributaryError && error.code === 'NOT_FOUND') return null;
      throw error;
    }
    try {
      return { text, record: JSON.parse(text) as LeaseRecord };
    } catch {
      return { text, record: null };
    }
  }

  /**
   * One attempt to take the lease (see the file comment for when it is free). Call it repeatedly
   * while waiting: the silence of a live-looking owner is measured between calls.
   */
  async tryAcquire(): Promise<boolean> {
    if (this.#record !== null) return true;
    const latest = (await this.#generations()).at(-1) ?? 0;
    if (latest > 0) {
      const lease = await this.#readLease(latest);
      if (lease !== null && !this.#free(latest, lease.text, lease.record)) return false;
    }
    return this.#take(latest + 1);
  }

  #free(generation: number, text: string, record: LeaseRecord | null): boolean {
    if (record?.released === true) return true;
    if (
      record !== null &&
      this.#sameHost &&
      record.host === this.#host &&
      record.pid !== process.pid &&
      !processAlive(record.pid)
    )
      return true;
    // Any change of the object (a renewal counts up `renewals` and `renewedAtMs`) restarts the wait.
    const now = this.#clock.now();
    const seen = this.#observed;
    if (seen === null || seen.generation !== generation || seen.text !== text) {
      this.#observed = { generation, text, sinceMs: now };
      return false;
    }
    return now - seen.sinceMs >= (record?.ttlMs ?? this.#ttlMs);
  }

  async #take(generation: number): Promise<boolean> {
    const now = this.#clock.now();
    const record: LeaseRecord = {
      format: 'tributary.stream.lease',
      version: leaseFormatVersion,
      job: this.job,
      task: this.task,
      generation,
      owner: this.#owner,
      host: this.#host,
      pid: process.pid,
      ttlMs: this.#ttlMs,
      renewals: 0,
      renewedAtMs: now,
      expiresAtMs: now + this.#ttlMs,
      released: false,
    };
    if (!(await this.#storage.create(this.#leaseKey(generation), encodeLeaseRecord(record)))) return false;
    const generations = await this.#generations();
    if (generations.some((g) => g > generation)) return false;
    this.#record = record;
    this.#heldSinceMs = now;
    this.#fenced = null;
    this.#observed = null;
    // Old records only make listings longer (see the file comment for why deleting them is safe).
    for (const old of generations.filter((g) => g <= generation - limits.taskLeaseGenerationsKeptMax))
      await this.#storage.delete(this.#leaseKey(old)).catch(() => undefined);
    return true;
  }

  /** Waits until the lease is taken (true) or `stopped()` (false), trying every `pollMs`. */
  async acquire(stopped: () => boolean, pollMs = 100): Promise<boolean> {
    for (;;) {
      if (stopped()) return false;
      try {
        if (await this.tryAcquire()) return true;
      } catch (error) {
        // Storage trouble while waiting is a reason to wait longer, not to fail the task.
        logger.warn({ err: error, task: this.#base }, 'could not look at the task lease; trying again');
      }
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  }

  /** Whether this owner may still write: renewed less than `ttlMs` ago and not fenced. */
  held(): boolean {
    return (
      this.#record !== null && this.#fenced === null && this.#clock.now() - this.#heldSinceMs < this.#ttlMs
    );
  }

  /** Throws FENCED unless `held()`. */
  assertHeld(): void {
    if (this.held()) return;
    throw (
      this.#fenced ??
      new TributaryError(
        'FENCED',
        `task ${this.#base}: lease generation ${this.generation} not renewed for ${this.#ttlMs} ms; another worker may own the task now`,
        { details: { task: this.#base, generation: this.generation } },
      )
    );
  }

  /** Lists the lease records: a newer generation than ours fences this owner (FENCED). */
  async #checkGeneration(what: string): Promise<void> {
    this.assertHeld();
    const newest = (await this.#generations()).at(-1) ?? 0;
    if (newest > this.generation) this.#fence(newest, what);
  }

  #fence(newest: number, what: string): never {
    this.#fenced = new TributaryError(
      'FENCED',
      `task ${this.#base}: ${what} refused: lease generation ${newest} superseded this owner's ${this.generation}`,
      { details: { task: this.#base, generation: this.generation, newerGeneration: newest } },
    );
    throw this.#fenced;
  }

  /** Renews the lease (its owner calls this every ttl/4); throws FENCED when superseded. */
  async renew(): Promise<void> {
    const record = this.#record;
    if (record === null) return;
    this.assertHeld();
    const startedMs = this.#clock.now();
    const next = {
      ...record,
      renewals: record.renewals + 1,
      renewedAtMs: startedMs,
      expiresAtMs: startedMs + this.#ttlMs,
    };
    // Writing our own generation's key is harmless even when superseded: takers write g+1.
    await this.#storage.put(this.#leaseKey(record.generation), encodeLeaseRecord(next));
    this.#record = next;
    await this.#checkGeneration('renewal');
    if (this.#fenced === null) this.#heldSinceMs = startedMs;
  }

  /** Gives the lease up (the next owner takes over at once). Never throws. */
  async release(): Promise<void> {
    const record = this.#record;
    if (record === null) return;
    this.#record = null;
    await this.#storage
      .put(this.#leaseKey(record.generation), encodeLeaseRecord({ ...record, released: true }))
      .catch(() => undefined);
  }

  async #manifestIds(): Promise<number[]> {
    return (await this.#storage.list(`${this.#base}/manifest/`))
      .map((o) => /\/manifest\/(\d{10})\.json$/.exec(o.path))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
  }

  /** The task's last checkpoint, or null when it has none. Needs no lease. */
  async read(): Promise<{ manifest: CheckpointManifest; state: CheckpointState } | null> {
    const id = (await this.#manifestIds()).at(-1);
    if (id === undefined) return null;
    const where = `${this.#storage.root}/${this.#base}/manifest/${pad(id)}.json`;
    let manifest: CheckpointManifest;
    try {
      manifest = JSON.parse(
        utf8(await this.#storage.get(`${this.#base}/manifest/${pad(id)}.json`)),
      ) as CheckpointManifest;
    } catch (error) {
      if (error instanceof TributaryError) throw error;
      throw new TributaryError('CORRUPT_DATA', `checkpoint manifest ${where} is not JSON`, { cause: error });
    }
    checkCheckpointManifest(manifest, where);
    const stateKey = `${this.#base}/state/${manifest.stateFile}`;
    const data = await this.#storage.get(stateKey);
    return { manifest, state: decodeCheckpointState(manifest, data, `${this.#storage.root}/${stateKey}`) };
  }

  /**
   * Writes a checkpoint (state, then the manifest as commit point) under the lease: refused with
   * FENCED when a newer generation exists or another writer created this checkpoint id first.
   */
  async write(state: CheckpointState, createdAtMs: number): Promise<CheckpointManifest> {
    await this.#checkGeneration(`checkpoint ${state.checkpointId}`);
    const data = encodeCheckpointState(state);
    const stateFile = `${pad(state.checkpointId)}-g${this.generation}.json`;
    await this.#storage.put(`${this.#base}/state/${stateFile}`, data);
    const manifest: CheckpointManifest = {
      ...checkpointManifest(state, stateFile, data, createdAtMs),
      generation: this.generation,
    };
    const manifestKey = `${this.#base}/manifest/${pad(state.checkpointId)}.json`;
    const created = await this.#storage.create(
      manifestKey,
      Buffer.from(`${JSON.stringify(manifest)}\n`, 'utf8'),
    );
    if (!created) {
      await this.#storage.delete(`${this.#base}/state/${stateFile}`).catch(() => undefined);
      const newest = (await this.#generations()).at(-1) ?? 0;
      if (newest > this.generation) this.#fence(newest, `checkpoint ${state.checkpointId}`);
      // Same generation (or none newer): a stalled earlier write of ours, or a bug. Either way
      // this history is not ours to continue.
      this.#fence(this.generation, `checkpoint ${state.checkpointId} (already written)`);
    }
    const ids = await this.#manifestIds();
    if (ids.some((id) => id > state.checkpointId)) {
      await this.#storage.delete(manifestKey).catch(() => undefined);
      this.#fence((await this.#generations()).at(-1) ?? this.generation, `checkpoint ${state.checkpointId}`);
    }
    // Keep this checkpoint and the one before; older ones are garbage.
    for (const id of ids.filter((i) => i < state.checkpointId - 1))
      await this.#storage.delete(`${this.#base}/manifest/${pad(id)}.json`);
    const keep = new Set([stateFile]);
    const previous = ids.filter((i) => i < state.checkpointId).at(-1);
    for (const object of await this.#storage.list(`${this.#base}/state/`)) {
      const name = object.path.slice(object.path.lastIndexOf('/') + 1);
      const id = Number(name.slice(0, 10));
      if (keep.has(name) || id === previous || id > state.checkpointId) continue;
      await this.#storage.delete(object.path);
    }
    return manifest;
  }

  async readIntent(): Promise<SinkIntent | null> {
    const key = `${this.#base}/INTENT`;
    if ((await this.#storage.stat(key)) === null) return null;
    return decodeSinkIntent(utf8(await this.#storage.get(key)), `${this.#storage.root}/${key}`, this.job);
  }

  async writeIntent(intent: SinkIntent): Promise<void> {
    await this.#checkGeneration('sink intent');
    await this.#storage.put(`${this.#base}/INTENT`, Buffer.from(encodeSinkIntent(intent), 'utf8'));
  }

  async removeIntent(): Promise<void> {
    await this.#storage.delete(`${this.#base}/INTENT`);
  }
}
