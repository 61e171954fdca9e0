import { TributaryError } from '../../core/index.js';
import { compileQuality, type QualityRule } from '../../stream/index.js';
import { quoteLiteral } from '../../lake/index.js';
import { countryAliasesValuesSql, countryKeySql } from './countries.js';

/**
 * The medallion SQL of the Northwind pipeline, in DuckDB's dialect. Every statement reads lake
 * tables by their qualified names (`bronze.orders`, `silver.sales`, `gold.top_countries`), which
 * the SQL layer exposes as views over committed Parquet; the statements never name files, so the
 * same text runs through the lake/SQL layer and directly in DuckDB over Parquet files (the
 * benchmark's baseline and the tests do the latter with views of the same names).
 */

/** The six source tables of seed 001, extracted to `bronze.<table>`. */
export const bronzeTables = [
  'categories',
  'customers',
  'employees',
  'orders',
  'order_details',
  'products',
] as const;
export type BronzeTable = (typeof bronzeTables)[number];

/**
 * The Hive partition column of every bronze, silver and gold table of the batch: the UTC date of
 * the run (`silver/sales/ingestion_date=2026-11-22/…`, seed 001's `{layer}/{table}/{date}`). A
 * rerun replaces that date's partition; earlier dates stay, so history is kept by date.
 */
export const ingestionDateColumn = 'ingestion_date';

/** `sql`'s rows with the partition column added (the lake writers partition on it). */
export function withIngestionDate(sql: string, ingestionDate: string): string {
  return `SELECT *, DATE ${quoteLiteral(checkIngestionDate(ingestionDate))} AS ${ingestionDateColumn} FROM (${sql}) AS dated`;
}

/** One date's rows of a date-partitioned table, without the partition column (a subquery). */
export function partitionOf(table: string, ingestionDate: string): string {
  return `(SELECT * EXCLUDE (${ingestionDateColumn}) FROM ${table} WHERE ${ingestionDateColumn} = DATE ${quoteLiteral(checkIngestionDate(ingestionDate))})`;
}

/** The latest date's rows of a date-partitioned table, without the partition column (a subquery). */
export function latestPartitionOf(table: string): string {
  return `(SELECT * EXCLUDE (${ingestionDateColumn}) FROM ${table} WHERE ${ingestionDateColumn} = (SELECT max(${ingestionDateColumn}) FROM ${table}))`;
}

/**
 * Silver's data-quality rules, checked in this order; a broken line goes to
 * silver.sales_quarantine with the first rule it fails as `reason` (and the platform's
 * `quality_reason` detail). A valid line has an order, a product, a customer, an order_date, a
 * category, a quantity > 0, a unit_price ≥ 0, a discount in [0, 1) and a country.
 */
export const silverRules = [
  {
    name: 'unknown_order',
    expect: 'sql',
    predicate: 'order_found',
    reason: 'order_id has no row in bronze.orders',
    action: 'quarantine',
  },
  {
    name: 'unknown_product',
    expect: 'sql',
    predicate: 'product_found',
    reason: 'product_id has no row in bronze.products',
    action: 'quarantine',
  },
  {
    name: 'unknown_customer',
    expect: 'sql',
    predicate: 'customer_found',
    reason: "the order's customer_id has no row in bronze.customers",
    action: 'quarantine',
  },
  { name: 'missing_order_date', expect: 'not_null', column: 'order_date', action: 'quarantine' },
  {
    name: 'missing_category',
    expect: 'not_null',
    column: ['category_id', 'category_name'],
    action: 'quarantine',
  },
  {
    name: 'quantity_not_positive',
    expect: 'range',
    column: 'quantity',
    min: 0,
    minInclusive: false,
    action: 'quarantine',
  },
  { name: 'invalid_unit_price', expect: 'range', column: 'unit_price', min: 0, action: 'quarantine' },
  {
    name: 'discount_out_of_range',
    expect: 'range',
    column: 'discount',
    min: 0,
    max: 1,
    maxInclusive: false,
    action: 'quarantine',
  },
  { name: 'missing_country', expect: 'not_null', column: 'country', action: 'quarantine' },
] as const satisfies readonly QualityRule[];

/** Quarantine reasons, in the order rules are checked (a row gets the first that fails). */
export const quarantineReasons = silverRules.map((r) => r.name);
export type QuarantineReason = (typeof silverRules)[number]['name'];

export function checkIngestionDate(date: string): string {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date) || Number.isNaN(Date.parse(`${date}T00:00:00Z`))) {
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `ingestion date must be YYYY-MM-DD, got ${JSON.stringify(date)}`,
      {
        details: { field: ingestionDateColumn, value: date },
      },
    );
  }
  return date;
}

/**
 * The joined order lines of one ingestion date, as a query: every bronze order line with what
 * silver needs, before `silverRules` check it.
 *
 * Join: order_details → orders (order_id) → products (product_id) → categories (category_id) →
 * customers (customer_id), all LEFT JOINs so a line whose order, product, category or customer is
 * missing is kept and quarantined instead of vanishing.
 *
 * Types: ids INTEGER; unit_price DECIMAL(10,2) and discount DECIMAL(4,2) (the source stores
 * float4 values that were entered with two decimals, so the cast recovers them exactly);
 * quantity INTEGER; dates DATE.
 *
 * line_total = unit_price × quantity × (1 − discount), computed in DECIMAL (exact to 4 decimals)
 * and rounded to cents per line, half away from zero (as PostgreSQL's numeric round), as
 * DECIMAL(18,2). Sums of line_total are therefore exact to the cent.
 *
 * Country: the customer's country (falling back to the order's ship_country when the customer
 * has none), standardised through the alias table in countries.ts.
 *
 * Null rules: `silverRules` decide which rows are valid; any other column may be NULL
 * (shipped_date NULL = not shipped yet; region, city, postal code are optional).
 */
export function silverLinesSql(ingestionDate: string): string {
  const date = quoteLiteral(checkIngestionDate(ingestionDate));
  const latest = (table: BronzeTable) =>
    `(SELECT * FROM bronze.${table} WHERE ${ingestionDateColumn} = DATE ${date})`;
  // The alias lookup runs once per distinct raw spelling (a few dozen), not once per order line.
  return `WITH aliases AS (SELECT * FROM ${countryAliasesValuesSql('a')}),
o AS ${latest('orders')},
cu AS ${latest('customers')},
raw_countries AS (
  SELECT DISTINCT raw FROM (SELECT country AS raw FROM cu UNION ALL SELECT ship_country AS raw FROM o) WHERE raw IS NOT NULL
),
country_map AS (
  SELECT r.raw, coalesce(al.country, nullif(trim(r.raw), '')) AS country
  FROM raw_countries r LEFT JOIN aliases al ON al.alias_key = ${countryKeySql('r.raw')}
),
lines AS (
  SELECT
    CAST(d.order_id AS INTEGER) AS order_id,
    CAST(d.product_id AS INTEGER) AS product_id,
    o.order_id IS NOT NULL AS order_found,
    p.product_id IS NOT NULL AS product_found,
    cu.customer_id IS NOT NULL AS customer_found,
    CAST(o.customer_id AS VARCHAR) AS customer_id,
    CAST(o.employee_id AS INTEGER) AS employee_id,
    CAST(o.order_date AS DATE) AS order_date,
    CAST(o.shipped_date AS DATE) AS shipped_date,
    CAST(o.ship_via AS INTEGER) AS ship_via,
    CAST(p.product_name AS VARCHAR) AS product_name,
    CAST(p.category_id AS INTEGER) AS category_id,
    CAST(c.category_name AS VARCHAR) AS category_name,
    CAST(cu.company_name AS VARCHAR) AS company_name,
    CAST(cu.city AS VARCHAR) AS city,
    CAST(coalesce(cu.country, o.ship_country) AS VARCHAR) AS country_raw,
    cm.country AS country,
    CAST(d.unit_price AS DECIMAL(10,2)) AS unit_price,
    CAST(d.quantity AS INTEGER) AS quantity,
    CAST(d.discount AS DECIMAL(4,2)) AS discount
  FROM ${latest('order_details')} d
  LEFT JOIN o ON o.order_id = d.order_id
  LEFT JOIN ${latest('products')} p ON p.product_id = d.product_id
  LEFT JOIN ${latest('categories')} c ON c.category_id = p.category_id
  LEFT JOIN cu ON cu.customer_id = o.customer_id
  LEFT JOIN country_map cm ON cm.raw = coalesce(cu.country, o.ship_country)
)
SELECT
  *,
  CAST(round(unit_price * quantity * (1 - discount), 2) AS DECIMAL(18,2)) AS line_total
FROM lines`;
}

/** Column list of silver.sales (the master sales table, one row per valid order line). */
export const salesColumns = [
  'order_id',
  'product_id',
  'customer_id',
  'employee_id',
  'order_date',
  'shipped_date',
  'ship_via',
  'product_name',
  'category_id',
  'category_name',
  'company_name',
  'city',
  'country',
  'country_raw',
  'unit_price',
  'quantity',
  'discount',
  'line_total',
] as const;

/** Columns of silver.sales_quarantine besides `reason` (the rule) and `quality_reason` (its detail). */
const quarantineColumns =
  'order_id, product_id, customer_id, order_date, product_name, category_id, country_raw, unit_price, quantity, discount';

/**
 * Silver as a data-quality run: the joined lines checked by `silverRules`; valid lines become
 * silver.sales (unordered: sorting 2M wide rows costs more than it saves readers), broken ones
 * silver.sales_quarantine with their raw fields and the rule they failed. The lake run
 * (`writeCheckedQuery`) also records gold.quality_results; the Parquet-directory run uses the same
 * compiled statements (`silverSalesSql`, `silverQuarantineSql`).
 */
export function silverQuality(ingestionDate: string) {
  return {
    table: 'silver.sales',
    quarantineTable: 'silver.sales_quarantine',
    input: silverLinesSql(ingestionDate),
    rules: silverRules,
    select: {
      table: (sql: string) => `SELECT ${salesColumns.join(', ')} FROM (${sql}) AS checked`,
      quarantine: (sql: string) =>
        `SELECT ${quarantineColumns}, quality_rule AS reason, quality_reason FROM (${sql}) AS checked ORDER BY order_id, product_id`,
    },
  };
}

function compiledSilver(ingestionDate: string) {
  const quality = silverQuality(ingestionDate);
  // The batch replaces silver, so no `unique` check against existing rows; no rule reads the clock.
  return {
    quality,
    compiled: compileQuality(quality.rules, { input: quality.input, existingTable: null, nowMs: 0 }),
  };
}

/** silver.sales: the valid lines of one ingestion date. */
export function silverSalesSql(ingestionDate: string): string {
  const { quality, compiled } = compiledSilver(ingestionDate);
  return quality.select.table(compiled.passedSql);
}

/** silver.sales_quarantine: the broken lines with their raw fields and the rule they failed. */
export function silverQuarantineSql(ingestionDate: string): string {
  const { quality, compiled } = compiledSilver(ingestionDate);
  return quality.select.quarantine(compiled.quarantineSql);
}

/** silver.sales of one run date, as a subquery (gold reads only its own date). */
const salesOf = (ingestionDate: string) => partitionOf('silver.sales', ingestionDate);

/**
 * gold.kpi_summary: one row. avg_order_value = total_revenue / order_count rounded to cents half
 * up, computed on integer cents so it is exact (DuckDB divides decimals in floating point).
 */
export const kpiSummarySql = (ingestionDate: string) => `WITH t AS (
  SELECT sum(line_total) AS total_revenue, count(DISTINCT order_id) AS order_count, count(DISTINCT customer_id) AS customer_count
  FROM ${salesOf(ingestionDate)} AS s
)
SELECT
  CAST(coalesce(total_revenue, 0) AS DECIMAL(18,2)) AS total_revenue,
  order_count,
  customer_count,
  CAST(CAST(CASE WHEN order_count = 0 THEN 0
    ELSE (CAST(total_revenue * 100 AS HUGEINT) * 2 + order_count) // (2 * order_count) END AS DECIMAL(18,0)) * 0.01
    AS DECIMAL(18,2)) AS avg_order_value
FROM t`;

/** gold.top_countries: every country; rank 1 = highest revenue, ties broken by country name. */
export const topCountriesSql = (
  ingestionDate: string,
) => `SELECT country, CAST(sum(line_total) AS DECIMAL(18,2)) AS revenue,
  CAST(row_number() OVER (ORDER BY sum(line_total) DESC, country) AS INTEGER) AS "rank"
FROM ${salesOf(ingestionDate)} AS s GROUP BY country ORDER BY "rank"`;

/** gold.category_sales: revenue per category and its share of total revenue (0–1, 6 decimals). */
export const categorySalesSql = (
  ingestionDate: string,
) => `SELECT category_name, CAST(sum(line_total) AS DECIMAL(18,2)) AS revenue,
  round(CAST(sum(line_total) AS DOUBLE) / CAST(sum(sum(line_total)) OVER () AS DOUBLE), 6) AS share
FROM ${salesOf(ingestionDate)} AS s GROUP BY category_name ORDER BY revenue DESC, category_name`;

/**
 * RFM segments, checked in this order (scores are 1–5, 5 best):
 *   Champions      r ≥ 4 and f ≥ 4 and m ≥ 4
 *   Loyal          r ≥ 3 and f ≥ 4
 *   New            r = 5 and f = 1
 *   Potential      r ≥ 4                 (recent, not yet frequent)
 *   At risk        r ≤ 2 and f ≥ 3       (used to buy often, not lately)
 *   Lost           r = 1                 (and f ≤ 2)
 *   Hibernating    r = 2                 (and f ≤ 2)
 *   Need attention everything else       (r = 3 and f ≤ 3)
 */
export const rfmSegments = [
  'Champions',
  'Loyal',
  'New',
  'Potential',
  'At risk',
  'Lost',
  'Hibernating',
  'Need attention',
] as const;

/**
 * gold.customer_rfm, one row per customer with at least one valid sale.
 * recency_days = days from the customer's last order_date to the reference date, which is the
 * day after the latest order_date in that run date's silver.sales (so a rerun over the same data gives the same
 * figures, whatever today is). frequency = distinct orders; monetary = sum of line_total.
 * Scores: NTILE(5) over the customers ordered worst → best (recency descending, frequency and
 * monetary ascending). Ties are broken by customer_id, so equal values can land in neighbouring
 * quintiles; NTILE gives the first (n mod 5) tiles one extra customer.
 */
export const customerRfmSql = (ingestionDate: string) => `WITH sales AS ${salesOf(ingestionDate)},
per_customer AS (
  SELECT customer_id, max(order_date) AS last_order_date, count(DISTINCT order_id) AS frequency, sum(line_total) AS monetary
  FROM sales GROUP BY customer_id
),
reference AS (SELECT max(order_date) + 1 AS reference_date FROM sales),
measured AS (
  SELECT customer_id, CAST(date_diff('day', last_order_date, reference_date) AS INTEGER) AS recency_days,
    CAST(frequency AS INTEGER) AS frequency, CAST(monetary AS DECIMAL(18,2)) AS monetary
  FROM per_customer, reference
),
scored AS (
  SELECT *,
    CAST(ntile(5) OVER (ORDER BY recency_days DESC, customer_id) AS INTEGER) AS r_score,
    CAST(ntile(5) OVER (ORDER BY frequency, customer_id) AS INTEGER) AS f_score,
    CAST(ntile(5) OVER (ORDER BY monetary, customer_id) AS INTEGER) AS m_score
  FROM measured
)
SELECT *,
  CASE
    WHEN r_score >= 4 AND f_score >= 4 AND m_score >= 4 THEN 'Champions'
    WHEN r_score >= 3 AND f_score >= 4 THEN 'Loyal'
    WHEN r_score = 5 AND f_score = 1 THEN 'New'
    WHEN r_score >= 4 THEN 'Potential'
    WHEN r_score <= 2 AND f_score >= 3 THEN 'At risk'
    WHEN r_score = 1 THEN 'Lost'
    WHEN r_score = 2 THEN 'Hibernating'
    ELSE 'Need attention'
  END AS segment
FROM scored ORDER BY customer_id`;

/**
 * Batch + live revenue by country (a table recomputed after each gold run and each live commit).
 * batch_revenue is the historical revenue of the latest run date (gold.top_countries' newest
 * partition); live_revenue and live_transactions are what the live job has counted from the
 * `ventes-temps-reel` topic since it started. Live sales are new sales that the batch source does
 * not hold yet, so total_revenue = batch + live counts each sale once.
 */
export const revenueByCountryCombinedSql = `SELECT
  coalesce(b.country, l.pays) AS country,
  CAST(coalesce(b.revenue, 0) AS DECIMAL(18,2)) AS batch_revenue,
  CAST(coalesce(l.total_ventes_live, 0) AS DECIMAL(18,2)) AS live_revenue,
  CAST(coalesce(b.revenue, 0) + coalesce(l.total_ventes_live, 0) AS DECIMAL(18,2)) AS total_revenue,
  CAST(coalesce(l.nb_transactions, 0) AS BIGINT) AS live_transactions
FROM ${latestPartitionOf('gold.top_countries')} AS b
FULL OUTER JOIN (SELECT * FROM gold.live_sales_by_country) AS l ON l.pays = b.country
ORDER BY total_revenue DESC, country`;

/** One lake table a job writes, with the query that produces it. */
export interface SqlOutput {
  table: string;
  sql: string;
}

/**
 * A SQL batch job: one or more outputs, each a self-contained SELECT over lake tables whose result
 * replaces partition `ingestion_date = <ingestionDate>` of the output table (other dates stay).
 * Outputs run in order, so a later one may read an earlier one.
 */
export interface SqlBatchJobSpec {
  name: string;
  /** The run date: the partition every output replaces. */
  ingestionDate: string;
  description: string;
  dependsOn: string[];
  inputs: string[];
  outputs: SqlOutput[];
}

/** The silver and gold jobs for one ingestion date (bronze comes from the source extraction). */
export function medallionJobs(ingestionDate: string): SqlBatchJobSpec[] {
  return [
    {
      name: 'northwind.silver',
      ingestionDate,
      description: 'Join, type, standardise and check order lines → silver.sales and silver.sales_quarantine',
      dependsOn: ['northwind.bronze'],
      inputs: bronzeTables.map((t) => `bronze.${t}`),
      outputs: [
        { table: 'silver.sales', sql: silverSalesSql(ingestionDate) },
        { table: 'silver.sales_quarantine', sql: silverQuarantineSql(ingestionDate) },
      ],
    },
    {
      name: 'northwind.gold',
      ingestionDate,
      description: 'KPIs, country ranking, category sales and RFM segments from silver.sales',
      dependsOn: ['northwind.silver'],
      inputs: ['silver.sales'],
      outputs: [
        { table: 'gold.kpi_summary', sql: kpiSummarySql(ingestionDate) },
        { table: 'gold.top_countries', sql: topCountriesSql(ingestionDate) },
        { table: 'gold.category_sales', sql: categorySalesSql(ingestionDate) },
        { table: 'gold.customer_rfm', sql: customerRfmSql(ingestionDate) },
      ],
    },
  ];
}
