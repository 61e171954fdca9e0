import { z } from 'zod';
import { TributaryError } from '../core/index.js';
import { fileImportOptionsSchema } from './files/import.js';
import { httpPollerOptionsSchema } from './http/options.js';
import { ingestOptionsSchema } from './ingest/routes.js';
import { postgresSinkOptionsSchema } from './postgres/sink.js';
import { postgresSourceOptionsSchema } from './postgres/source.js';
import { spoolOptionsSchema } from './spool/options.js';

/**
 * One connector: its name, role and options schema. The zod schema is the single source of truth
 * for validation (`parseConnectorOptions`), docs (`connectorDocs`), the API and the dashboard's
 * forms (`connectorJsonSchema`).
 */
export interface ConnectorDefinition {
  name: string;
  kind: 'source' | 'sink';
  title: string;
  description: string;
  options: z.ZodType;
}

const definitions: readonly ConnectorDefinition[] = [
  {
    name: 'spool',
    kind: 'source',
    title: 'Spool directory',
    description:
      'Watches a directory and delivers every complete file (txt, jsonl/ndjson, csv, json, any .gz) exactly once to a topic, or as one atomic commit per file to a lake table. Bad files go to failed/ with a reason file; the others keep flowing.',
    options: spoolOptionsSchema,
  },
  {
    name: 'file-import',
    kind: 'source',
    title: 'File import',
    description:
      'One-shot import of CSV / JSON / NDJSON / Parquet with type inference (int, float, bool, timestamp, string) and validation into a lake table (one commit, idempotent per file) or a topic; refused rows go to a quarantine NDJSON file with file, line, field and reason.',
    options: fileImportOptionsSchema,
  },
  {
    name: 'http-poller',
    kind: 'source',
    title: 'HTTP API poller',
    description:
      'Polls a JSON API: token-bucket rate limit never exceeded, Retry-After, exponential backoff with jitter, pagination (page, cursor, Link), incremental cursor in state, timeouts, and an SSRF guard on every request and redirect.',
    options: httpPollerOptionsSchema,
  },
  {
    name: 'postgres',
    kind: 'source',
    title: 'PostgreSQL',
    description:
      'Snapshot or incremental (cursor column) reads through server-side cursors in bounded memory, from a PostgreSQL server or embedded PGlite, with faithful type mapping to lake/Parquet types.',
    options: postgresSourceOptionsSchema,
  },
  {
    name: 'http-ingest',
    kind: 'source',
    title: 'HTTP ingest endpoint',
    description:
      'POST JSON / NDJSON / text records or multipart files into a topic; size, count and content-type checks, Idempotency-Key, 413/415/429/503, and 2xx only after the durable append. Under `tributary up` every topic is open to it except the internal topics pipelines declare (`PipelineDefinition.internalTopics`) and `*.dlq` topics (403); a record longer than `recordBytesMax` and a `.gz` part inflating past 64 MiB are refused while being read.',
    options: ingestOptionsSchema,
  },
  {
    name: 'postgres-upsert',
    kind: 'sink',
    title: 'PostgreSQL upsert sink',
    description:
      'Batched INSERT … ON CONFLICT DO UPDATE committed in one transaction with the job checkpoint id (table _tributary_sink_offsets), so replays after a crash are idempotent.',
    options: postgresSinkOptionsSchema,
  },
];

/** Every connector, in a stable order. */
export function connectors(): readonly ConnectorDefinition[] {
  return definitions;
}

export function getConnector(name: string): ConnectorDefinition {
  const found = definitions.find((d) => d.name === name);
  if (!found) {
    throw new TributaryError(
      'NOT_FOUND',
      `unknown connector ${name}; connectors: ${definitions.map((d) => d.name).join(', ')}`,
    );
  }
  return found;
}

/** Validates options for `name`; CONFIG_INVALID lists every problem with its path. */
export function parseConnectorOptions(name: string, options: unknown): unknown {
  const result = getConnector(name).options.safeParse(options);
  if (!result.success) {
    throw new TributaryError(
      'CONFIG_INVALID',
      `${name} options: ${result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
      {
        details: {
          connector: name,
          issues: result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
        },
      },
    );
  }
  return result.data;
}

/** JSON Schema (draft 2020-12) of a connector's options as a client writes them (defaults optional). */
export function connectorJsonSchema(name: string): Record<string, unknown> {
  return z.toJSONSchema(getConnector(name).options, { io: 'input', unrepresentable: 'any' });
}

interface JsonSchemaNode {
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  properties?: Record<string, JsonSchemaNode>;
  required?: string[];
  items?: JsonSchemaNode;
  oneOf?: JsonSchemaNode[];
  anyOf?: JsonSchemaNode[];
  additionalProperties?: JsonSchemaNode | boolean;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  pattern?: string;
}

function typeText(node: JsonSchemaNode): string {
  if (node.enum) return node.enum.map((v) => `\`${String(v)}\``).join(' \\| ');
  if (node.const !== undefined) return `\`${JSON.stringify(node.const)}\``;
  const variants = node.oneOf ?? node.anyOf;
  if (variants) {
    // Discriminated unions read better as their tags: `type`: none | page | cursor.
    const tags = variants.map((v) =>
      Object.entries(v.properties ?? {}).find(([, p]) => p.const !== undefined),
    );
    if (tags.every((t) => t !== undefined) && new Set(tags.map((t) => t[0])).size === 1) {
      return `object with \`${tags[0][0]}\`: ${tags.map((t) => `\`${String(t[1].const as string)}\``).join(' \\| ')}`;
    }
    return variants.map(typeText).join(' \\| ');
  }
  if (node.type === 'array') return `${node.items ? typeText(node.items) : 'any'}[]`;
  if (node.type === 'object' && node.properties) return 'object';
  if (node.type === 'object' && typeof node.additionalProperties === 'object')
    return `map of ${typeText(node.additionalProperties)}`;
  if (Array.isArray(node.type)) return node.type.join(' \\| ');
  return node.type ?? 'any';
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function optionRows(node: JsonSchemaNode, prefix: string, rows: string[]): void {
  const required = new Set(node.required ?? []);
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const name = `${prefix}${key}`;
    const defaultText = child.default === undefined ? '' : `\`${JSON.stringify(child.default)}\``;
    const limits: string[] = [];
    if (child.minimum !== undefined) limits.push(`≥ ${child.minimum}`);
    if (child.maximum !== undefined && child.maximum < Number.MAX_SAFE_INTEGER)
      limits.push(`≤ ${child.maximum}`);
    const description = [child.description ?? '', limits.length > 0 ? `(${limits.join(', ')})` : '']
      .filter(Boolean)
      .join(' ');
    rows.push(
      `| \`${name}\` | ${typeText(child)} | ${required.has(key) && child.default === undefined ? 'yes' : ''} | ${defaultText} | ${escapeCell(description)} |`,
    );
    if (child.properties) optionRows(child, `${name}.`, rows);
    for (const variant of child.oneOf ?? child.anyOf ?? []) {
      if (!variant.properties) continue;
      const discriminator = Object.entries(variant.properties).find(([, p]) => p.const !== undefined);
      const label = discriminator
        ? `${name} (${discriminator[0]}=${String(discriminator[1].const)}).`
        : `${name}.`;
      const rest: JsonSchemaNode = {
        ...variant,
        properties: Object.fromEntries(
          Object.entries(variant.properties).filter(([k]) => k !== discriminator?.[0]),
        ),
      };
      optionRows(rest, label, rows);
    }
  }
}

/**
 * README-ready markdown documenting every connector's options, generated from the zod schemas.
 *
 * @example
 * console.log(connectorDocs()); // paste into README.md
 */
export function connectorDocs(): string {
  const parts: string[] = [
    '## Connectors',
    '',
    'Options are validated by one schema per connector (also served as JSON Schema to the API and dashboard).',
    '',
  ];
  for (const definition of definitions) {
    const schema = connectorJsonSchema(definition.name) as JsonSchemaNode;
    const rows: string[] = [];
    optionRows(schema, '', rows);
    parts.push(
      `### ${definition.title} (\`${definition.name}\`, ${definition.kind})`,
      '',
      definition.description,
      '',
    );
    parts.push('| option | type | required | default | description |', '|---|---|---|---|---|', ...rows, '');
  }
  return parts.join('\n');
}
