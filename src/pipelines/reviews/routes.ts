import { z } from 'zod';
import { TributaryError } from '../../core/index.js';
import type { DashboardPage, PipelineModule } from '../../serve/index.js';
import type { PipelineServices } from '../types.js';
import { rowsResponse, rowsWhenPresent } from '../tables.js';
import { tables } from './jobs.js';

const page: DashboardPage = {
  id: 'reviews',
  title: 'Product reviews',
  description:
    'Amazon reviews from the spool directory → reviews.raw → bronze (raw zone by ingestion date) → silver with sentiment → gold',
  tiles: [
    {
      id: 'accepted',
      label: 'Reviews',
      source: { route: '/api/reviews/summary', field: 'rows.0.accepted' },
      format: 'integer',
    },
    {
      id: 'sentiment',
      label: 'Average sentiment',
      source: { route: '/api/reviews/summary', field: 'rows.0.avg_sentiment' },
      format: 'number',
    },
    {
      id: 'quarantined',
      label: 'Quarantined lines',
      source: { route: '/api/reviews/summary', field: 'rows.0.quarantined' },
      format: 'integer',
    },
    {
      id: 'duplicates',
      label: 'Duplicates dropped',
      source: { route: '/api/reviews/summary', field: 'rows.0.duplicates' },
      format: 'integer',
    },
  ],
  charts: [
    {
      id: 'daily',
      title: 'Average sentiment per day',
      kind: 'line',
      route: '/api/reviews/daily',
      rowsField: 'rows',
      x: 'date',
      y: 'avg_sentiment',
      format: 'number',
    },
    {
      id: 'rating-vs-sentiment',
      title: 'Stars vs text: share of reviews whose text reads negative',
      kind: 'bar',
      route: '/api/reviews/rating-vs-sentiment',
      rowsField: 'rows',
      x: 'rating',
      y: 'negative_share',
      format: 'percent',
    },
  ],
  // POST /api/reviews/ask (registerAskRoute), optionally within one product.
  ask: {
    id: 'reviews',
    title: 'Ask the reviews',
    route: '/api/reviews/ask',
    placeholder: 'e.g. What do people say about the battery?',
    what: 'reviews',
    filters: [
      {
        field: 'product_id',
        label: 'Product',
        suggestions: { route: '/api/reviews/products?limit=1000', field: 'product_id' },
      },
    ],
    citationFields: ['review_id', 'product_id', 'rating'],
  },
  tables: [
    {
      id: 'worst',
      title: 'Worst products (by text sentiment)',
      route: '/api/reviews/products?sort=worst&limit=5',
      columns: ['product_id', 'reviews', 'avg_rating', 'avg_sentiment', 'negative_share'],
    },
    {
      id: 'best',
      title: 'Best products (by text sentiment)',
      route: '/api/reviews/products?sort=best&limit=5',
      columns: ['product_id', 'reviews', 'avg_rating', 'avg_sentiment', 'positive_share'],
    },
    {
      id: 'quarantine',
      title: 'Quarantined lines by reason',
      route: '/api/reviews/quarantine',
      columns: ['reason', 'lines', 'files'],
    },
  ],
};

const limitQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(50),
  offset: z.coerce.number().int().min(0).max(10_000_000).default(0),
});

/** API routes under /api/reviews (scope read) and the dashboard page. */
export function reviewsModule(services: Pick<PipelineServices, 'query' | 'lake'>): PipelineModule {
  return {
    name: 'reviews',
    title: 'Product reviews',
    description:
      'Amazon reviews → sentiment per product, day and star rating; questions answered from reviews',
    page,
    routes(api) {
      api.route({
        method: 'get',
        path: '/api/reviews/summary',
        cache: { tables: [tables.silver, tables.quarantine, tables.duplicates] },
        summary: 'Accepted, quarantined and duplicate review counts and the average sentiment',
        tags: ['reviews'],
        scope: 'read',
        responses: rowsResponse,
        handler: async ({ signal }) => {
          const [silver, quarantined, duplicates] = await Promise.all([
            rowsWhenPresent(
              { ...services, signal },
              tables.silver,
              `SELECT count(*) AS accepted, avg(sentiment_score) AS avg_sentiment FROM ${tables.silver}`,
            ),
            rowsWhenPresent(
              { ...services, signal },
              tables.quarantine,
              `SELECT count(*) AS n FROM ${tables.quarantine}`,
            ),
            rowsWhenPresent(
              { ...services, signal },
              tables.duplicates,
              `SELECT count(*) AS n FROM ${tables.duplicates}`,
            ),
          ]);
          return {
            rows: [
              {
                accepted: Number(silver[0]?.accepted ?? 0),
                avg_sentiment: silver[0]?.avg_sentiment ?? null,
                quarantined: Number(quarantined[0]?.n ?? 0),
                duplicates: Number(duplicates[0]?.n ?? 0),
              },
            ],
          };
        },
      });
      api.route({
        method: 'get',
        path: '/api/reviews/products',
        cache: { tables: [tables.productSentiment] },
        summary: 'Products with review count, average stars and text sentiment (gold.product_sentiment)',
        tags: ['reviews'],
        scope: 'read',
        query: limitQuery.extend({ sort: z.enum(['best', 'worst', 'reviews']).default('reviews') }),
        responses: rowsResponse,
        handler: async ({ query, signal }) => {
          const order =
            query.sort === 'best'
              ? 'avg_sentiment DESC, product_id'
              : query.sort === 'worst'
                ? 'avg_sentiment ASC, product_id'
                : 'reviews DESC, product_id';
          return {
            rows: await rowsWhenPresent(
              { ...services, signal },
              tables.productSentiment,
              `SELECT * FROM ${tables.productSentiment} ORDER BY ${order} LIMIT $1 OFFSET $2`,
              [query.limit, query.offset],
            ),
          };
        },
      });
      api.route({
        method: 'get',
        path: '/api/reviews/products/:productId/reviews',
        cache: { tables: [tables.silver] },
        summary: "One product's reviews with their sentiment, newest first (silver.product_reviews)",
        tags: ['reviews'],
        scope: 'read',
        params: z.object({ productId: z.string().min(1).max(200) }),
        query: limitQuery,
        responses: rowsResponse,
        handler: async ({ params, query, signal }) => {
          const rows = await rowsWhenPresent(
            { ...services, signal },
            tables.silver,
            `SELECT review_id, product_id, user_id, rating, title, text, review_ts, sentiment_score,
                    sentiment_label, sentiment_confidence, source_file, source_line
             FROM ${tables.silver} WHERE product_id = $1
             ORDER BY review_ts DESC NULLS LAST, review_id LIMIT $2 OFFSET $3`,
            [params.productId, query.limit, query.offset],
          );
          if (rows.length === 0 && query.offset === 0) {
            throw new TributaryError(
              'NOT_FOUND',
              `no reviews of product ${JSON.stringify(params.productId)}`,
            );
          }
          return { rows };
        },
      });
      api.route({
        method: 'get',
        path: '/api/reviews/daily',
        cache: { tables: [tables.sentimentDaily] },
        summary: 'Reviews and average sentiment per review date (gold.sentiment_daily)',
        tags: ['reviews'],
        scope: 'read',
        responses: rowsResponse,
        handler: async ({ signal }) => ({
          rows: await rowsWhenPresent(
            { ...services, signal },
            tables.sentimentDaily,
            `SELECT CAST(date AS VARCHAR) AS date, reviews, avg_sentiment FROM ${tables.sentimentDaily} ORDER BY date`,
          ),
        }),
      });
      api.route({
        method: 'get',
        path: '/api/reviews/rating-vs-sentiment',
        cache: { tables: [tables.ratingVsSentiment] },
        summary: 'Average text sentiment per star rating (gold.rating_vs_sentiment)',
        tags: ['reviews'],
        scope: 'read',
        responses: rowsResponse,
        handler: async ({ signal }) => ({
          rows: await rowsWhenPresent(
            { ...services, signal },
            tables.ratingVsSentiment,
            `SELECT * FROM ${tables.ratingVsSentiment} ORDER BY rating`,
          ),
        }),
      });
      api.route({
        method: 'get',
        path: '/api/reviews/quarantine',
        cache: { tables: [tables.quarantine] },
        summary: 'Quarantined lines per reason code (silver.reviews_quarantine)',
        tags: ['reviews'],
        scope: 'read',
        responses: rowsResponse,
        handler: async ({ signal }) => ({
          rows: await rowsWhenPresent(
            { ...services, signal },
            tables.quarantine,
            `SELECT split_part(reason, ':', 1) AS reason, count(*) AS lines, count(DISTINCT source_file) AS files
             FROM ${tables.quarantine} GROUP BY 1 ORDER BY lines DESC, reason`,
          ),
        }),
      });
    },
  };
}
