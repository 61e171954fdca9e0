/**
 * Issue 17 §6: the HTTP poller's SSRF guard connects to the address it checked. The name is
 * resolved once for the check (an injected lookup standing in for a rebinding DNS server) while
 * the system resolver says something else: the request must reach the checked address.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guardedFetch } from '../../src/connectors/index.js';

function serve(host: string, port: number, body: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((_req, res) => res.end(body));
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

describe('SSRF guard under DNS rebinding', () => {
  const servers: Server[] = [];
  let port = 0;

  beforeAll(async () => {
    // The checked address (127.0.0.2) and what `localhost` resolves to now (127.0.0.1), one port.
    for (let attempt = 0; attempt < 5 && servers.length < 2; attempt++) {
      const checked = await serve('127.0.0.2', 0, 'checked address');
      port = (checked.address() as AddressInfo).port;
      try {
        servers.push(checked, await serve('127.0.0.1', port, 'address resolved later'));
      } catch {
        checked.close();
        servers.length = 0;
      }
    }
    expect(servers).toHaveLength(2);
  });
  afterAll(() => {
    for (const server of servers) server.close();
  });

  it('sends the request to the address the policy approved, not to a later resolution', async () => {
    let lookups = 0;
    const response = await guardedFetch(
      `http://localhost:${port}/data`,
      {},
      {
        policy: { allowHosts: ['localhost'], allowAddresses: ['127.0.0.2/32'] },
        lookup: () => {
          lookups++;
          return Promise.resolve([{ address: '127.0.0.2', family: 4 }]);
        },
      },
    );
    expect(lookups).toBe(1);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('checked address');
  });
});
