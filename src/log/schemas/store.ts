import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { processAlive, TributaryError, writeFileAtomic, type Clock, systemClock } from '../../core/index.js';
import { canonicalSchema, compatibilityMessages, parseAvroSchema, type AvroType } from './avro.js';
import {
  defaultCompatibility,
  isCompatibilityLevel,
  registryError,
  registryErrorCodes,
  type CompatibilityLevel,
  type CompatibilityResult,
  type RegisteredSchema,
  type SchemaRegistry,
  type VersionRef,
} from './types.js';

/**
 * The embedded registry's directory, `<dataDir>/schemas/`:
 *
 * ```
 * schemas/
 *   registry.json   the whole registry, replaced atomically on every change (below)
 *   LOCK            held only while one process applies a change: its pid (stale when that pid is dead)
 * ```
 *
 * `registry.json` (pretty-printed JSON):
 *
 * ```
 * {
 *   "format": "tributary-schema-registry 1",
 *   "nextId": 4,                           global ids are never reused, not even after a hard delete
 *   "compatibility": "BACKWARD",           global level
 *   "schemas": [ { "id": 1, "schema": "<Avro JSON text as first registered>" }, … ],
 *   "subjects": [
 *     { "name": "movies-value",
 *       "compatibility": "FULL",           optional: the subject's own level
 *       "versions": [ { "version": 1, "id": 1 }, { "version": 2, "id": 3, "deleted": true } ] },
 *     …
 *   ]
 * }
 * ```
 *
 * A schema keeps its id after its versions are deleted, so records written with it stay readable.
 * Readers in other processes read the file without the lock (the atomic rename means they see the
 * old registry or the new one) and re-read it when its size, mtime or inode changed; writers take
 * `LOCK`, re-read, apply, write, release — so a stream job or CLI command can register a subject
 * while `tributary up` serves the same registry, with no HTTP in between.
 */
export const schemaRegistryFormat = 'tributary-schema-registry 1';

interface VersionEntry {
  version: number;
  id: number;
  deleted?: true;
}

interface SubjectEntry {
  name: string;
  compatibility?: CompatibilityLevel;
  versions: VersionEntry[];
}

export interface SchemaRegistryFile {
  format: typeof schemaRegistryFormat;
  nextId: number;
  compatibility: CompatibilityLevel;
  schemas: { id: number; schema: string }[];
  subjects: SubjectEntry[];
}

/** The registry file's text for a state: the one encoder of the format above. */
export function encodeSchemaRegistryFile(file: SchemaRegistryFile): string {
  const ordered: SchemaRegistryFile = {
    format: schemaRegistryFormat,
    nextId: file.nextId,
    compatibility: file.compatibility,
    schemas: [...file.schemas].sort((a, b) => a.id - b.id).map(({ id, schema }) => ({ id, schema })),
    subjects: [...file.subjects]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((s) => ({
        name: s.name,
        ...(s.compatibility === undefined ? {} : { compatibility: s.compatibility }),
        versions: s.versions.map((v) => ({
          version: v.version,
          id: v.id,
          ...(v.deleted ? { deleted: true as const } : {}),
        })),
      })),
  };
  return `${JSON.stringify(ordered, null, 1)}\n`;
}

interface StoredSchema {
  id: number;
  schema: string;
  type: AvroType;
  canonical: string;
}

/** How long a change waits for another process's `LOCK` before giving up. */
const lockWaitMs = 10_000;
const lockPollMs = 5;

export interface LocalSchemaRegistryOptions {
  clock?: Clock;
}

/**
 * The schema registry kept in the data dir (format above), for `tributary up`'s
 * `/schema-registry` routes and for jobs and commands of the same machine directly.
 *
 * @example
 * const registry = await LocalSchemaRegistry.open(path.join(dataDir, 'schemas'));
 * const { id, version } = await registry.register('movies-value', schemaText);
 */
export class LocalSchemaRegistry implements SchemaRegistry {
  readonly #dir: string;
  readonly #file: string;
  readonly #lockFile: string;
  readonly #clock: Clock;
  #nextId = 1;
  #compatibility: CompatibilityLevel = defaultCompatibility;
  #schemas = new Map<number, StoredSchema>();
  #idByCanonical = new Map<string, number>();
  #subjects = new Map<string, SubjectEntry>();
  /** size:mtime:inode of the file last read; null forces a re-read. */
  #stamp: string | null = null;
  /** Serializes this process's changes (the file lock serializes processes). */
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(dir: string, options: LocalSchemaRegistryOptions) {
    this.#dir = dir;
    this.#file = path.join(dir, 'registry.json');
    this.#lockFile = path.join(dir, 'LOCK');
    this.#clock = options.clock ?? systemClock;
  }

  static async open(dir: string, options: LocalSchemaRegistryOptions = {}): Promise<LocalSchemaRegistry> {
    const registry = new LocalSchemaRegistry(dir, options);
    await registry.#refresh();
    return registry;
  }

  get directory(): string {
    return this.#dir;
  }

  // ---- reads --------------------------------------------------------------------------------

  async subjects(options: { deleted?: boolean } = {}): Promise<string[]> {
    await this.#refresh();
    return [...this.#subjects.values()]
      .filter((s) => options.deleted === true || s.versions.some((v) => !v.deleted))
      .map((s) => s.name)
      .sort();
  }

  async versions(subject: string): Promise<number[]> {
    await this.#refresh();
    return this.#liveVersions(subject).map((v) => v.version);
  }

  async version(subject: string, version: VersionRef): Promise<RegisteredSchema> {
    await this.#refresh();
    return this.#registered(subject, this.#findVersion(subject, version));
  }

  async schemaById(id: number): Promise<string> {
    const stored = this.#schemas.get(id) ?? ((await this.#refresh()) ? this.#schemas.get(id) : undefined);
    if (stored === undefined)
      throw registryError(registryErrorCodes.schemaNotFound, `schema id ${id} not found`);
    return stored.schema;
  }

  /** Subjects and versions that use schema `id` (live ones). */
  async subjectVersionsById(id: number): Promise<{ subject: string; version: number }[]> {
    await this.schemaById(id);
    const out: { subject: string; version: number }[] = [];
    for (const subject of this.#subjects.values())
      for (const v of subject.versions)
        if (v.id === id && !v.deleted) out.push({ subject: subject.name, version: v.version });
    return out;
  }

  async lookup(subject: string, schema: string): Promise<RegisteredSchema> {
    const canonical = canonicalSchema(parseAvroSchema(schema));
    await this.#refresh();
    const live = this.#liveVersions(subject);
    const id = this.#idByCanonical.get(canonical);
    const found = id === undefined ? undefined : live.find((v) => v.id === id);
    if (found === undefined)
      throw registryError(
        registryErrorCodes.schemaNotFound,
        `schema not found under subject ${JSON.stringify(subject)}`,
      );
    return this.#registered(subject, found);
  }

  async testCompatibility(
    subject: string,
    schema: string,
    version: VersionRef = 'latest',
  ): Promise<CompatibilityResult> {
    const candidate = parseAvroSchema(schema);
    await this.#refresh();
    const entry = this.#subjects.get(subject);
    const live = entry?.versions.filter((v) => !v.deleted) ?? [];
    // Nothing registered yet: anything may be the first version.
    if (version === 'latest' && live.length === 0) return { compatible: true, messages: [] };
    const level = entry?.compatibility ?? this.#compatibility;
    const against = version === 'latest' ? live : [this.#findVersion(subject, version)];
    const messages = compatibilityMessages(
      level,
      candidate,
      against.map((v) => ({ version: v.version, type: this.#schemas.get(v.id)!.type })),
    );
    return { compatible: messages.length === 0, messages };
  }

  async compatibility(subject?: string): Promise<CompatibilityLevel> {
    await this.#refresh();
    if (subject === undefined) return this.#compatibility;
    return this.#subjects.get(subject)?.compatibility ?? this.#compatibility;
  }

  async subjectCompatibility(subject: string): Promise<CompatibilityLevel | null> {
    await this.#refresh();
    return this.#subjects.get(subject)?.compatibility ?? null;
  }

  // ---- changes ------------------------------------------------------------------------------

  async register(subject: string, schema: string): Promise<RegisteredSchema> {
    checkSubjectName(subject);
    const type = parseAvroSchema(schema);
    const canonical = canonicalSchema(type);
    return this.#change(() => {
      const entry = this.#subjects.get(subject) ?? { name: subject, versions: [] };
      const live = entry.versions.filter((v) => !v.deleted);
      const existingId = this.#idByCanonical.get(canonical);
      const same = existingId === undefined ? undefined : live.find((v) => v.id === existingId);
      if (same !== undefined) return { result: this.#registered(subject, same), changed: false };
      const level = entry.compatibility ?? this.#compatibility;
      const messages = compatibilityMessages(
        level,
        type,
        live.map((v) => ({ version: v.version, type: this.#schemas.get(v.id)!.type })),
      );
      if (messages.length > 0) {
        throw registryError(
          registryErrorCodes.incompatible,
          `Schema being registered is incompatible with an earlier schema for subject ${JSON.stringify(subject)}: ${messages.join('; ')}`,
        );
      }
      let id = existingId;
      if (id === undefined) {
        id = this.#nextId++;
        this.#addSchema({ id, schema, type, canonical });
      }
      const version = Math.max(0, ...entry.versions.map((v) => v.version)) + 1;
      const added: VersionEntry = { version, id };
      entry.versions.push(added);
      this.#subjects.set(subject, entry);
      return { result: this.#registered(subject, added), changed: true };
    });
  }

  async setCompatibility(level: CompatibilityLevel, subject?: string): Promise<void> {
    checkLevel(level);
    if (subject !== undefined) checkSubjectName(subject);
    await this.#change(() => {
      if (subject === undefined) this.#compatibility = level;
      else {
        const entry = this.#subjects.get(subject) ?? { name: subject, versions: [] };
        entry.compatibility = level;
        this.#subjects.set(subject, entry);
      }
      return { result: undefined, changed: true };
    });
  }

  async deleteSubjectCompatibility(subject: string): Promise<CompatibilityLevel> {
    return this.#change(() => {
      const entry = this.#subjects.get(subject);
      const level = entry?.compatibility;
      if (entry === undefined || level === undefined)
        throw registryError(
          registryErrorCodes.subjectCompatibilityNotFound,
          `subject ${JSON.stringify(subject)} has no compatibility level of its own`,
        );
      delete entry.compatibility;
      if (entry.versions.length === 0) this.#subjects.delete(subject);
      return { result: level, changed: true };
    });
  }

  async deleteSubject(subject: string, options: { permanent?: boolean } = {}): Promise<number[]> {
    return this.#change(() => {
      const entry = this.#subjectWithVersions(subject);
      const live = entry.versions.filter((v) => !v.deleted);
      if (options.permanent === true) {
        if (live.length > 0)
          throw registryError(
            registryErrorCodes.subjectNotSoftDeleted,
            `subject ${JSON.stringify(subject)} must be soft-deleted before it is deleted permanently`,
          );
        this.#subjects.delete(subject);
        return { result: entry.versions.map((v) => v.version), changed: true };
      }
      if (live.length === 0)
        throw registryError(
          registryErrorCodes.subjectSoftDeleted,
          `subject ${JSON.stringify(subject)} was soft-deleted; delete it with permanent=true`,
        );
      for (const v of live) v.deleted = true;
      return { result: live.map((v) => v.version), changed: true };
    });
  }

  async deleteVersion(
    subject: string,
    version: VersionRef,
    options: { permanent?: boolean } = {},
  ): Promise<number> {
    return this.#change(() => {
      const entry = this.#subjectWithVersions(subject);
      const number = checkVersion(version);
      const found =
        number === 'latest'
          ? entry.versions.filter((v) => !v.deleted).at(-1)
          : entry.versions.find((v) => v.version === number);
      if (found === undefined)
        throw registryError(
          registryErrorCodes.versionNotFound,
          `version ${version} of subject ${JSON.stringify(subject)} not found`,
        );
      if (options.permanent === true) {
        if (!found.deleted)
          throw registryError(
            registryErrorCodes.versionNotSoftDeleted,
            `version ${found.version} of subject ${JSON.stringify(subject)} must be soft-deleted first`,
          );
        entry.versions = entry.versions.filter((v) => v !== found);
        if (entry.versions.length === 0 && entry.compatibility === undefined) this.#subjects.delete(subject);
      } else {
        if (found.deleted)
          throw registryError(
            registryErrorCodes.versionSoftDeleted,
            `version ${found.version} of subject ${JSON.stringify(subject)} was soft-deleted`,
          );
        found.deleted = true;
      }
      return { result: found.version, changed: true };
    });
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  // ---- internals ----------------------------------------------------------------------------

  /** The subject's entry when it has versions (soft-deleted ones count); 40401 otherwise. */
  #subjectWithVersions(subject: string): SubjectEntry {
    const entry = this.#subjects.get(subject);
    if (entry === undefined || entry.versions.length === 0)
      throw registryError(registryErrorCodes.subjectNotFound, `subject ${JSON.stringify(subject)} not found`);
    return entry;
  }

  #liveVersions(subject: string): VersionEntry[] {
    const live = this.#subjects.get(subject)?.versions.filter((v) => !v.deleted) ?? [];
    if (live.length === 0)
      throw registryError(registryErrorCodes.subjectNotFound, `subject ${JSON.stringify(subject)} not found`);
    return live;
  }

  #findVersion(subject: string, version: VersionRef): VersionEntry {
    const number = checkVersion(version);
    const live = this.#liveVersions(subject);
    const found = number === 'latest' ? live.at(-1) : live.find((v) => v.version === number);
    if (found === undefined)
      throw registryError(
        registryErrorCodes.versionNotFound,
        `version ${version} of subject ${JSON.stringify(subject)} not found`,
      );
    return found;
  }

  #registered(subject: string, v: VersionEntry): RegisteredSchema {
    return { subject, version: v.version, id: v.id, schema: this.#schemas.get(v.id)!.schema };
  }

  #addSchema(stored: StoredSchema): void {
    this.#schemas.set(stored.id, stored);
    if (!this.#idByCanonical.has(stored.canonical)) this.#idByCanonical.set(stored.canonical, stored.id);
  }

  /** Re-reads the file when it changed since the last read; true when it did. */
  async #refresh(): Promise<boolean> {
    let stamp: string;
    try {
      const s = await stat(this.#file);
      stamp = `${s.size}:${s.mtimeMs}:${s.ino}`;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(this.#file, error);
      stamp = 'absent';
    }
    if (stamp === this.#stamp) return false;
    if (stamp === 'absent') this.#load(null);
    else {
      let text: string;
      try {
        text = await readFile(this.#file, 'utf8');
      } catch (error) {
        throw ioError(this.#file, error);
      }
      this.#load(text);
    }
    this.#stamp = stamp;
    return true;
  }

  #load(text: string | null): void {
    const schemas = new Map<number, StoredSchema>();
    const idByCanonical = new Map<string, number>();
    const subjects = new Map<string, SubjectEntry>();
    let nextId = 1;
    let compatibility = defaultCompatibility;
    if (text !== null) {
      const file = decodeFile(text, this.#file);
      nextId = file.nextId;
      compatibility = file.compatibility;
      for (const { id, schema } of file.schemas) {
        const type = parseAvroSchema(schema, `${this.#file}: schema id ${id}`);
        const canonical = canonicalSchema(type);
        schemas.set(id, { id, schema, type, canonical });
        if (!idByCanonical.has(canonical)) idByCanonical.set(canonical, id);
      }
      for (const subject of file.subjects) {
        for (const v of subject.versions)
          if (!schemas.has(v.id))
            throw new TributaryError(
              'CORRUPT_DATA',
              `${this.#file}: subject ${JSON.stringify(subject.name)} version ${v.version} names schema id ${v.id}, which the file does not hold`,
            );
        subjects.set(subject.name, subject);
      }
    }
    this.#schemas = schemas;
    this.#idByCanonical = idByCanonical;
    this.#subjects = subjects;
    this.#nextId = nextId;
    this.#compatibility = compatibility;
  }

  /** Applies `apply` under the lock to the freshly read registry and writes the file if it changed. */
  #change<T>(apply: () => { result: T; changed: boolean }): Promise<T> {
    if (this.#closed) return Promise.reject(new TributaryError('CLOSED', 'the schema registry is closed'));
    const run = this.#queue.then(() => this.#underLock(apply));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #underLock<T>(apply: () => { result: T; changed: boolean }): Promise<T> {
    await this.#lock();
    try {
      await this.#refresh();
      let outcome: { result: T; changed: boolean };
      try {
        outcome = apply();
        if (outcome.changed) await writeFileAtomic(this.#file, encodeSchemaRegistryFile(this.#snapshot()));
      } finally {
        // After a refusal or a failed write the memory may differ from the file: read it again.
        this.#stamp = null;
      }
      await this.#refresh();
      return outcome.result;
    } finally {
      await rm(this.#lockFile, { force: true });
    }
  }

  #snapshot(): SchemaRegistryFile {
    return {
      format: schemaRegistryFormat,
      nextId: this.#nextId,
      compatibility: this.#compatibility,
      schemas: [...this.#schemas.values()].map(({ id, schema }) => ({ id, schema })),
      subjects: [...this.#subjects.values()],
    };
  }

  async #lock(): Promise<void> {
    const deadlineMs = this.#clock.now() + lockWaitMs;
    for (;;) {
      try {
        await writeFile(this.#lockFile, `${process.pid}\n`, { flag: 'wx' });
        return;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') {
          await mkdir(this.#dir, { recursive: true });
          continue;
        }
        if (code !== 'EEXIST') throw ioError(this.#lockFile, error);
      }
      const owner = Number((await readFile(this.#lockFile, 'utf8').catch(() => '')).trim());
      // An owner that died while holding the lock (kill -9) leaves it behind: take it over. An
      // empty file is a lock being written right now.
      if (Number.isInteger(owner) && owner > 0 && !processAlive(owner)) {
        await rm(this.#lockFile, { force: true });
        continue;
      }
      if (this.#clock.now() > deadlineMs)
        throw new TributaryError(
          'UNAVAILABLE',
          `schema registry ${this.#dir} is locked by process ${owner} (${this.#lockFile}) for more than ${lockWaitMs} ms`,
          { retryAfterMs: 1000 },
        );
      await new Promise((resolve) => setTimeout(resolve, lockPollMs));
    }
  }
}

function ioError(file: string, error: unknown): TributaryError {
  return new TributaryError('IO', `${file}: ${(error as Error).message}`, { cause: error });
}

function decodeFile(text: string, name: string): SchemaRegistryFile {
  let file: SchemaRegistryFile;
  try {
    file = JSON.parse(text) as SchemaRegistryFile;
  } catch (error) {
    throw new TributaryError('CORRUPT_DATA', `${name} is not valid JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (typeof file !== 'object' || file === null || typeof file.format !== 'string')
    throw new TributaryError('CORRUPT_DATA', `${name} is not a schema registry file`);
  if (file.format !== schemaRegistryFormat)
    throw new TributaryError(
      'FORMAT_VERSION',
      `${name} has format ${JSON.stringify(file.format)}; this build reads ${JSON.stringify(schemaRegistryFormat)}`,
    );
  if (
    !Number.isSafeInteger(file.nextId) ||
    !isCompatibilityLevel(file.compatibility) ||
    !Array.isArray(file.schemas) ||
    !Array.isArray(file.subjects)
  )
    throw new TributaryError(
      'CORRUPT_DATA',
      `${name}: nextId, compatibility, schemas or subjects is malformed`,
    );
  return file;
}

function checkSubjectName(subject: string): void {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (subject.length === 0 || subject.length > 255 || /[\u0000-\u001f]/.test(subject))
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `subject name ${JSON.stringify(subject)} must be 1 to 255 characters without control characters`,
    );
}

function checkLevel(level: unknown): asserts level is CompatibilityLevel {
  if (!isCompatibilityLevel(level))
    throw registryError(
      registryErrorCodes.invalidCompatibility,
      `invalid compatibility level ${JSON.stringify(level)}; one of BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE, NONE`,
    );
}

/** `latest` (or -1, Confluent's alias) or a version from 1 up; 42202 otherwise. */
export function checkVersion(version: VersionRef): number | 'latest' {
  if (version === 'latest' || version === -1) return 'latest';
  if (!Number.isSafeInteger(version) || version < 1)
    throw registryError(
      registryErrorCodes.invalidVersion,
      `invalid version ${String(version)}; a version is "latest" or an integer from 1`,
    );
  return version;
}
