import type {
  CompatibilityLevel,
  CompatibilityResult,
  RegisteredSchema,
  SchemaRegistry,
  VersionRef,
} from './types.js';

/**
 * The cache a schema registry client keeps (Confluent's `CachedSchemaRegistryClient`): ids and
 * numbered versions never change, so `schemaById`, `version(s, n)` and the (subject, schema) → id of
 * `register` / `lookup` are asked once; concurrent misses of one id share one request. `latest`,
 * listings and levels always go to the registry (they change). Deletes drop the subject's entries.
 */
export class CachedSchemaRegistry implements SchemaRegistry {
  readonly inner: SchemaRegistry;
  readonly #schemas = new Map<number, string>();
  readonly #schemaRequests = new Map<number, Promise<string>>();
  /** `subject \0 schema text` → registration. */
  readonly #registered = new Map<string, RegisteredSchema>();
  /** `subject \0 version` → version. */
  readonly #versions = new Map<string, RegisteredSchema>();

  constructor(inner: SchemaRegistry) {
    this.inner = inner;
  }

  schemaById(id: number): Promise<string> {
    const hit = this.#schemas.get(id);
    if (hit !== undefined) return Promise.resolve(hit);
    let request = this.#schemaRequests.get(id);
    if (request === undefined) {
      request = this.inner.schemaById(id).then(
        (schema) => {
          this.#schemas.set(id, schema);
          this.#schemaRequests.delete(id);
          return schema;
        },
        (error: unknown) => {
          this.#schemaRequests.delete(id);
          throw error;
        },
      );
      this.#schemaRequests.set(id, request);
    }
    return request;
  }

  /** The schema text of `id` when it was fetched before (no request). */
  cachedSchema(id: number): string | undefined {
    return this.#schemas.get(id);
  }

  async version(subject: string, version: VersionRef): Promise<RegisteredSchema> {
    if (version === 'latest' || version === -1)
      return this.#remember(await this.inner.version(subject, version));
    const hit = this.#versions.get(`${subject}\u0000${version}`);
    return hit ?? this.#remember(await this.inner.version(subject, version));
  }

  async register(subject: string, schema: string): Promise<RegisteredSchema> {
    const key = `${subject}\u0000${schema}`;
    const hit = this.#registered.get(key);
    if (hit !== undefined) return hit;
    const registered = this.#remember(await this.inner.register(subject, schema));
    this.#registered.set(key, registered);
    return registered;
  }

  async lookup(subject: string, schema: string): Promise<RegisteredSchema> {
    const key = `${subject}\u0000${schema}`;
    const hit = this.#registered.get(key);
    if (hit !== undefined) return hit;
    const found = this.#remember(await this.inner.lookup(subject, schema));
    this.#registered.set(key, found);
    return found;
  }

  subjects(options?: { deleted?: boolean }): Promise<string[]> {
    return this.inner.subjects(options);
  }

  versions(subject: string): Promise<number[]> {
    return this.inner.versions(subject);
  }

  testCompatibility(subject: string, schema: string, version?: VersionRef): Promise<CompatibilityResult> {
    return this.inner.testCompatibility(subject, schema, version);
  }

  compatibility(subject?: string): Promise<CompatibilityLevel> {
    return this.inner.compatibility(subject);
  }

  subjectCompatibility(subject: string): Promise<CompatibilityLevel | null> {
    return this.inner.subjectCompatibility(subject);
  }

  setCompatibility(level: CompatibilityLevel, subject?: string): Promise<void> {
    return this.inner.setCompatibility(level, subject);
  }

  deleteSubjectCompatibility(subject: string): Promise<CompatibilityLevel> {
    return this.inner.deleteSubjectCompatibility(subject);
  }

  async deleteSubject(subject: string, options?: { permanent?: boolean }): Promise<number[]> {
    this.#forget(subject);
    return this.inner.deleteSubject(subject, options);
  }

  async deleteVersion(
    subject: string,
    version: VersionRef,
    options?: { permanent?: boolean },
  ): Promise<number> {
    this.#forget(subject);
    return this.inner.deleteVersion(subject, version, options);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  #remember(registered: RegisteredSchema): RegisteredSchema {
    this.#schemas.set(registered.id, registered.schema);
    this.#versions.set(`${registered.subject}\u0000${registered.version}`, registered);
    return registered;
  }

  #forget(subject: string): void {
    const prefix = `${subject}\u0000`;
    for (const map of [this.#registered, this.#versions])
      for (const key of map.keys()) if (key.startsWith(prefix)) map.delete(key);
  }
}
