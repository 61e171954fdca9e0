import { seededRandom, TributaryError } from '../../core/index.js';
import * as ref from './reference.js';

/**
 * Generator of the PostgreSQL port of Northwind (the `northwind_psql` schema: snake_case columns,
 * smallint ids, real prices and discounts, varchar, date, bytea pictures, text), filled with
 * realistic, deterministic data.
 *
 * Scale 1 is the classic size: 91 customers, 77 products, 8 categories, 29 suppliers, 9 employees,
 * 3 shippers, 830 orders from 1996-07-04 to 1998-05-06 with about 2,150 order lines. Scale N
 * multiplies customers and orders (and so order lines); reference tables keep their size. The same
 * (scale, seed) always gives byte-identical data.
 *
 * Realistic mess, on purpose (silver standardises or quarantines it):
 * - Country spellings: about 12% of customers in the USA, UK, Germany, Brazil and Mexico carry a
 *   variant spelling ("U.S.A.", "United States", "US", "usa", "United Kingdom", "U.K.",
 *   "Great Britain", "Deutschland", "germany ", "Brasil", "México"); orders copy the customer's
 *   spelling into `ship_country`.
 * Rule-breaking rows (what silver's quarantine must catch), at fixed positions so they are the
 * same for every seed:
 * - `quantity_not_positive`: every order line whose line number (0-based, in generation order) is
 *   ≡ 250 (mod 500) has quantity 0.
 * - `unknown_customer`: every order whose 0-based index is ≡ 123 (mod 277) has customer_id
 *   'ZZZZZ', which no customer has (the schema has primary keys but no foreign keys, like many OLTP
 *   exports, so such rows exist).
 * - `missing_order_date`: every order whose index is ≡ 200 (mod 409) has a null order_date (and
 *   null required and shipped dates).
 * - `missing_category`: product 66 (Louisiana Hot Spiced Okra) has a null category_id; it is a
 *   slow seller, so few lines are affected.
 */

export type Cell = string | number | null | Uint8Array;
export type Row = Cell[];

export interface ColumnSpec {
  name: string;
  /** PostgreSQL type as in northwind_psql (widened to integer where the scale needs it). */
  pgType: string;
}

export interface TableSpec {
  name: string;
  columns: ColumnSpec[];
  primaryKey: string[];
}

export interface GenerateOptions {
  /** Multiplies customers and orders; 1 is the classic size. Must be a positive integer. */
  scale: number;
  /** PRNG seed (default 1996). */
  seed?: number;
}

/** The 14 tables, in load order; the six of seed 001 are marked in `bronzeTables`. */
export const tableNames = [
  'categories',
  'customer_demographics',
  'customers',
  'customer_customer_demo',
  'employees',
  'employee_territories',
  'order_details',
  'orders',
  'products',
  'region',
  'shippers',
  'suppliers',
  'territories',
  'us_states',
] as const;

export const firstOrderDate = '1996-07-04';
export const lastOrderDate = '1998-05-06';
const firstOrderId = 10248;
const dayMs = 86_400_000;

/** Customers and orders at scale 1. */
export const classicCounts = { customers: 91, orders: 830 } as const;

export function validateScale(scale: number): void {
  if (!Number.isInteger(scale) || scale < 1 || scale > 100_000) {
    throw new TributaryError('INVALID_ARGUMENT', `scale must be an integer from 1 to 100000, got ${scale}`, {
      details: { field: 'scale', value: scale },
    });
  }
}

/** The schema at a scale: ids that outgrow smallint become integer. */
export function northwindSchema(scale: number): TableSpec[] {
  validateScale(scale);
  const orderIdType = firstOrderId + classicCounts.orders * scale > 32_767 ? 'integer' : 'smallint';
  const c = (name: string, pgType: string): ColumnSpec => ({ name, pgType });
  const address = [
    c('address', 'varchar(60)'),
    c('city', 'varchar(15)'),
    c('region', 'varchar(15)'),
    c('postal_code', 'varchar(10)'),
    c('country', 'varchar(15)'),
  ];
  return [
    {
      name: 'categories',
      columns: [
        c('category_id', 'smallint'),
        c('category_name', 'varchar(15)'),
        c('description', 'text'),
        c('picture', 'bytea'),
      ],
      primaryKey: ['category_id'],
    },
    {
      name: 'customer_demographics',
      columns: [c('customer_type_id', 'varchar(5)'), c('customer_desc', 'text')],
      primaryKey: ['customer_type_id'],
    },
    {
      name: 'customers',
      columns: [
        c('customer_id', 'varchar(5)'),
        c('company_name', 'varchar(40)'),
        c('contact_name', 'varchar(30)'),
        c('contact_title', 'varchar(30)'),
        ...address,
        c('phone', 'varchar(24)'),
        c('fax', 'varchar(24)'),
      ],
      primaryKey: ['customer_id'],
    },
    {
      name: 'customer_customer_demo',
      columns: [c('customer_id', 'varchar(5)'), c('customer_type_id', 'varchar(5)')],
      primaryKey: ['customer_id', 'customer_type_id'],
    },
    {
      name: 'employees',
      columns: [
        c('employee_id', 'smallint'),
        c('last_name', 'varchar(20)'),
        c('first_name', 'varchar(10)'),
        c('title', 'varchar(30)'),
        c('title_of_courtesy', 'varchar(25)'),
        c('birth_date', 'date'),
        c('hire_date', 'date'),
        ...address,
        c('home_phone', 'varchar(24)'),
        c('extension', 'varchar(4)'),
        c('photo', 'bytea'),
        c('notes', 'text'),
        c('reports_to', 'smallint'),
        c('photo_path', 'varchar(255)'),
      ],
      primaryKey: ['employee_id'],
    },
    {
      name: 'employee_territories',
      columns: [c('employee_id', 'smallint'), c('territory_id', 'varchar(20)')],
      primaryKey: ['employee_id', 'territory_id'],
    },
    {
      name: 'order_details',
      columns: [
        c('order_id', orderIdType),
        c('product_id', 'smallint'),
        c('unit_price', 'real'),
        c('quantity', 'smallint'),
        c('discount', 'real'),
      ],
      primaryKey: ['order_id', 'product_id'],
    },
    {
      name: 'orders',
      columns: [
        c('order_id', orderIdType),
        c('customer_id', 'varchar(5)'),
        c('employee_id', 'smallint'),
        c('order_date', 'date'),
        c('required_date', 'date'),
        c('shipped_date', 'date'),
        c('ship_via', 'smallint'),
        c('freight', 'real'),
        c('ship_name', 'varchar(40)'),
        c('ship_address', 'varchar(60)'),
        c('ship_city', 'varchar(15)'),
        c('ship_region', 'varchar(15)'),
        c('ship_postal_code', 'varchar(10)'),
        c('ship_country', 'varchar(15)'),
      ],
      primaryKey: ['order_id'],
    },
    {
      name: 'products',
      columns: [
        c('product_id', 'smallint'),
        c('product_name', 'varchar(40)'),
        c('supplier_id', 'smallint'),
        c('category_id', 'smallint'),
        c('quantity_per_unit', 'varchar(20)'),
        c('unit_price', 'real'),
        c('units_in_stock', 'smallint'),
        c('units_on_order', 'smallint'),
        c('reorder_level', 'smallint'),
        c('discontinued', 'integer'),
      ],
      primaryKey: ['product_id'],
    },
    {
      name: 'region',
      columns: [c('region_id', 'smallint'), c('region_description', 'varchar(60)')],
      primaryKey: ['region_id'],
    },
    {
      name: 'shippers',
      columns: [c('shipper_id', 'smallint'), c('company_name', 'varchar(40)'), c('phone', 'varchar(24)')],
      primaryKey: ['shipper_id'],
    },
    {
      name: 'suppliers',
      columns: [
        c('supplier_id', 'smallint'),
        c('company_name', 'varchar(40)'),
        c('contact_name', 'varchar(30)'),
        c('contact_title', 'varchar(30)'),
        ...address,
        c('phone', 'varchar(24)'),
        c('fax', 'varchar(24)'),
        c('homepage', 'text'),
      ],
      primaryKey: ['supplier_id'],
    },
    {
      name: 'territories',
      columns: [
        c('territory_id', 'varchar(20)'),
        c('territory_description', 'varchar(60)'),
        c('region_id', 'smallint'),
      ],
      primaryKey: ['territory_id'],
    },
    {
      name: 'us_states',
      columns: [
        c('state_id', 'smallint'),
        c('state_name', 'varchar(100)'),
        c('state_abbr', 'varchar(2)'),
        c('state_region', 'varchar(50)'),
      ],
      primaryKey: ['state_id'],
    },
  ];
}

/**
 * `DROP TABLE IF EXISTS … ; CREATE TABLE …` for every table, without keys: the loader adds the
 * primary keys after the bulk load (`primaryKeysDdl`), which is much faster than maintaining the
 * indexes row by row. Primary keys only, no foreign keys (see the module comment).
 */
export function schemaDdl(scale: number): string {
  const drops = `DROP TABLE IF EXISTS ${[...tableNames].join(', ')} CASCADE;`;
  const creates = northwindSchema(scale).map(
    (t) =>
      `CREATE TABLE ${t.name} (\n  ${t.columns.map((col) => `${col.name} ${col.pgType}`).join(',\n  ')}\n);`,
  );
  return [drops, ...creates].join('\n');
}

/** `ALTER TABLE … ADD PRIMARY KEY …` for every table. */
export function primaryKeysDdl(scale: number): string {
  return northwindSchema(scale)
    .map(
      (t) => `ALTER TABLE ${t.name} ADD CONSTRAINT ${t.name}_pkey PRIMARY KEY (${t.primaryKey.join(', ')});`,
    )
    .join('\n');
}

/** The generator's PRNG (core's mulberry32), re-exported for the live simulator and tests. */
export const createRandom = seededRandom;

function isoDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

/** Placeholder image bytes (PNG signature + seeded noise) for bytea picture/photo columns. */
function pictureBytes(random: () => number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  bytes.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  for (let i = 8; i < length; i += 1) bytes[i] = Math.floor(random() * 256);
  return bytes;
}

interface CustomerInfo {
  id: string;
  company: string;
  address: string;
  city: string;
  region: string | null;
  postalCode: string;
  country: string;
}

/** Variant spellings a minority of rows carry (see the module comment). */
const countryVariants: Record<string, string[]> = {
  USA: ['U.S.A.', 'United States', 'US', 'usa'],
  UK: ['United Kingdom', 'U.K.', 'Great Britain'],
  Germany: ['Deutschland', 'germany '],
  Brazil: ['Brasil'],
  Mexico: ['México'],
};
const messyShare = 0.12;
export const unknownCustomerId = 'ZZZZZ';
export const nullCategoryProductId = 66;

/** A generated Northwind database: small tables in memory, orders and lines streamed in batches. */
export interface NorthwindData {
  scale: number;
  seed: number;
  /** Rows of every table except orders and order_details, keyed by table name. */
  tables: Map<string, Row[]>;
  orderCount: number;
  /**
   * Orders and their lines, `ordersPerBatch` orders at a time. Deterministic and restartable: each
   * call starts again from the first order with the same PRNG state.
   */
  orderBatches(ordersPerBatch: number): Generator<{ orders: Row[]; details: Row[] }>;
}

export function generateNorthwind(options: GenerateOptions): NorthwindData {
  const scale = options.scale;
  validateScale(scale);
  const seed = options.seed ?? 1996;
  const random = createRandom(seed);
  const normal = () => {
    // Box–Muller; 1 - random() keeps log's argument above 0.
    const u = 1 - random();
    const v = random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)];
  const digits = (n: number) => {
    let s = '';
    for (let i = 0; i < n; i += 1) s += String(Math.floor(random() * 10));
    return s;
  };
  const tables = new Map<string, Row[]>();

  tables.set(
    'categories',
    ref.categories.map((cat, i) => [i + 1, cat.name, cat.description, pictureBytes(random, 128)]),
  );
  tables.set(
    'region',
    ref.regions.map((name, i) => [i + 1, name]),
  );
  tables.set(
    'territories',
    ref.territories.map(([id, description, region]) => [id, description, region]),
  );
  tables.set(
    'us_states',
    ref.usStates.map(([name, abbr, region], i) => [i + 1, name, abbr, region]),
  );
  tables.set(
    'shippers',
    ref.shippers.map(([name, phone], i) => [i + 1, name, phone]),
  );
  tables.set(
    'suppliers',
    ref.suppliers.map(([name, city, country], i) => [
      i + 1,
      name,
      `${pick(ref.personNames.first)} ${pick(ref.personNames.last)}`.slice(0, 30),
      pick(ref.contactTitles),
      `${pick(ref.streetWords)} ${1 + Math.floor(random() * 200)}`,
      city.slice(0, 15),
      null,
      digits(5),
      country,
      `(${digits(3)}) 555-${digits(4)}`,
      null,
      i % 4 === 0
        ? `${name.replace(/[^A-Za-z]/g, '').toLowerCase()}.example#http://${name.replace(/[^A-Za-z]/g, '').toLowerCase()}.example/#`
        : null,
    ]),
  );
  tables.set(
    'employees',
    ref.employees.map(([last, first, title, courtesy, birth, hire, city, country, reportsTo], i) => [
      i + 1,
      last,
      first,
      title,
      courtesy,
      birth,
      hire,
      `${1 + Math.floor(random() * 900)} ${pick(ref.streetWords)}`,
      city,
      country === 'USA' ? 'WA' : null,
      country === 'USA' ? `98${digits(3)}` : `SW1 ${digits(1)}JN`,
      country,
      country === 'USA' ? `(206) 555-${digits(4)}` : `(71) 555-${digits(4)}`,
      digits(4),
      pictureBytes(random, 256),
      `${first} ${last} joined Northwind Traders in ${hire.slice(0, 4)} as ${title}.`,
      reportsTo,
      `http://accweb/emmployees/${last.toLowerCase()}.bmp`,
    ]),
  );
  // Each employee covers a few territories; territories are dealt round-robin.
  const employeeTerritories: Row[] = [];
  ref.territories.forEach(([territoryId], i) =>
    employeeTerritories.push([(i % ref.employees.length) + 1, territoryId]),
  );
  employeeTerritories.sort(
    (a, b) => (a[0] as number) - (b[0] as number) || String(a[1]).localeCompare(String(b[1])),
  );
  tables.set('employee_territories', employeeTerritories);

  // Product popularity: seeded weights; the null-category product sells slowly.
  const productWeights = ref.products.map((_, i) =>
    i + 1 === nullCategoryProductId ? 0.3 : 0.3 + 1.4 * random(),
  );
  tables.set(
    'products',
    ref.products.map(([name, supplier, category, qpu, price, discontinued], i) => [
      i + 1,
      name,
      supplier,
      i + 1 === nullCategoryProductId ? null : category,
      qpu,
      price,
      Math.floor(random() * 125),
      random() < 0.3 ? 10 * Math.floor(random() * 10) : 0,
      5 * Math.floor(random() * 7),
      discontinued,
    ]),
  );

  // Customers: the classic country mix times the scale, in a seeded interleaved order.
  const countryOfCustomer: string[] = [];
  for (const entry of ref.customerCountries)
    for (let k = 0; k < entry.customers * scale; k += 1) countryOfCustomer.push(entry.country);
  for (let i = countryOfCustomer.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    [countryOfCustomer[i], countryOfCustomer[j]] = [countryOfCustomer[j], countryOfCustomer[i]];
  }
  const usedIds = new Set<string>([unknownCustomerId]);
  let fallbackCounter = 0;
  const customerId = (company: string): string => {
    const letters = company
      .normalize('NFD')
      .replace(/[^A-Za-z]/g, '')
      .toUpperCase()
      .padEnd(5, 'X');
    for (let k = 0; k < 26; k += 1) {
      const candidate =
        letters.slice(0, 4) + String.fromCharCode(65 + ((letters.charCodeAt(4) - 65 + k) % 26));
      if (!usedIds.has(candidate)) return candidate;
    }
    for (;;) {
      let n = fallbackCounter;
      fallbackCounter += 1;
      let suffix = '';
      for (let k = 0; k < 3; k += 1) {
        suffix = String.fromCharCode(65 + (n % 26)) + suffix;
        n = Math.floor(n / 26);
      }
      const candidate = letters.slice(0, 2) + suffix;
      if (!usedIds.has(candidate)) return candidate;
    }
  };
  const customers: CustomerInfo[] = [];
  const customerRows: Row[] = [];
  const customerDemo: Row[] = [];
  for (const country of countryOfCustomer) {
    const entry = ref.customerCountries.find((e) => e.country === country);
    if (entry === undefined)
      throw new TributaryError('INTERNAL', `no reference entry for country ${country}`);
    const company = `${pick(ref.companyWords.first)} ${pick(ref.companyWords.second)}`.slice(0, 40);
    const id = customerId(company);
    usedIds.add(id);
    const variants = countryVariants[country];
    const storedCountry = variants !== undefined && random() < messyShare ? pick(variants) : country;
    const city = pick(entry.cities);
    const region =
      country === 'USA'
        ? pick(['WA', 'OR', 'ID', 'NM', 'AK', 'CA', 'MT', 'WY'])
        : country === 'Brazil'
          ? 'SP'
          : country === 'Venezuela'
            ? 'Lara'
            : country === 'Canada'
              ? 'BC'
              : null;
    const info: CustomerInfo = {
      id,
      company,
      address: `${pick(ref.streetWords)} ${1 + Math.floor(random() * 300)}`,
      city,
      region,
      postalCode: digits(5),
      country: storedCountry,
    };
    customers.push(info);
    const phone = `(${digits(2)}) ${digits(3)}-${digits(4)}`;
    customerRows.push([
      id,
      company,
      `${pick(ref.personNames.first)} ${pick(ref.personNames.last)}`.slice(0, 30),
      pick(ref.contactTitles),
      info.address,
      city,
      region,
      info.postalCode,
      storedCountry,
      phone,
      random() < 0.6 ? `(${digits(2)}) ${digits(3)}-${digits(4)}` : null,
    ]);
    if (random() < 0.3) customerDemo.push([id, pick(ref.customerDemographics)[0]]);
  }
  tables.set('customers', customerRows);
  tables.set(
    'customer_demographics',
    ref.customerDemographics.map(([id, desc]) => [id, desc]),
  );
  tables.set('customer_customer_demo', customerDemo);

  // Order frequency per customer: log-normal, with about 2% of customers who never ordered.
  const customerCumulative: number[] = [];
  let total = 0;
  for (let i = 0; i < customers.length; i += 1) {
    total += random() < 0.02 ? 0 : Math.exp(0.8 * normal());
    customerCumulative.push(total);
  }
  const productCumulative: number[] = [];
  let productTotal = 0;
  for (const w of productWeights) {
    productTotal += w;
    productCumulative.push(productTotal);
  }
  const search = (cumulative: number[], value: number): number => {
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid] > value) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };

  const orderCount = classicCounts.orders * scale;
  const orderSeed = Math.floor(random() * 4_294_967_296);
  const startMs = Date.parse(`${firstOrderDate}T00:00:00Z`);
  const spanDays = (Date.parse(`${lastOrderDate}T00:00:00Z`) - startMs) / dayMs;
  const linesDistribution = [0.23, 0.51, 0.77, 0.92, 0.98, 1];

  function* orderBatches(ordersPerBatch: number): Generator<{ orders: Row[]; details: Row[] }> {
    if (!Number.isInteger(ordersPerBatch) || ordersPerBatch < 1) {
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `ordersPerBatch must be a positive integer, got ${ordersPerBatch}`,
      );
    }
    const r = createRandom(orderSeed);
    let lineNumber = 0;
    let orders: Row[] = [];
    let details: Row[] = [];
    const chosen = new Set<number>();
    for (let i = 0; i < orderCount; i += 1) {
      // Orders grow linearly over the period (density ∝ 1 + 2t): inverse of the CDF (t + t²)/2.
      const u = (i + 0.5) / orderCount;
      const t = (-1 + Math.sqrt(1 + 8 * u)) / 2;
      const orderMs = startMs + Math.floor(t * spanDays) * dayMs;
      const customer = customers[search(customerCumulative, r() * total)];
      const orderId = firstOrderId + i;
      const noDate = i % 409 === 200;
      const daysToShip = 1 + Math.floor(r() * 35);
      const lastDays = (startMs + spanDays * dayMs - orderMs) / dayMs;
      const shipped = noDate || (lastDays < 30 && r() < 0.5) ? null : isoDate(orderMs + daysToShip * dayMs);
      orders.push([
        orderId,
        i % 277 === 123 ? unknownCustomerId : customer.id,
        1 + Math.floor(r() * ref.employees.length),
        noDate ? null : isoDate(orderMs),
        noDate ? null : isoDate(orderMs + 28 * dayMs),
        shipped,
        1 + Math.floor(r() * ref.shippers.length),
        round2(Math.exp(3.2 + 1.1 * (r() + r() + r() - 1.5))),
        customer.company,
        customer.address,
        customer.city,
        customer.region,
        customer.postalCode,
        customer.country,
      ]);
      const x = r();
      const lines = 1 + linesDistribution.findIndex((p) => x < p);
      const discount = r() < 0.39 ? [0.05, 0.1, 0.15, 0.2, 0.25][Math.floor(r() * 5)] : 0;
      // Prices before 1997 were 20% lower (as in the classic data).
      const priceFactor = orderMs < Date.parse('1997-01-01T00:00:00Z') ? 0.8 : 1;
      chosen.clear();
      for (let k = 0; k < lines; k += 1) {
        let product = search(productCumulative, r() * productTotal);
        while (chosen.has(product)) product = (product + 1) % ref.products.length;
        chosen.add(product);
        const listPrice = ref.products[product][4];
        const quantity =
          lineNumber % 500 === 250
            ? 0
            : Math.min(130, Math.max(1, Math.round(Math.exp(2.8 + 0.75 * normalFrom(r)))));
        details.push([orderId, product + 1, round2(listPrice * priceFactor), quantity, discount]);
        lineNumber += 1;
      }
      if (orders.length >= ordersPerBatch) {
        yield { orders, details: sortLines(details) };
        orders = [];
        details = [];
      }
    }
    if (orders.length > 0) yield { orders, details: sortLines(details) };
  }

  return { scale, seed, tables, orderCount, orderBatches };
}

function normalFrom(r: () => number): number {
  const u = 1 - r();
  const v = r();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

function sortLines(details: Row[]): Row[] {
  return details.sort((a, b) => (a[0] as number) - (b[0] as number) || (a[1] as number) - (b[1] as number));
}
