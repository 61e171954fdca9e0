import net from 'node:net';
import { limits, toTributaryError, TributaryError } from '../../core/index.js';
import { notAssigned, resolveFetchOptions, validateOffset } from '../records.js';
import type {
  AppendResult,
  Consumer,
  ConsumerOptions,
  FetchOptions,
  Log,
  LogRecord,
  ProducerRecord,
  StartPosition,
  TopicConfig,
  TopicDescription,
  TopicPartition,
  TopicPartitionOffset,
} from '../types.js';
import {
  decodeAppendResults,
  decodeError,
  decodeJson,
  decodePollResult,
  decodeRecordGroups,
  emptyPayload,
  encodeJson,
  encodeProducerRecords,
  FrameReader,
  MessageType,
  protocolVersion,
  type AssignmentAck,
  type AssignmentPush,
  type ConsumerOpenBody,
  type ConsumerPartitionsBody,
  type ConsumerPollBody,
  type ConsumerSeekBody,
  type FetchBody,
  type Frame,
  type HelloBody,
  writeFrame,
} from './protocol.js';

export interface RemoteLogOptions {
  host: string;
  port: number;
  /** The server's token (from its `server.json`). */
  token: string;
  /** How often the client says it is alive; the server drops a client silent for its session timeout. */
  heartbeatMs?: number;
  /** A server silent this long (no answer, not even to heartbeats) counts as gone: requests fail UNAVAILABLE. */
  sessionTimeoutMs?: number;
  /** Bound on connecting and the HELLO exchange. */
  connectTimeoutMs?: number;
}

/** A `Log` served by another process of this machine (see `serveLog`). */
export interface RemoteLog extends Log {
  readonly kind: 'remote';
  /** `host:port` of the log server. */
  readonly address: string;
}

const defaultHeartbeatMs = 1000;
const defaultSessionTimeoutMs = 10_000;
const defaultConnectTimeoutMs = 5000;

/**
 * Connects to a log server and returns the `Log` it serves. Consumers are members of the server's
 * groups, leased to this connection: they leave when the connection closes (also when this
 * process dies) or stops sending heartbeats.
 *
 * @example
 * const info = readLogServerInfo(dataDirPaths(config.dataDir).log);
 * const log = await connectRemoteLog({ host: info.host, port: info.port, token: info.token });
 * const consumer = log.consumer({ group: 'job.enrich', topics: ['orders'] });
 */
export async function connectRemoteLog(options: RemoteLogOptions): Promise<RemoteLog> {
  const address = `${options.host}:${options.port}`;
  const connectTimeoutMs = options.connectTimeoutMs ?? defaultConnectTimeoutMs;
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.createConnection({ host: options.host, port: options.port });
    const timer = setTimeout(() => {
      s.destroy();
      reject(
        new TributaryError(
          'UNAVAILABLE',
          `log server ${address} did not accept a connection in ${connectTimeoutMs} ms`,
        ),
      );
    }, connectTimeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        new TributaryError(
          'UNAVAILABLE',
          `log server ${address} is unreachable: ${error.code ?? error.message}`,
          {
            cause: error,
          },
        ),
      );
    });
  });
  const log = new RemoteLogImpl(socket, address, options);
  const timer = setTimeout(
    () =>
      log.fail(
        new TributaryError(
          'UNAVAILABLE',
          `log server ${address} did not answer HELLO in ${connectTimeoutMs} ms`,
        ),
      ),
    connectTimeoutMs,
  );
  try {
    const hello: HelloBody = { protocolVersion, token: options.token };
    await log.request(MessageType.HELLO, encodeJson(hello));
  } catch (error) {
    log.fail(toTributaryError(error));
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return log;
}

interface PendingRequest {
  resolve: (frame: Frame) => void;
  reject: (error: TributaryError) => void;
}

const tpKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

class RemoteLogImpl implements RemoteLog {
  readonly kind = 'remote' as const;
  readonly address: string;
  readonly #socket: net.Socket;
  readonly #reader = new FrameReader(limits.logServerFrameBytesMax);
  readonly #pending = new Map<number, PendingRequest>();
  readonly #consumers = new Map<number, RemoteConsumer>();
  readonly #heartbeat: NodeJS.Timeout;
  #nextRequestId = 1;
  #nextConsumerId = 1;
  #lastHeardAtMs = Date.now();
  /** Why this client cannot be used any more: closed, or the connection was lost. */
  #failure: TributaryError | undefined;
  #closing = false;

  constructor(socket: net.Socket, address: string, options: RemoteLogOptions) {
    this.#socket = socket;
    this.address = address;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (error) =>
      this.fail(
        new TributaryError('UNAVAILABLE', `connection to log server ${address} failed: ${error.message}`),
      ),
    );
    socket.on('close', () =>
      this.fail(
        this.#closing
          ? this.#closedError()
          : new TributaryError('UNAVAILABLE', `connection to log server ${address} closed`),
      ),
    );
    const sessionTimeoutMs = options.sessionTimeoutMs ?? defaultSessionTimeoutMs;
    this.#heartbeat = setInterval(() => {
      if (this.#failure !== undefined) return;
      const silentMs = Date.now() - this.#lastHeardAtMs;
      if (silentMs > sessionTimeoutMs) {
        this.fail(
          new TributaryError('UNAVAILABLE', `log server ${address} has been silent for ${silentMs} ms`),
        );
        return;
      }
      this.send(0, MessageType.PING, emptyPayload);
    }, options.heartbeatMs ?? defaultHeartbeatMs);
    // Heartbeats alone never keep a process alive; pending requests do (see #track).
    this.#heartbeat.unref();
  }

  // ---- transport ---------------------------------------------------------------------------------

  /** Sends a request and resolves with its answer (ERROR answers reject with the server's error). */
  request(type: MessageType, payload: Uint8Array, signal?: AbortSignal): Promise<Frame> {
    const failure = this.#closing && !isConsumerClose(type) ? this.#closedError() : this.#failure;
    if (failure !== undefined) return Promise.reject(failure);
    const id = this.#nextRequestId;
    this.#nextRequestId = id === 0xffffffff ? 1 : id + 1;
    return new Promise<Frame>((resolve, reject) => {
      let onAbort: (() => void) | undefined;
      const done = () => {
        if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
        this.#pending.delete(id);
        if (this.#pending.size === 0) this.#socket.unref();
      };
      this.#pending.set(id, {
        resolve: (frame) => {
          done();
          resolve(frame);
        },
        reject: (error) => {
          done();
          reject(error);
        },
      });
      if (this.#pending.size === 1) this.#socket.ref();
      this.send(id, type, payload);
      if (signal !== undefined) {
        onAbort = () => this.send(id, MessageType.CANCEL, emptyPayload);
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      }
    });
  }

  send(requestId: number, type: MessageType, payload: Uint8Array): void {
    if (this.#socket.destroyed) return;
    writeFrame(this.#socket, requestId, type, payload);
  }

  /** Ends the connection with `error`: every pending and later request fails with it. */
  fail(error: TributaryError): void {
    if (this.#failure !== undefined) return;
    this.#failure = error;
    clearInterval(this.#heartbeat);
    this.#socket.destroy();
    for (const pending of [...this.#pending.values()]) pending.reject(error);
  }

  /** Throws why this client cannot be used (closed or disconnected), if it cannot. */
  assertUsable(): void {
    if (this.#closing) throw this.#closedError();
    if (this.#failure !== undefined) throw this.#failure;
  }

  #closedError(): TributaryError {
    return new TributaryError('CLOSED', `remote log ${this.address} is closed`);
  }

  #onData(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.#reader.push(chunk);
    } catch (error) {
      this.fail(toTributaryError(error));
      return;
    }
    if (frames.length > 0) this.#lastHeardAtMs = Date.now();
    for (const frame of frames) {
      if (frame.type === MessageType.ASSIGNMENT) {
        const push = decodeJson(frame.payload, 'ASSIGNMENT') as AssignmentPush;
        this.#consumers.get(push.consumerId)?.applyPush(push);
        continue;
      }
      if (frame.type === MessageType.PONG) continue;
      const pending = this.#pending.get(frame.requestId);
      if (pending === undefined) {
        // An error not tied to a request (the server refused a frame): the connection is over.
        if (frame.type === MessageType.ERROR) this.fail(decodeError(frame.payload));
        continue;
      }
      if (frame.type === MessageType.ERROR) pending.reject(decodeError(frame.payload));
      else pending.resolve(frame);
    }
  }

  async #json(type: MessageType, body: unknown): Promise<unknown> {
    const frame = await this.request(type, encodeJson(body));
    return decodeJson(frame.payload, 'OK');
  }

  // ---- Log ---------------------------------------------------------------------------------------

  async createTopic(name: string, config: TopicConfig, options?: { ifNotExists?: boolean }): Promise<void> {
    await this.#json(MessageType.CREATE_TOPIC, [name, config, options ?? null]);
  }

  async ensureTopic(name: string, config: TopicConfig): Promise<void> {
    await this.#json(MessageType.ENSURE_TOPIC, [name, config]);
  }

  async deleteTopic(name: string): Promise<void> {
    await this.#json(MessageType.DELETE_TOPIC, [name]);
  }

  async listTopics(): Promise<string[]> {
    return (await this.#json(MessageType.LIST_TOPICS, undefined)) as string[];
  }

  async describeTopic(name: string): Promise<TopicDescription> {
    return (await this.#json(MessageType.DESCRIBE_TOPIC, [name])) as TopicDescription;
  }

  async append(records: ProducerRecord[]): Promise<AppendResult[]> {
    this.assertUsable();
    const payload = encodeProducerRecords(records);
    if (payload.length + 5 > limits.logServerFrameBytesMax) {
      throw new TributaryError(
        'PAYLOAD_TOO_LARGE',
        `append of ${records.length} records is ${payload.length} bytes on the wire; the log server takes up to ${limits.logServerFrameBytesMax - 5}: append in smaller batches`,
      );
    }
    const frame = await this.request(MessageType.APPEND, payload);
    return decodeAppendResults(frame.payload, records);
  }

  async fetch(
    topic: string,
    partition: number,
    offset: number,
    options?: FetchOptions,
  ): Promise<LogRecord[]> {
    const resolved = resolveFetchOptions(options);
    const body: FetchBody = {
      topic,
      partition,
      offset,
      maxRecords: resolved.maxRecords,
      maxBytes: resolved.maxBytes,
      waitMs: resolved.waitMs,
    };
    const frame = await this.request(MessageType.FETCH, encodeJson(body), resolved.signal);
    return decodeRecordGroups(frame.payload);
  }

  async offsetForTimestamp(topic: string, partition: number, timestamp: number): Promise<number> {
    return (await this.#json(MessageType.OFFSET_FOR_TIMESTAMP, [topic, partition, timestamp])) as number;
  }

  async commitOffsets(group: string, offsets: TopicPartitionOffset[]): Promise<void> {
    await this.#json(MessageType.COMMIT_OFFSETS, [group, offsets]);
  }

  async committedOffsets(group: string, topic: string): Promise<Map<number, number>> {
    return new Map((await this.#json(MessageType.COMMITTED_OFFSETS, [group, topic])) as [number, number][]);
  }

  async resetOffsets(group: string, topic: string, to: StartPosition): Promise<void> {
    await this.#json(MessageType.RESET_OFFSETS, [group, topic, to]);
  }

  async listGroups(): Promise<string[]> {
    return (await this.#json(MessageType.LIST_GROUPS, undefined)) as string[];
  }

  consumer(options: ConsumerOptions): Consumer {
    this.assertUsable();
    const id = this.#nextConsumerId++;
    const consumer = new RemoteConsumer(this, id, options, () => this.#consumers.delete(id));
    this.#consumers.set(id, consumer);
    return consumer;
  }

  /** Closes this client's consumers (they leave their groups) and the connection; the server's log stays open. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    for (const consumer of [...this.#consumers.values()]) await consumer.close();
    if (this.#failure === undefined) {
      const closed = new Promise<void>((resolve) => this.#socket.once('close', () => resolve()));
      this.#socket.end();
      // The server closes its side at once; do not wait on a peer that never does.
      const timer = setTimeout(() => this.#socket.destroy(), 1000);
      await closed;
      clearTimeout(timer);
    }
    this.fail(this.#closedError());
  }
}

function isConsumerClose(type: MessageType): boolean {
  return type === MessageType.CONSUMER_CLOSE;
}

/**
 * A member of a group held by the server for this connection. Assignment, positions and pauses
 * are mirrored here so the synchronous methods answer without a round trip; `seek`, `pause` and
 * `resume` go to the server as one-way messages in call order, ahead of any later poll.
 */
class RemoteConsumer implements Consumer {
  readonly group: string;
  readonly #log: RemoteLogImpl;
  readonly #id: number;
  readonly #onAssignment: ConsumerOptions['onAssignment'];
  readonly #forget: () => void;
  readonly #opened: Promise<void>;
  #assignment: TopicPartition[] = [];
  #assigned = new Set<string>();
  readonly #positions = new Map<string, number>();
  /** Where reading would start, per the last ASSIGNMENT push (answers `position` before a poll). */
  readonly #startOffsets = new Map<string, number>();
  readonly #paused = new Set<string>();
  /** Sequence number of the last seek per partition (see POLL_RESULT in protocol.ts). */
  readonly #seekSequences = new Map<string, number>();
  #seekSequence = 0;
  #callbacks: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(log: RemoteLogImpl, id: number, options: ConsumerOptions, forget: () => void) {
    if (!options.group) throw new TributaryError('INVALID_ARGUMENT', 'consumer group name must not be empty');
    if (options.topics.length === 0)
      throw new TributaryError('INVALID_ARGUMENT', 'a consumer needs at least one topic');
    this.group = options.group;
    this.#log = log;
    this.#id = id;
    this.#onAssignment = options.onAssignment;
    this.#forget = forget;
    const body: ConsumerOpenBody = {
      consumerId: id,
      group: options.group,
      topics: [...new Set(options.topics)],
      ...(options.from === undefined ? {} : { from: options.from }),
    };
    this.#opened = log.request(MessageType.CONSUMER_OPEN, encodeJson(body)).then(() => undefined);
    // A failed open surfaces from the first poll or commit; never as an unhandled rejection.
    this.#opened.catch(() => undefined);
  }

  /** An ASSIGNMENT push: update the mirror now, run the callback in order, then acknowledge. */
  applyPush(push: AssignmentPush): void {
    if (this.#closed) return;
    for (const tp of push.revoked) {
      const key = tpKey(tp.topic, tp.partition);
      this.#assigned.delete(key);
      this.#positions.delete(key);
      this.#paused.delete(key);
      this.#startOffsets.delete(key);
    }
    for (const tp of push.assigned) this.#assigned.add(tpKey(tp.topic, tp.partition));
    this.#assignment = [
      ...this.#assignment.filter((tp) => this.#assigned.has(tpKey(tp.topic, tp.partition))),
      ...push.assigned.filter(
        (tp) => !this.#assignment.some((a) => a.topic === tp.topic && a.partition === tp.partition),
      ),
    ].sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
    for (const o of push.startOffsets) this.#startOffsets.set(tpKey(o.topic, o.partition), o.offset);
    const callback = this.#onAssignment;
    const assigned = push.assigned.map((tp) => ({ topic: tp.topic, partition: tp.partition }));
    const revoked = push.revoked.map((tp) => ({ topic: tp.topic, partition: tp.partition }));
    this.#callbacks = this.#callbacks.then(async () => {
      const ack: AssignmentAck = { consumerId: this.#id, pushId: push.pushId };
      if (callback !== undefined) {
        try {
          await callback(assigned, revoked);
        } catch (error) {
          // The server's member fails its next poll with this, as LocalConsumer does.
          const failure = toTributaryError(error);
          ack.error = { code: failure.code, message: failure.message };
        }
      }
      this.#log.send(0, MessageType.ASSIGNMENT_ACK, encodeJson(ack));
    });
  }

  assignment(): TopicPartition[] {
    return this.#assignment.map((tp) => ({ ...tp }));
  }

  position(tp: TopicPartition): number {
    const key = this.#assertAssigned(tp);
    const known = this.#positions.get(key);
    if (known !== undefined) return known;
    const start = this.#startOffsets.get(key);
    if (start === undefined) {
      throw new TributaryError(
        'CONFLICT',
        `position of ${tp.topic}/${tp.partition} for group ${this.group} is not known yet; it is resolved on the first poll`,
      );
    }
    // As LocalConsumer, asking for the position fixes it: reading starts there.
    this.#seekTo(tp, key, start);
    return start;
  }

  seek(tp: TopicPartition, offset: number): void {
    validateOffset(offset, `seek ${tp.topic}/${tp.partition}`);
    this.#seekTo(tp, this.#assertAssigned(tp), offset);
  }

  #seekTo(tp: TopicPartition, key: string, offset: number): void {
    this.#positions.set(key, offset);
    const sequence = ++this.#seekSequence;
    this.#seekSequences.set(key, sequence);
    const body: ConsumerSeekBody = {
      consumerId: this.#id,
      topic: tp.topic,
      partition: tp.partition,
      offset,
      sequence,
    };
    this.#log.send(0, MessageType.CONSUMER_SEEK, encodeJson(body));
  }

  pause(tps: TopicPartition[]): void {
    const keys = tps.map((tp) => this.#assertAssigned(tp));
    for (const key of keys) this.#paused.add(key);
    this.#sendPartitions(MessageType.CONSUMER_PAUSE, tps);
  }

  resume(tps: TopicPartition[]): void {
    for (const tp of tps) this.#paused.delete(tpKey(tp.topic, tp.partition));
    this.#sendPartitions(MessageType.CONSUMER_RESUME, tps);
  }

  #sendPartitions(type: MessageType, tps: TopicPartition[]): void {
    const body: ConsumerPartitionsBody = {
      consumerId: this.#id,
      partitions: tps.map((tp) => ({ topic: tp.topic, partition: tp.partition })),
    };
    this.#log.send(0, type, encodeJson(body));
  }

  async commit(offsets?: TopicPartitionOffset[]): Promise<void> {
    this.#assertOpen();
    await this.#opened;
    await this.#log.request(
      MessageType.CONSUMER_COMMIT,
      encodeJson({ consumerId: this.#id, ...(offsets === undefined ? {} : { offsets }) }),
    );
  }

  async poll(options?: FetchOptions): Promise<LogRecord[]> {
    this.#assertOpen();
    const resolved = resolveFetchOptions(options);
    await this.#opened;
    const body: ConsumerPollBody = {
      consumerId: this.#id,
      maxRecords: resolved.maxRecords,
      maxBytes: resolved.maxBytes,
      waitMs: resolved.waitMs,
    };
    const frame = await this.#log.request(MessageType.CONSUMER_POLL, encodeJson(body), resolved.signal);
    const { seekSequence, records } = decodePollResult(frame.payload);
    const out: LogRecord[] = [];
    let topic = '';
    let partition = -1;
    let keep = false;
    let key = '';
    for (const record of records) {
      if (record.topic !== topic || record.partition !== partition) {
        if (keep && out.length > 0) this.#positions.set(key, out[out.length - 1].offset + 1);
        topic = record.topic;
        partition = record.partition;
        key = tpKey(topic, partition);
        // Revoked since the server read them, or read from before a seek the server had not seen.
        keep = this.#assigned.has(key) && (this.#seekSequences.get(key) ?? 0) <= seekSequence;
      }
      if (keep) out.push(record);
    }
    if (keep && out.length > 0) this.#positions.set(key, out[out.length - 1].offset + 1);
    return out;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#assignment = [];
    this.#assigned = new Set();
    this.#positions.clear();
    this.#forget();
    try {
      await this.#opened;
      await this.#log.request(MessageType.CONSUMER_CLOSE, encodeJson({ consumerId: this.#id }));
    } catch {
      // Not opened, or the connection is gone: the server has dropped this member either way.
    }
  }

  #assertAssigned(tp: TopicPartition): string {
    const key = tpKey(tp.topic, tp.partition);
    if (!this.#assigned.has(key)) throw notAssigned(tp, this.group);
    return key;
  }

  #assertOpen(): void {
    if (this.#closed) throw new TributaryError('CLOSED', `consumer of group ${this.group} is closed`);
    this.#log.assertUsable();
  }
}
