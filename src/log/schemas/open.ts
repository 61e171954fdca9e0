import { dataDirPaths, type TributaryConfig } from '../../core/index.js';
import { CachedSchemaRegistry } from './cached.js';
import { HttpSchemaRegistry } from './http.js';
import { LocalSchemaRegistry } from './store.js';
import type { SchemaRegistry } from './types.js';

export type SchemaRegistryConfig = Pick<
  TributaryConfig,
  'dataDir' | 'schemaRegistryUrl' | 'schemaRegistryApiKey'
>;

/**
 * The registry a process of this data dir uses: the external one when `schemaRegistryUrl` is set
 * (behind the client cache), else the embedded store under `<dataDir>/schemas` (no HTTP, and no
 * cache in front: the store holds everything in memory and notices other processes' changes;
 * `up` serves it at `/schema-registry`). `AvroSerde` keeps the parsed schemas either way.
 *
 * @example
 * const registry = await openSchemaRegistry(config);
 * const writer = await new AvroSerde(registry).writer('movies-value', movieSchema);
 */
export async function openSchemaRegistry(config: SchemaRegistryConfig): Promise<SchemaRegistry> {
  if (config.schemaRegistryUrl !== undefined) {
    return new CachedSchemaRegistry(
      new HttpSchemaRegistry({
        url: config.schemaRegistryUrl,
        ...(config.schemaRegistryApiKey === undefined ? {} : { credentials: config.schemaRegistryApiKey }),
      }),
    );
  }
  return LocalSchemaRegistry.open(dataDirPaths(config.dataDir).schemas);
}
