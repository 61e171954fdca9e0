import type { Log, ProducerRecord } from '../../log/index.js';
import type { TmdbClient, TmdbRequestStats } from './client.js';
import type { ValueEncoder } from './schemas.js';
import { moviesLimits } from './limits.js';

/**
 * The extractor's topics, each keyed by the TMDB id of its record (a review's own id); `trending`
 * holds each fetch of `/trending/movie/{window}` keyed by its day (the ranks are the list's order).
 */
export const topics = {
  movies: 'movies',
  people: 'people',
  credits: 'credits',
  reviews: 'reviews',
  trending: 'trending',
} as const;
export type MoviesTopic = (typeof topics)[keyof typeof topics];

/** Billed cast members whose person record is fetched (TMDB's `order` 0..4), besides the directors. */
export const billedCastFetched = 5;

const dayMs = 86_400_000;
const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

export interface ExtractionStats extends TmdbRequestStats {
  pages: number;
  /** Movies listed by /trending/movie/{window} and by /movie/changes since the cursor. */
  trending: number;
  changed: number;
  /** The changes window read (`start_date`..`end_date`), null when there was no cursor yet. */
  changesFrom: string | null;
  /** The day this extraction started: the next extraction's changes cursor once this one is acknowledged. */
  through: string;
  records: Record<MoviesTopic, number>;
  /** Sub-resources answered 404 (recorded, skipped): `/movie/12/credits` etc. */
  skipped: string[];
  seconds: number;
}

export interface ExtractOptions {
  client: TmdbClient;
  log: Log;
  /** Pages of /movie/popular (20 movies each). */
  pages: number;
  /** `/trending/movie/{window}` (first page, 20 movies) read as gold.trending's ranks; default day. */
  trendingWindow?: 'day' | 'week';
  /**
   * The changes cursor (`YYYY-MM-DD`, the `through` of the last acknowledged extraction): movies
   * changed from that day to today are fetched too. Without one (a first run) none are.
   */
  changesSince?: string | null;
  /** Clock of the extraction (default Date.now): the day it runs and its duration. */
  now?: () => number;
  signal?: AbortSignal;
  /** Values as Avro (`avroValues(registry)`) or, by default, JSON text. */
  encode?: ValueEncoder;
  /** After each movie: progress for the source's status. */
  onMovie?: (stats: ExtractionStats, movieId: number) => void;
}

interface Page {
  page: number;
  total_pages: number;
  results: { id: number }[];
}

interface Changes {
  page: number;
  total_pages: number;
  results: { id: number; adult?: boolean }[];
}

interface Credits {
  cast?: { id: number; order?: number }[];
  crew?: { id: number; job?: string }[];
}

/**
 * One extraction: /genre/movie/list, /movie/popular pages 1..N, /trending/movie/{window} (its
 * ranks to the `trending` topic), /movie/changes from the cursor to today (when there is a
 * cursor), then for each movie of those lists, once, /movie/{id}, /movie/{id}/credits and every
 * page of /movie/{id}/reviews, and /person/{id} for the first five billed cast members and the
 * directors, each person once per run. Each movie's records are appended to the log together
 * (movie, credits, reviews, new people), so the stream jobs start on it while the next movie is
 * fetched. Reviews carry their movie's id (`movie_id`). When this resolves every record has been
 * acknowledged by the log: the caller may then save `through` as the next cursor.
 */
export async function extractTmdb(options: ExtractOptions): Promise<ExtractionStats> {
  const { client, log, signal } = options;
  const encode = options.encode ?? ((_topic: MoviesTopic, value: unknown) => JSON.stringify(value));
  const now = options.now ?? Date.now;
  const startedMs = now();
  const today = utcDay(startedMs);
  const stats: ExtractionStats = {
    ...client.stats,
    pages: 0,
    trending: 0,
    changed: 0,
    changesFrom: null,
    through: today,
    records: { movies: 0, people: 0, credits: 0, reviews: 0, trending: 0 },
    skipped: [],
    seconds: 0,
  };
  const sync = () => {
    Object.assign(stats, client.stats);
    stats.seconds = (now() - startedMs) / 1000;
  };
  const genres = (await client.get('/genre/movie/list', {}, signal)) as { genres?: unknown[] } | null;
  void genres; // fetched as the issue's call list has it; movie details carry genre names themselves

  const movieIds: number[] = [];
  const seenMovies = new Set<number>();
  const want = (id: unknown) => {
    // A movie can be on several lists, or move between pages while they are read: fetched once.
    if (typeof id === 'number' && !seenMovies.has(id)) {
      seenMovies.add(id);
      movieIds.push(id);
    }
  };
  for (let page = 1; page <= Math.min(options.pages, moviesLimits.popularPagesMax); page++) {
    const body = (await client.get('/movie/popular', { page }, signal)) as Page | null;
    if (body === null) break;
    stats.pages++;
    for (const summary of body.results ?? []) want(summary.id);
    if (page >= body.total_pages) break;
  }

  const window = options.trendingWindow ?? 'day';
  const trending = (await client.get(`/trending/movie/${window}`, {}, signal)) as
    (Page & { results: Record<string, unknown>[] }) | null;
  if (trending === null) stats.skipped.push(`/trending/movie/${window}`);
  else {
    for (const summary of trending.results ?? []) want(summary.id);
    stats.trending = trending.results?.length ?? 0;
    // Keyed by its day: a later fetch the same day replaces the ranks (gold keeps the last one).
    await log.append([
      {
        topic: topics.trending,
        key: today,
        value: encode(topics.trending, {
          date: today,
          time_window: window,
          fetched_at: new Date(now()).toISOString(),
          results: trending.results ?? [],
        }),
      },
    ]);
    stats.records.trending++;
  }

  if (options.changesSince) {
    // TMDB answers at most 14 days: an older cursor loses the changes before them (said in stats).
    const oldest = utcDay(startedMs - moviesLimits.changesDaysMax * dayMs);
    const from = options.changesSince < oldest ? oldest : options.changesSince;
    stats.changesFrom = from;
    for (let page = 1; ; page++) {
      const body = (await client.get(
        '/movie/changes',
        { start_date: from, end_date: today, page },
        signal,
      )) as Changes | null;
      if (body === null) break;
      for (const change of body.results ?? []) {
        if (change.adult === true) continue;
        stats.changed++;
        want(change.id);
      }
      if (page >= body.total_pages) break;
    }
  }

  const seenPeople = new Set<number>();
  for (const movieId of movieIds) {
    signal?.throwIfAborted();
    const records: ProducerRecord[] = [];
    const add = (topic: MoviesTopic, key: string | number, value: Record<string, unknown>) => {
      records.push({ topic, key: String(key), value: encode(topic, value) });
      stats.records[topic]++;
    };
    const movie = (await client.get(`/movie/${movieId}`, {}, signal)) as Record<string, unknown> | null;
    if (movie === null) {
      stats.skipped.push(`/movie/${movieId}`);
      continue;
    }
    add(topics.movies, movieId, movie);
    const credits = (await client.get(`/movie/${movieId}/credits`, {}, signal)) as Credits | null;
    if (credits === null) stats.skipped.push(`/movie/${movieId}/credits`);
    else add(topics.credits, movieId, { ...credits, id: movieId });
    for (let page = 1; ; page++) {
      const reviews = (await client.get(`/movie/${movieId}/reviews`, { page }, signal)) as
        (Page & { results: Record<string, unknown>[] }) | null;
      if (reviews === null) {
        stats.skipped.push(`/movie/${movieId}/reviews?page=${page}`);
        break;
      }
      for (const review of reviews.results)
        add(topics.reviews, String(review.id), { ...review, movie_id: movieId });
      if (page >= reviews.total_pages) break;
    }
    const wanted = [
      ...(credits?.cast ?? [])
        .filter((c) => typeof c.order === 'number')
        .sort((a, b) => a.order! - b.order!)
        .slice(0, billedCastFetched)
        .map((c) => c.id),
      ...(credits?.crew ?? []).filter((c) => c.job === 'Director').map((c) => c.id),
    ];
    for (const personId of wanted) {
      if (seenPeople.has(personId)) continue;
      seenPeople.add(personId);
      const person = (await client.get(`/person/${personId}`, {}, signal)) as Record<string, unknown> | null;
      if (person === null) stats.skipped.push(`/person/${personId}`);
      else add(topics.people, personId, person);
    }
    if (records.length > 0) await log.append(records);
    sync();
    options.onMovie?.(stats, movieId);
  }
  sync();
  return stats;
}

/** One line for the end of `run movies --once` and the source's status. */
export function formatExtractionStats(stats: ExtractionStats): string {
  const r = stats.records;
  return (
    `tmdb: ${stats.pages} pages, ${stats.trending} trending, ${stats.changed} changed` +
    `${stats.changesFrom === null ? '' : ` since ${stats.changesFrom}`}; ${r.movies} movies, ${r.credits} credits, ${r.reviews} reviews, ${r.people} people; ` +
    `${stats.requests} requests, ${stats.retries} retries, ${stats.rateLimited} × 429, ${stats.serverErrors} × 5xx, ` +
    `${stats.skipped.length} skipped (404) in ${stats.seconds.toFixed(1)} s`
  );
}
