import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { childLogger, limits, toTributaryError, TributaryError } from '../../core/index.js';
import { startOffsets } from '../records.js';
import type { Consumer, Log, StartPosition, TopicPartition, TopicPartitionOffset } from '../types.js';
import { decodeBody, type BodyName } from './bodies.js';
import { removeServerInfo, writeServerInfo } from './info.js';
import {
  decodeProducerRecords,
  encodeAppendResults,
  encodeError,
  encodeJson,
  encodePollResult,
  encodeRecordGroups,
  errorFromWire,
  FrameReader,
  MessageType,
  protocolVersion,
  type AssignmentAck,
  type AssignmentPush,
  type ConsumerOpenBody,
  type Frame,
  type HelloBody,
  writeFrame,
} from './protocol.js';

const logger = childLogger('log.server');

export interface LogServerOptions {
  /** The served log's directory; `server.json` (address and token) is written there. */
  dir: string;
  /** Address to listen on; default 127.0.0.1 (the server is for processes of this machine). */
  host?: string;
  /** Port; default 0, a free one chosen by the OS. */
  port?: number;
  /** A connection silent this long (no request, no heartbeat) is closed and its members leave. */
  sessionTimeoutMs?: number;
}

export interface LogServer {
  readonly host: string;
  readonly port: number;
  /** Stops listening, closes every connection (their group members leave), removes `server.json`. */
  close(): Promise<void>;
}

export const defaultSessionTimeoutMs = 10_000;

/**
 * Serves `log` (normally the embedded log this process owns) to other processes of the machine,
 * so several processes can share one data dir: CLI commands, and workers of one consumer group.
 * Writes `<dir>/server.json` with the address and a fresh token (see `writeServerInfo`). The log
 * stays open when the server closes; close it afterwards.
 *
 * @example
 * const log = await openEmbeddedLog({ dir });
 * const server = await serveLog(log, { dir });
 * // other processes: openLog(config) now connects to it
 * await server.close();
 * await log.close();
 */
export async function serveLog(log: Log, options: LogServerOptions): Promise<LogServer> {
  const token = randomBytes(32).toString('base64url');
  const sessionTimeoutMs = options.sessionTimeoutMs ?? defaultSessionTimeoutMs;
  if (!(sessionTimeoutMs > 0)) {
    throw new TributaryError('INVALID_ARGUMENT', `sessionTimeoutMs must be > 0, got ${sessionTimeoutMs}`);
  }
  const connections = new Set<ServerConnection>();
  const tcp = net.createServer();
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new TributaryError(
          'IO',
          `log server could not listen on ${host}:${options.port ?? 0}: ${error.code}`,
          {
            cause: error,
          },
        ),
      ),
    );
    tcp.listen({ host, port: options.port ?? 0 }, () => resolve());
  });
  const address = tcp.address() as net.AddressInfo;
  const dir = path.resolve(options.dir);
  const context: ServerContext = {
    log,
    address: `${address.address}:${address.port}`,
    dir,
    tokenDigest: digest(token),
  };
  let closing: Promise<void> | undefined;
  tcp.on('connection', (socket) => {
    if (closing !== undefined) {
      socket.destroy();
      return;
    }
    const connection = new ServerConnection(socket, context);
    connections.add(connection);
    void connection.closed.then(() => connections.delete(connection));
  });
  tcp.on('error', (error) => logger.error({ err: error }, 'log server socket failed'));
  const sweep = setInterval(
    () => {
      const now = Date.now();
      for (const connection of connections) {
        if (now - connection.lastHeardAtMs > sessionTimeoutMs) {
          logger.warn(
            { peer: connection.peer, silentMs: now - connection.lastHeardAtMs },
            'closing a silent log client (its group members leave)',
          );
          connection.destroy();
        }
      }
    },
    Math.max(20, Math.min(1000, Math.floor(sessionTimeoutMs / 4))),
  );
  sweep.unref();
  const own = { pid: process.pid, port: address.port, token };
  try {
    await writeServerInfo(dir, { ...own, host: address.address, startedAtMs: Date.now() });
  } catch (error) {
    clearInterval(sweep);
    tcp.close();
    throw error;
  }
  logger.info({ address: context.address, dir }, 'log server listening');
  return {
    host: address.address,
    port: address.port,
    close() {
      closing ??= (async () => {
        clearInterval(sweep);
        removeServerInfo(dir, own);
        const stopped = new Promise<void>((resolve) => tcp.close(() => resolve()));
        const all = [...connections];
        for (const connection of all) connection.destroy();
        await Promise.all(all.map((c) => c.closed));
        await stopped;
      })();
      return closing;
    },
  };
}

interface ServerContext {
  log: Log;
  address: string;
  dir: string;
  tokenDigest: Buffer;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

const tpKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

type Answer = [MessageType, Uint8Array];
const ok = (value?: unknown): Answer => [MessageType.OK, encodeJson(value)];

/** One client connection: its requests, its in-flight long polls and its group members. */
class ServerConnection {
  readonly peer: string;
  lastHeardAtMs = Date.now();
  /** Resolves when the connection is gone and its members have left their groups. */
  readonly closed: Promise<void>;
  readonly #socket: net.Socket;
  readonly #context: ServerContext;
  readonly #reader = new FrameReader(limits.logServerHelloFrameBytesMax);
  readonly #members = new Map<number, ServerMember>();
  readonly #inflight = new Map<number, AbortController>();
  #authenticated = false;

  constructor(socket: net.Socket, context: ServerContext) {
    this.#socket = socket;
    this.#context = context;
    this.peer = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (error) => logger.debug({ err: error, peer: this.peer }, 'log client socket error'));
    this.closed = new Promise<void>((resolve) => {
      socket.once('close', () => {
        this.#teardown().then(resolve, (error: unknown) => {
          logger.error({ err: error, peer: this.peer }, 'closing the members of a log client failed');
          resolve();
        });
      });
    });
  }

  destroy(): void {
    this.#socket.destroy();
  }

  send(requestId: number, type: MessageType, payload: Uint8Array): void {
    if (this.#socket.destroyed || !this.#socket.writable) return;
    writeFrame(this.#socket, requestId, type, payload);
  }

  #onData(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.#reader.push(chunk);
    } catch (error) {
      this.send(0, MessageType.ERROR, encodeError(toTributaryError(error)));
      this.#socket.end();
      return;
    }
    if (frames.length > 0) this.lastHeardAtMs = Date.now();
    for (const frame of frames) {
      if (this.#socket.destroyed) return;
      this.#dispatch(frame);
    }
  }

  #dispatch(frame: Frame): void {
    if (!this.#authenticated) {
      this.#hello(frame);
      return;
    }
    try {
      switch (frame.type) {
        case MessageType.PING:
          this.send(frame.requestId, MessageType.PONG, encodeJson(undefined));
          return;
        case MessageType.CANCEL:
          this.#inflight.get(frame.requestId)?.abort();
          return;
        case MessageType.CONSUMER_SEEK: {
          const body = decodeBody(frame.payload, 'CONSUMER_SEEK');
          const member = this.#member(body.consumerId);
          member.seekSequence = body.sequence;
          member.consumer.seek({ topic: body.topic, partition: body.partition }, body.offset);
          return;
        }
        case MessageType.CONSUMER_PAUSE: {
          const body = decodeBody(frame.payload, 'CONSUMER_PAUSE');
          this.#member(body.consumerId).consumer.pause(body.partitions);
          return;
        }
        case MessageType.CONSUMER_RESUME: {
          const body = decodeBody(frame.payload, 'CONSUMER_RESUME');
          this.#member(body.consumerId).consumer.resume(body.partitions);
          return;
        }
        case MessageType.ASSIGNMENT_ACK: {
          const body = decodeBody(frame.payload, 'ASSIGNMENT_ACK');
          this.#members.get(body.consumerId)?.acknowledge(body);
          return;
        }
      }
    } catch (error) {
      // One-way messages have nobody to answer. The client checked them against its view of the
      // assignment; the server's may already have moved on (a rebalance in flight), which is fine.
      logger.debug({ err: error, peer: this.peer, type: frame.type }, 'one-way message not applied');
      return;
    }
    void this.#answer(frame);
  }

  #hello(frame: Frame): void {
    const refuse = (error: TributaryError) => {
      logger.warn({ peer: this.peer, code: error.code }, 'refused a log client');
      this.send(frame.requestId, MessageType.ERROR, encodeError(error));
      this.#socket.end();
    };
    if (frame.type !== MessageType.HELLO) {
      refuse(
        new TributaryError(
          'UNAUTHENTICATED',
          `log server ${this.#context.address}: the first message must be HELLO with the token`,
        ),
      );
      return;
    }
    let body: HelloBody;
    try {
      body = decodeBody(frame.payload, 'HELLO');
    } catch (error) {
      refuse(toTributaryError(error));
      return;
    }
    if (body?.protocolVersion !== protocolVersion) {
      refuse(
        new TributaryError(
          'FORMAT_VERSION',
          `log server ${this.#context.address} speaks protocol ${protocolVersion}, the client ${String(body?.protocolVersion)}`,
        ),
      );
      return;
    }
    if (typeof body.token !== 'string' || !timingSafeEqual(digest(body.token), this.#context.tokenDigest)) {
      refuse(
        new TributaryError(
          'UNAUTHENTICATED',
          `log server ${this.#context.address} refused the connection: wrong token (the token is in ${path.join(this.#context.dir, 'server.json')}, readable only by the data dir's owner)`,
        ),
      );
      return;
    }
    this.#authenticated = true;
    this.#reader.maxFrameBytes = limits.logServerFrameBytesMax;
    this.send(frame.requestId, MessageType.OK, encodeJson({ protocolVersion, pid: process.pid }));
  }

  async #answer(frame: Frame): Promise<void> {
    let answer: Answer;
    try {
      answer = await this.#handle(frame);
    } catch (error) {
      answer = [MessageType.ERROR, encodeError(toTributaryError(error))];
    }
    this.send(frame.requestId, answer[0], answer[1]);
  }

  /** Everything before the first `await` runs in arrival order (CONSUMER_OPEN registers at once). */
  async #handle(frame: Frame): Promise<Answer> {
    const log = this.#context.log;
    const json = <N extends BodyName>(what: N) => decodeBody(frame.payload, what);
    switch (frame.type) {
      case MessageType.CREATE_TOPIC: {
        const [name, config, options] = json('CREATE_TOPIC');
        return ok(await log.createTopic(name, config, options ?? undefined));
      }
      case MessageType.ENSURE_TOPIC: {
        const [name, config] = json('ENSURE_TOPIC');
        return ok(await log.ensureTopic(name, config));
      }
      case MessageType.DELETE_TOPIC: {
        const [name] = json('DELETE_TOPIC');
        return ok(await log.deleteTopic(name));
      }
      case MessageType.LIST_TOPICS:
        return ok(await log.listTopics());
      case MessageType.DESCRIBE_TOPIC: {
        const [name] = json('DESCRIBE_TOPIC');
        return ok(await log.describeTopic(name));
      }
      case MessageType.APPEND: {
        const records = decodeProducerRecords(frame.payload);
        return [MessageType.APPEND_RESULT, encodeAppendResults(await log.append(records))];
      }
      case MessageType.FETCH: {
        const body = json('FETCH');
        const records = await this.#cancellable(frame.requestId, (signal) =>
          log.fetch(body.topic, body.partition, body.offset, {
            maxRecords: body.maxRecords,
            maxBytes: body.maxBytes,
            waitMs: body.waitMs,
            signal,
          }),
        );
        return [MessageType.RECORDS, encodeRecordGroups(records)];
      }
      case MessageType.OFFSET_FOR_TIMESTAMP: {
        const [topic, partition, timestamp] = json('OFFSET_FOR_TIMESTAMP');
        return ok(await log.offsetForTimestamp(topic, partition, timestamp));
      }
      case MessageType.COMMIT_OFFSETS: {
        const [group, offsets] = json('COMMIT_OFFSETS');
        return ok(await log.commitOffsets(group, offsets));
      }
      case MessageType.COMMITTED_OFFSETS: {
        const [group, topic] = json('COMMITTED_OFFSETS');
        return ok([...(await log.committedOffsets(group, topic))]);
      }
      case MessageType.RESET_OFFSETS: {
        const [group, topic, to] = json('RESET_OFFSETS');
        return ok(await log.resetOffsets(group, topic, to));
      }
      case MessageType.LIST_GROUPS:
        return ok(await log.listGroups());
      case MessageType.CONSUMER_OPEN: {
        const body = json('CONSUMER_OPEN');
        if (this.#members.has(body.consumerId)) {
          throw new TributaryError(
            'CONFLICT',
            `consumer #${body.consumerId} is already open on this connection`,
          );
        }
        const member = new ServerMember(this, body);
        this.#members.set(body.consumerId, member);
        return ok();
      }
      case MessageType.CONSUMER_POLL: {
        const body = json('CONSUMER_POLL');
        const member = this.#member(body.consumerId);
        const records = await this.#cancellable(frame.requestId, (signal) =>
          member.consumer.poll({
            maxRecords: body.maxRecords,
            maxBytes: body.maxBytes,
            waitMs: body.waitMs,
            signal,
          }),
        );
        return [MessageType.POLL_RESULT, encodePollResult(member.seekSequence, member.deliverable(records))];
      }
      case MessageType.CONSUMER_COMMIT: {
        const body = json('CONSUMER_COMMIT');
        return ok(await this.#member(body.consumerId).consumer.commit(body.offsets));
      }
      case MessageType.CONSUMER_CLOSE: {
        const body = json('CONSUMER_CLOSE');
        const member = this.#members.get(body.consumerId);
        this.#members.delete(body.consumerId);
        await member?.close();
        return ok();
      }
      default:
        throw new TributaryError('INVALID_ARGUMENT', `unknown message type 0x${frame.type.toString(16)}`);
    }
  }

  async #cancellable<T>(requestId: number, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    this.#inflight.set(requestId, controller);
    try {
      return await work(controller.signal);
    } finally {
      this.#inflight.delete(requestId);
    }
  }

  #member(consumerId: number): ServerMember {
    const member = this.#members.get(consumerId);
    if (member === undefined) {
      throw new TributaryError('NOT_FOUND', `consumer #${consumerId} is not open on this connection`);
    }
    return member;
  }

  get log(): Log {
    return this.#context.log;
  }

  async #teardown(): Promise<void> {
    for (const controller of this.#inflight.values()) controller.abort();
    const members = [...this.#members.values()];
    this.#members.clear();
    // The lease: members of a gone (or silent) client leave at once, so the group rebalances.
    for (const member of members) await member.close();
    if (members.length > 0) logger.info({ peer: this.peer, members: members.length }, 'log client left');
  }
}

interface PendingAck {
  assigned: TopicPartition[];
  revoked: TopicPartition[];
  resolve: () => void;
  reject: (error: Error) => void;
}

/** A consumer-group member held for a client; its `onAssignment` waits for the client's. */
class ServerMember {
  readonly consumerId: number;
  readonly consumer: Consumer;
  /** The last CONSUMER_SEEK sequence applied (see POLL_RESULT). */
  seekSequence = 0;
  readonly #connection: ServerConnection;
  readonly #group: string;
  readonly #from: StartPosition;
  /** Partitions whose ASSIGNMENT the client acknowledged: only their records are delivered. */
  readonly #acknowledged = new Set<string>();
  readonly #pending = new Map<number, PendingAck>();
  #pushes = 0;
  #closed = false;

  constructor(connection: ServerConnection, body: ConsumerOpenBody) {
    this.consumerId = body.consumerId;
    this.#connection = connection;
    this.#group = body.group;
    this.#from = body.from ?? 'earliest';
    this.consumer = connection.log.consumer({
      group: body.group,
      topics: body.topics,
      from: this.#from,
      onAssignment: (assigned, revoked) => this.#onAssignment(assigned, revoked),
    });
  }

  /** Runs in the consumer's callback chain, so its poll waits until the client has acknowledged. */
  async #onAssignment(assigned: TopicPartition[], revoked: TopicPartition[]): Promise<void> {
    if (this.#closed) return;
    const pushId = ++this.#pushes;
    const startOffsets = await this.#startOffsets(assigned);
    if (this.#closed) return;
    await new Promise<void>((resolve, reject) => {
      this.#pending.set(pushId, { assigned, revoked, resolve, reject });
      const push: AssignmentPush = { consumerId: this.consumerId, pushId, assigned, revoked, startOffsets };
      this.#connection.send(0, MessageType.ASSIGNMENT, encodeJson(push));
    });
  }

  acknowledge(ack: AssignmentAck): void {
    const pending = this.#pending.get(ack.pushId);
    if (pending === undefined) return;
    this.#pending.delete(ack.pushId);
    for (const tp of pending.revoked) this.#acknowledged.delete(tpKey(tp.topic, tp.partition));
    for (const tp of pending.assigned) this.#acknowledged.add(tpKey(tp.topic, tp.partition));
    if (ack.error === undefined) pending.resolve();
    else pending.reject(errorFromWire(ack.error));
  }

  /**
   * Records of partitions whose assignment the client has acknowledged. A rebalance landing
   * between the consumer's callback wait and its fetch can add partitions whose callback has not
   * run yet; their records are held back (the position goes back to the first of them) and are
   * read again by a later poll, after the callback.
   */
  deliverable<T extends { topic: string; partition: number; offset: number }>(records: T[]): T[] {
    let held: Map<string, TopicPartitionOffset> | undefined;
    const out = records.filter((r) => {
      const key = tpKey(r.topic, r.partition);
      if (this.#acknowledged.has(key)) return true;
      held ??= new Map();
      if (!held.has(key)) held.set(key, { topic: r.topic, partition: r.partition, offset: r.offset });
      return false;
    });
    for (const tp of held?.values() ?? []) {
      try {
        this.consumer.seek(tp, tp.offset);
      } catch {
        // Revoked meanwhile: its next owner starts from the committed offset.
      }
    }
    return out;
  }

  /** Where reading each newly assigned partition would start now, as LocalConsumer resolves it. */
  async #startOffsets(assigned: TopicPartition[]): Promise<TopicPartitionOffset[]> {
    const out: TopicPartitionOffset[] = [];
    for (const topic of new Set(assigned.map((tp) => tp.topic))) {
      try {
        const ofTopic = assigned.filter((tp) => tp.topic === topic);
        out.push(...(await startOffsets(this.#connection.log, this.#group, ofTopic, this.#from)));
      } catch (error) {
        // A topic deleted meanwhile: no start offsets to offer, the first poll resolves them.
        logger.debug({ err: error, topic }, 'no start offsets for an assignment push');
      }
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const pending of this.#pending.values()) pending.resolve();
    this.#pending.clear();
    try {
      await this.consumer.close();
    } catch (error) {
      logger.debug({ err: error, consumer: this.consumerId }, 'closing a remote member failed');
    }
  }
}
