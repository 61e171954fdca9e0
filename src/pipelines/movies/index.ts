// Pipeline `movies` (seed 002): TMDB's API at 4 requests/s (or `simulate tmdb` when no key is
// set) → topics movies, people, credits, reviews keyed by TMDB id → `movies.clean` (raw bodies to
// bronze by ingestion date; standardised rows, tiers and review sentiment) → `movies.gold` (silver
// latest-wins with quality rules; gold sentiment, trending, genres, filmographies) → the serving
// store (PGlite, or PostgreSQL with MOVIES_SERVING_URL) → /api/movies…, /api/people, /api/genres.
import path from 'node:path';
import { TributaryError } from '../../core/index.js';
import type { SourceContext } from '../../connectors/index.js';
import { createSentimentModel } from '../../ml/index.js';
import { pipelineSetting } from '../settings.js';
import type { PipelineDefinition, PipelineServices, PipelineSetting } from '../types.js';
import { defaultTmdbUrl, TmdbClient } from './client.js';
import { extractTmdb, formatExtractionStats, topics, type ExtractionStats } from './extract.js';
import { moviesGoldJob } from './gold.js';
import { moviesCleanJob, tables as moviesTables } from './jobs.js';
import { moviesModule } from './routes.js';
import { avroValues } from './schemas.js';
import { MoviesServingStore } from './serving.js';
import { startTmdbSimulator } from './simulator.js';

export const pipelineName = 'movies';

/** Partitions of each topic (keyed by TMDB id). */
export const topicPartitions = 4;

/** The pipeline's settings (environment variables, also `tributary run` flags). */
export const moviesSettings = {
  pages: {
    env: 'TMDB_PAGES',
    flag: '--pages <n>',
    description: 'movies: /movie/popular pages per extraction (default 5)',
  },
  apiUrl: {
    env: 'TMDB_API_URL',
    flag: '--tmdb-url <url>',
    description: `movies: TMDB API base (default ${defaultTmdbUrl})`,
  },
  servingUrl: {
    env: 'MOVIES_SERVING_URL',
    flag: '--serving-url <url>',
    description: 'movies: PostgreSQL serving store (default embedded PGlite)',
  },
} satisfies Record<string, PipelineSetting>;

/** Popular pages read per extraction: `TMDB_PAGES` / `--pages` (default 5, 20 movies a page). */
export function tmdbPages(env: NodeJS.ProcessEnv = process.env): number {
  const text = pipelineSetting(moviesSettings.pages, env) ?? '5';
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 500)
    throw new TributaryError(
      'CONFIG_INVALID',
      `TMDB_PAGES must be a whole number 1..500, got ${JSON.stringify(text)}`,
    );
  return Number(text);
}

/** Minutes between extractions under `up`: `TMDB_REFRESH_MINUTES` (default 15). */
export function tmdbRefreshMs(env: NodeJS.ProcessEnv = process.env): number {
  const minutes = Number(env.TMDB_REFRESH_MINUTES ?? '15');
  if (!(minutes > 0))
    throw new TributaryError('CONFIG_INVALID', `TMDB_REFRESH_MINUTES must be > 0, got ${minutes}`);
  return minutes * 60_000;
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
    const opening = MoviesServingStore.open({
      ...(pipelineSetting(moviesSettings.servingUrl, env) === undefined
        ? {}
        : { url: pipelineSetting(moviesSettings.servingUrl, env)! }),
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

/**
 * One extraction against TMDB (`TMDB_API_URL`, `TMDB_API_KEY` or `TMDB_READ_ACCESS_TOKEN`), or,
 * with neither credential set, against the local simulator started for it (said in the log).
 */
async function extractOnce(services: PipelineServices, context: SourceContext): Promise<ExtractionStats> {
  const env = process.env;
  const simulator =
    env.TMDB_API_KEY || env.TMDB_READ_ACCESS_TOKEN ? null : await startTmdbSimulator({ seed: 2 });
  if (simulator !== null)
    context.logger.warn(
      { url: simulator.url },
      `no TMDB_API_KEY or TMDB_READ_ACCESS_TOKEN set: extracting from the local TMDB simulator (tributary simulate tmdb) at ${simulator.url}`,
    );
  try {
    const client = new TmdbClient(
      simulator === null
        ? {
            baseUrl: pipelineSetting(moviesSettings.apiUrl, env) ?? defaultTmdbUrl,
            ...(env.TMDB_API_KEY ? { apiKey: env.TMDB_API_KEY } : {}),
            ...(env.TMDB_READ_ACCESS_TOKEN ? { readAccessToken: env.TMDB_READ_ACCESS_TOKEN } : {}),
          }
        : { baseUrl: simulator.url, apiKey: simulator.apiKey },
    );
    let reported = 0;
    // Avro values under `<topic>-value` when the platform has a registry (it always has under
    // `up` and `run`); an incompatible schema change stops here with the registry's reason.
    const encode =
      services.schemaRegistry === undefined ? undefined : await avroValues(services.schemaRegistry);
    const stats = await extractTmdb({
      client,
      log: services.log,
      ...(encode === undefined ? {} : { encode }),
      pages: tmdbPages(env),
      signal: context.signal,
      onMovie: (progress) => {
        const total = Object.values(progress.records).reduce((a, b) => a + b, 0);
        context.report({ records: total - reported, position: formatExtractionStats(progress) });
        reported = total;
      },
    });
    sharedOf(services).extraction = stats;
    context.report({ position: formatExtractionStats(stats) });
    return stats;
  } finally {
    await simulator?.close();
  }
}

export const moviesPipeline: PipelineDefinition = {
  name: pipelineName,
  title: 'Movies',
  description:
    'TMDB (4 req/s) → movies, people, credits, reviews → cleaner + sentiment → silver / gold → serving store → API',
  async jobs(services) {
    for (const topic of Object.values(topics))
      await services.log.ensureTopic(topic, { partitions: topicPartitions });
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
          afterRefresh: async () => {
            await (await storeOf(services)).publish(services.query, Date.now());
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
  settings: Object.values(moviesSettings),
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
  sources: (services) => [
    {
      name: 'tmdb',
      kind: 'custom',
      drain: async (context) => {
        for (const topic of Object.values(topics))
          await services.log.ensureTopic(topic, { partitions: topicPartitions });
        await extractOnce(services, context);
      },
      run: async (context) => {
        for (const topic of Object.values(topics))
          await services.log.ensureTopic(topic, { partitions: topicPartitions });
        const refreshMs = tmdbRefreshMs();
        while (!context.signal.aborted) {
          await extractOnce(services, context);
          await context.clock.sleep(refreshMs, context.signal).catch(() => undefined);
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
export { MoviesServingStore, servingSchema } from './serving.js';
export { moviesModule, movieFilters } from './routes.js';
export {
  startTmdbSimulator,
  generateCatalogue,
  tmdbGenres,
  type TmdbSimulator,
  type TmdbSimulatorOptions,
} from './simulator.js';
export * from './clean.js';
