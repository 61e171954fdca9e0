import { createHash } from 'node:crypto';
import { childLogger, TributaryError, limits } from '../../core/index.js';
import type { Log, LogRecord, ProducerRecord, TopicDescription } from '../types.js';
import type { KafkaPrincipal } from './auth.js';
import { errorCodeOf, errorCodes } from './errors.js';
import type { GroupCoordinator } from './groups.js';
import type { ProducerStates } from './producers.js';
import { decodeBatches, encodeBatch, type DecodedBatch } from './record-batch.js';
import type { Message } from './schema.js';

const logger = childLogger('log.kafka-wire');

/** What every handler sees: the log and the listener's shared state. */
export interface ListenerState {
  log: Log;
  groups: GroupCoordinator;
  producers: ProducerStates;
  clusterId: string;
  /**
   * Produce requests (of every connection) start their appends one after the other, in arrival
   * order, so pipelined requests of one producer keep their order per partition; only the
   * durable-append wait runs concurrently.
   */
  produceTurn: Promise<void>;
}

/** One client connection: where it reached us (what Metadata advertises) and who it is. */
export interface Session {
  host: string;
  port: number;
  clientId: string;
  clientHost: string;
  principal: KafkaPrincipal | undefined;
}

export type Permission = 'any' | 'produce' | 'consume' | 'admin';

/** A handler answers a decoded request with a response message, or null for none (acks=0). */
export type Handler = (
  request: Message,
  version: number,
  state: ListenerState,
  session: Session,
) => Promise<Message | null> | Message | null;

/** The one broker of this cluster: node 0. */
const nodeId = 0;

/**
 * A topic's id (Metadata v10+, Fetch v13+): the first 16 bytes of SHA-256 over its name, so it
 * is stable across restarts without storing anything. A topic deleted and created again under the
 * same name keeps its id (Kafka would give it a new one).
 */
export function topicId(name: string): string {
  let id = topicIds.get(name);
  if (id === undefined) {
    // Fetch v13+ maps ids to names on every request: remember them (a memo, bounded).
    if (topicIds.size >= limits.kafkaTopicIdsMax) topicIds.clear();
    id = createHash('sha256').update(`tributary-topic:${name}`).digest('hex').slice(0, 32);
    topicIds.set(name, id);
  }
  return id;
}

const topicIds = new Map<string, string>();

async function describeOrNull(log: Log, topic: string): Promise<TopicDescription | null> {
  try {
    return await log.describeTopic(topic);
  } catch (error) {
    if (error instanceof TributaryError && error.code === 'NOT_FOUND') return null;
    throw error;
  }
}

/** Topic names by id, for Fetch v13+ and Metadata / DeleteTopics by id. */
async function topicsById(log: Log): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const name of await log.listTopics()) out.set(topicId(name), name);
  return out;
}

// ---- Metadata ----------------------------------------------------------------------------------

export const metadata: Handler = async (request, version, state, session) => {
  const requested = request.topics as { name: string | null; topicId: string }[] | null;
  let names: string[];
  const all = requested === null || (version === 0 && requested.length === 0);
  if (all) names = await state.log.listTopics();
  else {
    const byId = requested.some((t) => t.name === null)
      ? await topicsById(state.log)
      : new Map<string, string>();
    names = requested.map((t) => t.name ?? byId.get(t.topicId) ?? '');
  }
  const topics = await Promise.all(
    names.map(async (name, i) => {
      const description = name === '' ? null : await describeOrNull(state.log, name);
      if (description === null) {
        return {
          errorCode: name === '' ? errorCodes.UNKNOWN_TOPIC_ID : errorCodes.UNKNOWN_TOPIC_OR_PARTITION,
          name: name === '' ? null : name,
          topicId: name === '' ? (requested?.[i]?.topicId ?? '') : '',
          isInternal: false,
          partitions: [],
        };
      }
      return {
        errorCode: errorCodes.NONE,
        name,
        topicId: topicId(name),
        isInternal: false,
        partitions: description.partitions.map((p) => ({
          errorCode: errorCodes.NONE,
          partitionIndex: p.partition,
          leaderId: nodeId,
          // No leader epochs: -1 tells clients not to validate positions with OffsetForLeaderEpoch.
          leaderEpoch: -1,
          replicaNodes: [nodeId],
          isrNodes: [nodeId],
          offlineReplicas: [],
        })),
      };
    }),
  );
  return {
    throttleTimeMs: 0,
    brokers: [{ nodeId, host: session.host, port: session.port, rack: null }],
    clusterId: state.clusterId,
    controllerId: nodeId,
    topics,
  };
};

// ---- Produce -----------------------------------------------------------------------------------

interface PartitionProduce {
  index: number;
  records: Buffer | null;
}

/**
 * Appends each partition's batches through `Log.append` and answers after it resolved (which is
 * after the log's fsync policy made them durable); acks=0 gets no answer. Batches are checked
 * (CRC-32C, idempotent sequence) and their appends started synchronously in arrival order, so
 * pipelined requests keep their order per partition.
 */
export const produce: Handler = async (request, _version, state) => {
  const acks = request.acks as number;
  if (request.transactionalId !== null) {
    return produceError(
      request,
      errorCodes.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
      'transactions are not supported',
    );
  }
  if (acks !== 0 && acks !== 1 && acks !== -1) {
    return produceError(request, errorCodes.INVALID_REQUIRED_ACKS, `acks must be -1, 0 or 1, got ${acks}`);
  }

  const topics = request.topicData as { name: string; partitionData: PartitionProduce[] }[];
  const descriptions = new Map<string, TopicDescription | null>();
  const responses: Message[] = [];
  const pending: Promise<void>[] = [];
  const previous = state.produceTurn;
  let release!: () => void;
  state.produceTurn = new Promise<void>((resolve) => (release = resolve));
  await previous;
  try {
    for (const topic of topics) {
      if (!descriptions.has(topic.name))
        descriptions.set(topic.name, await describeOrNull(state.log, topic.name));
      const description = descriptions.get(topic.name)!;
      const partitionResponses: Message[] = [];
      responses.push({ name: topic.name, partitionResponses });
      for (const p of topic.partitionData) {
        const response: Message = {
          index: p.index,
          errorCode: 0,
          baseOffset: -1,
          logAppendTimeMs: -1,
          logStartOffset: -1,
          recordErrors: [],
          errorMessage: null,
        };
        partitionResponses.push(response);
        if (description === null || p.index < 0 || p.index >= description.partitions.length) {
          response.errorCode = errorCodes.UNKNOWN_TOPIC_OR_PARTITION;
          continue;
        }
        response.logStartOffset = description.partitions[p.index].startOffset;
        pending.push(appendPartition(state, topic.name, p, response));
      }
    }
  } finally {
    release();
  }
  await Promise.all(pending);
  if (acks === 0) return null;
  return { responses, throttleTimeMs: 0 };
};

function produceError(request: Message, errorCode: number, message: string): Message | null {
  if ((request.acks as number) === 0) return null;
  const topics = request.topicData as { name: string; partitionData: PartitionProduce[] }[];
  return {
    throttleTimeMs: 0,
    responses: topics.map((t) => ({
      name: t.name,
      partitionResponses: t.partitionData.map((p) => ({
        index: p.index,
        errorCode,
        baseOffset: -1,
        errorMessage: message,
      })),
    })),
  };
}

async function appendPartition(
  state: ListenerState,
  topic: string,
  p: PartitionProduce,
  response: Message,
): Promise<void> {
  let batches: DecodedBatch[];
  try {
    batches = p.records === null ? [] : decodeBatches(p.records, topic, p.index);
  } catch (error) {
    response.errorCode = errorCodeOf(error);
    response.errorMessage = (error as Error).message;
    logger.warn({ topic, partition: p.index, err: error }, 'Kafka produce refused a batch');
    return;
  }
  const appends: Promise<number>[] = [];
  for (const batch of batches) {
    if (batch.transactional || batch.control) {
      response.errorCode = errorCodes.TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
      response.errorMessage = 'transactional batches are not supported';
      return;
    }
    // Decoded straight into producer records of this topic and partition (see ProducedRecord).
    const records: ProducerRecord[] = batch.records;
    if (batch.producerId >= 0) {
      const check = state.producers.check(
        batch.producerId,
        batch.producerEpoch,
        `${topic}/${p.index}`,
        batch.baseSequence,
        records.length,
      );
      if (check.kind === 'error') {
        response.errorCode = check.errorCode;
        response.errorMessage = check.message;
        return;
      }
      if (check.kind === 'duplicate') {
        appends.push(check.baseOffset);
        continue;
      }
      const appended = appendFirstOffset(state.log, records);
      check.record(appended);
      appends.push(appended);
    } else {
      appends.push(appendFirstOffset(state.log, records));
    }
  }
  try {
    const offsets = await Promise.all(appends);
    response.baseOffset = offsets.length === 0 ? -1 : offsets[0];
  } catch (error) {
    response.errorCode = errorCodeOf(error);
    response.errorMessage = (error as Error).message;
    logger.warn({ topic, partition: p.index, err: error }, 'Kafka produce append failed');
  }
}

async function appendFirstOffset(log: Log, records: ProducerRecord[]): Promise<number> {
  if (records.length === 0) return -1;
  const results = await log.append(records);
  return results[0].offset;
}

// ---- Fetch -------------------------------------------------------------------------------------

interface FetchPartitionRequest {
  partition: number;
  fetchOffset: number;
  partitionMaxBytes: number;
}

/**
 * Reads each requested partition from its fetch offset (up to its partitionMaxBytes, the whole
 * response up to maxBytes, at least one batch), and while fewer than minBytes are ready waits up
 * to maxWaitMs in all for any of them to grow. Only read_uncommitted exists: the log has no transactions,
 * so both isolation levels read the same records. No fetch sessions: sessionId 0 asks clients to
 * send full requests.
 */
export const fetch: Handler = async (request, version, state) => {
  const byId = version >= 13 ? await topicsById(state.log) : undefined;
  const wanted = (
    request.topics as { topic: string; topicId: string; partitions: FetchPartitionRequest[] }[]
  ).map((t) => ({
    name: byId === undefined ? t.topic : (byId.get(t.topicId) ?? null),
    topicId: t.topicId,
    partitions: t.partitions,
  }));
  const maxBytes = Math.max(1, request.maxBytes as number);
  const minBytes = request.minBytes as number;
  const maxWaitMs = Math.max(0, request.maxWaitMs as number);
  const deadline = Date.now() + maxWaitMs;
  let result = await readAll(state.log, wanted, maxBytes);
  // Long poll: until minBytes are ready or maxWaitMs passed, wait for any partition to grow past
  // what is already there, then read again (minBytes 0 answers at once, as in Kafka).
  while (result.bytes < minBytes && !result.error && result.bytes < maxBytes) {
    const remainingMs = deadline - Date.now();
    if (remainingMs <= 0) break;
    await waitForGrowth(state.log, wanted, result.responses, remainingMs);
    result = await readAll(state.log, wanted, maxBytes);
  }
  return { throttleTimeMs: 0, errorCode: 0, sessionId: 0, responses: result.responses };
};

const emptyRecords = Buffer.alloc(0);

/** Resolves when any requested partition has a record beyond its current end, or after `waitMs`. */
async function waitForGrowth(
  log: Log,
  wanted: { name: string | null; partitions: FetchPartitionRequest[] }[],
  responses: Message[],
  waitMs: number,
): Promise<void> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), waitMs);
  const waits: Promise<void>[] = [];
  wanted.forEach((t, ti) => {
    if (t.name === null) return;
    const answered = (responses[ti].partitions as Message[]) ?? [];
    t.partitions.forEach((p, pi) => {
      const end = answered[pi]?.highWatermark as number | undefined;
      const offset = Math.max(p.fetchOffset, end ?? 0);
      waits.push(
        log.fetch(t.name!, p.partition, offset, { maxRecords: 1, waitMs, signal: abort.signal }).then(
          (records) => {
            if (records.length > 0) abort.abort();
          },
          () => undefined,
        ),
      );
    });
  });
  await Promise.all(waits);
  clearTimeout(timer);
}

async function readAll(
  log: Log,
  wanted: { name: string | null; topicId: string; partitions: FetchPartitionRequest[] }[],
  maxBytes: number,
): Promise<{ responses: Message[]; bytes: number; error: boolean }> {
  let bytes = 0;
  let error = false;
  const responses: Message[] = [];
  for (const t of wanted) {
    const description = t.name === null ? null : await describeOrNull(log, t.name);
    const partitions: Message[] = [];
    responses.push({ topic: t.name ?? '', topicId: t.topicId, partitions });
    for (const p of t.partitions) {
      const out: Message = {
        partitionIndex: p.partition,
        errorCode: 0,
        highWatermark: -1,
        lastStableOffset: -1,
        logStartOffset: -1,
        abortedTransactions: [],
        preferredReadReplica: -1,
        // Empty, not null: librdkafka refuses a negative record-set size.
        records: emptyRecords,
      };
      partitions.push(out);
      const info = description?.partitions[p.partition];
      if (t.name === null || description === null || info === undefined) {
        out.errorCode = t.name === null ? errorCodes.UNKNOWN_TOPIC_ID : errorCodes.UNKNOWN_TOPIC_OR_PARTITION;
        error = true;
        continue;
      }
      out.highWatermark = info.endOffset;
      out.lastStableOffset = info.endOffset;
      out.logStartOffset = info.startOffset;
      if (p.fetchOffset < info.startOffset || p.fetchOffset > info.endOffset) {
        out.errorCode = errorCodes.OFFSET_OUT_OF_RANGE;
        error = true;
        continue;
      }
      if (p.fetchOffset === info.endOffset || (bytes >= maxBytes && bytes > 0)) continue;
      const budget = Math.max(1, Math.min(p.partitionMaxBytes, maxBytes - bytes));
      let records: LogRecord[];
      try {
        records = await log.fetch(t.name, p.partition, p.fetchOffset, { maxBytes: budget });
      } catch (e) {
        out.errorCode = errorCodeOf(e);
        error = true;
        continue;
      }
      if (records.length === 0) continue;
      const batch = encodeBatch(records);
      out.records = batch;
      bytes += batch.length;
    }
  }
  return { responses, bytes, error };
}

// ---- ListOffsets -------------------------------------------------------------------------------

const latestTimestamp = -1;
const earliestTimestamp = -2;
const earliestLocalTimestamp = -4;

export const listOffsets: Handler = async (request, _version, state) => {
  const topics = request.topics as {
    name: string;
    partitions: { partitionIndex: number; timestamp: number }[];
  }[];
  return {
    throttleTimeMs: 0,
    topics: await Promise.all(
      topics.map(async (t) => {
        const description = await describeOrNull(state.log, t.name);
        return {
          name: t.name,
          partitions: await Promise.all(
            t.partitions.map(async (p) => {
              const out = {
                partitionIndex: p.partitionIndex,
                errorCode: 0,
                timestamp: -1,
                offset: -1,
                leaderEpoch: -1,
                oldStyleOffsets: [] as number[],
              };
              const info = description?.partitions[p.partitionIndex];
              if (info === undefined) {
                out.errorCode = errorCodes.UNKNOWN_TOPIC_OR_PARTITION;
                return out;
              }
              if (p.timestamp === latestTimestamp) out.offset = info.endOffset;
              else if (p.timestamp === earliestTimestamp || p.timestamp === earliestLocalTimestamp)
                out.offset = info.startOffset;
              else if (p.timestamp < 0)
                out.errorCode = errorCodes.UNSUPPORTED_VERSION; // -3 max timestamp, -5 tiered
              else {
                const offset = await state.log.offsetForTimestamp(t.name, p.partitionIndex, p.timestamp);
                if (offset < info.endOffset) {
                  const [record] = await state.log.fetch(t.name, p.partitionIndex, offset, { maxRecords: 1 });
                  if (record !== undefined) {
                    out.offset = record.offset;
                    out.timestamp = record.timestamp;
                  }
                }
              }
              out.oldStyleOffsets = out.offset >= 0 ? [out.offset] : [];
              return out;
            }),
          ),
        };
      }),
    ),
  };
};

// ---- InitProducerId ----------------------------------------------------------------------------

export const initProducerId: Handler = (request, _version, state) => {
  if (request.transactionalId !== null) {
    return {
      throttleTimeMs: 0,
      errorCode: errorCodes.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
      producerId: -1,
      producerEpoch: -1,
    };
  }
  const { producerId, epoch } = state.producers.init(
    request.producerId as number,
    request.producerEpoch as number,
  );
  return { throttleTimeMs: 0, errorCode: 0, producerId, producerEpoch: epoch };
};
