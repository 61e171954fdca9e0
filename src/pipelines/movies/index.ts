export { TmdbClient, defaultTmdbUrl, type TmdbClientOptions, type TmdbRequestStats } from './client.js';
export {
  extractTmdb,
  formatExtractionStats,
  topics as moviesTopics,
  type ExtractionStats,
} from './extract.js';
export { moviesCleanJob, cleanRecord, decodeTmdbRecord, tables as moviesTables } from './jobs.js';
export { moviesGoldJob, refreshMoviesSilverGold, movieRules } from './gold.js';
export {
  startTmdbSimulator,
  generateCatalogue,
  type TmdbSimulator,
  type TmdbSimulatorOptions,
} from './simulator.js';
export * from './clean.js';
