/**
 * Every queue, cache, frame, batch and retry loop of the platform has a bound, and the bounds live
 * here so they can be read (and reviewed) together; a pipeline's own bounds live in its folder's
 * `limits.ts`. `test/maintainability/limits.test.ts` keeps new `…Max` constants from appearing
 * elsewhere. Units are last in the name.
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
  /**
   * After a failed log write (disk full, I/O error on fsync) the log refuses appends and probes the
   * disk this often by writing (and removing) this many bytes; it accepts appends again once the
   * probe succeeds.
   */
  logWriteProbeMs: 1000,
  logWriteProbeBytes: 1024 * 1024,
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
  /**
   * Rows a stream lake sink holds in its open buffers, all partitions together, before it rolls
   * them all (one roll). Rows are JS objects of a few hundred bytes: this keeps a sink's memory
   * (and its part of a checkpoint) in the low hundreds of megabytes.
   */
  lakeSinkBufferedRowsMax: 500_000,
  /**
   * Rows a write holds at least (whole partition buffers) when a stream lake sink rolls many
   * partitions at once: the writes run together, so DuckDB writes one's files while the next one's
   * rows are appended (stream/sinks.ts).
   */
  lakeSinkRollChunkRowsMin: 32_768,
  /**
   * Files a lake commit publishes (fsync + rename + directory fsync) or marks at once: overlapping
   * fsyncs share the file system's journal commits, one at a time each costs a disk flush.
   */
  lakePublishConcurrencyMax: 32,
  /** Partition files one lake COPY keeps open (each holds a row-group buffer until it is closed). */
  lakePartitionFilesOpenMax: 8192,
  /** Escaped length of one partition value (a path segment; file systems cap names at 255 bytes). */
  lakePartitionValueBytesMax: 200,
  /** Request bodies on the HTTP API. */
  httpBodyBytesMax: 10 * 1024 * 1024,
  /**
   * What the HTTP server's sockets, requests and responses buffer before pushing back (Node's
   * default 16 KiB). A request body arrives with its headers, before a route reads it: a body larger
   * than this paused the socket and resumed it when read (two epoll_ctl calls a request, and their
   * JS), which every 100-record ingest batch (~20 KB) paid. An SSE client that stops reading is
   * pushed back after this much.
   */
  httpStreamBufferBytes: 256 * 1024,
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
  taskLeaseGenerationsKeptMax: 8,
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
  // ---- log: embedded segments, log server protocol, Kafka backend and listener
  /** Largest batch accepted when scanning a segment (a larger length means a corrupt header). */
  logBatchBytesMax: 1024 * 1024 * 1024,
  /** Resume points (offset → file position) a segment reader remembers for consumers' next fetches. */
  logReadResumePointsMax: 8,
  /**
   * Write groups kept per followed segment: the next group is often written (pipelined) before the
   * reader has fetched the one before it, so the newest alone would be missed.
   */
  logFollowedWriteGroupsMax: 4,
  /** Segments whose last read chunk the read cache keeps. */
  logReadCacheSegmentsMax: 16,
  /**
   * Largest log server frame either side accepts once authenticated. Fetch answers stay near
   * `fetchBytesMax` (one record may exceed it); a larger append is refused by the client with
   * PAYLOAD_TOO_LARGE before anything is sent.
   */
  logServerFrameBytesMax: 256 * 1024 * 1024,
  /** Largest log server frame accepted before HELLO succeeded. */
  logServerHelloFrameBytesMax: 64 * 1024,
  /**
   * Log server payloads up to this size are copied behind their header and written as one buffer;
   * larger ones go out as header + payload in one corked write. Kept small: a copied payload above
   * 4 KiB is a fresh ArrayBuffer (outside Node's buffer pool), and at a log server's frame rates
   * those allocations alone drove full GCs several times a second.
   */
  logServerFrameCopyBytesMax: 1024,
  /** Kafka backend: timestamps in one produced batch stay within 2^31 ms (about 25 days) of its first. */
  kafkaBatchTimestampDeltaMsMax: 2 ** 31,
  /** Kafka listener: topic ids remembered for Fetch v13+ (a memo, cleared when full). */
  kafkaTopicIdsMax: 10_000,
  /** Kafka listener: one batch's decompressed records, so a small compressed bomb cannot take the heap. */
  kafkaDecompressedBatchBytesMax: 64 * 1024 * 1024,
  /** Kafka listener: remembered producers; the least recently used go first. */
  kafkaProducersMax: 10_000,
  /** Kafka listener: bytes a client may send before it authenticated (Kafka: sasl.server.max.receive.size). */
  kafkaUnauthenticatedFrameBytesMax: 512 * 1024,

  // ---- lake and stream
  /** Optimistic commit retries of one lake commit against concurrent writers. */
  lakeCommitAttemptsMax: 100,
  /** Commit ids a lake manifest remembers, so that a retried commit is recognised. */
  lakeRecentCommitIdsMax: 1000,
  /** Event-time minutes whose time partition a lake sink keeps formatted (a week's worth). */
  lakeSinkTimeMinutesCachedMax: 7 * 24 * 60,
  /**
   * Remembered ids of outputs written after the last checkpoint (replay dedup). The set is kept for
   * the life of the run: with idle partitions, a window fired before the crash may only fire again
   * late in the replay, so there is no safe earlier point to forget it.
   */
  sinkDedupIdsMax: 1_000_000,
  /** Data-quality rules: length of a `matches` pattern and of a SQL predicate. */
  qualityPatternLengthMax: 1000,
  qualityPredicateLengthMax: 4000,

  // ---- connectors and ML
  /** Redirects an HTTP source follows (each hop checked against the network guard). */
  httpRedirectsMax: 5,
  /** How much of the start of a file type sniffing looks at. */
  fileSniffBytesMax: 1024,
  /** wasm32 memories end at 4 GiB (65,536 pages of 64 KiB): the HNSW vector store's ceiling. */
  hnswMemoryPagesMax: 65_536,

  // ---- serve
  /** Verified API keys remembered (a memo, so clearing it only costs a few hashes). */
  apiVerifiedKeysMax: 10_000,
  /** Table descriptions the table routes remember until the table's next commit. */
  apiTableDescriptionsMax: 10_000,
  /** Keys the in-memory rate limiter keeps; beyond it the least recently used key is forgotten. */
  rateLimitMemoryKeysMax: 100_000,
  /** Bytes of a refused request body read away before answering; past it the connection is closed. */
  httpUnreadBodyDrainBytesMax: 64 * 1024 * 1024,
  /** Events queued for one slow SSE client; older ones are dropped first. */
  sseQueueEventsMax: 1000,
  /** Records one topics API append or fetch request carries (the CLI splits larger batches). */
  topicRecordsPerRequestMax: 10_000,

  // ---- cli
  /** CLI remote calls: attempts for answers that say "retry" (429, 503) before giving up. */
  cliRemoteAttemptsMax: 8,
  /** CLI remote calls: longest Retry-After waited for; a platform asking for more is reported at once. */
  cliRetryAfterMsMax: 10_000,
  /**
   * `topics produce`: bounds of one append call. Calls are issued back to back (each keeps
   * per-partition order), so these only keep one request well under the log server's frame limit.
   */
  produceBatchRecordsMax: 10_000,
  produceBatchBytesMax: 16 * 1024 * 1024,
} as const;
