import type { Log, ProducerRecord } from '../../log/index.js';
import type { TmdbClient, TmdbRequestStats } from './client.js';
import type { ValueEncoder } from './schemas.js';
import { moviesLimits } from './limits.js';

/** The extractor's topics, each keyed by the TMDB id of its record (a review's own id). */
export const topics = {
  movies: 'movies',
  people: 'people',
  credits: 'credits',
  reviews: 'reviews',
} as const;
export type MoviesTopic = (typeof topics)[keyof typeof topics];

/** Billed cast members whose person record is fetched (TMDB's `order` 0..4), besides the directors. */
export const billedCastFetched = 5;

export interface ExtractionStats extends TmdbRequestStats {
  pages: number;
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

interface Credits {
  cast?: { id: number; order?: number }[];
  crew?: { id: number; job?: string }[];
}

/**
 * One extraction: /genre/movie/list, /movie/popular pages 1..N, then per movie /movie/{id},
 * /movie/{id}/credits and every page of /movie/{id}/reviews, and /person/{id} for the first
 * five billed cast members and the directors, each person once per run. Each movie's records are
 * appended to the log together (movie, credits, reviews, new people), so the stream jobs start on
 * it while the next movie is fetched. Reviews carry their movie's id (`movie_id`).
 */
export async function extractTmdb(options: ExtractOptions): Promise<ExtractionStats> {
  const { client, log, signal } = options;
  const encode = options.encode ?? ((_topic: MoviesTopic, value: unknown) => JSON.stringify(value));
  const startedMs = Date.now();
  const stats: ExtractionStats = {
    ...client.stats,
    pages: 0,
    records: { movies: 0, people: 0, credits: 0, reviews: 0 },
    skipped: [],
    seconds: 0,
  };
  const sync = () => {
    Object.assign(stats, client.stats);
    stats.seconds = (Date.now() - startedMs) / 1000;
  };
  const genres = (await client.get('/genre/movie/list', {}, signal)) as { genres?: unknown[] } | null;
  void genres; // fetched as the call list has it; movie details carry genre names themselves

  const movieIds: number[] = [];
  const seenMovies = new Set<number>();
  for (let page = 1; page <= Math.min(options.pages, moviesLimits.popularPagesMax); page++) {
    const body = (await client.get('/movie/popular', { page }, signal)) as Page | null;
    if (body === null) break;
    stats.pages++;
    for (const summary of body.results ?? []) {
      // A movie can move between pages while they are read; each is fetched once per run.
      if (typeof summary.id === 'number' && !seenMovies.has(summary.id)) {
        seenMovies.add(summary.id);
        movieIds.push(summary.id);
      }
    }
    if (page >= body.total_pages) break;
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
    `tmdb: ${stats.pages} pages, ${r.movies} movies, ${r.credits} credits, ${r.reviews} reviews, ${r.people} people; ` +
    `${stats.requests} requests, ${stats.retries} retries, ${stats.rateLimited} × 429, ${stats.serverErrors} × 5xx, ` +
    `${stats.skipped.length} skipped (404) in ${stats.seconds.toFixed(1)} s`
  );
}
