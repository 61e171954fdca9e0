/**
 * The cleaner: TMDB bodies → standardised rows. Empty strings count as missing (TMDB sends `""` for
 * an unknown `release_date` or `overview`), languages are lower-case, dates are real dates or null,
 * and every movie gets its two tiers. Pure functions: the stream job and the benchmark call them.
 */

/**
 * `popularity_tier` by TMDB's `popularity` score (one contiguous band each, lower bound
 * inclusive): blockbuster ≥ 100, popular 20–100, known 5–20, niche < 5; null without a score.
 */
export const popularityTiers = [
  { tier: 'blockbuster', min: 100 },
  { tier: 'popular', min: 20 },
  { tier: 'known', min: 5 },
  { tier: 'niche', min: Number.NEGATIVE_INFINITY },
] as const;

/** Below this many votes the average says little: `rating_tier` is `unrated`. */
export const ratingVotesMin = 10;

/**
 * `rating_tier` by `vote_average` (0–10) once `vote_count` ≥ 10: acclaimed ≥ 7.5, good 6.5–7.5,
 * mixed 5–6.5, poor < 5; `unrated` below 10 votes.
 */
export const ratingTiers = [
  { tier: 'acclaimed', min: 7.5 },
  { tier: 'good', min: 6.5 },
  { tier: 'mixed', min: 5 },
  { tier: 'poor', min: Number.NEGATIVE_INFINITY },
] as const;

export function popularityTier(popularity: number | null): string | null {
  if (popularity === null) return null;
  return popularityTiers.find((t) => popularity >= t.min)!.tier;
}

export function ratingTier(voteAverage: number | null, voteCount: number | null): string {
  if (voteAverage === null || voteCount === null || voteCount < ratingVotesMin) return 'unrated';
  return ratingTiers.find((t) => voteAverage >= t.min)!.tier;
}

type Body = Record<string, unknown>;

/** A trimmed string, or null for a missing, non-string or empty one. */
export function text(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const trimmed = value.trim();
  return trimmed === '' ? null : trimmed;
}

export function number(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/** A TMDB id: a positive integer (as a number or digits). */
export function tmdbId(value: unknown): number | null {
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  return typeof n === 'number' && Number.isSafeInteger(n) && n > 0 ? n : null;
}

/** `YYYY-MM-DD` of a real calendar day, else null. */
export function isoDate(value: unknown): string | null {
  const t = text(value);
  if (t === null || !/^\d{4}-\d{2}-\d{2}$/.test(t)) return null;
  const parsed = new Date(`${t}T00:00:00Z`);
  return !Number.isNaN(parsed.getTime()) && parsed.toISOString().startsWith(t) ? t : null;
}

export interface CleanMovie {
  movie_id: number | null;
  title: string | null;
  original_title: string | null;
  original_language: string | null;
  overview: string | null;
  release_date: string | null;
  release_year: number | null;
  /** JSON list of genre names (the lake row keeps it as text; silver turns it into a list). */
  genres: string;
  runtime: number | null;
  budget: number | null;
  revenue: number | null;
  popularity: number | null;
  vote_average: number | null;
  vote_count: number | null;
  popularity_tier: string | null;
  rating_tier: string;
  updated_at: Date;
}

export function cleanMovie(body: Body, ingestedAtMs: number): CleanMovie {
  const releaseDate = isoDate(body.release_date);
  const popularity = number(body.popularity);
  const voteAverage = number(body.vote_average);
  const voteCount = number(body.vote_count);
  const genres = Array.isArray(body.genres)
    ? body.genres.flatMap((g) => {
        const name = text((g as Body | null)?.name);
        return name === null ? [] : [name];
      })
    : [];
  return {
    movie_id: tmdbId(body.id),
    title: text(body.title),
    original_title: text(body.original_title),
    original_language: text(body.original_language)?.toLowerCase() ?? null,
    overview: text(body.overview),
    release_date: releaseDate,
    release_year: releaseDate === null ? null : Number(releaseDate.slice(0, 4)),
    genres: JSON.stringify(genres),
    runtime: number(body.runtime),
    budget: number(body.budget),
    revenue: number(body.revenue),
    popularity,
    vote_average: voteAverage,
    vote_count: voteCount,
    popularity_tier: popularityTier(popularity),
    rating_tier: ratingTier(voteAverage, voteCount),
    updated_at: new Date(ingestedAtMs),
  };
}

export interface CleanPerson {
  person_id: number | null;
  name: string | null;
  known_for_department: string | null;
  birthday: string | null;
  place_of_birth: string | null;
  popularity: number | null;
  updated_at: Date;
}

export function cleanPerson(body: Body, ingestedAtMs: number): CleanPerson {
  return {
    person_id: tmdbId(body.id),
    name: text(body.name),
    known_for_department: text(body.known_for_department),
    birthday: isoDate(body.birthday),
    place_of_birth: text(body.place_of_birth),
    popularity: number(body.popularity),
    updated_at: new Date(ingestedAtMs),
  };
}

export interface CleanCredit {
  movie_id: number;
  person_id: number;
  /** The name on the credit (people outside the fetched ones are known by it). */
  name: string | null;
  role: 'cast' | 'crew';
  character: string | null;
  job: string | null;
  department: string | null;
  billing_order: number | null;
  updated_at: Date;
}

/** One row per cast and crew entry with an id; entries without a person id are dropped. */
export function cleanCredits(body: Body, ingestedAtMs: number): CleanCredit[] {
  const movieId = tmdbId(body.id);
  if (movieId === null) return [];
  const updatedAt = new Date(ingestedAtMs);
  const rows: CleanCredit[] = [];
  for (const entry of Array.isArray(body.cast) ? (body.cast as Body[]) : []) {
    const personId = tmdbId(entry?.id);
    if (personId === null) continue;
    rows.push({
      movie_id: movieId,
      person_id: personId,
      name: text(entry.name),
      role: 'cast',
      character: text(entry.character),
      job: null,
      department: 'Acting',
      billing_order: number(entry.order),
      updated_at: updatedAt,
    });
  }
  for (const entry of Array.isArray(body.crew) ? (body.crew as Body[]) : []) {
    const personId = tmdbId(entry?.id);
    if (personId === null) continue;
    rows.push({
      movie_id: movieId,
      person_id: personId,
      name: text(entry.name),
      role: 'crew',
      character: null,
      job: text(entry.job),
      department: text(entry.department),
      billing_order: null,
      updated_at: updatedAt,
    });
  }
  return rows;
}

export interface CleanReview {
  review_id: string | null;
  movie_id: number | null;
  author: string | null;
  /** The author's own rating, 0–10, when given. */
  author_rating: number | null;
  content: string | null;
  created_at: Date | null;
  updated_at: Date;
}

export function cleanReview(body: Body, ingestedAtMs: number): CleanReview {
  const details = (body.author_details ?? {}) as Body;
  const created = text(body.created_at);
  const createdMs = created === null ? Number.NaN : Date.parse(created);
  return {
    review_id: text(body.id),
    movie_id: tmdbId(body.movie_id),
    author: text(body.author) ?? text(details.username),
    author_rating: number(details.rating),
    content: text(body.content),
    created_at: Number.isNaN(createdMs) ? null : new Date(createdMs),
    updated_at: new Date(ingestedAtMs),
  };
}

export interface CleanTrending {
  /** The day the list was fetched for (`YYYY-MM-DD`). */
  date: string | null;
  time_window: string | null;
  movie_id: number;
  title: string | null;
  popularity: number | null;
  /** 1-based position in TMDB's list. */
  rank: number;
  updated_at: Date;
}

/**
 * One row per movie of a `/trending/movie/{window}` fetch, ranked in TMDB's order (entries without
 * an id keep their place: the ranks are TMDB's, not renumbered).
 */
export function cleanTrending(body: Body, ingestedAtMs: number): CleanTrending[] {
  const results = Array.isArray(body.results) ? (body.results as Body[]) : [];
  const fetched = text(body.fetched_at);
  const fetchedMs = fetched === null ? Number.NaN : Date.parse(fetched);
  const updatedAt = new Date(Number.isNaN(fetchedMs) ? ingestedAtMs : fetchedMs);
  return results.flatMap((entry, index) => {
    const movieId = tmdbId(entry?.id);
    if (movieId === null) return [];
    return [
      {
        date: isoDate(body.date),
        time_window: text(body.time_window),
        movie_id: movieId,
        title: text(entry.title),
        popularity: number(entry.popularity),
        rank: index + 1,
        updated_at: updatedAt,
      },
    ];
  });
}
