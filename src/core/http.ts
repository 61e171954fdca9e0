/**
 * Request helpers for the HTTP API's routes (serve, the connectors' ingest routes, pipelines):
 * under @hono/node-server they work on Node's own request and response, because every WHATWG
 * object Hono's API builds from them (a Headers from all headers, a whole Request with a
 * ReadableStream body and an AbortSignal) is built per request and was a large share of a request's
 * CPU: as much as appending the 100 records of an ingest batch. Elsewhere they fall back to
 * Hono's API. Structural types, so the core stays free of Hono.
 */
import type { Readable } from 'node:stream';
import { TributaryError } from './errors.js';
import { limits } from './limits.js';

/** What these helpers need of a Hono context: its bindings (Node's request/response) and request. */
export interface RequestSource {
  env: unknown;
  req: { header(name: string): string | undefined; raw: Request };
}

/** Node's request and response under @hono/node-server (`c.env`); absent in other runtimes. */
interface NodeBindings {
  incoming?: Readable & {
    headers: Record<string, string | string[] | undefined>;
    readableDidRead?: boolean;
    errored?: unknown;
  };
  outgoing?: { writableFinished: boolean; once(event: 'close', listener: () => void): unknown };
}

function nodeOf(c: RequestSource): NodeBindings {
  return (c.env as NodeBindings | undefined) ?? {};
}

/** A request header (`name` in lower case). Repeated headers read as Node joins them (`a, b`). */
export function requestHeader(c: RequestSource, name: string): string | undefined {
  const incoming = nodeOf(c).incoming;
  if (incoming === undefined) return c.req.header(name);
  const value = incoming.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Node's request stream when nothing has read it yet (no WHATWG Request wraps it). */
function unreadIncoming(c: RequestSource): Readable | undefined {
  const incoming = nodeOf(c).incoming;
  return incoming !== undefined && incoming.readableDidRead === false && incoming.readableFlowing === null
    ? incoming
    : undefined;
}

function tooLarge(max: number): TributaryError {
  return new TributaryError('PAYLOAD_TOO_LARGE', `request body is larger than ${max} bytes`);
}

/**
 * The whole request body, refused (PAYLOAD_TOO_LARGE) as soon as it passes `maxBytes`, whatever
 * Content-Length said; past the bound the rest is read away (up to
 * `limits.httpUnreadBodyDrainBytesMax`, then the connection is closed) so a client still sending
 * gets the refusal instead of a reset. A client that goes away mid-body rejects with UNAVAILABLE.
 */
export async function readRequestBody(c: RequestSource, maxBytes: number): Promise<Uint8Array> {
  const declared = Number(requestHeader(c, 'content-length') ?? 'NaN');
  if (Number.isFinite(declared) && declared > maxBytes) {
    throw new TributaryError(
      'PAYLOAD_TOO_LARGE',
      `request body of ${declared} bytes is larger than ${maxBytes} bytes`,
    );
  }
  const incoming = unreadIncoming(c);
  if (incoming !== undefined) return readNodeBody(incoming, maxBytes);
  const body = c.req.raw.body;
  if (!body) return new Uint8Array();
  const chunks = await readWebBody(body, maxBytes, true);
  if (chunks === null) throw tooLarge(maxBytes);
  return Buffer.concat(chunks);
}

/**
 * Reads a WHATWG body to its end, keeping its chunks when `keep` is set; past `maxBytes` it is
 * cancelled and the answer is null.
 */
async function readWebBody(
  body: ReadableStream<Uint8Array>,
  maxBytes: number,
  keep: boolean,
): Promise<Uint8Array[] | null> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return chunks;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      return null;
    }
    if (keep) chunks.push(value);
  }
}

function readNodeBody(incoming: Readable, max: number): Promise<Uint8Array> {
  return new Promise<Uint8Array>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = () => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onGone);
      incoming.off('close', onGone);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        done();
        chunks.length = 0;
        drainNodeBody(incoming, size, () => reject(tooLarge(max)));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      done();
      resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
    };
    const onGone = () => {
      done();
      reject(new TributaryError('UNAVAILABLE', 'the client went away before sending the whole body'));
    };
    incoming.on('data', onData);
    incoming.once('end', onEnd);
    incoming.once('error', onGone);
    incoming.once('close', onGone);
  });
}

/**
 * Reads the rest of a body away, `readBytes` of it already read, then calls `finished`; past
 * `limits.httpUnreadBodyDrainBytesMax` the request (and its connection) is destroyed instead.
 */
function drainNodeBody(incoming: Readable, readBytes: number, finished: () => void): void {
  let drained = readBytes;
  const finish = () => {
    incoming.off('data', onData);
    incoming.off('end', finish);
    incoming.off('error', finish);
    incoming.off('close', finish);
    finished();
  };
  const onData = (chunk: Buffer) => {
    drained += chunk.length;
    if (drained <= limits.httpUnreadBodyDrainBytesMax) return;
    finish();
    incoming.destroy();
  };
  incoming.on('data', onData);
  incoming.once('end', finish);
  incoming.once('error', finish);
  incoming.once('close', finish);
}

/**
 * Reads away what is left of a body the route did not read (up to
 * `limits.httpUnreadBodyDrainBytesMax`), so the client
 * finishes sending and reads the answer instead of a connection reset.
 */
export async function discardRequestBody(c: RequestSource): Promise<void> {
  const node = nodeOf(c).incoming;
  if (node?.readableEnded === true || node?.destroyed === true) return;
  const incoming = unreadIncoming(c);
  if (incoming !== undefined) {
    await new Promise<void>((resolve) => drainNodeBody(incoming, 0, resolve));
    return;
  }
  const request = c.req.raw;
  if (request.body === null || request.bodyUsed) return;
  try {
    await readWebBody(request.body, limits.httpUnreadBodyDrainBytesMax, false);
  } catch {
    // The client went away.
  }
}

/**
 * Aborts `controller` when the client goes away before its answer was sent, as @hono/node-server
 * aborts `c.req.raw.signal` (whose first read builds the whole WHATWG Request).
 */
export function abortWhenClientGone(c: RequestSource, controller: AbortController): void {
  const { incoming, outgoing } = nodeOf(c);
  if (incoming === undefined || outgoing === undefined) {
    const signal = c.req.raw.signal;
    if (signal.aborted) controller.abort(signal.reason);
    else signal.addEventListener('abort', () => controller.abort(signal.reason), { once: true });
    return;
  }
  outgoing.once('close', () => {
    if (incoming.errored) controller.abort(String(incoming.errored));
    else if (!outgoing.writableFinished) controller.abort('Client connection prematurely closed.');
  });
}

/**
 * How a sub-app the API mounts (HTTP ingest) answers JSON: the mount sets it as the context
 * variable `jsonAnswerKey`, and it answers with the API's headers (security headers, the caller's
 * rate-limit state) from plain records, without the WHATWG Headers objects `c.header()` and
 * `c.json()` would build on every request. A sub-app used on its own answers with `c.json()`.
 */
export type JsonAnswer = (status: number, body: unknown, headers?: Record<string, string>) => Response;

export const jsonAnswerKey = 'tributary.jsonAnswer';
