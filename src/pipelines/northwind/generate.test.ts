import { describe, expect, it } from 'vitest';
import {
  createRandom,
  generateNorthwind,
  northwindSchema,
  nullCategoryProductId,
  unknownCustomerId,
  validateScale,
} from './generate.js';
import { encodeCsv } from './load.js';

function collect(scale: number, ordersPerBatch = 1000) {
  const data = generateNorthwind({ scale });
  const orders = [];
  const details = [];
  for (const batch of data.orderBatches(ordersPerBatch)) {
    orders.push(...batch.orders);
    details.push(...batch.details);
  }
  return { data, orders, details };
}

describe('Northwind generator', () => {
  it('scale 1 has the classic sizes and date range', () => {
    const { data, orders, details } = collect(1);
    expect(data.tables.get('customers')).toHaveLength(91);
    expect(data.tables.get('products')).toHaveLength(77);
    expect(data.tables.get('categories')).toHaveLength(8);
    expect(data.tables.get('suppliers')).toHaveLength(29);
    expect(data.tables.get('employees')).toHaveLength(9);
    expect(data.tables.get('shippers')).toHaveLength(3);
    expect(orders).toHaveLength(830);
    expect(details.length).toBeGreaterThan(2000);
    expect(details.length).toBeLessThan(2300);
    const dates = orders
      .map((o) => o[3])
      .filter((d): d is string => typeof d === 'string')
      .sort();
    expect(dates[0]).toBe('1996-07-04');
    expect(dates.at(-1)! <= '1998-05-06').toBe(true);
    expect(orders[0]?.[0]).toBe(10248);
  });

  it('is deterministic and independent of the batch size', () => {
    const a = collect(2, 7);
    const b = collect(2, 5000);
    expect(encodeCsv(a.details)).toBe(encodeCsv(b.details));
    expect(encodeCsv(a.orders)).toBe(encodeCsv(b.orders));
    expect(encodeCsv(a.data.tables.get('customers')!)).toBe(encodeCsv(b.data.tables.get('customers')!));
  });

  it('scale N multiplies customers and orders with unique keys', () => {
    const { data, orders, details } = collect(3);
    const customers = data.tables.get('customers')!;
    expect(customers).toHaveLength(273);
    expect(new Set(customers.map((c) => c[0])).size).toBe(273);
    expect(orders).toHaveLength(2490);
    expect(new Set(details.map((d) => `${String(d[0])}/${String(d[1])}`)).size).toBe(details.length);
    for (const c of customers) expect(String(c[0])).toMatch(/^[A-Z]{5}$/);
  });

  it('contains the documented rule-breaking rows and messy spellings', () => {
    const { data, orders, details } = collect(1);
    expect(details.filter((d) => d[3] === 0).length).toBeGreaterThan(0);
    expect(orders.filter((o) => o[1] === unknownCustomerId).length).toBe(3);
    expect(orders.filter((o) => o[3] === null).length).toBe(2);
    expect(data.tables.get('products')![nullCategoryProductId - 1]?.[3]).toBeNull();
    const spellings = new Set(data.tables.get('customers')!.map((c) => c[8]));
    expect(
      [...spellings].filter(
        (s) =>
          !['USA', 'UK', 'Germany', 'Brazil', 'Mexico'].includes(String(s)) &&
          /U|u|Deut|germ|Bras|Méx|Brit/.test(String(s)),
      ).length,
    ).toBeGreaterThan(0);
  });

  it('widens order_id to integer only when smallint overflows', () => {
    const type = (scale: number) =>
      northwindSchema(scale).find((t) => t.name === 'orders')!.columns[0].pgType;
    expect(type(1)).toBe('smallint');
    // The last order id at scale N is 10248 + 830·N − 1: 32,657 at 27, 33,487 at 28.
    expect(type(27)).toBe('smallint');
    expect(type(28)).toBe('integer');
    expect(type(1000)).toBe('integer');
  });

  it('refuses a bad scale, naming it', () => {
    expect(() => validateScale(0)).toThrow(/scale/);
    expect(() => validateScale(1.5)).toThrow(/scale/);
  });

  it('encodes CSV the way COPY reads it (NULL unquoted, quotes doubled, bytea hex)', () => {
    expect(encodeCsv([[1, 'a"b', null, '', new Uint8Array([0, 255])]])).toBe('1,"a""b",,"",\\x00ff\n');
    const r = createRandom(1);
    const first = r();
    expect(first).toBeGreaterThanOrEqual(0);
    expect(first).toBeLessThan(1);
    expect(createRandom(1)()).toBe(first);
  });
});
