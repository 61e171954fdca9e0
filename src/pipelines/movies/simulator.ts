import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { seededRandom } from '../../core/index.js';
import { moviesLimits } from './limits.js';

/**
 * `tributary simulate tmdb`: a stand-in for TMDB's v3 API, for demos and tests. Same paths, same
 * bodies (`page`, `results`, `total_pages`, `total_results`; errors as
 * `{ success: false, status_code, status_message }` with TMDB's own codes), the same auth (`api_key`
 * query parameter or `Authorization: Bearer`), a sliding-window rate limit answered with 429 +
 * `Retry-After`, and optional injected 5xx. The catalogue is generated from a seed: the same seed
 * gives the same movies, people, credits and reviews.
 */
export interface TmdbSimulatorOptions {
  port?: number;
  host?: string;
  seed?: number;
  /** Movies in the catalogue (20 to a page of /movie/popular, as TMDB). Default 400. */
  movies?: number;
  /** People in the pool cast and crew are drawn from. Default 300. */
  people?: number;
  /** Requests accepted in any window of `windowMs` (TMDB: about 40 per 10 s; the seed says 4/s). */
  rate?: number;
  windowMs?: number;
  /** Share of accepted requests answered 503 (0..1), drawn from the seed. */
  errorRate?: number;
  /** The key (api_key or Bearer token) accepted. Default `simulator-key`. */
  apiKey?: string;
}

export interface SimulatedMovie {
  id: number;
  title: string;
  original_title: string;
  original_language: string;
  overview: string;
  release_date: string;
  genre_ids: number[];
  runtime: number;
  budget: number;
  revenue: number;
  popularity: number;
  vote_average: number;
  vote_count: number;
}

export interface TmdbSimulator {
  /** Base URL, like `https://api.themoviedb.org/3`. */
  url: string;
  apiKey: string;
  movies: readonly SimulatedMovie[];
  /** Arrival times (ms, this process's clock) of every request, errors and 429s included. */
  arrivals(): readonly number[];
  /** Every request: arrival time, path (without the query) and the status answered. */
  requests(): readonly { atMs: number; path: string; status: number }[];
  /**
   * Changes a movie now, as an edit on TMDB would: the fields given replace its own, and
   * `/movie/changes` lists it from today on.
   */
  touch(id: number, fields: Partial<Omit<SimulatedMovie, 'id'>>): void;
  /** Requests answered per status. */
  statuses(): Readonly<Record<number, number>>;
  close(): Promise<void>;
}

/** TMDB's page size: /movie/popular, /trending and /movie/{id}/reviews give 20 results a page. */
export const tmdbPageSize = 20;

/** `/movie/changes` gives 100 ids a page and spans at most 14 days (TMDB's limits). */
export const tmdbChangesPageSize = 100;

const dayMs = 86_400_000;
/** `YYYY-MM-DD` (UTC) of a time. */
export const utcDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

export const tmdbGenres: readonly { id: number; name: string }[] = [
  { id: 28, name: 'Action' },
  { id: 12, name: 'Adventure' },
  { id: 16, name: 'Animation' },
  { id: 35, name: 'Comedy' },
  { id: 80, name: 'Crime' },
  { id: 99, name: 'Documentary' },
  { id: 18, name: 'Drama' },
  { id: 14, name: 'Fantasy' },
  { id: 27, name: 'Horror' },
  { id: 9648, name: 'Mystery' },
  { id: 10749, name: 'Romance' },
  { id: 878, name: 'Science Fiction' },
  { id: 53, name: 'Thriller' },
];

const titleFirst = [
  'The Last',
  'Silent',
  'Midnight',
  'Broken',
  'Golden',
  'Distant',
  'Crimson',
  'Hidden',
  'Electric',
  'Northern',
  'Burning',
  'Paper',
];
const titleSecond = [
  'Harbor',
  'Signal',
  'Empire',
  'Garden',
  'Frontier',
  'Orchard',
  'Tide',
  'Machine',
  'Kingdom',
  'Letters',
  'Horizon',
  'Station',
];
const firstNames = [
  'Ava',
  'Liam',
  'Maya',
  'Noah',
  'Ines',
  'Kenji',
  'Sofia',
  'Omar',
  'Lena',
  'Diego',
  'Priya',
  'Jonas',
];
const lastNames = [
  'Hart',
  'Okafor',
  'Lindqvist',
  'Moreau',
  'Tanaka',
  'Reyes',
  'Novak',
  'Adeyemi',
  'Silva',
  'Brennan',
];
const places = [
  'London, England, UK',
  'Lagos, Nigeria',
  'Osaka, Japan',
  'Lyon, France',
  'Austin, Texas, USA',
  'Porto, Portugal',
];
const languages = ['en', 'en', 'en', 'fr', 'ja', 'es', 'ko'];

const praise = [
  'An absolute triumph. The performances are stunning and the score stayed with me for days.',
  'I loved every minute of it; beautifully shot, genuinely funny and surprisingly moving.',
  'A wonderful, heartfelt film with a brilliant lead performance. Easily one of the best of the year.',
  'Gripping from start to finish. The direction is confident and the ending is perfect.',
];
const mixed = [
  'Solid but uneven. The first half drags, although the final act mostly makes up for it.',
  'Some good ideas and a decent cast, but the script never quite decides what it wants to be.',
  'It was fine. Nothing special, nothing terrible; a reasonable way to spend a Sunday evening.',
];
const pans = [
  'A boring, bloated mess. The dialogue is awful and I nearly walked out.',
  'Terrible pacing, wooden acting and a plot full of holes. What a disappointing waste of talent.',
  'Dull and predictable. I hated the ending and regret paying for a ticket.',
];

interface Credit {
  personId: number;
  character?: string;
  job?: string;
  department: string;
}

interface Catalogue {
  movies: SimulatedMovie[];
  people: Map<number, Record<string, unknown>>;
  credits: Map<number, { cast: Credit[]; crew: Credit[] }>;
  reviews: Map<number, Record<string, unknown>[]>;
}

function pick<T>(random: () => number, list: readonly T[]): T {
  return list[Math.floor(random() * list.length)];
}

/** The seeded catalogue; a few records carry what real TMDB data has (empty overview or date, 0 votes). */
export function generateCatalogue(seed: number, movieCount: number, peopleCount: number): Catalogue {
  const random = seededRandom(seed);
  const people = new Map<number, Record<string, unknown>>();
  const personIds: number[] = [];
  for (let i = 0; i < peopleCount; i++) {
    const id = 5000 + i * 3;
    personIds.push(id);
    const year = 1940 + Math.floor(random() * 60);
    people.set(id, {
      id,
      name: `${pick(random, firstNames)} ${pick(random, lastNames)}`,
      known_for_department: i % 9 === 0 ? 'Directing' : 'Acting',
      birthday: i % 11 === 0 ? null : `${year}-0${1 + Math.floor(random() * 9)}-1${Math.floor(random() * 9)}`,
      deathday: null,
      place_of_birth: i % 13 === 0 ? null : pick(random, places),
      popularity: Math.round(random() * 5000) / 100,
      gender: 1 + Math.floor(random() * 2),
      biography: '',
      imdb_id: `nm${String(100000 + id)}`,
    });
  }
  const movies: SimulatedMovie[] = [];
  const credits = new Map<number, { cast: Credit[]; crew: Credit[] }>();
  const reviews = new Map<number, Record<string, unknown>[]>();
  const thisYear = new Date().getUTCFullYear();
  for (let i = 0; i < movieCount; i++) {
    const id = 100 + i * 7;
    const title = `${pick(random, titleFirst)} ${pick(random, titleSecond)}${i >= 144 ? ` ${Math.floor(i / 144) + 1}` : ''}`;
    const year = 1975 + Math.floor(random() * (thisYear - 1975));
    const future = i % 37 === 5;
    const releaseDate =
      i % 23 === 3
        ? ''
        : `${future ? thisYear + 1 : year}-${String(1 + Math.floor(random() * 12)).padStart(2, '0')}-${String(1 + Math.floor(random() * 28)).padStart(2, '0')}`;
    const votes = i % 29 === 7 || future ? 0 : Math.floor(random() ** 2 * 20000);
    const genreIds = [pick(random, tmdbGenres).id];
    if (random() < 0.6) {
      const second = pick(random, tmdbGenres).id;
      if (!genreIds.includes(second)) genreIds.push(second);
    }
    movies.push({
      id,
      // One in 53 comes without a title (the cleaner quarantines it).
      title: i % 53 === 11 ? '' : title,
      original_title: title,
      // A few upper-case codes, as hand-entered records have them (the cleaner lower-cases).
      original_language: i % 13 === 6 ? pick(random, languages).toUpperCase() : pick(random, languages),
      overview:
        i % 19 === 2
          ? ''
          : `${title} follows a ${pick(random, ['reluctant', 'grieving', 'brilliant', 'retired'])} ${pick(random, ['detective', 'pilot', 'chef', 'teacher'])} whose life changes in one ${pick(random, ['summer', 'night', 'winter'])}.`,
      release_date: releaseDate,
      genre_ids: genreIds,
      runtime: i % 31 === 4 ? 0 : 80 + Math.floor(random() * 80),
      budget: Math.floor(random() * 200) * 1_000_000,
      revenue: Math.floor(random() * 600) * 1_000_000,
      // Descending, so /movie/popular is ordered as TMDB's is.
      popularity: Math.round((5000 / (i + 1) + random() * 5) * 1000) / 1000,
      vote_average: votes === 0 ? 0 : Math.round((3 + random() * 6.5) * 10) / 10,
      vote_count: votes,
    });
    const castSize = 6 + Math.floor(random() * 6);
    const cast: Credit[] = [];
    const used = new Set<number>();
    const drawPerson = () => {
      for (;;) {
        const person = pick(random, personIds);
        if (!used.has(person) || used.size >= personIds.length) {
          used.add(person);
          return person;
        }
      }
    };
    for (let c = 0; c < castSize; c++) {
      cast.push({
        personId: drawPerson(),
        character: `${pick(random, firstNames)} ${pick(random, ['', 'the Elder', 'Jr.', ''])}`.trim(),
        department: 'Acting',
      });
    }
    const crew: Credit[] = [{ personId: drawPerson(), job: 'Director', department: 'Directing' }];
    if (random() < 0.15) crew.push({ personId: drawPerson(), job: 'Director', department: 'Directing' });
    crew.push({ personId: drawPerson(), job: 'Screenplay', department: 'Writing' });
    crew.push({ personId: drawPerson(), job: 'Producer', department: 'Production' });
    credits.set(id, { cast, crew });
    // Review counts: most movies a handful, some none, a few more than a page.
    const reviewCount =
      i % 17 === 0 ? 0 : i % 10 === 1 ? 21 + Math.floor(random() * 25) : Math.floor(random() * 8);
    const list: Record<string, unknown>[] = [];
    for (let r = 0; r < reviewCount; r++) {
      const tone = random();
      const content =
        tone < 0.5 ? pick(random, praise) : tone < 0.75 ? pick(random, mixed) : pick(random, pans);
      const rating =
        tone < 0.5
          ? 7 + Math.floor(random() * 4)
          : tone < 0.75
            ? 5 + Math.floor(random() * 2)
            : 1 + Math.floor(random() * 4);
      const author = `${pick(random, firstNames).toLowerCase()}${Math.floor(random() * 1000)}`;
      const created = new Date(
        Date.UTC(2020, 0, 1) + Math.floor(random() * 5 * 365) * 86_400_000,
      ).toISOString();
      list.push({
        author,
        author_details: {
          name: '',
          username: author,
          avatar_path: null,
          rating: random() < 0.1 ? null : rating,
        },
        content,
        created_at: created,
        id: `${id.toString(16).padStart(8, '0')}r${String(r).padStart(4, '0')}`,
        updated_at: created,
        url: `https://www.themoviedb.org/review/${id}-${r}`,
      });
    }
    reviews.set(id, list);
  }
  return { movies, people, credits, reviews };
}

const errors = {
  unauthorized: { status: 401, code: 7, message: 'Invalid API key: You must be granted a valid key.' },
  notFound: { status: 404, code: 34, message: 'The resource you requested could not be found.' },
  rateLimited: {
    status: 429,
    code: 25,
    message: 'Your request count (#) is over the allowed limit of (40).',
  },
  invalidParameters: { status: 422, code: 47, message: 'The input is not valid.' },
  invalidDate: {
    status: 422,
    code: 47,
    message: 'Invalid date range: Should be a range no longer than 14 days.',
  },
  unavailable: {
    status: 503,
    code: 9,
    message: 'Service offline: This service is temporarily offline, try again later.',
  },
} as const;

function paged<T>(all: readonly T[], pageText: string | null, id?: number, pageSize = tmdbPageSize) {
  const page = pageText === null ? 1 : Number(pageText);
  const totalPages = Math.max(1, Math.ceil(all.length / pageSize));
  return {
    ...(id === undefined ? {} : { id }),
    page,
    results: all.slice((page - 1) * pageSize, page * pageSize),
    total_pages: totalPages,
    total_results: all.length,
  };
}

export async function startTmdbSimulator(options: TmdbSimulatorOptions = {}): Promise<TmdbSimulator> {
  const seed = options.seed ?? 2;
  const catalogue = generateCatalogue(seed, options.movies ?? 400, options.people ?? 300);
  const byId = new Map(catalogue.movies.map((m) => [m.id, m]));
  const genreName = new Map(tmdbGenres.map((g) => [g.id, g.name]));
  const apiKey = options.apiKey ?? 'simulator-key';
  const rate = options.rate ?? 4;
  const windowMs = options.windowMs ?? 1000;
  const errorRate = options.errorRate ?? 0;
  const faults = seededRandom(seed + 17);
  const arrivals: number[] = [];
  const requests: { atMs: number; path: string; status: number }[] = [];
  const accepted: number[] = [];
  const statuses: Record<number, number> = {};

  const send = (
    response: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ) => {
    statuses[status] = (statuses[status] ?? 0) + 1;
    response.writeHead(status, { 'content-type': 'application/json;charset=utf-8', ...headers });
    response.end(JSON.stringify(body));
  };
  const fail = (
    response: ServerResponse,
    error: (typeof errors)[keyof typeof errors],
    headers?: Record<string, string>,
  ) =>
    send(
      response,
      error.status,
      { success: false, status_code: error.code, status_message: error.message },
      headers,
    );

  // When each movie last changed: seeded edits over the last 14 days (about one movie in ten a
  // day), then whatever `touch` changes.
  const changedAt = new Map<number, number[]>();
  {
    const edits = seededRandom(seed + 29);
    const today = Math.floor(Date.now() / dayMs);
    for (let day = today - moviesLimits.changesDaysMax; day < today; day++)
      for (const m of catalogue.movies)
        if (edits() < 0.1) changedAt.set(m.id, [...(changedAt.get(m.id) ?? []), day * dayMs + 3_600_000]);
  }
  /** A movie as lists give it (/movie/popular, /trending/movie/{window}). */
  const listItem = (m: SimulatedMovie, trending = false) => ({
    adult: false,
    backdrop_path: `/b${m.id}.jpg`,
    genre_ids: m.genre_ids,
    id: m.id,
    ...(trending ? { media_type: 'movie' } : {}),
    original_language: m.original_language,
    original_title: m.original_title,
    overview: m.overview,
    popularity: m.popularity,
    poster_path: `/p${m.id}.jpg`,
    release_date: m.release_date,
    title: m.title,
    video: false,
    vote_average: m.vote_average,
    vote_count: m.vote_count,
  });
  const route = (path: string, params: URLSearchParams): unknown => {
    if (path === '/3/genre/movie/list') return { genres: tmdbGenres };
    if (path === '/3/movie/popular') {
      const page = Number(params.get('page') ?? '1');
      if (!Number.isInteger(page) || page < 1 || page > 500) return null;
      return paged(
        catalogue.movies.map((m) => listItem(m)),
        String(page),
      );
    }
    const trending = /^\/3\/trending\/movie\/(day|week)$/.exec(path);
    if (trending) {
      // Buzz: the logarithm of popularity times a factor drawn per movie and day (0.2–1.8), so
      // the list differs from /movie/popular as TMDB's does; a week's trend sums its 7 days.
      const today = Math.floor(Date.now() / dayMs);
      const days = trending[1] === 'day' ? [today] : Array.from({ length: 7 }, (_, i) => today - i);
      const buzz = (m: SimulatedMovie) =>
        days.reduce(
          (sum, day) =>
            sum + Math.log1p(m.popularity) * (0.2 + 1.6 * seededRandom(seed * 7919 + m.id * 31 + day)()),
          0,
        );
      const ranked = catalogue.movies
        .map((m) => ({ movie: m, buzz: buzz(m) }))
        .sort((a, b) => b.buzz - a.buzz || a.movie.id - b.movie.id)
        .map(({ movie }) => movie);
      return paged(
        ranked.map((m) => listItem(m, true)),
        params.get('page'),
      );
    }
    if (path === '/3/movie/changes') {
      const start = params.get('start_date');
      const end = params.get('end_date');
      const nowMs = Date.now();
      const endMs = end === null ? nowMs : Date.parse(`${end}T23:59:59.999Z`);
      const startMs = start === null ? endMs - dayMs : Date.parse(`${start}T00:00:00Z`);
      if (Number.isNaN(startMs) || Number.isNaN(endMs)) return errors.invalidParameters;
      if (endMs < startMs || endMs - startMs > moviesLimits.changesDaysMax * dayMs) return errors.invalidDate;
      const changed = catalogue.movies.filter((m) =>
        (changedAt.get(m.id) ?? []).some((at) => at >= startMs && at <= endMs),
      );
      return paged(
        changed.map((m) => ({ id: m.id, adult: false })),
        params.get('page'),
        undefined,
        tmdbChangesPageSize,
      );
    }
    const movie = /^\/3\/movie\/(\d+)(\/credits|\/reviews)?$/.exec(path);
    if (movie) {
      const id = Number(movie[1]);
      const found = byId.get(id);
      if (!found) return null;
      if (movie[2] === '/credits') {
        const credits = catalogue.credits.get(id)!;
        return {
          id,
          cast: credits.cast.map((c, order) => {
            const person = catalogue.people.get(c.personId)!;
            return {
              adult: false,
              gender: person.gender,
              id: c.personId,
              known_for_department: person.known_for_department,
              name: person.name,
              original_name: person.name,
              popularity: person.popularity,
              cast_id: order + 1,
              character: c.character,
              credit_id: `${id}c${order}`,
              order,
            };
          }),
          crew: credits.crew.map((c, n) => {
            const person = catalogue.people.get(c.personId)!;
            return {
              id: c.personId,
              name: person.name,
              known_for_department: person.known_for_department,
              credit_id: `${id}w${n}`,
              department: c.department,
              job: c.job,
            };
          }),
        };
      }
      if (movie[2] === '/reviews') return paged(catalogue.reviews.get(id)!, params.get('page'), id);
      return {
        adult: false,
        backdrop_path: `/b${id}.jpg`,
        budget: found.budget,
        genres: found.genre_ids.map((g) => ({ id: g, name: genreName.get(g) })),
        homepage: '',
        id,
        imdb_id: `tt${String(1_000_000 + id)}`,
        original_language: found.original_language,
        original_title: found.original_title,
        overview: found.overview,
        popularity: found.popularity,
        poster_path: `/p${id}.jpg`,
        release_date: found.release_date,
        revenue: found.revenue,
        runtime: found.runtime,
        status: found.release_date === '' ? 'Rumored' : 'Released',
        tagline: '',
        title: found.title,
        video: false,
        vote_average: found.vote_average,
        vote_count: found.vote_count,
      };
    }
    const person = /^\/3\/person\/(\d+)$/.exec(path);
    if (person) return catalogue.people.get(Number(person[1])) ?? null;
    return null;
  };

  const handle = (request: IncomingMessage, response: ServerResponse) => {
    const nowMs = Date.now();
    arrivals.push(nowMs);
    const url = new URL(request.url ?? '/', 'http://tmdb');
    const logged = { atMs: nowMs, path: url.pathname, status: 0 };
    requests.push(logged);
    response.once('finish', () => (logged.status = response.statusCode));
    const bearer = request.headers.authorization;
    const key = url.searchParams.get('api_key') ?? (bearer?.startsWith('Bearer ') ? bearer.slice(7) : null);
    if (key !== apiKey) return fail(response, errors.unauthorized);
    // Sliding window over accepted requests: the (rate+1)-th inside a window is refused until the
    // oldest of the window is windowMs old.
    while (accepted.length > 0 && accepted[0] <= nowMs - windowMs) accepted.shift();
    if (accepted.length >= rate) {
      const waitSeconds = Math.max(1, Math.ceil((accepted[0] + windowMs - nowMs) / 1000));
      return fail(response, errors.rateLimited, { 'retry-after': String(waitSeconds) });
    }
    accepted.push(nowMs);
    if (request.method !== 'GET') return fail(response, errors.notFound);
    if (errorRate > 0 && faults() < errorRate) return fail(response, errors.unavailable);
    const body = route(url.pathname, url.searchParams);
    if (body === null) return fail(response, errors.notFound);
    const refused = Object.values(errors).find((e) => e === body);
    if (refused !== undefined) return fail(response, refused);
    send(response, 200, body);
  };
  const server: Server = createServer(handle);
  await new Promise<void>((resolve) =>
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve),
  );
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}/3`,
    apiKey,
    movies: catalogue.movies,
    arrivals: () => arrivals,
    requests: () => requests,
    touch: (id, fields) => {
      const movie = byId.get(id);
      if (movie === undefined) throw new Error(`the simulator has no movie ${id}`);
      Object.assign(movie, fields);
      changedAt.set(id, [...(changedAt.get(id) ?? []), Date.now()]);
    },
    statuses: () => statuses,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
