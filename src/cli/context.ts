import type { Command } from 'commander';
import { loadConfig, setLogLevel, type ConfigKey, type TributaryConfig } from '../core/index.js';

/** Global flags every command accepts; they override config file and environment. */
export interface GlobalOptions {
  dataDir?: string;
  config?: string;
  logLevel?: string;
  log?: string;
  storage?: string;
}

/**
 * What a command module gets: lazily loaded, validated configuration for this invocation; loading
 * it applies its `logLevel` to every logger.
 */
export interface CliContext {
  config(overrides?: Partial<Record<ConfigKey, unknown>>): TributaryConfig;
}

export function createCliContext(program: Command): CliContext {
  return {
    config(overrides = {}) {
      const global = program.opts<GlobalOptions>();
      const config = loadConfig({
        file: global.config,
        overrides: {
          dataDir: global.dataDir,
          logLevel: global.logLevel,
          log: global.log,
          storage: global.storage,
          ...overrides,
        },
      });
      setLogLevel(config.logLevel);
      return config;
    },
  };
}

/** A command module registers its sub-commands on the program. */
export type RegisterCommands = (program: Command, context: CliContext) => void;

/**
 * The `name` sub-command group of the program (`ingest`, `worker`, `generate`…), created by the
 * first module that needs it; later modules add their sub-commands to the same group.
 */
export function commandGroup(program: Command, name: string, description: string): Command {
  return (
    program.commands.find((command) => command.name() === name) ??
    program.command(name).description(description)
  );
}
