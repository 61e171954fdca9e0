import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { EventBus, LiveEvent } from './types.js';

/**
 * In-process publish/subscribe for live dashboard updates. Listeners run synchronously; one that
 * throws is dropped from the delivery of that event only (a broken SSE client never breaks jobs).
 */
export function createEventBus(): EventBus & { readonly listenerCount: number } {
  const listeners = new Set<(event: LiveEvent) => void>();
  return {
    publish(event) {
      for (const listener of [...listeners]) {
        try {
          listener(event);
        } catch {
          // A listener's failure is its own; the other subscribers still get the event.
        }
      }
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    get listenerCount() {
      return listeners.size;
    },
  };
}

/** Tenant rule shared by SSE and status: tenant-less data is platform data (unbound keys only). */
export function visibleTo(tenantOfData: string | undefined, tenantOfKey: string | undefined): boolean {
  return tenantOfKey === undefined || tenantOfData === tenantOfKey;
}

/**
 * SSE tokens. `EventSource` cannot send an Authorization header, and putting the API key itself in
 * a URL would leak it into logs and history. So the dashboard POSTs (with its key) to
 * `/api/events/token` and gets a short-lived token bound to that key, used as `?token=`:
 *
 *   token = base64url(JSON {"k": keyId, "e": expiresAtMs}) "." base64url(HMAC-SHA256(secret, payload))
 *
 * The secret is random per server process (tokens die with it); the key is re-checked on use, so
 * revoking a key also ends its tokens.
 */
export class SseTokens {
  readonly #secret: Buffer;
  readonly ttlMs: number;

  constructor(ttlMs = 60_000, secret: Buffer = randomBytes(32)) {
    this.#secret = secret;
    this.ttlMs = ttlMs;
  }

  mint(keyId: string, nowMs = Date.now()): { token: string; expiresAtMs: number } {
    const expiresAtMs = nowMs + this.ttlMs;
    const payload = Buffer.from(JSON.stringify({ k: keyId, e: expiresAtMs })).toString('base64url');
    return { token: `${payload}.${this.#sign(payload)}`, expiresAtMs };
  }

  /** The key id behind a valid, unexpired token; null otherwise. */
  verify(token: string, nowMs = Date.now()): string | null {
    if (token.length > 512) return null;
    const [payload, signature, extra] = token.split('.');
    if (!payload || !signature || extra !== undefined) return null;
    const expected = Buffer.from(this.#sign(payload));
    const given = Buffer.from(signature);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return null;
    try {
      const body = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as {
        k?: unknown;
        e?: unknown;
      };
      if (typeof body.k !== 'string' || typeof body.e !== 'number' || body.e < nowMs) return null;
      return body.k;
    } catch {
      return null;
    }
  }

  #sign(payload: string): string {
    return createHmac('sha256', this.#secret).update(payload).digest('base64url');
  }
}
