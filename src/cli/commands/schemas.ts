import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { TributaryError } from '../../core/index.js';
import {
  isCompatibilityLevel,
  openSchemaRegistry,
  type SchemaRegistry,
  type VersionRef,
} from '../../log/index.js';
import type { CliContext } from '../context.js';

const out = (line: string) => process.stdout.write(`${line}\n`);

/** The data dir's schema registry (or `schemaRegistryUrl`'s), closed after `run`. */
async function withRegistry<T>(
  context: CliContext,
  run: (registry: SchemaRegistry) => Promise<T>,
): Promise<T> {
  const registry = await openSchemaRegistry(context.config());
  try {
    return await run(registry);
  } finally {
    await registry.close();
  }
}

function versionOption(text: string): VersionRef {
  if (text === 'latest') return 'latest';
  const version = Number(text);
  if (!Number.isSafeInteger(version) || version < 1)
    throw new TributaryError(
      'USAGE',
      `--version must be latest or a number from 1, got ${JSON.stringify(text)}`,
    );
  return version;
}

async function schemaFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new TributaryError('NOT_FOUND', `cannot read schema file ${file}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/**
 * `tributary schemas …`: the schema registry from the command line, without HTTP when it is the
 * data dir's own (the same store `up` serves at /schema-registry; changes take its lock).
 */
export function registerSchemasCommands(program: Command, context: CliContext): void {
  const schemas = program
    .command('schemas')
    .description('the schema registry (Avro subjects): the data dir one, or schemaRegistryUrl');

  schemas
    .command('list')
    .description('print subject names, one per line')
    .option('--deleted', 'include soft-deleted subjects')
    .action((opts: { deleted?: boolean }) =>
      withRegistry(context, async (registry) => {
        for (const subject of await registry.subjects({ deleted: opts.deleted === true })) out(subject);
      }),
    );

  schemas
    .command('get <subject>')
    .description('print one version as JSON {subject, version, id, schema} and the live versions')
    .option('--version <v>', 'latest or a version number', 'latest')
    .action((subject: string, opts: { version: string }) =>
      withRegistry(context, async (registry) => {
        const found = await registry.version(subject, versionOption(opts.version));
        out(JSON.stringify({ ...found, versions: await registry.versions(subject) }, null, 2));
      }),
    );

  schemas
    .command('register <subject> <file>')
    .description(
      "register the Avro schema in <file> (.avsc) under <subject>; the same schema again keeps its version; a change the subject's compatibility level refuses fails with the reason",
    )
    .action((subject: string, file: string) =>
      withRegistry(context, async (registry) => {
        const { version, id } = await registry.register(subject, await schemaFile(file));
        out(JSON.stringify({ subject, version, id }));
      }),
    );

  schemas
    .command('check <subject> <file>')
    .description(
      'test the Avro schema in <file> against the subject (exit 1 with the reasons when not compatible)',
    )
    .option('--version <v>', 'latest or a version number', 'latest')
    .action((subject: string, file: string, opts: { version: string }) =>
      withRegistry(context, async (registry) => {
        const result = await registry.testCompatibility(
          subject,
          await schemaFile(file),
          versionOption(opts.version),
        );
        out(result.compatible ? 'compatible' : ['not compatible:', ...result.messages].join('\n  '));
        if (!result.compatible) process.exitCode = 1;
      }),
    );

  schemas
    .command('config [subject]')
    .description("print the compatibility level in force (the subject's, else the global one), or set it")
    .option(
      '--set <level>',
      'BACKWARD | BACKWARD_TRANSITIVE | FORWARD | FORWARD_TRANSITIVE | FULL | FULL_TRANSITIVE | NONE',
    )
    .action((subject: string | undefined, opts: { set?: string }) =>
      withRegistry(context, async (registry) => {
        if (opts.set !== undefined) {
          const level = opts.set.toUpperCase();
          if (!isCompatibilityLevel(level))
            throw new TributaryError(
              'USAGE',
              `--set must be a compatibility level, got ${JSON.stringify(opts.set)}`,
            );
          await registry.setCompatibility(level, subject);
        }
        out(await registry.compatibility(subject));
      }),
    );
}
