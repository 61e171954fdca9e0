import type { Command } from 'commander';
import { startTmdbSimulator } from '../../pipelines/movies/index.js';
import { commandGroup, numberOption, type CliContext } from '../context.js';

/** The movies pipeline's command: `simulate tmdb`. */
export function registerMoviesCommands(program: Command, _context: CliContext): void {
  commandGroup(program, 'simulate', 'produce simulated events into the log')
    .command('tmdb')
    .description(
      "A TMDB v3 stand-in (TMDB's paths and bodies: popular, trending, changes, movie, credits, reviews, person, genres; its error bodies; 401 without the key; 429 + Retry-After beyond the rate; seeded movies, people, credits and reviews)",
    )
    .option('--port <port>', 'port (0 = any free port)', '8091')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--rate <n>', 'requests accepted in any 1 s window', '4')
    .option('--error-rate <r>', 'share of accepted requests answered 503 (0..1)', '0')
    .option('--movies <n>', 'movies in the catalogue (20 a page)', '400')
    .option('--seed <n>', 'random seed of the catalogue', '2')
    .option('--key <key>', 'the API key (api_key or Bearer) it accepts', 'simulator-key')
    .action(
      async (options: {
        port: string;
        host: string;
        rate: string;
        errorRate: string;
        movies: string;
        seed: string;
        key: string;
      }) => {
        const simulator = await startTmdbSimulator({
          port: numberOption('--port', options.port, { min: 0, max: 65535 }),
          host: options.host,
          rate: numberOption('--rate', options.rate, { min: 1, max: 10_000 }),
          errorRate: numberOption('--error-rate', options.errorRate, { min: 0, max: 1 }),
          movies: numberOption('--movies', options.movies, { min: 1, max: 10_000 }),
          seed: numberOption('--seed', options.seed, { min: 0, max: 2 ** 31 }),
          apiKey: options.key,
        });
        process.stdout.write(
          `TMDB simulator at ${simulator.url} (${simulator.movies.length} movies); use it with TMDB_API_URL=${simulator.url} TMDB_API_KEY=${simulator.apiKey}; Ctrl-C stops it\n`,
        );
        await new Promise<void>((resolve) => {
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        });
        await simulator.close();
      },
    );
}
