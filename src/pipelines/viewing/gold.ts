import type { Lake } from '../../lake/index.js';
import type { BatchJob } from '../../stream/index.js';
import { rebuildTables, type RebuildQuery } from '../tables.js';
import { tables } from './jobs.js';

const events = tables.bronze;

/** Two events of one user without a `session_id` belong to one session when less than this apart. */
export const sessionGapMinutes = 30;

/**
 * The engagement tables, each recomputed in full from the valid events (`bronze.viewing_events`).
 * `watch_hours` is the sum of `watch_seconds` / 3600, unrounded; days and devices without activity
 * have no rows.
 */
export const goldQueries: readonly RebuildQuery[] = [
  {
    table: tables.showEngagement,
    sql: `SELECT show_id,
                 arg_max(show_title, event_ts) AS show_title,
                 arg_max(show_type, event_ts) AS show_type,
                 count(DISTINCT user_id) FILTER (WHERE event_type = 'play') AS viewers,
                 count(*) FILTER (WHERE event_type = 'play') AS plays,
                 sum(watch_seconds) / 3600.0 AS watch_hours,
                 count(*) FILTER (WHERE event_type = 'complete') AS completions,
                 CASE WHEN count(*) FILTER (WHERE event_type = 'play') = 0 THEN 0.0
                      ELSE count(*) FILTER (WHERE event_type = 'complete') / count(*) FILTER (WHERE event_type = 'play') END
                   AS completion_rate,
                 avg(rating) FILTER (WHERE event_type = 'rate') AS avg_rating
          FROM ${events}
          GROUP BY show_id`,
  },
  {
    table: tables.dailyEngagement,
    sql: `SELECT event_date, show_type,
                 count(DISTINCT user_id) AS active_users,
                 sum(watch_seconds) / 3600.0 AS watch_hours,
                 count(*) FILTER (WHERE event_type = 'play') AS plays
          FROM ${events}
          GROUP BY event_date, show_type`,
  },
  {
    table: tables.userActivity,
    // Sessions: distinct app-provided session ids, plus, for events without one, event-time
    // session windows with a 30-minute gap (a new session when the previous such event of the
    // user is 30 minutes or more earlier).
    sql: `WITH without_id AS (
            SELECT user_id, event_ts,
                   lag(event_ts) OVER (PARTITION BY user_id ORDER BY event_ts, event_id) AS previous_ts
            FROM ${events} WHERE session_id IS NULL
          ),
          gap_sessions AS (
            SELECT user_id,
                   count(*) FILTER (WHERE previous_ts IS NULL
                                       OR event_ts - previous_ts >= INTERVAL ${sessionGapMinutes} MINUTE) AS sessions
            FROM without_id GROUP BY user_id
          ),
          id_sessions AS (
            SELECT user_id, count(DISTINCT session_id) AS sessions
            FROM ${events} WHERE session_id IS NOT NULL GROUP BY user_id
          ),
          by_type AS (
            SELECT user_id, show_type, sum(watch_seconds) AS seconds FROM ${events} GROUP BY user_id, show_type
          ),
          favourite AS (
            SELECT user_id, show_type FROM (
              SELECT user_id, show_type,
                     row_number() OVER (PARTITION BY user_id ORDER BY seconds DESC, show_type) AS place
              FROM by_type) WHERE place = 1
          )
          SELECT e.user_id,
                 coalesce(any_value(i.sessions), 0) + coalesce(any_value(g.sessions), 0) AS sessions,
                 sum(e.watch_seconds) / 3600.0 AS watch_hours,
                 count(DISTINCT e.show_id) FILTER (WHERE e.event_type = 'play') AS shows_watched,
                 any_value(f.show_type) AS favourite_show_type,
                 max(e.event_ts) AS last_seen
          FROM ${events} e
          LEFT JOIN id_sessions i USING (user_id)
          LEFT JOIN gap_sessions g USING (user_id)
          LEFT JOIN favourite f USING (user_id)
          GROUP BY e.user_id`,
  },
  {
    table: tables.deviceMix,
    sql: `SELECT device, count(DISTINCT user_id) AS users, sum(watch_seconds) / 3600.0 AS watch_hours
          FROM ${events} GROUP BY device`,
  },
  {
    table: tables.anomalies,
    // A show-day is anomalous when its watch hours lie more than 3 sample standard deviations from
    // the mean of the show's 7 previous days (days without viewing count as 0 hours); a show needs
    // 7 previous days inside the data and a non-zero deviation to be judged, and the day must be over.
    sql: `WITH daily AS (
            SELECT show_id, event_date, sum(watch_seconds) / 3600.0 AS watch_hours FROM ${events} GROUP BY 1, 2
          ),
          span AS (SELECT min(event_date) AS first_day, max(event_date) AS last_day FROM daily),
          spine AS (
            SELECT s.show_id, CAST(d.day AS DATE) AS event_date
            FROM (SELECT DISTINCT show_id FROM daily) s, span,
                 generate_series(CAST(span.first_day AS TIMESTAMP), CAST(span.last_day AS TIMESTAMP), INTERVAL 1 DAY) AS d(day)
          ),
          filled AS (
            SELECT spine.show_id, spine.event_date, coalesce(daily.watch_hours, 0.0) AS watch_hours
            FROM spine LEFT JOIN daily USING (show_id, event_date)
          ),
          judged AS (
            SELECT *, avg(watch_hours) OVER previous AS trailing_mean,
                      stddev_samp(watch_hours) OVER previous AS trailing_stddev,
                      count(*) OVER previous AS trailing_days
            FROM filled
            WINDOW previous AS (PARTITION BY show_id ORDER BY event_date ROWS BETWEEN 7 PRECEDING AND 1 PRECEDING)
          )
          SELECT j.show_id, t.show_title, j.event_date, j.watch_hours, j.trailing_mean, j.trailing_stddev,
                 (j.watch_hours - j.trailing_mean) / j.trailing_stddev AS z_score
          FROM judged j
          LEFT JOIN (SELECT show_id, arg_max(show_title, event_ts) AS show_title FROM ${events} GROUP BY 1) t USING (show_id)
          WHERE j.trailing_days = 7 AND j.trailing_stddev > 0
            AND abs(j.watch_hours - j.trailing_mean) > 3 * j.trailing_stddev
            -- Today (UTC) is still being watched: judged once it is over.
            AND j.event_date < current_date`,
  },
  {
    table: tables.alsoWatched,
    // Item-to-item co-viewing: for each show, the 10 shows played by most of the same users, with
    // lift = P(both) / (P(show) · P(other)) over the users who played anything.
    sql: `WITH plays AS (SELECT DISTINCT user_id, show_id FROM ${events} WHERE event_type = 'play'),
          audience AS (SELECT count(DISTINCT user_id) AS users FROM plays),
          per_show AS (SELECT show_id, count(*) AS viewers FROM plays GROUP BY show_id),
          pairs AS (
            SELECT a.show_id, b.show_id AS other_show_id, count(*) AS co_viewers
            FROM plays a JOIN plays b ON a.user_id = b.user_id AND a.show_id <> b.show_id
            GROUP BY 1, 2
          ),
          scored AS (
            SELECT p.show_id, p.other_show_id, p.co_viewers,
                   p.co_viewers * audience.users / (sa.viewers * sb.viewers)::DOUBLE AS lift
            FROM pairs p, audience
            JOIN per_show sa ON sa.show_id = p.show_id
            JOIN per_show sb ON sb.show_id = p.other_show_id
          )
          SELECT * FROM (
            SELECT *, row_number() OVER (PARTITION BY show_id ORDER BY co_viewers DESC, lift DESC, other_show_id) AS rank
            FROM scored
          ) WHERE rank <= 10`,
  },
];

export const goldJobName = 'viewing.gold';

/** Recomputes every gold table (one commit each); nothing before the first valid event. */
export async function refreshViewingGold(
  lake: Lake,
  commitPrefix: string,
  signal?: AbortSignal,
): Promise<number> {
  if ((await lake.table(events).snapshot()) === null) return 0;
  return rebuildTables(lake, goldQueries, commitPrefix, signal);
}

/** The gold step: after each bronze commit under `up` (debounced), and hourly. */
export function viewingGoldJob(lake: Lake): BatchJob {
  return {
    name: goldJobName,
    description:
      'Show, daily, user and device engagement, anomalies and also-watched from bronze.viewing_events',
    inputs: [events],
    outputs: goldQueries.map((q) => q.table),
    schedule: '7 * * * *',
    partitionFor: () => null,
    onInputCommit: { debounceMs: 2_000 },
    run: async (ctx) => ({ rowsOut: await refreshViewingGold(lake, ctx.commitId, ctx.signal) }),
  };
}
