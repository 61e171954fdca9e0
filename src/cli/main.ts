import { Command, CommanderError } from 'commander';
import { isTributaryError } from '../core/index.js';
import { commandModules } from './commands/index.js';
import { createCliContext } from './context.js';

/** Builds the `tributary` program (exported for tests that drive the CLI in-process). */
export function buildProgram(): Command {
  const program = new Command('tributary')
    .description('Tributary: streaming + batch data platform (log, stream engine, lake, SQL, ML, serving)')
    .option('--data-dir <dir>', 'data directory (env TRIBUTARY_DATA_DIR, default ./.tributary)')
    .option('--config <file>', 'JSON config file (default ./tributary.config.json when present)')
    .option('--log-level <level>', 'log level: fatal|error|warn|info|debug|trace|silent')
    .option('--log <backend>', 'log backend: embedded | kafka://host:9092')
    .option('--storage <backend>', 'lake storage: local | s3://bucket/prefix')
    .showHelpAfterError()
    .exitOverride();
  const context = createCliContext(program);
  for (const register of commandModules) register(program, context);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    if (isTributaryError(error)) {
      process.stderr.write(`tributary: ${error.code}: ${error.message}\n`);
      return error.domain === 'internal' ? 70 : 1;
    }
    process.stderr.write(
      `tributary: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    return 70;
  }
}

const isEntryPoint =
  process.argv[1] !== undefined && /tributary(\.js)?$|cli[/\\]main\.[jt]s$/.test(process.argv[1]);
if (isEntryPoint) {
  const code = await main(process.argv);
  // Commands that start servers resolve only when they are done; everything else exits here so a
  // stray handle (a pool, a timer) never keeps a one-shot command alive.
  process.exit(code);
}
