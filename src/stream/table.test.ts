import { describe, expect, it } from 'vitest';
import { createMemoryLog } from '../log/index.js';
import { callbackSink, runJob, stream } from './index.js';
import { loadTable } from './table.js';

interface Customer {
  id: string;
  country: string;
}

describe('loadTable', () => {
  it('loads rows by key, swaps in reloads whole, keeps the last good rows when a reload fails', async () => {
    let version = 1;
    let fail = false;
    const table = await loadTable<Customer>(
      () =>
        fail
          ? Promise.reject(new Error('database is down'))
          : Promise.resolve([
              { id: 'a', country: version === 1 ? 'FR' : 'DE' },
              { id: 'b', country: 'US' },
            ]),
      { key: (c) => c.id, name: 'customers' },
    );
    expect(table.get('a')?.country).toBe('FR');
    expect(table.size).toBe(2);
    version = 2;
    await table.refresh();
    expect(table.get('a')?.country).toBe('DE');
    fail = true;
    await expect(table.refresh()).rejects.toThrow(/database is down/);
    expect(table.get('a')?.country).toBe('DE');
    expect(table.failedReloads).toBe(1);
    table.close();
  });

  it('refuses a first load that fails, and rows without a usable key', async () => {
    await expect(loadTable(() => Promise.reject(new Error('nope')), { key: () => 'x' })).rejects.toThrow(
      /nope/,
    );
    await expect(
      loadTable(() => Promise.resolve([{ id: null }]), { key: (r) => r.id as unknown as string, name: 't' }),
    ).rejects.toThrow(/table t: key of row \{"id":null\} is object/);
  });

  it('enriches a stream through joinTable', async () => {
    const log = createMemoryLog();
    await log.createTopic('orders', { partitions: 1 });
    await log.append(
      [
        { customer: 'a', amount: 5 },
        { customer: 'zz', amount: 7 },
      ].map((o) => ({ topic: 'orders', value: JSON.stringify(o) })),
    );
    const customers = await loadTable<Customer>(() => Promise.resolve([{ id: 'a', country: 'FR' }]), {
      key: (c) => c.id,
    });
    const out: unknown[] = [];
    await runJob(
      stream('enrich')
        .from<{ customer: string; amount: number }>(log, { topics: ['orders'] })
        .keyBy((o) => o.customer)
        .joinTable(customers, (o, c) => ({ ...o, country: c?.country ?? null }))
        .to(callbackSink((v) => void out.push(v))),
      { once: true },
    );
    expect(out).toEqual([
      { customer: 'a', amount: 5, country: 'FR' },
      { customer: 'zz', amount: 7, country: null },
    ]);
  });
});
