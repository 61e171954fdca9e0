// Pipeline `movies` (seed 002): TMDB's API at 4 requests/s (or `simulate tmdb` when no key is
// set): popular pages, trending and the movies changed since the saved cursor, on a schedule under
// `up` → topics movies, people, credits, reviews, trending keyed by TMDB id (trending by day) →
// `movies.clean` (raw bodies to bronze by ingestion date; standardised rows, tiers and review
// sentiment) → `movies.gold` (silver latest-wins with quality rules; gold sentiment, trending,
// genres, filmographies) → the serving store (PGlite, or PostgreSQL with MOVIES_SERVING_URL) →
// /api/movies…, /api/people, /api/genres.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { dataDirPaths, gauge, TributaryError, type ThrottleOptions } from '../../core/index.js';
import { createFileStateStore, type SourceContext } from '../../connectors/index.js';
import { createSentimentModel } from '../../ml/index.js';
import { resolvePipelineSettings, type PipelineSettingsSpec } from '../settings.js';
import type { PipelineDefinition, PipelineServices } from '../types.js';
import { defaultTmdbUrl, TmdbClient } from './client.js';
import { extractTmdb, formatExtractionStats, topics, type ExtractionStats } from './extract.js';
import { moviesGoldJob } from './gold.js';
import { moviesCleanJob, tables as moviesTables } from './jobs.js';
import { moviesModule } from './routes.js';
import { avroValues } from './schemas.js';
import { MoviesServingStore, publishServingStore, servingSchema } from './serving.js';
import { startTmdbSimulator } from './simulator.js';

export const pipelineName = 'movies';

/** Partitions of each topic (keyed by TMDB id). */
export const topicPartitions = 4;

/** The pipeline's settings (environment variables, also `tributary run` flags). */
export const moviesSettings = {
  pages: {
    env: ['TMDB_PAGES'],
    flag: '--pages <n>',
    description: '/movie/popular pages per extraction (default 5)',
    schema: z
      .string()
      .regex(/^\d+$/, 'a whole number 1..500')
      .refine((text) => Number(text) >= 1 && Number(text) <= 500, 'a whole number 1..500'),
  },
  apiUrl: {
    env: ['TMDB_API_URL'],
    flag: '--tmdb-url <url>',
    description: `TMDB API base (default ${defaultTmdbUrl})`,
    schema: z.string().regex(/^https?:\/\//, 'an http(s) URL'),
  },
  refreshMinutes: {
    env: ['TMDB_REFRESH_MINUTES'],
    flag: '--refresh-minutes <n>',
    description: 'minutes between extractions under `up` / `run` without --once (default 15)',
    schema: z
      .string()
      .regex(/^\d+(\.\d+)?$/, 'a number of minutes > 0')
      .refine((text) => Number(text) > 0, 'a number of minutes > 0'),
  },
  servingUrl: {
    env: ['MOVIES_SERVING_URL'],
    flag: '--serving-url <url>',
    description: 'PostgreSQL serving store (default embedded PGlite)',
    schema: z.string().regex(/^postgres(ql)?:\/\//, 'postgres://user@host:port/db'),
  },
  servingSchema: {
    env: ['MOVIES_SERVING_SCHEMA'],
    description: `PostgreSQL schema of the serving store (default ${servingSchema}), for several platforms on one server`,
    schema: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a lower-case SQL identifier'),
  },
} satisfies PipelineSettingsSpec;

/** The movies settings of a configuration (flags, config file, environment). */
export function moviesSettingsOf(config: PipelineServices['config'], env: NodeJS.ProcessEnv = process.env) {
  return resolvePipelineSettings(pipelineName, moviesSettings, config, env);
}

/** Popular pages read per extraction: `TMDB_PAGES` / `--pages` (default 5, 20 movies a page). */
export function tmdbPages(config: PipelineServices['config'], env: NodeJS.ProcessEnv = process.env): number {
  return Number(moviesSettingsOf(config, env).pages ?? '5');
}

/** Between extractions under `up`: `TMDB_REFRESH_MINUTES` / `--refresh-minutes` (default 15). */
export function tmdbRefreshMs(
  config: PipelineServices['config'],
  env: NodeJS.ProcessEnv = process.env,
): number {
  return Number(moviesSettingsOf(config, env).refreshMinutes ?? '15') * 60_000;
}

/**
 * The `tmdb` rate budget: `TMDB_RATE` requests (default 4) started in any 1050 ms window — TMDB's
 * second plus 5 %, as the server counts arrivals. Read when the platform declares the budget.
 */
export function tmdbRateBudget(env: NodeJS.ProcessEnv = process.env): ThrottleOptions {
  const rate = Number(env.TMDB_RATE ?? '4');
  if (!Number.isInteger(rate) || rate < 1)
    throw new TributaryError('CONFIG_INVALID', `TMDB_RATE must be a whole number ≥ 1, got ${env.TMDB_RATE}`);
  return { mode: 'sliding-window', requestsMax: rate, windowMs: 1050 };
}

/** Where the changes cursor is kept: `<dataDir>/state/movies-tmdb.json`, replaced atomically. */
export function tmdbStateFile(dataDir: string): string {
  return path.join(dataDirPaths(dataDir).state, 'movies-tmdb.json');
}
const cursorKey = 'changesCursor';

/** The saved changes cursor (`YYYY-MM-DD`), or null before the first acknowledged extraction. */
export async function readChangesCursor(dataDir: string): Promise<string | null> {
  return (await createFileStateStore(tmdbStateFile(dataDir)).get<string>(cursorKey)) ?? null;
}

const extractionRecords = gauge(
  'tributary_tmdb_extraction_records',
  'Records the last TMDB extraction appended, per topic',
  ['topic'],
);
const extractionSeconds = gauge('tributary_tmdb_extraction_seconds', 'Duration of the last TMDB extraction');
const extractionRequests = gauge(
  'tributary_tmdb_extraction_requests',
  'Requests of the last TMDB extraction by kind (requests, retries, rate_limited, server_errors, not_found)',
  ['kind'],
);

function exportExtractionMetrics(stats: ExtractionStats): void {
  for (const [topic, n] of Object.entries(stats.records)) extractionRecords.set({ topic }, n);
  extractionSeconds.set(stats.seconds);
  extractionRequests.set({ kind: 'requests' }, stats.requests);
  extractionRequests.set({ kind: 'retries' }, stats.retries);
  extractionRequests.set({ kind: 'rate_limited' }, stats.rateLimited);
  extractionRequests.set({ kind: 'server_errors' }, stats.serverErrors);
  extractionRequests.set({ kind: 'not_found' }, stats.notFound);
}

interface Shared {
  store: Promise<MoviesServingStore> | null;
  extraction: ExtractionStats | null;
}
const shared = new WeakMap<PipelineServices, Shared>();
function sharedOf(services: PipelineServices): Shared {
  let value = shared.get(services);
  if (value === undefined) {
    value = { store: null, extraction: null };
    shared.set(services, value);
  }
  return value;
}

/** The serving store of these services: MOVIES_SERVING_URL, else PGlite in `<dataDir>/pglite-movies`. */
function storeOf(
  services: PipelineServices,
  env: NodeJS.ProcessEnv = process.env,
): Promise<MoviesServingStore> {
  const state = sharedOf(services);
  if (state.store === null) {
    const settings = moviesSettingsOf(services.config, env);
    const servingUrl = settings.servingUrl;
    const opening = MoviesServingStore.open({
      ...(servingUrl === undefined ? {} : { url: servingUrl }),
      ...(settings.servingSchema === undefined ? {} : { schema: settings.servingSchema }),
      pgliteDir: path.join(services.config.dataDir, 'pglite-movies'),
    });
    state.store = opening;
    // A failed open is retried by the next caller.
    opening.catch(() => {
      if (state.store === opening) state.store = null;
    });
  }
  return state.store;
}

/** Where extractions go: TMDB with a key, else a simulator started for the source's lifetime. */
interface TmdbTarget {
  options: { baseUrl: string; apiKey?: string; readAccessToken?: string };
  close(): Promise<void>;
}

async function openTmdbTarget(services: PipelineServices, context: SourceContext): Promise<TmdbTarget> {
  const env = process.env;
  if (env.TMDB_API_KEY || env.TMDB_READ_ACCESS_TOKEN) {
    return {
      options: {
        baseUrl: moviesSettingsOf(services.config, env).apiUrl ?? defaultTmdbUrl,
        ...(env.TMDB_API_KEY ? { apiKey: env.TMDB_API_KEY } : {}),
        ...(env.TMDB_READ_ACCESS_TOKEN ? { readAccessToken: env.TMDB_READ_ACCESS_TOKEN } : {}),
      },
      close: () => Promise.resolve(),
    };
  }
  const simulator = await startTmdbSimulator({ seed: 2 });
  context.logger.warn(
    { url: simulator.url },
    `no TMDB_API_KEY or TMDB_READ_ACCESS_TOKEN set: extracting from the local TMDB simulator (tributary simulate tmdb) at ${simulator.url}`,
  );
  return { options: { baseUrl: simulator.url, apiKey: simulator.apiKey }, close: () => simulator.close() };
}

/**
 * One extraction: popular pages, trending, and the movies changed since the saved cursor. The
 * cursor moves to this extraction's start day only once every record it appended has been
 * acknowledged by the log (`extractTmdb` resolved), so a crash before that repeats the window
 * rather than losing it; the repeat collapses in silver (latest wins).
 */
async function extractOnce(
  services: PipelineServices,
  context: SourceContext,
  target: TmdbTarget,
): Promise<ExtractionStats> {
  const client = new TmdbClient({
    ...target.options,
    ...(context.throttle === undefined ? {} : { throttle: context.throttle }),
  });
  const state = createFileStateStore(tmdbStateFile(services.config.dataDir));
  let reported = 0;
  // Avro values under `<topic>-value` when the platform has a registry (it always has under
  // `up` and `run`); an incompatible schema change stops here with the registry's reason.
  const encode =
    services.schemaRegistry === undefined ? undefined : await avroValues(services.schemaRegistry);
  const stats = await extractTmdb({
    client,
    log: services.log,
    ...(encode === undefined ? {} : { encode }),
    pages: tmdbPages(services.config),
    changesSince: (await state.get<string>(cursorKey)) ?? null,
    signal: context.signal,
    onMovie: (progress) => {
      const total = Object.values(progress.records).reduce((a, b) => a + b, 0);
      context.report({ records: total - reported, position: formatExtractionStats(progress) });
      reported = total;
    },
  });
  await mkdir(dataDirPaths(services.config.dataDir).state, { recursive: true });
  await state.set(cursorKey, stats.through);
  sharedOf(services).extraction = stats;
  exportExtractionMetrics(stats);
  const total = Object.values(stats.records).reduce((a, b) => a + b, 0);
  context.report({ records: total - reported, position: formatExtractionStats(stats) });
  return stats;
}

async function ensureTopics(services: PipelineServices): Promise<void> {
  for (const topic of Object.values(topics))
    await services.log.ensureTopic(topic, { partitions: topicPartitions });
}

export const moviesPipeline: PipelineDefinition = {
  name: pipelineName,
  title: 'Movies',
  description:
    'TMDB (4 req/s): popular, trending, changes → movies, people, credits, reviews, trending → cleaner + sentiment → silver / gold → serving store → API',
  // Only the extractor writes the five topics: the generic ingest routes refuse them.
  internalTopics: Object.values(topics),
  async jobs(services) {
    await ensureTopics(services);
    const sentiment = createSentimentModel(services.config.sentimentModel);
    return {
      stream: [
        moviesCleanJob({
          log: services.log,
          lake: services.lake,
          sentiment,
          ...(services.schemaRegistry === undefined ? {} : { schemaRegistry: services.schemaRegistry }),
        }),
      ],
      batch: [
        moviesGoldJob({
          lake: services.lake,
          query: services.query,
          afterRefresh: async (runId) => {
            await publishServingStore(await storeOf(services), services.lake, services.query, runId);
          },
        }),
      ],
      close: async () => {
        const state = sharedOf(services);
        const store = state.store;
        state.store = null;
        if (store !== null) await (await store.catch(() => null))?.close();
      },
    };
  },
  settings: moviesSettings,
  async report(services) {
    const count = async (table: string, where = '') =>
      (await services.lake.table(table).snapshot()) === null
        ? 0
        : Number((await services.query(`SELECT count(*) AS n FROM ${table} ${where}`))[0]?.n ?? 0);
    const movies = await count(moviesTables.movies);
    const flagged = await count(moviesTables.movies, 'WHERE len(quality_flags) > 0');
    const quarantined = await count(`${moviesTables.movies}_quarantine`);
    return [
      `movies: silver.movies ${movies} (${flagged} flagged) + quarantined ${quarantined}; people ${await count(moviesTables.people)}, credits ${await count(moviesTables.credits)}, reviews ${await count(moviesTables.reviews)}; rejected bodies ${await count(moviesTables.rejects)}`,
    ];
  },
  serve: (services) =>
    moviesModule({ store: () => storeOf(services), extraction: () => sharedOf(services).extraction }),
  get rateBudgets() {
    return { tmdb: tmdbRateBudget() };
  },
  sources: (services) => [
    {
      name: 'tmdb',
      kind: 'custom',
      rateBudget: 'tmdb',
      drain: async (context) => {
        await ensureTopics(services);
        const target = await openTmdbTarget(services, context);
        try {
          await extractOnce(services, context, target);
        } finally {
          await target.close();
        }
      },
      run: async (context) => {
        await ensureTopics(services);
        const refreshMs = tmdbRefreshMs(services.config);
        const target = await openTmdbTarget(services, context);
        try {
          while (!context.signal.aborted) {
            await extractOnce(services, context, target);
            await context.clock.sleep(refreshMs, context.signal).catch(() => undefined);
          }
        } finally {
          await target.close();
        }
      },
    },
  ],
};

export { TmdbClient, defaultTmdbUrl, type TmdbClientOptions, type TmdbRequestStats } from './client.js';
export {
  extractTmdb,
  formatExtractionStats,
  topics as moviesTopics,
  type ExtractionStats,
} from './extract.js';
export { moviesCleanJob, moviesTables };
export { cleanRecord, decodeTmdbRecord, type TmdbRecord } from './jobs.js';
export { avroValues, avroValue, jsonValues, valueSchemas, type ValueEncoder } from './schemas.js';
export { moviesGoldJob, refreshMoviesSilverGold, movieRules, trendingRanks } from './gold.js';
export { MoviesServingStore, publishServingStore, servingSchema } from './serving.js';
export { moviesModule, movieFilters } from './routes.js';
export {
  startTmdbSimulator,
  generateCatalogue,
  tmdbGenres,
  type TmdbSimulator,
  type TmdbSimulatorOptions,
} from './simulator.js';
export * from './clean.js';
