import type { Lake } from '../../lake/index.js';
import type { BatchJob } from '../../stream/index.js';
import { rebuildTables, type RebuildQuery } from '../tables.js';
import { tables } from './jobs.js';

/**
 * Gold tables over `silver.product_reviews`, each fully recomputed (they are small aggregates).
 * Where stars and text disagree is what `rating_vs_sentiment` shows.
 */
export const goldQueries: readonly RebuildQuery[] = [
  {
    table: tables.productSentiment,
    sql: `SELECT product_id,
                 count(*) AS reviews,
                 avg(rating) AS avg_rating,
                 avg(sentiment_score) AS avg_sentiment,
                 avg(CASE WHEN sentiment_label = 'positive' THEN 1.0 ELSE 0.0 END) AS positive_share,
                 avg(CASE WHEN sentiment_label = 'negative' THEN 1.0 ELSE 0.0 END) AS negative_share
          FROM ${tables.silver}
          GROUP BY product_id`,
  },
  {
    table: tables.sentimentDaily,
    sql: `SELECT CAST(review_ts AS DATE) AS date, count(*) AS reviews, avg(sentiment_score) AS avg_sentiment
          FROM ${tables.silver}
          WHERE review_ts IS NOT NULL
          GROUP BY 1`,
  },
  {
    table: tables.ratingVsSentiment,
    sql: `SELECT rating, count(*) AS reviews, avg(sentiment_score) AS avg_sentiment,
                 avg(CASE WHEN sentiment_label = 'positive' THEN 1.0 ELSE 0.0 END) AS positive_share,
                 avg(CASE WHEN sentiment_label = 'negative' THEN 1.0 ELSE 0.0 END) AS negative_share
          FROM ${tables.silver}
          WHERE rating IS NOT NULL
          GROUP BY rating`,
  },
];

export const goldJobName = 'reviews.gold';

/** The gold step of the batch DAG: after each silver commit under `up`, and every 10 minutes. */
export function reviewGoldJob(lake: Lake): BatchJob {
  return {
    name: goldJobName,
    description: 'Per-product sentiment, daily sentiment and rating vs sentiment from silver.product_reviews',
    inputs: [tables.silver],
    outputs: goldQueries.map((q) => q.table),
    schedule: '*/10 * * * *',
    // Under `tributary up` gold follows silver's commits, so a file dropped into the spool reaches
    // the dashboard's charts within seconds rather than at the next scheduled run.
    onInputCommit: { debounceMs: 1_000 },
    partitionFor: () => null,
    // Before the first review arrives there is no silver table: nothing to aggregate yet.
    run: async (ctx) => ({ rowsOut: await refreshGold(lake, ctx.commitId, ctx.signal) }),
  };
}

/** Recomputes every gold table (one commit each). */
export async function refreshGold(lake: Lake, commitPrefix: string, signal?: AbortSignal): Promise<number> {
  if ((await lake.table(tables.silver).snapshot()) === null) return 0;
  return rebuildTables(lake, goldQueries, commitPrefix, signal);
}
