// Avro in the Confluent wire format and the schema registry (embedded store, REST client, cache).
export {
  compatibilityLevels,
  defaultCompatibility,
  isCompatibilityLevel,
  registryError,
  registryErrorCodeOf,
  registryErrorCodes,
  type CompatibilityLevel,
  type CompatibilityResult,
  type RegisteredSchema,
  type SchemaRegistry,
  type VersionRef,
} from './types.js';
export {
  confluentMagicByte,
  confluentHeaderBytes,
  encodeConfluentWire,
  isConfluentWire,
  confluentSchemaId,
  confluentBody,
} from './wire.js';
export { parseAvroSchema, canonicalSchema, compatibilityMessages, type AvroType } from './avro.js';
export {
  LocalSchemaRegistry,
  encodeSchemaRegistryFile,
  schemaRegistryFormat,
  checkVersion,
  type LocalSchemaRegistryOptions,
  type SchemaRegistryFile,
} from './store.js';
export { HttpSchemaRegistry, schemaRegistryContentType, type HttpSchemaRegistryOptions } from './http.js';
export { CachedSchemaRegistry } from './cached.js';
export {
  AvroSerde,
  registerTopicSchemas,
  topicValueSubject,
  avroValueToJson,
  encodeValue,
  type AvroReader,
  type AvroSerdeOptions,
  type AvroWriter,
} from './serde.js';
export { openSchemaRegistry, type SchemaRegistryConfig } from './open.js';
