import { createReadStream } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { Command } from 'commander';
import { TributaryError } from '../../core/index.js';
import {
  RetrievalIndex,
  createEmbedder,
  llmConfigOf,
  parseFilterArguments,
  retrievalIndexDir,
  createSentimentModel,
  type Answer,
  type SentimentModel,
} from '../../ml/index.js';
import type { CliContext } from '../context.js';

async function write(text: string, stream: NodeJS.WritableStream = process.stdout): Promise<void> {
  if (!stream.write(text)) await once(stream, 'drain');
}

interface SentimentOptions {
  input?: string;
  textField: string;
  dlq?: boolean;
  sentimentModel?: string;
}

interface Pending {
  lineNumber: number;
  record: Record<string, unknown>;
  text: string;
}

/**
 * Streams JSONL through a sentiment model, preserving order. Lines are scored in batches (one
 * call per batch lets a Hugging Face model batch on its side). Blank lines are skipped.
 */
export async function runSentiment(
  model: SentimentModel,
  input: Readable,
  options: { textField: string; dlq: boolean; source: string },
  out: NodeJS.WritableStream = process.stdout,
  err: NodeJS.WritableStream = process.stderr,
): Promise<{ scored: number; rejected: number }> {
  const lines = createInterface({ input, crlfDelay: Infinity });
  let batch: Pending[] = [];
  let scored = 0;
  let rejected = 0;
  let lineNumber = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    const results = await model.scoreBatch(batch.map((p) => p.text));
    let text = '';
    batch.forEach((p, i) => {
      const r = results[i];
      text += `${JSON.stringify({ ...p.record, sentiment_score: r.score, sentiment_label: r.label, sentiment_confidence: r.confidence })}\n`;
    });
    scored += batch.length;
    batch = [];
    await write(text, out);
  };
  const reject = async (raw: string, error: string) => {
    if (!options.dlq) {
      // Records before the bad line are written first, so the output is a clean prefix.
      await flush();
      throw new TributaryError('BAD_RECORD', `${options.source} line ${lineNumber}: ${error}`, {
        details: { line: lineNumber },
      });
    }
    rejected++;
    await write(`${JSON.stringify({ line: lineNumber, error, raw })}\n`, err);
  };
  for await (const raw of lines) {
    lineNumber++;
    if (raw.trim() === '') continue;
    let record: unknown;
    try {
      record = JSON.parse(raw);
    } catch (error) {
      await reject(raw, `not JSON: ${(error as Error).message}`);
      continue;
    }
    if (typeof record !== 'object' || record === null || Array.isArray(record)) {
      await reject(raw, 'not a JSON object');
      continue;
    }
    const value = (record as Record<string, unknown>)[options.textField];
    if (typeof value !== 'string') {
      await reject(
        raw,
        value === undefined
          ? `missing field "${options.textField}"`
          : `field "${options.textField}" is not a string`,
      );
      continue;
    }
    batch.push({ lineNumber, record: record as Record<string, unknown>, text: value });
    if (batch.length >= 256) await flush();
  }
  await flush();
  return { scored, rejected };
}

/** The answer, then one line per source: its number and cited fields (id, metadata), then its score. */
export function renderAnswer(result: Answer): string {
  const lines = [result.answer];
  if (result.citations.length > 0) {
    lines.push('', 'Sources:');
    result.citations.forEach((citation, i) => {
      const { score, text: _text, ...fields } = citation;
      const described = Object.entries(fields).map(([field, value]) => `${field}=${String(value)}`);
      lines.push(`  [${i + 1}] ${described.join(', ')} (score ${score.toFixed(4)})`);
    });
  }
  return `${lines.join('\n')}\n`;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

interface AskCliOptions {
  pipeline: string;
  filter: string[];
  company?: string;
  product?: string;
  top: string;
  format: string;
}

/**
 * `tributary ask`: opens `index/<pipeline>/` read-only and answers within the filters. The index's
 * saved schema says whether it has tenants; then one tenant is required (`--company`, or a
 * `--filter` on the tenant field).
 */
export async function runAsk(question: string, options: AskCliOptions, context: CliContext): Promise<void> {
  if (options.format !== 'text' && options.format !== 'json') {
    throw new TributaryError('USAGE', `--format must be text or json, got ${options.format}`);
  }
  const k = Number(options.top);
  if (!Number.isInteger(k) || k < 1 || k > 50)
    throw new TributaryError('USAGE', `--top must be an integer in [1, 50], got ${options.top}`);
  const filters = parseFilterArguments([
    ...options.filter,
    ...(options.product === undefined ? [] : [`product_id=${options.product}`]),
  ]);
  const config = context.config();
  const llm = llmConfigOf(config);
  const index = new RetrievalIndex({
    dir: retrievalIndexDir(config.dataDir, options.pipeline),
    embedder: createEmbedder(config),
    readOnly: true,
    llm,
  });
  const { tenantField } = await index.schema();
  if (options.company !== undefined) {
    if (tenantField === undefined)
      throw new TributaryError(
        'USAGE',
        `--company: the ${options.pipeline} index has no tenants; filter with --filter field=value`,
      );
    if (filters[tenantField] !== undefined && filters[tenantField] !== options.company)
      throw new TributaryError('USAGE', `--company and --filter ${tenantField}=… name different tenants`);
    filters[tenantField] = options.company;
  }
  if (tenantField !== undefined && filters[tenantField] === undefined)
    throw new TributaryError(
      'USAGE',
      `--company is required: the ${options.pipeline} index answers within one tenant (field ${tenantField}); give --company <id> or --filter ${tenantField}=<id>`,
    );
  const streamText = options.format === 'text' && llm !== undefined;
  const result = await index.ask(question, {
    filters,
    k,
    ...(streamText ? { onToken: (piece: string) => process.stdout.write(piece) } : {}),
  });
  if (options.format === 'json') {
    await write(`${JSON.stringify({ answer: result.answer, citations: result.citations })}\n`);
  } else if (streamText) {
    await write(renderAnswer({ ...result, answer: '' }));
  } else {
    await write(renderAnswer(result));
  }
}

export function registerMlCommands(program: Command, context: CliContext): void {
  program
    .command('sentiment')
    .description(
      'Score JSONL records (stdin or --input) and print them with sentiment_score, sentiment_label, sentiment_confidence',
    )
    .option('--input <file>', 'JSONL file to read (default: standard input)')
    .option('--text-field <name>', 'field holding the text', 'text')
    .option('--dlq', 'write bad lines to stderr as {line, error, raw} and continue instead of failing')
    .option('--sentiment-model <spec>', 'vader | hf:<model-id> | local model directory (default from config)')
    .action(async (options: SentimentOptions) => {
      const config = context.config({ sentimentModel: options.sentimentModel });
      const model = createSentimentModel(config.sentimentModel);
      const input = options.input ? createReadStream(options.input) : process.stdin;
      if (options.input) {
        await new Promise<void>((resolve, reject) => {
          (input as ReturnType<typeof createReadStream>).once('open', () => resolve());
          input.once('error', (error: Error) =>
            reject(
              new TributaryError('NOT_FOUND', `cannot read --input ${options.input}: ${error.message}`, {
                cause: error,
              }),
            ),
          );
        });
      }
      await runSentiment(model, input, {
        textField: options.textField,
        dlq: options.dlq ?? false,
        source: options.input ?? 'stdin',
      });
    });

  program
    .command('ask')
    .description("Answer a question from a pipeline's retrieval index (index/<pipeline>/), with citations")
    .argument('<question>', 'the question')
    .option('--pipeline <name>', 'pipeline whose index to query', 'documents')
    .option(
      '--filter <condition>',
      'field=value (repeat a field for any of), field>=value, field<=value; repeatable',
      collect,
      [],
    )
    .option('--company <id>', "the tenant (e.g. documents' company_id) whose passages may be used")
    .option('--product <id>', 'shorthand for --filter product_id=<id> (reviews)')
    .option('-k, --top <n>', 'passages to retrieve', '5')
    .option('--format <format>', 'text | json', 'text')
    .action((question: string, options: AskCliOptions) => runAsk(question, options, context));
}
