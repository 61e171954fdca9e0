import { randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { childLogger, limits, TributaryError } from '../../core/index.js';
import type { Log } from '../types.js';
import { parsePlain, ScramServer, type KafkaAuthenticator, type KafkaPrincipal } from './auth.js';
import { errorCodes } from './errors.js';
import { GroupCoordinator } from './groups.js';
import {
  fetch,
  initProducerId,
  listOffsets,
  metadata,
  produce,
  type Handler,
  type ListenerState,
  type Permission,
  type Session,
} from './handlers.js';
import { createTopics, deleteTopics, describeConfigs } from './handlers-admin.js';
import {
  describeGroups,
  findCoordinator,
  heartbeat,
  joinGroup,
  leaveGroup,
  listGroups,
  offsetCommit,
  offsetFetch,
  syncGroup,
} from './handlers-groups.js';
import { messageSchemas } from './messages.js';
import { ProducerStates } from './producers.js';
import {
  compileMessage,
  isFlexible,
  isValidVersion,
  KafkaReader,
  KafkaWriter,
  type CompiledMessage,
  type Message,
  type MessageSchema,
} from './schema.js';

const logger = childLogger('log.kafka-wire');

export interface KafkaListenerOptions {
  /** Address to bind; default 127.0.0.1. */
  host?: string;
  /** Port; 0 (default) picks a free one. */
  port?: number;
  /** Maps SASL credentials to principals (API keys in `tributary up`). Required: there is no anonymous access. */
  authenticator: KafkaAuthenticator;
  /** PEM certificate and key: the listener speaks TLS (SASL_SSL) instead of plain TCP (SASL_PLAINTEXT). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Group members silent this long are removed; their clients' own session timeouts apply too. */
  initialRebalanceDelayMs?: number;
}

export interface KafkaListener {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

interface ServedApi {
  name: string;
  minVersion: number;
  maxVersion: number;
  permission: Permission;
  handler: Handler;
}

const saslHandshakeKey = 17;
const apiVersionsKey = 18;
const saslAuthenticateKey = 36;

/**
 * The APIs served and their version ranges. Produce starts at v3 and Fetch at v4 because earlier
 * versions carry the pre-0.11 message formats; every version listed is read and written by the
 * schema interpreter from Kafka's own definitions.
 */
const served = new Map<number, ServedApi>([
  [0, { name: 'Produce', minVersion: 3, maxVersion: 11, permission: 'produce', handler: produce }],
  [1, { name: 'Fetch', minVersion: 4, maxVersion: 17, permission: 'consume', handler: fetch }],
  [2, { name: 'ListOffsets', minVersion: 1, maxVersion: 9, permission: 'consume', handler: listOffsets }],
  [3, { name: 'Metadata', minVersion: 0, maxVersion: 12, permission: 'any', handler: metadata }],
  [8, { name: 'OffsetCommit', minVersion: 0, maxVersion: 9, permission: 'consume', handler: offsetCommit }],
  [9, { name: 'OffsetFetch', minVersion: 1, maxVersion: 9, permission: 'consume', handler: offsetFetch }],
  [
    10,
    { name: 'FindCoordinator', minVersion: 0, maxVersion: 6, permission: 'any', handler: findCoordinator },
  ],
  [11, { name: 'JoinGroup', minVersion: 0, maxVersion: 9, permission: 'consume', handler: joinGroup }],
  [12, { name: 'Heartbeat', minVersion: 0, maxVersion: 4, permission: 'consume', handler: heartbeat }],
  [13, { name: 'LeaveGroup', minVersion: 0, maxVersion: 5, permission: 'consume', handler: leaveGroup }],
  [14, { name: 'SyncGroup', minVersion: 0, maxVersion: 5, permission: 'consume', handler: syncGroup }],
  [
    15,
    { name: 'DescribeGroups', minVersion: 0, maxVersion: 5, permission: 'consume', handler: describeGroups },
  ],
  [16, { name: 'ListGroups', minVersion: 0, maxVersion: 5, permission: 'consume', handler: listGroups }],
  [19, { name: 'CreateTopics', minVersion: 0, maxVersion: 7, permission: 'admin', handler: createTopics }],
  [20, { name: 'DeleteTopics', minVersion: 0, maxVersion: 6, permission: 'admin', handler: deleteTopics }],
  [
    22,
    { name: 'InitProducerId', minVersion: 0, maxVersion: 5, permission: 'produce', handler: initProducerId },
  ],
  [
    32,
    { name: 'DescribeConfigs', minVersion: 0, maxVersion: 4, permission: 'any', handler: describeConfigs },
  ],
]);

/** ApiVersions v0–v3 (v3 flexible, KIP-511), SaslHandshake v0–v1, SaslAuthenticate v0–v2. */
const apiVersionsRange = [0, 3] as const;
const saslHandshakeRange = [0, 1] as const;
const saslAuthenticateRange = [0, 2] as const;

/** The ApiVersions answer: every API and version range this listener serves. */
export function servedApiVersions(): { apiKey: number; minVersion: number; maxVersion: number }[] {
  const out = [...served].map(([apiKey, api]) => ({
    apiKey,
    minVersion: api.minVersion,
    maxVersion: api.maxVersion,
  }));
  out.push({
    apiKey: saslHandshakeKey,
    minVersion: saslHandshakeRange[0],
    maxVersion: saslHandshakeRange[1],
  });
  out.push({ apiKey: apiVersionsKey, minVersion: apiVersionsRange[0], maxVersion: apiVersionsRange[1] });
  out.push({
    apiKey: saslAuthenticateKey,
    minVersion: saslAuthenticateRange[0],
    maxVersion: saslAuthenticateRange[1],
  });
  return out.sort((a, b) => a.apiKey - b.apiKey);
}

const schemas = new Map<string, MessageSchema>();
for (const schema of messageSchemas) schemas.set(`${schema.apiKey}:${schema.type}`, schema);
const compiled = new Map<string, CompiledMessage>();

function codec(apiKey: number, type: 'request' | 'response', version: number): CompiledMessage {
  const key = `${apiKey}:${type}:${version}`;
  let c = compiled.get(key);
  if (c === undefined) {
    const schema = schemas.get(`${apiKey}:${type}`);
    if (schema === undefined)
      throw new TributaryError('INTERNAL', `no Kafka schema for API ${apiKey} ${type}`);
    compiled.set(key, (c = compileMessage(schema, version)));
  }
  return c;
}

/**
 * Serves `log` over the Apache Kafka wire protocol, so Kafka clients (librdkafka/kcat, kafkajs,
 * the Java client, @platformatic/kafka) produce to and consume from the platform's own topics.
 * One broker (node 0) leads every partition; topics, partitions, offsets, timestamps, headers and
 * committed group offsets are the log's. SASL (PLAIN or SCRAM-SHA-256) is required before any
 * other API; see `KafkaAuthenticator`.
 *
 * @example
 * const listener = await serveKafka(log, { port: 9092, authenticator });
 * // kcat -b 127.0.0.1:9092 -X security.protocol=SASL_PLAINTEXT -X sasl.mechanisms=PLAIN \
 * //   -X sasl.username=me -X sasl.password=$TRIBUTARY_KEY -L
 * await listener.close();
 */
export async function serveKafka(log: Log, options: KafkaListenerOptions): Promise<KafkaListener> {
  const state: ListenerState = {
    log,
    groups: new GroupCoordinator({ initialRebalanceDelayMs: options.initialRebalanceDelayMs }),
    producers: new ProducerStates(),
    clusterId: `tributary-${randomBytes(8).toString('hex')}`,
    produceTurn: Promise.resolve(),
  };
  const connections = new Set<KafkaConnection>();
  const onSocket = (socket: net.Socket) => {
    const connection = new KafkaConnection(socket, state, options.authenticator, port);
    connections.add(connection);
    socket.once('close', () => connections.delete(connection));
  };
  const server = options.tls
    ? tls.createServer({ cert: options.tls.cert, key: options.tls.key }, onSocket)
    : net.createServer(onSocket);
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new TributaryError(
          'IO',
          `Kafka listener could not listen on ${host}:${options.port ?? 0}: ${error.code}`,
          { cause: error },
        ),
      ),
    );
    server.listen({ host, port: options.port ?? 0 }, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  server.on('error', (error) => logger.error({ err: error }, 'Kafka listener socket failed'));
  let closed: Promise<void> | undefined;
  return {
    host,
    port,
    close: () =>
      (closed ??= (async () => {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const connection of connections) connection.destroy();
        state.groups.close();
        await stopped;
      })()),
  };
}

/**
 * One client connection. Frames are `int32 size · request header · body`; requests are decoded
 * and their handlers started in arrival order, and answers are written in the same order (Kafka
 * clients rely on it), each as soon as it and every earlier one are ready.
 */
class KafkaConnection {
  readonly #socket: net.Socket;
  readonly #state: ListenerState;
  readonly #authenticator: KafkaAuthenticator;
  readonly #session: Session;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #mechanism: string | undefined;
  #scram: ScramServer | undefined;
  /** SaslHandshake v0: the next frames are raw SASL tokens without a Kafka header. */
  #rawSasl = false;
  #queue: Promise<Buffer[] | null>[] = [];
  #writing = false;
  #destroyed = false;

  constructor(socket: net.Socket, state: ListenerState, authenticator: KafkaAuthenticator, port: number) {
    this.#socket = socket;
    this.#state = state;
    this.#authenticator = authenticator;
    socket.setNoDelay(true);
    this.#session = {
      // Metadata names the address the client used to reach us, so 127.0.0.1, a LAN address or a
      // wildcard bind all work without an advertised.listeners setting.
      host: (socket.localAddress ?? '127.0.0.1').replace(/^::ffff:/, ''),
      port,
      clientId: '',
      clientHost: (socket.remoteAddress ?? '').replace(/^::ffff:/, ''),
      principal: undefined,
    };
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (error) =>
      logger.debug({ err: error, peer: this.#session.clientHost }, 'Kafka client socket error'),
    );
    socket.on('close', () => (this.#destroyed = true));
  }

  destroy(): void {
    this.#destroyed = true;
    this.#socket.destroy();
  }

  /** Size of the frame being received (read from its first 4 bytes), or -1 before they arrived. */
  #frameBytes = -1;

  #onData(chunk: Buffer): void {
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    for (;;) {
      if (this.#frameBytes < 0) {
        if (this.#pendingBytes < 4) return;
        if (this.#pending[0].length < 4) this.#pending = [Buffer.concat(this.#pending)];
        const size = this.#pending[0].readInt32BE(0);
        const max =
          this.#session.principal === undefined
            ? limits.kafkaUnauthenticatedFrameBytesMax
            : limits.kafkaRequestBytesMax;
        if (size < 0 || size > max) {
          logger.warn(
            { peer: this.#session.clientHost, size, max },
            'Kafka request frame too large; closing the connection',
          );
          this.destroy();
          return;
        }
        this.#frameBytes = size;
      }
      // Chunks are joined once the whole frame is here, not on every chunk of a large request.
      if (this.#pendingBytes < 4 + this.#frameBytes) return;
      const head = this.#pending.length === 1 ? this.#pending[0] : Buffer.concat(this.#pending);
      const frame = head.subarray(4, 4 + this.#frameBytes);
      const rest = head.subarray(4 + this.#frameBytes);
      this.#pending = rest.length === 0 ? [] : [rest];
      this.#pendingBytes = rest.length;
      this.#frameBytes = -1;
      this.#onFrame(frame);
      if (this.#destroyed) return;
    }
  }

  #onFrame(frame: Buffer): void {
    if (this.#rawSasl) {
      this.#rawSasl = false;
      this.#enqueue(Promise.resolve(this.#rawSaslToken(frame)));
      return;
    }
    const r = new KafkaReader(frame);
    let apiKey: number;
    let version: number;
    let correlationId: number;
    try {
      apiKey = r.int16();
      version = r.int16();
      correlationId = r.int32();
    } catch {
      this.destroy();
      return;
    }
    if (apiKey === apiVersionsKey) {
      this.#enqueue(Promise.resolve(this.#apiVersions(r, version, correlationId)));
      return;
    }
    const requestSchema = schemas.get(`${apiKey}:request`);
    if (requestSchema === undefined || !isValidVersion(requestSchema, version)) {
      // No schema to answer in: Kafka itself closes the connection here. Clients only send what
      // ApiVersions listed, so this is a client bug or not Kafka at all.
      logger.warn(
        { peer: this.#session.clientHost, apiKey, version },
        'unknown Kafka API or version; closing the connection',
      );
      this.destroy();
      return;
    }
    const flexible = isFlexible(requestSchema, version);
    try {
      // Request header v1/v2: the client id is a classic nullable string even in flexible versions.
      const clientIdLength = r.int16();
      this.#session.clientId = clientIdLength < 0 ? '' : r.bytes(clientIdLength).toString('utf8');
    } catch {
      this.destroy();
      return;
    }
    this.#enqueue(this.#dispatch(apiKey, version, correlationId, flexible, r));
  }

  async #dispatch(
    apiKey: number,
    version: number,
    correlationId: number,
    flexible: boolean,
    r: KafkaReader,
  ): Promise<Buffer[] | null> {
    const respond = (message: Message) => this.#frame(apiKey, version, correlationId, flexible, message);
    let request: Message;
    try {
      if (flexible) skipTaggedFields(r);
      request = codec(apiKey, 'request', version).read(r);
    } catch (error) {
      logger.warn(
        { peer: this.#session.clientHost, apiKey, version, err: error },
        'malformed Kafka request; closing the connection',
      );
      this.destroy();
      return null;
    }
    if (apiKey === saslHandshakeKey) return respond(this.#saslHandshake(request, version));
    if (apiKey === saslAuthenticateKey) {
      const { response, failed } = this.#saslAuthenticate(request);
      const out = respond(response);
      if (failed) setImmediate(() => this.#closeAfterWrites());
      return out;
    }
    const api = served.get(apiKey);
    if (this.#session.principal === undefined) {
      return respond(errorResponse(apiKey, version, errorCodes.SASL_AUTHENTICATION_FAILED));
    }
    if (api === undefined || version < api.minVersion || version > api.maxVersion) {
      return respond(errorResponse(apiKey, version, errorCodes.UNSUPPORTED_VERSION));
    }
    if (!allowed(this.#session.principal, api.permission)) {
      const code =
        api.permission === 'admin'
          ? errorCodes.CLUSTER_AUTHORIZATION_FAILED
          : errorCodes.TOPIC_AUTHORIZATION_FAILED;
      return respond(authorizationError(apiKey, version, request, code));
    }
    try {
      const response = await api.handler(request, version, this.#state, this.#session);
      return response === null ? null : respond(response);
    } catch (error) {
      logger.error(
        { err: error, api: api.name, version, peer: this.#session.clientHost },
        'Kafka request failed',
      );
      return respond(errorResponse(apiKey, version, errorCodes.UNKNOWN_SERVER_ERROR));
    }
  }

  #frame(
    apiKey: number,
    version: number,
    correlationId: number,
    flexible: boolean,
    message: Message,
  ): Buffer[] {
    const w = new KafkaWriter(256);
    w.int32(0).int32(correlationId);
    // ApiVersions answers always use response header v0, so a client can read it before it knows
    // which versions the broker speaks.
    if (flexible && apiKey !== apiVersionsKey) w.uvarint(0);
    codec(apiKey, 'response', version).write(w, message);
    const chunks = w.chunks();
    chunks[0].writeInt32BE(w.length - 4, 0);
    return chunks;
  }

  #apiVersions(r: KafkaReader, version: number, correlationId: number): Buffer[] {
    const apiKeys = servedApiVersions();
    if (version < apiVersionsRange[0] || version > apiVersionsRange[1]) {
      // KIP-511: an ApiVersions version the broker does not know is answered in v0 with
      // UNSUPPORTED_VERSION and the supported ranges, so the client can retry with one of them.
      return this.#frame(apiVersionsKey, 0, correlationId, false, {
        errorCode: errorCodes.UNSUPPORTED_VERSION,
        apiKeys,
      });
    }
    try {
      const clientIdLength = r.int16();
      this.#session.clientId = clientIdLength < 0 ? '' : r.bytes(clientIdLength).toString('utf8');
    } catch {
      // The answer needs nothing from the request body.
    }
    return this.#frame(apiVersionsKey, version, correlationId, version >= 3, {
      errorCode: 0,
      apiKeys,
      throttleTimeMs: 0,
    });
  }

  #saslHandshake(request: Message, version: number): Message {
    const mechanisms = ['PLAIN', 'SCRAM-SHA-256'];
    const mechanism = request.mechanism as string;
    if (!mechanisms.includes(mechanism))
      return { errorCode: errorCodes.UNSUPPORTED_SASL_MECHANISM, mechanisms };
    if (this.#session.principal !== undefined)
      return { errorCode: errorCodes.ILLEGAL_SASL_STATE, mechanisms };
    this.#mechanism = mechanism;
    this.#scram = mechanism === 'SCRAM-SHA-256' ? new ScramServer(this.#authenticator) : undefined;
    this.#rawSasl = version === 0;
    return { errorCode: 0, mechanisms };
  }

  /** One SASL step: the reply token, or an error sentence (the connection closes after it). */
  #saslStep(token: Buffer): { reply: Buffer } | { error: string } {
    if (this.#mechanism === undefined) return { error: 'SaslAuthenticate before SaslHandshake' };
    if (this.#session.principal !== undefined) return { error: 'already authenticated' };
    if (this.#mechanism === 'PLAIN') {
      const parsed = parsePlain(token);
      if (typeof parsed === 'string') return { error: parsed };
      const principal = this.#authenticator.plain(parsed.username, parsed.password);
      if (typeof principal === 'string') return { error: principal };
      this.#authenticated(principal);
      return { reply: Buffer.alloc(0) };
    }
    const scram = this.#scram!;
    if (scram.principal === undefined) {
      const reply = scram.first(token);
      return typeof reply === 'string' ? { error: reply } : { reply };
    }
    const reply = scram.final(token);
    if (typeof reply === 'string') return { error: reply };
    this.#authenticated(scram.principal);
    return { reply };
  }

  #authenticated(principal: KafkaPrincipal): void {
    this.#session.principal = principal;
    logger.debug(
      { peer: this.#session.clientHost, principal: principal.name, mechanism: this.#mechanism },
      'Kafka client authenticated',
    );
  }

  #saslAuthenticate(request: Message): { response: Message; failed: boolean } {
    const step = this.#saslStep(request.authBytes as Buffer);
    if ('error' in step) {
      logger.warn(
        { peer: this.#session.clientHost, mechanism: this.#mechanism, reason: step.error },
        'Kafka SASL authentication failed',
      );
      return {
        response: {
          errorCode: errorCodes.SASL_AUTHENTICATION_FAILED,
          errorMessage: `Authentication failed: ${step.error}`,
          authBytes: Buffer.alloc(0),
          sessionLifetimeMs: 0,
        },
        failed: true,
      };
    }
    return {
      response: { errorCode: 0, errorMessage: null, authBytes: step.reply, sessionLifetimeMs: 0 },
      failed: false,
    };
  }

  /** SaslHandshake v0: tokens travel as bare size-prefixed frames; a failure closes the connection. */
  #rawSaslToken(frame: Buffer): Buffer[] | null {
    const step = this.#saslStep(frame);
    if ('error' in step) {
      logger.warn({ peer: this.#session.clientHost, reason: step.error }, 'Kafka SASL authentication failed');
      setImmediate(() => this.destroy());
      return null;
    }
    if (this.#scram !== undefined && this.#session.principal === undefined) this.#rawSasl = true;
    const size = Buffer.alloc(4);
    size.writeInt32BE(step.reply.length, 0);
    return [size, step.reply];
  }

  #enqueue(response: Promise<Buffer[] | null>): void {
    this.#queue.push(response);
    if (!this.#writing) void this.#drain();
  }

  async #drain(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#queue.length > 0) {
        const chunks = await this.#queue[0];
        void this.#queue.shift();
        if (this.#destroyed) return;
        if (chunks === null) continue;
        this.#socket.cork();
        for (const chunk of chunks) this.#socket.write(chunk);
        this.#socket.uncork();
      }
    } catch (error) {
      logger.error({ err: error }, 'Kafka response failed; closing the connection');
      this.destroy();
    } finally {
      this.#writing = false;
    }
  }

  #closeAfterWrites(): void {
    void Promise.all(this.#queue).then(() => setImmediate(() => this.#socket.end()));
  }
}

function skipTaggedFields(r: KafkaReader): void {
  const count = r.uvarint();
  for (let i = 0; i < count; i++) {
    r.uvarint();
    r.offset += r.uvarint();
  }
}

function allowed(principal: KafkaPrincipal, permission: Permission): boolean {
  switch (permission) {
    case 'any':
      return true;
    case 'produce':
      return principal.produce;
    case 'consume':
      return principal.consume;
    case 'admin':
      return principal.admin;
  }
}

/**
 * The answer to a request that is not served (unsupported API or version, not authenticated):
 * the API's own response with defaults and its top-level error code set, so the client reads a
 * proper error instead of losing the connection.
 */
function errorResponse(apiKey: number, version: number, errorCode: number): Message {
  const response = codec(apiKey, 'response', version).defaults();
  if ('errorCode' in response) response.errorCode = errorCode;
  return response;
}

/**
 * A refused request answers every topic and partition it named with the authorization error
 * (clients report those per partition), and the top-level error code when the API has one.
 */
function authorizationError(apiKey: number, version: number, request: Message, errorCode: number): Message {
  const response = errorResponse(apiKey, version, errorCode);
  const topics = (request.topicData ?? request.topics) as Message[] | undefined;
  if (apiKey === 0 && Array.isArray(topics)) {
    response.responses = topics.map((t) => ({
      name: t.name,
      partitionResponses: (t.partitionData as Message[]).map((p) => ({
        index: p.index,
        errorCode,
        baseOffset: -1,
      })),
    }));
  } else if (apiKey === 1 && Array.isArray(topics)) {
    response.responses = topics.map((t) => ({
      topic: t.topic,
      topicId: t.topicId,
      partitions: (t.partitions as Message[]).map((p) => ({
        partitionIndex: p.partition,
        errorCode,
        highWatermark: -1,
        records: null,
      })),
    }));
  } else if (apiKey === 19 && Array.isArray(topics)) {
    response.topics = topics.map((t) => ({
      name: t.name,
      errorCode,
      errorMessage: 'this key needs the admin scope',
    }));
  } else if (apiKey === 20) {
    const names = (request.topicNames as string[] | undefined) ?? (topics ?? []).map((t) => t.name as string);
    response.responses = names.map((name) => ({ name, errorCode }));
  }
  return response;
}
