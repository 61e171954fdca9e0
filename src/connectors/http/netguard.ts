import { lookup as dnsLookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { Readable } from 'node:stream';
import { TributaryError, limits } from '../../core/index.js';

/**
 * Outbound-request policy (SSRF guard). A configured URL may only reach:
 *  - hosts named in `allowHosts` (exact, or `*.example.com` for subdomains; `*` = any host), and
 *  - addresses that are public, unless `allowPrivateNetworks` is set or the address is inside one
 *    of `allowAddresses` (CIDRs).
 * Every redirect hop is checked the same way (redirects are followed by hand).
 */
export interface NetPolicy {
  allowHosts: string[];
  allowPrivateNetworks?: boolean;
  /** CIDRs (e.g. `127.0.0.1/32`, `10.1.0.0/16`, `::1/128`) that are allowed although private. */
  allowAddresses?: string[];
}

export type LookupFn = (hostname: string) => Promise<{ address: string; family: number }[]>;

const defaultLookup: LookupFn = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

/**
 * Ranges that are never public: loopback, RFC 1918, CGNAT, link-local (incl. cloud metadata
 * 169.254.169.254), unspecified, multicast, reserved, benchmarking, documentation, IPv6 ULA and
 * link-local, NAT64/6to4/Teredo (which embed IPv4 addresses). IPv4-mapped IPv6 addresses
 * (`::ffff:127.0.0.1`) match the IPv4 rules (node's BlockList does that).
 */
const privateRanges: [string, number, 'ipv4' | 'ipv6'][] = [
  ['0.0.0.0', 8, 'ipv4'],
  ['10.0.0.0', 8, 'ipv4'],
  ['100.64.0.0', 10, 'ipv4'],
  ['127.0.0.0', 8, 'ipv4'],
  ['169.254.0.0', 16, 'ipv4'],
  ['172.16.0.0', 12, 'ipv4'],
  ['192.0.0.0', 24, 'ipv4'],
  ['192.0.2.0', 24, 'ipv4'],
  ['192.88.99.0', 24, 'ipv4'],
  ['192.168.0.0', 16, 'ipv4'],
  ['198.18.0.0', 15, 'ipv4'],
  ['198.51.100.0', 24, 'ipv4'],
  ['203.0.113.0', 24, 'ipv4'],
  ['224.0.0.0', 4, 'ipv4'],
  ['240.0.0.0', 4, 'ipv4'],
  ['::', 128, 'ipv6'],
  ['::1', 128, 'ipv6'],
  ['64:ff9b::', 96, 'ipv6'],
  ['64:ff9b:1::', 48, 'ipv6'],
  ['100::', 64, 'ipv6'],
  ['2001::', 32, 'ipv6'],
  ['2001:db8::', 32, 'ipv6'],
  ['2002::', 16, 'ipv6'],
  ['fc00::', 7, 'ipv6'],
  ['fe80::', 10, 'ipv6'],
  ['fec0::', 10, 'ipv6'],
  ['ff00::', 8, 'ipv6'],
];
const privateList = new BlockList();
for (const [network, prefix, type] of privateRanges) privateList.addSubnet(network, prefix, type);

function stripBrackets(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
}

/** True when `address` (an IP literal) is loopback, private, link-local or otherwise not public. */
export function isPrivateAddress(address: string): boolean {
  const ip = stripBrackets(address);
  const family = isIP(ip);
  if (family === 0) throw new TributaryError('INVALID_ARGUMENT', `${address} is not an IP address`);
  return privateList.check(ip, family === 4 ? 'ipv4' : 'ipv6');
}

function allowList(policy: NetPolicy): BlockList | null {
  if (!policy.allowAddresses || policy.allowAddresses.length === 0) return null;
  const list = new BlockList();
  for (const cidr of policy.allowAddresses) {
    const [network, prefixText] = cidr.split('/');
    const family = isIP(network ?? '');
    if (family === 0)
      throw new TributaryError('CONFIG_INVALID', `allowAddresses: ${cidr} is not an IP or CIDR`);
    const prefix = prefixText === undefined ? (family === 4 ? 32 : 128) : Number(prefixText);
    list.addSubnet(network, prefix, family === 4 ? 'ipv4' : 'ipv6');
  }
  return list;
}

function hostAllowed(hostname: string, allowHosts: string[]): boolean {
  const host = stripBrackets(hostname.toLowerCase()).replace(/\.$/, '');
  return allowHosts.some((pattern) => {
    const p = stripBrackets(pattern.toLowerCase()).replace(/\.$/, '');
    if (p === '*') return true;
    if (p.startsWith('*.')) return host.endsWith(p.slice(1)) && host.length > p.length - 1;
    return host === p;
  });
}

/**
 * Checks one URL against the policy: scheme, host allow-list, then every address the host resolves
 * to. Hostnames that are IP literals in any spelling (`0x7f000001`, `2130706433`, `[::ffff:7f00:1]`)
 * are normalised by the WHATWG URL parser first, so they are checked as the address they are.
 * Resolves to the checked addresses.
 */
export async function assertUrlAllowed(
  url: URL,
  policy: NetPolicy,
  lookup: LookupFn = defaultLookup,
): Promise<string[]> {
  const refuse = (why: string) =>
    new TributaryError('SSRF_REFUSED', `request to ${url.origin} refused: ${why}`, {
      details: { url: url.href },
    });
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw refuse(`scheme ${url.protocol} is not http/https`);
  if (url.username || url.password) throw refuse('credentials in the URL are not allowed');
  const hostname = stripBrackets(url.hostname);
  if (!hostAllowed(hostname, policy.allowHosts)) {
    throw refuse(`host ${hostname} is not in the allow-list (${policy.allowHosts.join(', ') || 'empty'})`);
  }
  const addresses =
    isIP(hostname) !== 0
      ? [hostname]
      : (
          await lookup(hostname).catch((error: unknown) => {
            throw new TributaryError('EXTERNAL', `cannot resolve ${hostname}: ${(error as Error).message}`, {
              cause: error,
            });
          })
        ).map((a) => a.address);
  if (addresses.length === 0) throw refuse(`${hostname} resolves to no address`);
  const allowed = allowList(policy);
  for (const address of addresses) {
    if (!isPrivateAddress(address) || policy.allowPrivateNetworks) continue;
    const family = isIP(address) === 4 ? 'ipv4' : 'ipv6';
    if (allowed?.check(address, family)) continue;
    throw refuse(`${hostname} resolves to ${address}, a loopback/private/link-local address`);
  }
  return addresses;
}

export interface GuardedFetchOptions {
  policy: NetPolicy;
  redirectsMax?: number;
  lookup?: LookupFn;
  fetch?: typeof fetch;
  /**
   * Awaited before every request, redirect hops included (a rate limiter's `take`); runs after
   * the policy check so nothing slow sits between it and the send.
   */
  beforeRequest?: () => Promise<void>;
  /** Called synchronously right before each request is handed to fetch (the moment it is sent). */
  onSend?: () => void;
}

function headerRecord(headers: Headers): Record<string, string> {
  const record: Record<string, string> = {};
  headers.forEach((value, name) => {
    record[name] = value;
  });
  return record;
}

/**
 * A request over node:http(s) that connects to `address` — the one the policy checked — whatever
 * the name resolves to by now: the connection's lookup answers with it, while the URL's host name
 * stays in `Host` and in TLS (SNI and the certificate check). So a DNS server that answers
 * differently a moment later (rebinding) cannot steer the request elsewhere. Bodies: string or
 * bytes.
 */
export function fetchPinned(url: URL, init: RequestInit, address: string): Promise<Response> {
  const family = isIP(address);
  const pinned: LookupFunction = (_hostname, options, callback) => {
    if (options.all) callback(null, [{ address, family }]);
    else callback(null, address, family);
  };
  const body = init.body;
  if (body !== undefined && body !== null && typeof body !== 'string' && !(body instanceof Uint8Array))
    return Promise.reject(
      new TributaryError('INVALID_ARGUMENT', 'guarded requests send string or byte bodies'),
    );
  const method = (init.method ?? 'GET').toUpperCase();
  return new Promise((resolve, reject) => {
    const request = (url.protocol === 'https:' ? https : http).request(
      url,
      {
        method,
        headers: headerRecord(new Headers(init.headers)),
        lookup: pinned,
        ...(init.signal ? { signal: init.signal } : {}),
      },
      (response) => {
        const headers = new Headers();
        for (const [name, value] of Object.entries(response.headers)) {
          if (value === undefined) continue;
          for (const item of Array.isArray(value) ? value : [value]) headers.append(name, item);
        }
        const status = response.statusCode ?? 502;
        const empty = status === 204 || status === 304 || method === 'HEAD';
        if (empty) response.resume();
        resolve(
          new Response(empty ? null : (Readable.toWeb(response) as ReadableStream<Uint8Array>), {
            status,
            statusText: response.statusMessage ?? '',
            headers,
          }),
        );
      },
    );
    request.on('error', reject);
    request.end(body ?? undefined);
  });
}

/**
 * `fetch` that checks the URL and every redirect hop against the policy. Redirects are followed
 * by hand (`redirect: 'manual'`); a 303 (or a 301/302 after POST) becomes a GET without body, as
 * browsers do. Each request connects to the address the check approved (`fetchPinned`), so a
 * second DNS answer (rebinding) is never used; an injected `fetch` (tests) is used as it is.
 */
export async function guardedFetch(
  input: string | URL,
  init: RequestInit,
  options: GuardedFetchOptions,
): Promise<Response> {
  const doFetch = options.fetch ?? fetch;
  const redirectsMax = options.redirectsMax ?? limits.httpRedirectsMax;
  let url = new URL(input);
  let requestInit: RequestInit = { ...init, redirect: 'manual' };
  for (let hop = 0; ; hop++) {
    const addresses = await assertUrlAllowed(url, options.policy, options.lookup);
    await options.beforeRequest?.();
    options.onSend?.();
    const response = await (options.fetch
      ? doFetch(url, requestInit)
      : fetchPinned(url, requestInit, addresses[0]));
    if (response.status < 300 || response.status >= 400 || response.status === 304) return response;
    const location = response.headers.get('location');
    if (location === null) return response;
    await response.body?.cancel();
    if (hop >= redirectsMax) {
      throw new TributaryError(
        'EXTERNAL',
        `too many redirects (more than ${redirectsMax}) from ${String(input)}`,
      );
    }
    const next = new URL(location, url);
    if (next.origin !== url.origin) {
      // Credentials meant for one origin never follow a redirect to another.
      const headers = new Headers(requestInit.headers);
      headers.delete('authorization');
      headers.delete('cookie');
      requestInit = { ...requestInit, headers };
    }
    url = next;
    const method = (requestInit.method ?? 'GET').toUpperCase();
    if (
      response.status === 303 ||
      ((response.status === 301 || response.status === 302) && method === 'POST')
    ) {
      const { body: _body, ...rest } = requestInit;
      requestInit = { ...rest, method: 'GET' };
    }
  }
}
