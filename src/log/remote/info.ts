import fs from 'node:fs';
import path from 'node:path';
import { processAlive, TributaryError, writeFileAtomic } from '../../core/index.js';

/** Where a log server announces itself, in the log directory it serves. */
export const serverInfoFile = 'server.json';

/** What `server.json` holds: where the server listens and the token a client must present. */
export interface LogServerInfo {
  pid: number;
  host: string;
  port: number;
  token: string;
  startedAtMs: number;
}

export function serverInfoPath(logDir: string): string {
  return path.join(logDir, serverInfoFile);
}

/**
 * `<logDir>/server.json`, written by a running log server:
 * `{"formatVersion":1,"pid":4242,"host":"127.0.0.1","port":40123,"token":"<43 base64url chars>",
 * "startedAtMs":1795341600000}`. Replaced atomically (temp file, fsync, rename, fsync of the
 * directory) and created with mode 0600 from the first byte, so the token is readable only by
 * the data dir's owner; removed when the server closes. A crashed server leaves it behind, so a
 * reader also checks that `pid` is alive.
 */
export async function writeServerInfo(logDir: string, info: LogServerInfo): Promise<void> {
  const file = serverInfoPath(logDir);
  const body = `${JSON.stringify({ formatVersion: 1, ...info })}\n`;
  try {
    await writeFileAtomic(file, body, { mode: 0o600 });
  } catch (error) {
    throw new TributaryError('IO', `could not write ${file}: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * The log server serving `logDir`, or null when there is none: `server.json` is absent,
 * unreadable or malformed, or its process is dead (a crashed server's leftover).
 *
 * @example
 * const info = readLogServerInfo(dataDirPaths(config.dataDir).log);
 * if (info) log = await connectRemoteLog(info);
 */
export function readLogServerInfo(logDir: string): LogServerInfo | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(serverInfoPath(logDir), 'utf8'));
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null) return null;
  const { pid, host, port, token, startedAtMs } = parsed as Record<string, unknown>;
  if (
    !Number.isInteger(pid) ||
    typeof host !== 'string' ||
    !Number.isInteger(port) ||
    typeof token !== 'string' ||
    typeof startedAtMs !== 'number'
  ) {
    return null;
  }
  if (!processAlive(pid as number)) return null;
  return { pid: pid as number, host, port: port as number, token, startedAtMs };
}

/** Removes `server.json` if it still describes this server (a newer server may have replaced it). */
export function removeServerInfo(logDir: string, own: { pid: number; port: number; token: string }): void {
  const file = serverInfoPath(logDir);
  try {
    const current = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<LogServerInfo>;
    if (current.pid !== own.pid || current.port !== own.port || current.token !== own.token) return;
    fs.rmSync(file, { force: true });
  } catch {
    // Already gone, or not ours to remove.
  }
}
