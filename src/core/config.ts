import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { z } from 'zod';
import { TributaryError } from './errors.js';
import { limits } from './limits.js';

/**
 * The one typed configuration object. Sources, later ones winning:
 * defaults < config file (`tributary.config.json`, or `--config`) < `.env` < environment < CLI flags.
 *
 * Every key has one environment name (`TRIBUTARY_<SNAKE_CASE>`, a few well-known names such as
 * `REDIS_URL` besides). Unknown keys in the file and unknown `TRIBUTARY_*` variables fail fast, so
 * a typo never silently falls back to a default.
 */
const fsyncPolicy = z.enum(['always', 'group', 'never']);
const boolFromString = z.union([
  z.boolean(),
  z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1'),
]);
const port = z.coerce.number().int().min(0).max(65535);

export const configSchema = z
  .object({
    dataDir: z.string().min(1).default('./.tributary').describe('Directory for log, lake, state and keys'),
    log: z
      .string()
      .regex(
        /^(embedded|kafka:\/\/[^\s]+|tributary:\/\/[^\s]+)$/,
        'embedded, kafka://host:port[,host:port] or tributary://host:port',
      )
      .default('embedded')
      .describe(
        'Log backend: embedded, kafka://broker1:9092,broker2:9092, or tributary://127.0.0.1:port (a `tributary log serve` server)',
      ),
    logFsync: fsyncPolicy.default('group').describe('When an append is acknowledged: always | group | never'),
    logGroupCommitMs: z.coerce
      .number()
      .int()
      .min(0)
      .max(1000)
      .default(2)
      .describe('Group-commit window in ms: longest wait under load (an idle log commits at once)'),
    logRetentionMs: z.coerce
      .number()
      .int()
      .min(-1)
      .default(7 * 24 * 3600 * 1000)
      .describe('Default topic retention by time (-1 = forever)'),
    logRetentionBytes: z.coerce
      .number()
      .int()
      .min(-1)
      .default(-1)
      .describe('Default per-partition retention by size (-1 = unbounded)'),
    kafkaListener: z
      .string()
      .regex(/^(off|[^\s:]+:\d{1,5})$/, 'off or host:port')
      .default('127.0.0.1:9092')
      .describe(
        'Kafka protocol listener of `tributary up` over the embedded log (SASL with API keys): host:port, or off',
      ),
    kafkaTlsCert: z
      .string()
      .optional()
      .describe('PEM certificate file: the Kafka listener speaks TLS (SASL_SSL)'),
    kafkaTlsKey: z.string().optional().describe('PEM private key file for kafkaTlsCert'),
    kafkaSaslMechanism: z
      .enum(['PLAIN', 'SCRAM-SHA-256'])
      .default('PLAIN')
      .describe('SASL mechanism the Kafka log backend (log kafka://…) authenticates with'),
    kafkaSaslUsername: z
      .string()
      .optional()
      .describe('SASL user of the Kafka log backend (a Tributary Kafka listener accepts any name)'),
    kafkaSaslPassword: z
      .string()
      .optional()
      .describe(
        'SASL password of the Kafka log backend (for a Tributary Kafka listener: an API key); unset = no SASL',
      ),
    storage: z
      .string()
      .regex(/^(local|s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?)$/, 'local or s3://bucket[/prefix]')
      .default('local')
      .describe('Lake storage: local (under the data dir) or s3://bucket/prefix'),
    s3Endpoint: z.url().optional().describe('S3-compatible endpoint, e.g. http://127.0.0.1:9000 for MinIO'),
    s3Region: z.string().default('us-east-1'),
    s3ForcePathStyle: boolFromString.default(false).describe('Path-style addressing (MinIO, s3rver)'),
    s3AccessKeyId: z.string().optional(),
    s3SecretAccessKey: z.string().optional(),
    host: z.string().default('127.0.0.1').describe('Address the API binds to'),
    port: port.default(3000).describe('API and dashboard port'),
    redisUrl: z
      .string()
      .regex(/^rediss?:\/\//, 'redis://host:port')
      .optional()
      .describe('Redis for shared rate limits'),
    openLineageUrl: z
      .url()
      .optional()
      .describe(
        'OpenLineage HTTP endpoint (Marquez, DataHub): run events are POSTed to <url>/api/v1/lineage',
      ),
    openLineageApiKey: z.string().optional().describe('Bearer token sent to the OpenLineage endpoint'),
    responseCache: z
      .enum(['memory', 'redis'])
      .default('memory')
      .describe('Cache of cacheable API routes: memory (per process) | redis (shared; needs redisUrl)'),
    metricsPublic: boolFromString
      .default(true)
      .describe('Serve /metrics without an API key (samples labelled with a tenant still need one)'),
    rateLimitPerSecond: z.coerce.number().positive().default(50).describe('Requests per second per API key'),
    rateLimitBurst: z.coerce
      .number()
      .int()
      .positive()
      .default(100)
      .describe('Token-bucket burst per API key'),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('warn'),
    sentimentModel: z
      .string()
      .default('vader')
      .describe('vader | hf:<model-id> | path to a local model directory'),
    embeddingModel: z.string().default('hashed').describe('hashed | hf:<model-id> | openai:<model>'),
    embeddingUrl: z.url().optional().describe('OpenAI-compatible /v1 base URL for embeddings'),
    embeddingApiKey: z.string().optional(),
    llmUrl: z.url().optional().describe('OpenAI-compatible /v1 base URL for generated RAG answers'),
    llmModel: z.string().default('gpt-4o-mini'),
    llmApiKey: z.string().optional(),
    schemaRegistryUrl: z
      .string()
      .regex(/^https?:\/\//, 'http(s)://host:port[/path]')
      .optional()
      .describe(
        'External Confluent-compatible schema registry; default the embedded one in the data dir (served at /schema-registry)',
      ),
    schemaRegistryApiKey: z
      .string()
      .optional()
      .describe('Credentials for schemaRegistryUrl: key:secret (HTTP Basic) or a bearer token'),
    documentCpuMsMax: z.coerce
      .number()
      .int()
      .min(10)
      .default(limits.documentCpuMsMax)
      .describe('CPU time one document may take to extract and chunk (its worker is stopped past it)'),
    documentHeapMbMax: z.coerce
      .number()
      .int()
      .min(16)
      .default(limits.documentHeapMbMax)
      .describe('Heap of a document-extraction worker thread, MB'),
    documentPagesMax: z.coerce
      .number()
      .int()
      .min(1)
      .default(limits.documentPagesMax)
      .describe('Pages of one PDF'),
    documentZipEntriesMax: z.coerce
      .number()
      .int()
      .min(1)
      .default(limits.documentZipEntriesMax)
      .describe('Entries of one DOCX archive'),
    documentInflatedBytesMax: z.coerce
      .number()
      .int()
      .min(1)
      .default(limits.documentInflatedBytesMax)
      .describe('Bytes one DOCX may inflate to'),
    documentCharsMax: z.coerce
      .number()
      .int()
      .min(1)
      .default(limits.documentCharsMax)
      .describe('Characters of text extracted from one document'),
    documentOutputBytesMax: z.coerce
      .number()
      .int()
      .min(1)
      .default(limits.documentOutputBytesMax)
      .describe('Bytes of chunk text one document may produce'),
    workerPipelines: z
      .string()
      .regex(/^([a-z][a-z0-9-]*(,[a-z][a-z0-9-]*)*)?$/, 'pipeline names separated by commas')
      .default('')
      .describe(
        'Pipelines whose stream jobs run in `tributary run <pipeline> --worker` processes: `up` runs their sources, batch jobs and routes but not their stream jobs',
      ),
    pipelineSettings: z
      .record(z.string(), z.record(z.string(), z.string()))
      .default({})
      .describe(
        'Settings a pipeline declares, { "<pipeline>": { "<setting>": "text" } }; each pipeline validates its own and names its environment variables',
      ),
  })
  .strict();

export type TributaryConfig = z.infer<typeof configSchema>;
export type ConfigKey = keyof TributaryConfig;

/** Environment variable names that map to config keys. */
export const configEnvNames: Record<ConfigKey, string[]> = Object.fromEntries(
  Object.keys(configSchema.shape).map((key) => [
    key,
    [`TRIBUTARY_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`],
  ]),
) as Record<ConfigKey, string[]>;
configEnvNames.redisUrl.push('REDIS_URL');
configEnvNames.openLineageUrl.push('OPENLINEAGE_URL');
configEnvNames.openLineageApiKey.push('OPENLINEAGE_API_KEY');
configEnvNames.llmApiKey.push('OPENAI_API_KEY');
configEnvNames.s3AccessKeyId.push('AWS_ACCESS_KEY_ID');
configEnvNames.s3SecretAccessKey.push('AWS_SECRET_ACCESS_KEY');
configEnvNames.s3Endpoint.push('AWS_ENDPOINT_URL_S3');
configEnvNames.schemaRegistryUrl.push('SCHEMA_REGISTRY_URL');

/** Variables that start with TRIBUTARY_ but are not config keys (read elsewhere, on purpose). */
// Read where they are used, not settings: TRIBUTARY_LOG_TOKEN is the log server's token (src/log/open.ts).
const nonConfigVariables = new Set([
  'TRIBUTARY_SLOW',
  'TRIBUTARY_CONFIG',
  'TRIBUTARY_ADMIN_KEY',
  'TRIBUTARY_LOG_TOKEN',
]);

export interface LoadConfigOptions {
  /** Path of a JSON config file; by default `tributary.config.json` in `cwd` when it exists. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Values from CLI flags; undefined entries are ignored. */
  overrides?: Partial<Record<ConfigKey, unknown>>;
  /** Read `.env` in `cwd` (default true). */
  dotenv?: boolean;
}

export function loadConfig(options: LoadConfigOptions = {}): TributaryConfig {
  const cwd = options.cwd ?? process.cwd();
  const env = options.env ?? process.env;
  const raw: Record<string, unknown> = {};
  const origin: Record<string, string> = {};

  const file =
    options.file ??
    env.TRIBUTARY_CONFIG ??
    (existsSync(path.join(cwd, 'tributary.config.json')) ? 'tributary.config.json' : undefined);
  if (file !== undefined) {
    const filePath = path.resolve(cwd, file);
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(filePath, 'utf8'));
    } catch (error) {
      throw new TributaryError(
        'CONFIG_INVALID',
        `config file ${filePath} is not readable JSON: ${(error as Error).message}`,
        { cause: error },
      );
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new TributaryError('CONFIG_INVALID', `config file ${filePath} must hold a JSON object`);
    }
    for (const [key, value] of Object.entries(parsed)) {
      raw[key] = value;
      origin[key] = `${filePath}: "${key}"`;
    }
  }

  const sources: [string, NodeJS.ProcessEnv][] = [];
  if (options.dotenv !== false && existsSync(path.join(cwd, '.env'))) {
    sources.push([path.join(cwd, '.env'), parseDotenv(readFileSync(path.join(cwd, '.env')))]);
  }
  sources.push(['environment', env]);
  const knownNames = new Map<string, ConfigKey>();
  for (const [key, names] of Object.entries(configEnvNames))
    for (const name of names) knownNames.set(name, key as ConfigKey);
  for (const [sourceName, source] of sources) {
    for (const [name, value] of Object.entries(source)) {
      if (value === undefined || value === '') continue;
      const key = knownNames.get(name);
      if (key !== undefined) {
        raw[key] = value;
        origin[key] = `${sourceName}: ${name}`;
      } else if (name.startsWith('TRIBUTARY_') && !nonConfigVariables.has(name)) {
        throw new TributaryError(
          'CONFIG_INVALID',
          `unknown setting ${name} (from ${sourceName}); known: ${[...knownNames.keys()].filter((n) => n.startsWith('TRIBUTARY_')).join(', ')}`,
        );
      }
    }
  }
  for (const [key, value] of Object.entries(options.overrides ?? {})) {
    if (value === undefined) continue;
    raw[key] = value;
    origin[key] = `flag --${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  }

  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      if (issue.code === 'unrecognized_keys') {
        return `unknown key(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}${issue.keys[0] && origin[issue.keys[0]] ? ` (${origin[issue.keys[0]]})` : ''}; known keys: ${Object.keys(configSchema.shape).join(', ')}`;
      }
      const key = String(issue.path[0] ?? '');
      return `${key} = ${JSON.stringify(raw[key])} (${origin[key] ?? 'default'}): expected ${issue.message}`;
    });
    throw new TributaryError('CONFIG_INVALID', `invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  return { ...result.data, dataDir: path.resolve(cwd, result.data.dataDir) };
}
