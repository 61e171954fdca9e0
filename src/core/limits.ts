/**
 * Every queue, batch and retry loop has a bound, and the bounds live here so they can be read
 * (and reviewed) together. Units are last in the name.
 */
export const limits = {
  /** Largest single record value accepted by the log. */
  recordBytesMax: 16 * 1024 * 1024,
  /** Bytes a producer may have in flight before `append` waits (back-pressure). */
  logPendingBytesMax: 64 * 1024 * 1024,
  /** Default size at which a log segment is rolled. */
  logSegmentBytes: 128 * 1024 * 1024,
  /** Default group-commit window for `fsync: group`. */
  logGroupCommitMs: 2,
  /** Largest batch a consumer fetch returns. */
  fetchRecordsMax: 10_000,
  fetchBytesMax: 8 * 1024 * 1024,
  /** Largest request a Kafka client may send the Kafka listener (Kafka: socket.request.max.bytes). */
  kafkaRequestBytesMax: 100 * 1024 * 1024,
  /** Rows buffered before a lake writer flushes a Parquet file. */
  lakeRowGroupRowsMax: 122_880,
  /**
   * Partition buffers a stream lake sink keeps open; a new partition beyond it rolls the least
   * recently written one (a high-cardinality column cannot exhaust memory or checkpoint size).
   */
  lakeSinkOpenPartitionsMax: 256,
  /** Escaped length of one partition value (a path segment; file systems cap names at 255 bytes). */
  lakePartitionValueBytesMax: 200,
  /** Request bodies on the HTTP API. */
  httpBodyBytesMax: 10 * 1024 * 1024,
  uploadBytesMax: 50 * 1024 * 1024,
  /** Records one request to a pipeline's event endpoint may carry (e.g. POST /api/viewing/events). */
  ingestRecordsPerRequestMax: 10_000,
  /** Retries for external calls before giving up. */
  retryAttemptsMax: 8,
  retryBackoffMsMax: 30_000,
  /** Supervised jobs, schedules and sources: first restart delay and the cap it doubles up to. */
  restartBackoffMsMin: 1000,
  restartBackoffMsMax: 60_000,
  /**
   * Lease of a scaled-out task (src/stream/task-store.ts): a holder that did not renew for this
   * long loses it and a waiting worker takes it over (a hung owner stalls its tasks this long).
   */
  taskLeaseTtlMs: 15_000,
  /** Lease generations kept per task (older records are deleted by the taker). */
  taskLeaseGenerationsKept: 8,
  /** Lineage (src/stream/lineage): a process's event file is rotated at this size; older files beyond the count are deleted. */
  lineageFileBytesMax: 8 * 1024 * 1024,
  lineageFilesMax: 64,
  /** Lineage events waiting per transport; more are dropped and counted, never waited for. */
  lineageQueueEventsMax: 10_000,
  lineageHttpAttemptsMax: 5,
  lineageHttpTimeoutMs: 10_000,
  /** How long a resolved dataset schema is reused before it is read again. */
  lineageSchemaTtlMs: 60_000,
  /** A stream job reports a RUNNING event at a checkpoint at most this often (coalesced). */
  lineageRunningIntervalMs: 60_000,
  /** Largest schema text the schema registry accepts (Avro JSON). */
  schemaTextBytesMax: 1024 * 1024,
  /**
   * Per-document budget of extraction + chunking (docproc), enforced in a worker thread so a
   * hostile upload costs at most this much and is then dead-lettered: pages of a PDF, entries of
   * a DOCX archive, bytes inflated from it, characters of extracted text, bytes of chunk text
   * produced, CPU time (the worker is terminated past it) and the worker's heap.
   */
  documentPagesMax: 2_000,
  documentZipEntriesMax: 1_000,
  documentInflatedBytesMax: 64 * 1024 * 1024,
  documentCharsMax: 10_000_000,
  documentOutputBytesMax: 32 * 1024 * 1024,
  documentCpuMsMax: 30_000,
  documentHeapMbMax: 256,
  /** Nesting of a JSON body from outside (deeper is a 400 before parsing). */
  jsonDepthMax: 64,
  /** Bytes a gzip/compressed ingest body or file part may inflate to before it is refused. */
  ingestInflatedBytesMax: 64 * 1024 * 1024,
} as const;
