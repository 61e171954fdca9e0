import type { Command } from 'commander';
import { configEnvNames, configSchema, type ConfigKey } from '../../core/index.js';
import type { CliContext } from '../context.js';

/** Markdown table of every configuration key: its environment names, default and meaning. */
export function configReference(): string {
  const rows = Object.entries(configSchema.shape).map(([key, schema]) => {
    const json = schema.toJSONSchema({ unrepresentable: 'any', io: 'input' }) as {
      default?: unknown;
      description?: string;
      enum?: unknown[];
    };
    const defaultText = json.default === undefined ? '' : `\`${JSON.stringify(json.default)}\``;
    const envText = configEnvNames[key as ConfigKey].map((n) => `\`${n}\``).join(', ');
    const meaning = [
      json.description ?? '',
      json.enum && !json.description ? `one of ${json.enum.join(' | ')}` : '',
    ]
      .filter(Boolean)
      .join('; ');
    return `| \`${key}\` | ${envText} | ${defaultText} | ${meaning.replaceAll('|', '\\|')} |`;
  });
  return ['| key | environment | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

export function registerConfigCommands(program: Command, context: CliContext): void {
  const config = program
    .command('config')
    .description('show the effective configuration or the reference of all keys');
  config
    .command('show')
    .description('print the validated configuration (secrets masked) as JSON')
    .action(() => {
      const effective: Record<string, unknown> = { ...context.config() };
      for (const key of Object.keys(effective)) {
        if (/ApiKey|Secret|AccessKey/.test(key) && effective[key] !== undefined) effective[key] = '***';
      }
      process.stdout.write(`${JSON.stringify(effective, null, 2)}\n`);
    });
  config
    .command('reference')
    .description('print every configuration key with its environment variable and default (Markdown)')
    .action(() => {
      process.stdout.write(`${configReference()}\n`);
    });
}
