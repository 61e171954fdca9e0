import { dataDirPaths, type TributaryConfig } from '../../core/index.js';
import { CachedSchemaRegistry } from './cached.js';
import { HttpSchemaRegistry } from './http.js';
import { LocalSchemaRegistry } from './store.js';

export type SchemaRegistryConfig = Pick<
  TributaryConfig,
  'dataDir' | 'schemaRegistryUrl' | 'schemaRegistryApiKey'
>;

/**
 * The registry a process of this data dir uses, behind the client cache: the external one when
 * `schemaRegistryUrl` is set, else the embedded store under `<dataDir>/schemas` (no HTTP; `up`
 * serves the same store at `/schema-registry`).
 *
 * @example
 * const registry = await openSchemaRegistry(config);
 * const writer = await new AvroSerde(registry).writer('movies-value', movieSchema);
 */
export async function openSchemaRegistry(config: SchemaRegistryConfig): Promise<CachedSchemaRegistry> {
  if (config.schemaRegistryUrl !== undefined) {
    return new CachedSchemaRegistry(
      new HttpSchemaRegistry({
        url: config.schemaRegistryUrl,
        ...(config.schemaRegistryApiKey === undefined ? {} : { credentials: config.schemaRegistryApiKey }),
      }),
    );
  }
  return new CachedSchemaRegistry(await LocalSchemaRegistry.open(dataDirPaths(config.dataDir).schemas));
}
