import { countryAliases } from '../../../src/pipelines/northwind/countries.js';

/**
 * An independent computation of the gold figures in PostgreSQL's dialect, over the source tables
 * themselves (not over bronze or silver): inner joins plus the documented validity rules, numeric
 * arithmetic, and PostgreSQL's own date and window functions.
 */
export interface Queryable {
  query<T>(sql: string): Promise<T[]>;
}

export interface ReferenceGold {
  totalRevenue: string;
  orderCount: number;
  customerCount: number;
  avgOrderValue: string;
  countries: { country: string; revenue: string; rank: number }[];
  categories: { category_name: string; revenue: string }[];
  rfm: Map<
    string,
    {
      recency_days: number;
      frequency: number;
      monetary: string;
      r_score: number;
      f_score: number;
      m_score: number;
    }
  >;
  quarantined: number;
}

const aliasValues = Object.entries(countryAliases)
  .map(([k, v]) => `('${k.replaceAll("'", "''")}', '${v.replaceAll("'", "''")}')`)
  .join(', ');

const validLines = `
WITH aliases(alias_key, country) AS (VALUES ${aliasValues}),
lines AS (
  SELECT d.order_id, o.customer_id, o.order_date, c.category_name,
    round(d.unit_price::numeric(10,2) * d.quantity * (1 - d.discount::numeric(4,2)), 2) AS line_total,
    coalesce(cu.country, o.ship_country) AS raw_country
  FROM order_details d
  JOIN orders o ON o.order_id = d.order_id
  JOIN products p ON p.product_id = d.product_id
  JOIN categories c ON c.category_id = p.category_id
  JOIN customers cu ON cu.customer_id = o.customer_id
  WHERE o.order_date IS NOT NULL AND d.quantity > 0 AND d.unit_price >= 0 AND d.discount >= 0 AND d.discount < 1
),
sales AS (
  SELECT l.*, coalesce(a.country, trim(l.raw_country)) AS country
  FROM lines l
  LEFT JOIN aliases a ON a.alias_key = trim(regexp_replace(lower(replace(trim(l.raw_country), '.', '')), '[\\s-]+', ' ', 'g'))
  WHERE nullif(trim(l.raw_country), '') IS NOT NULL
)`;

export async function referenceGold(db: Queryable): Promise<ReferenceGold> {
  const [kpi] = await db.query<{ total: string; orders: string; customers: string; avg: string }>(
    `${validLines} SELECT sum(line_total)::text AS total, count(DISTINCT order_id)::text AS orders,
       count(DISTINCT customer_id)::text AS customers, round(sum(line_total) / count(DISTINCT order_id), 2)::text AS avg FROM sales`,
  );
  const countries = await db.query<{ country: string; revenue: string; rank: string }>(
    `${validLines} SELECT country, sum(line_total)::text AS revenue,
       (row_number() OVER (ORDER BY sum(line_total) DESC, country COLLATE "C"))::text AS rank
     FROM sales GROUP BY country ORDER BY 3::int`,
  );
  const categories = await db.query<{ category_name: string; revenue: string }>(
    `${validLines} SELECT category_name, sum(line_total)::text AS revenue FROM sales GROUP BY 1 ORDER BY 1`,
  );
  const rfmRows = await db.query<Record<string, string>>(
    `${validLines},
     per AS (SELECT customer_id, max(order_date) AS last_date, count(DISTINCT order_id) AS frequency, sum(line_total) AS monetary
             FROM sales GROUP BY customer_id),
     ref AS (SELECT max(order_date) + 1 AS ref_date FROM sales),
     m AS (SELECT customer_id, (ref_date - last_date) AS recency_days, frequency, monetary FROM per, ref)
     SELECT customer_id, recency_days::text, frequency::text, monetary::text,
       ntile(5) OVER (ORDER BY recency_days DESC, customer_id COLLATE "C")::text AS r_score,
       ntile(5) OVER (ORDER BY frequency, customer_id COLLATE "C")::text AS f_score,
       ntile(5) OVER (ORDER BY monetary, customer_id COLLATE "C")::text AS m_score
     FROM m`,
  );
  const [all] = await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM order_details`);
  const [valid] = await db.query<{ n: string }>(`${validLines} SELECT count(*)::text AS n FROM sales`);
  if (kpi === undefined || all === undefined || valid === undefined)
    throw new Error('reference query returned no row');
  return {
    totalRevenue: kpi.total,
    orderCount: Number(kpi.orders),
    customerCount: Number(kpi.customers),
    avgOrderValue: kpi.avg,
    countries: countries.map((c) => ({ country: c.country, revenue: c.revenue, rank: Number(c.rank) })),
    categories,
    rfm: new Map(
      rfmRows.map((r) => [
        r.customer_id,
        {
          recency_days: Number(r.recency_days),
          frequency: Number(r.frequency),
          monetary: r.monetary,
          r_score: Number(r.r_score),
          f_score: Number(r.f_score),
          m_score: Number(r.m_score),
        },
      ]),
    ),
    quarantined: Number(all.n) - Number(valid.n),
  };
}
