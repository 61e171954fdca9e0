import { TributaryError } from '../../core/index.js';

/**
 * The Confluent wire format of a schema-registry-encoded record value (or key), byte for byte what
 * Confluent's serializers, `@kafkajs/confluent-schema-registry` and every Kafka tool expect:
 *
 * ```
 * offset  size  field
 *      0     1  magic byte, always 0x00
 *      1     4  schema id, unsigned 32-bit big-endian (the registry's global id, not a version)
 *      5     n  the Avro binary encoding of the value with that schema (no container, no sync marker)
 * ```
 *
 * The id tells a reader which writer schema to fetch from the registry; the reader may then resolve
 * the body into a schema of its own (Avro schema resolution).
 */
export const confluentMagicByte = 0;
export const confluentHeaderBytes = 5;

/** `body` framed with the 5-byte header for `schemaId`. */
export function encodeConfluentWire(schemaId: number, body: Uint8Array): Buffer {
  if (!Number.isInteger(schemaId) || schemaId < 0 || schemaId > 0xffffffff)
    throw new TributaryError('INVALID_ARGUMENT', `schema id ${schemaId} is not an unsigned 32-bit integer`);
  const out = Buffer.allocUnsafe(confluentHeaderBytes + body.length);
  out[0] = confluentMagicByte;
  out.writeUInt32BE(schemaId, 1);
  out.set(body, confluentHeaderBytes);
  return out;
}

/** Whether `bytes` starts like a Confluent-framed value (magic byte 0 and a full header). */
export function isConfluentWire(bytes: Uint8Array | null | undefined): bytes is Uint8Array {
  return bytes !== null && bytes !== undefined && bytes.length >= confluentHeaderBytes && bytes[0] === 0;
}

/**
 * The schema id of a Confluent-framed value; DECODE_FAILED when the bytes are not framed (too short,
 * or a magic byte other than 0).
 */
export function confluentSchemaId(bytes: Uint8Array): number {
  if (bytes.length < confluentHeaderBytes)
    throw new TributaryError(
      'DECODE_FAILED',
      `value has ${bytes.length} bytes, fewer than the 5-byte Confluent header (magic byte 0, schema id)`,
    );
  if (bytes[0] !== confluentMagicByte)
    throw new TributaryError(
      'DECODE_FAILED',
      `value starts with byte 0x${bytes[0].toString(16).padStart(2, '0')}, not the Confluent magic byte 0x00 (not schema-registry encoded)`,
    );
  // Read by hand: `bytes` may be a plain Uint8Array without Buffer's readers.
  return ((bytes[1] << 24) >>> 0) + ((bytes[2] << 16) | (bytes[3] << 8) | bytes[4]);
}

/** The Avro body after the header, as a Buffer view (no copy). */
export function confluentBody(bytes: Uint8Array): Buffer {
  return Buffer.from(
    bytes.buffer,
    bytes.byteOffset + confluentHeaderBytes,
    bytes.length - confluentHeaderBytes,
  );
}
