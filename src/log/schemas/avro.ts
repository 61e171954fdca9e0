import avro from 'avsc';
import { limits } from '../../core/index.js';
import { registryError, registryErrorCodes, type CompatibilityLevel } from './types.js';

export type AvroType = avro.Type;

/**
 * Parses Avro schema text into an avsc type; 42201 (invalid schema) naming the problem. Types are
 * parsed with avsc's defaults, as Confluent's JavaScript client does, so both decode a record to
 * the same value (unions unwrapped where unambiguous, longs as numbers).
 */
export function parseAvroSchema(schema: string, what = 'schema'): AvroType {
  if (schema.length > limits.schemaTextBytesMax)
    throw registryError(
      registryErrorCodes.invalidSchema,
      `${what} is ${schema.length} characters, more than the ${limits.schemaTextBytesMax} accepted`,
    );
  let json: unknown;
  try {
    json = JSON.parse(schema);
  } catch (error) {
    throw registryError(
      registryErrorCodes.invalidSchema,
      `${what} is not valid JSON: ${(error as Error).message}`,
      error,
    );
  }
  try {
    return avro.Type.forSchema(json as avro.Schema);
  } catch (error) {
    throw registryError(
      registryErrorCodes.invalidSchema,
      `${what} is not a valid Avro schema: ${(error as Error).message}`,
      error,
    );
  }
}

/**
 * Identity of a schema for "the same schema registers once": avsc's normalized form with field
 * defaults and docs kept (names fully qualified, attributes in a fixed order, whitespace gone). So
 * formatting differences do not create new versions, while a changed default, which changes how
 * old data is read, does. (Avro's Parsing Canonical Form drops defaults: not enough here.)
 */
export function canonicalSchema(type: AvroType): string {
  return JSON.stringify(type.schema({ exportAttrs: true }));
}

/** Why `reader` cannot read data written with `writer` (avsc's schema resolution), or null. */
export function resolutionError(reader: AvroType, writer: AvroType): string | null {
  try {
    reader.createResolver(writer);
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

/**
 * Compatibility of `candidate` with earlier versions under `level`, by Avro's schema resolution
 * rules: BACKWARD asks whether the candidate reads what each earlier version wrote, FORWARD whether
 * each earlier version reads what the candidate writes, FULL both. Non-transitive levels look at the
 * latest version only (`earlier` is ordered oldest first). Returns one message per violation.
 */
export function compatibilityMessages(
  level: CompatibilityLevel,
  candidate: AvroType,
  earlier: readonly { version: number; type: AvroType }[],
): string[] {
  if (level === 'NONE' || earlier.length === 0) return [];
  const against = level.endsWith('_TRANSITIVE') ? earlier : earlier.slice(-1);
  const backward = level.startsWith('BACKWARD') || level.startsWith('FULL');
  const forward = level.startsWith('FORWARD') || level.startsWith('FULL');
  const messages: string[] = [];
  for (const { version, type } of against) {
    if (backward) {
      const why = resolutionError(candidate, type);
      if (why !== null)
        messages.push(`${level}: the new schema cannot read data written with version ${version} (${why})`);
    }
    if (forward) {
      const why = resolutionError(type, candidate);
      if (why !== null)
        messages.push(`${level}: version ${version} cannot read data written with the new schema (${why})`);
    }
  }
  return messages;
}
