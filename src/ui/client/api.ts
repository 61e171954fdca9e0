/**
 * The dashboard's connection to the API. The key lives in localStorage and goes out only as
 * `Authorization: Bearer`. Live updates use EventSource, which cannot send headers, so the page
 * first POSTs (with the key) to /api/events/token and opens `/api/events?token=…`: a token that
 * expires within a minute and names the key, so the key itself never appears in a URL.
 */
const storageName = 'tributary.apiKey';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function getKey(): string | null {
  return window.localStorage.getItem(storageName);
}

export function setKey(key: string): void {
  window.localStorage.setItem(storageName, key.trim());
}

export function clearKey(): void {
  window.localStorage.removeItem(storageName);
}

export async function apiGet<T>(route: string, init: RequestInit = {}): Promise<T> {
  const key = getKey();
  const response = await fetch(route, {
    ...init,
    headers: {
      accept: 'application/json',
      ...(key ? { authorization: `Bearer ${key}` } : {}),
      ...(init.headers ?? {}),
    },
  });
  const body = (await response.json().catch(() => null)) as {
    error?: { code: string; message: string };
  } | null;
  if (!response.ok) {
    throw new ApiError(
      response.status,
      body?.error?.code ?? 'HTTP',
      body?.error?.message ?? `HTTP ${response.status}`,
    );
  }
  return body as T;
}

type Handler = (data: unknown) => void;

/**
 * One EventSource for the page; handlers subscribe by event name. Reconnects with a fresh token
 * after errors (a token is only checked when the stream opens).
 */
export class LiveConnection {
  #source: EventSource | null = null;
  #handlers = new Map<string, Set<Handler>>();
  #attached = new Set<string>();
  #stopped = false;
  #retryTimer: number | undefined;
  onState: (state: 'connecting' | 'live' | 'offline') => void = () => undefined;

  on(type: string, handler: Handler): () => void {
    let set = this.#handlers.get(type);
    if (!set) {
      set = new Set();
      this.#handlers.set(type, set);
    }
    set.add(handler);
    this.#attach(type);
    return () => set.delete(handler);
  }

  clear(): void {
    for (const set of this.#handlers.values()) set.clear();
  }

  #attach(type: string): void {
    if (!this.#source || this.#attached.has(type)) return;
    this.#attached.add(type);
    this.#source.addEventListener(type, (event) => {
      let data: unknown = null;
      try {
        data = JSON.parse((event as MessageEvent<string>).data);
      } catch {
        return;
      }
      for (const handler of this.#handlers.get(type) ?? []) handler(data);
    });
  }

  async start(): Promise<void> {
    this.#stopped = false;
    this.onState('connecting');
    try {
      const { token } = await apiGet<{ token: string }>('/api/events/token', { method: 'POST' });
      if (this.#stopped) return;
      const source = new EventSource(`/api/events?token=${encodeURIComponent(token)}`);
      this.#source = source;
      this.#attached.clear();
      for (const type of this.#handlers.keys()) this.#attach(type);
      source.addEventListener('ready', () => this.onState('live'));
      source.onerror = () => {
        if (source.readyState === EventSource.CLOSED) this.#retry();
        else this.onState('connecting');
      };
    } catch {
      this.#retry();
    }
  }

  #retry(): void {
    this.#source?.close();
    this.#source = null;
    this.onState('offline');
    if (this.#stopped) return;
    window.clearTimeout(this.#retryTimer);
    this.#retryTimer = window.setTimeout(() => void this.start(), 3000);
  }

  stop(): void {
    this.#stopped = true;
    window.clearTimeout(this.#retryTimer);
    this.#source?.close();
    this.#source = null;
  }
}
