import type { Command } from 'commander';
import {
  loadConfig,
  setLogLevel,
  TributaryError,
  type ConfigKey,
  type TributaryConfig,
} from '../core/index.js';

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

/**
 * A numeric option's value, checked: a USAGE error names the flag, the range and what was given.
 * @example numberOption('--users', '200', { min: 1, integer: true })
 */
export function numberOption(
  flag: string,
  text: string,
  range: { min?: number; max?: number; integer?: boolean } = {},
): number {
  const { min = -Infinity, max = Infinity, integer = false } = range;
  const value = Number(text);
  if (
    text.trim() === '' ||
    !Number.isFinite(value) ||
    value < min ||
    value > max ||
    (integer && !Number.isInteger(value))
  ) {
    const bounds = [min > -Infinity ? `≥ ${min}` : '', max < Infinity ? `≤ ${max}` : '']
      .filter(Boolean)
      .join(' and ');
    throw new TributaryError(
      'USAGE',
      `${flag} must be ${integer ? 'a whole number' : 'a number'}${bounds ? ` ${bounds}` : ''}, got ${JSON.stringify(text)}`,
    );
  }
  return value;
}
