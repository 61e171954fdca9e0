import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import type { Hono } from 'hono';
import { limits, TributaryError } from '../core/index.js';

export interface ServerOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Node's own socket limits, so a slow client cannot hold a connection forever. */
  headersTimeoutMs?: number;
  keepAliveTimeoutMs?: number;
}

export interface RunningServer {
  url: string;
  port: number;
  server: ServerType;
  /** Stops accepting connections, then closes idle and (after `graceMs`) all remaining ones. */
  close(graceMs?: number): Promise<void>;
}

/**
 * Listens on host:port with @hono/node-server. Resolves once the socket is bound; a busy port is a
 * TributaryError naming the port.
 */
export function startServer(app: Hono, options: ServerOptions = {}): Promise<RunningServer> {
  const host = options.host ?? '127.0.0.1';
  return new Promise((resolve, reject) => {
    const server = serve({
      fetch: app.fetch,
      hostname: host,
      port: options.port ?? 0,
      serverOptions: { highWaterMark: limits.httpStreamBufferBytes },
    });
    const http = server as HttpServer;
    http.headersTimeout = options.headersTimeoutMs ?? 20_000;
    http.keepAliveTimeout = options.keepAliveTimeoutMs ?? 5_000;
    // Request bodies are bounded by the body limit; whole-request time by the route timeout. The
    // socket-level request timeout stays off so SSE streams can live long.
    http.requestTimeout = 0;
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(
        new TributaryError(
          error.code === 'EADDRINUSE' ? 'CONFLICT' : 'IO',
          `cannot listen on ${host}:${options.port ?? 0}: ${error.message}`,
          {
            cause: error,
          },
        ),
      );
    });
    server.once('listening', () => {
      const port = (server.address() as AddressInfo).port;
      const shownHost =
        host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
      resolve({
        url: `http://${shownHost}:${port}`,
        port,
        server,
        close: (graceMs = 2000) =>
          new Promise<void>((done) => {
            const timer = setTimeout(() => http.closeAllConnections(), graceMs);
            timer.unref();
            http.close(() => {
              clearTimeout(timer);
              done();
            });
            http.closeIdleConnections();
          }),
      });
    });
  });
}
