/**
 * The documents pipeline's own bounds (the platform's are in `src/core/limits.ts`), kept together
 * so they can be read and reviewed at once. Units last.
 */
export const documentLimits = {
  /** Largest metadata object (JSON text) an upload may carry; it travels as a record header. */
  metadataBytesMax: 16 * 1024,
  /** Framing slack of a multipart body over the file itself (boundaries, part headers, fields). */
  multipartFramingBytesMax: 64 * 1024,
  /** Records a dashboard read scans at most, per partition (the newest ones in the time range). */
  statsScanRecordsMax: 20_000,
  /** Chunks embedded in one call of the embedding model. */
  embedBatchSizeMax: 64,
} as const;
