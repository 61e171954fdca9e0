import path from 'node:path';
import { LocalStorage, openLake } from '../src/lake/index.js';
import { openEmbeddedLog, type Log, type ProducerRecord } from '../src/log/index.js';
import { VaderSentiment } from '../src/ml/index.js';
import {
  decodeTmdbRecord,
  generateCatalogue,
  moviesCleanJob,
  moviesTables,
  moviesTopics,
  tmdbGenres,
  type TmdbRecord,
} from '../src/pipelines/movies/index.js';
import { lakeSink, lakeTableTarget, runJob, stream } from '../src/stream/index.js';
import type { BenchContext, Benchmark, BenchResult } from './types.js';

/** TMDB-shaped bodies for the four topics from the simulator's seeded catalogue. */
function tmdbRecords(movieCount: number): ProducerRecord[] {
  const catalogue = generateCatalogue(5, movieCount, Math.max(50, movieCount / 4));
  const genreName = new Map(tmdbGenres.map((g) => [g.id, g.name]));
  const records: ProducerRecord[] = [];
  for (const movie of catalogue.movies) {
    const { genre_ids, ...rest } = movie;
    records.push({
      topic: moviesTopics.movies,
      key: String(movie.id),
      value: JSON.stringify({ ...rest, genres: genre_ids.map((id) => ({ id, name: genreName.get(id) })) }),
    });
    const credits = catalogue.credits.get(movie.id)!;
    records.push({
      topic: moviesTopics.credits,
      key: String(movie.id),
      value: JSON.stringify({
        id: movie.id,
        cast: credits.cast.map((c, order) => ({
          id: c.personId,
          name: 'Cast Member',
          character: c.character,
          order,
        })),
        crew: credits.crew.map((c) => ({
          id: c.personId,
          name: 'Crew Member',
          job: c.job,
          department: c.department,
        })),
      }),
    });
    for (const review of catalogue.reviews.get(movie.id)!)
      records.push({
        topic: moviesTopics.reviews,
        key: String(review.id),
        value: JSON.stringify({ ...review, movie_id: movie.id }),
      });
  }
  for (const person of catalogue.people.values())
    records.push({ topic: moviesTopics.people, key: String(person.id), value: JSON.stringify(person) });
  return records;
}

async function fill(log: Log, records: ProducerRecord[]): Promise<void> {
  for (const topic of Object.values(moviesTopics)) await log.createTopic(topic, { partitions: 4 });
  for (let i = 0; i < records.length; i += 5000) await log.append(records.slice(i, i + 5000));
}

/**
 * movies.clean: the four topics (embedded log) → decode → clean + tiers + VADER sentiment →
 * bronze raw bodies and the silver versions tables, committed, in one bounded run. Baseline, same
 * records and engine: decode alone (the records parsed, nothing written).
 */
async function moviesClean(context: BenchContext): Promise<BenchResult> {
  const movieCount = Number(process.env.TRIBUTARY_BENCH_MOVIES ?? 4000);
  const records = tmdbRecords(movieCount);
  context.progress(`${records.length.toLocaleString('en-US')} records for ${movieCount} movies`);

  context.progress('baseline: decode alone');
  const baselineLog = await openEmbeddedLog({ dir: path.join(context.dir, 'log-baseline') });
  const baselineLake = await openLake({ storage: new LocalStorage(path.join(context.dir, 'lake-baseline')) });
  let baseline: number;
  try {
    await fill(baselineLog, records);
    const started = performance.now();
    const job = stream('movies.decode', { checkpointIntervalMs: 2_000 })
      .from<TmdbRecord>(baselineLog, { topics: Object.values(moviesTopics), decode: decodeTmdbRecord })
      .map((r) => JSON.parse(r.body) as unknown)
      .filter(() => false)
      .to(lakeSink(lakeTableTarget(baselineLake.table('bronze.decoded'), {}), { row: () => ({}) }));
    const status = await runJob(job, { dataDir: path.join(context.dir, 'state-baseline'), once: true });
    baseline = status.counters.in / ((performance.now() - started) / 1000);
  } finally {
    await baselineLog.close();
    await baselineLake.close();
  }

  context.progress('decode → clean → sentiment → bronze + silver');
  const log = await openEmbeddedLog({ dir: path.join(context.dir, 'log') });
  const lake = await openLake({ storage: new LocalStorage(path.join(context.dir, 'lake')) });
  try {
    await fill(log, records);
    const started = performance.now();
    const status = await runJob(moviesCleanJob({ log, lake, sentiment: new VaderSentiment() }), {
      dataDir: path.join(context.dir, 'state'),
      once: true,
    });
    const seconds = (performance.now() - started) / 1000;
    const bronzeRows = await Promise.all(
      Object.values(moviesTables.bronze).map(async (table) =>
        ((await lake.table(table).snapshot())?.files ?? []).reduce((n, f) => n + f.rows, 0),
      ),
    );
    const landed = bronzeRows.reduce((a, b) => a + b, 0);
    if (status.state !== 'finished' || landed !== records.length)
      throw new Error(`job ${status.state}; bronze holds ${landed} rows, expected ${records.length}`);
    const value = records.length / seconds;
    return {
      value,
      unit: 'records/s',
      baseline,
      baseline_name: 'decode alone (same records, same engine) records/s',
      ratio: value / baseline,
      goal: '>= 20,000 records/s',
      records: records.length,
      reviews: records.filter((r) => r.topic === moviesTopics.reviews).length,
    };
  } finally {
    await log.close();
    await lake.close();
  }
}

export const moviesBenchmarks: Benchmark[] = [
  {
    name: 'movies.clean',
    description: 'TMDB bodies on four topics → decode → clean + tiers + VADER sentiment → bronze + silver',
    run: moviesClean,
  },
];
