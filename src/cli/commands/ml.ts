import { createReadStream } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { Command } from 'commander';
import { dataDirPaths, resolveInside, TributaryError } from '../../core/index.js';
import {
  HybridIndex,
  ask,
  createEmbedder,
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

export function renderAnswer(result: Answer): string {
  const lines = [result.answer];
  if (result.citations.length > 0) {
    lines.push('', 'Sources:');
    result.citations.forEach((c, i) =>
      lines.push(`  [${i + 1}] ${c.filename} p.${c.page} (document ${c.document_id}, chunk ${c.chunk_id})`),
    );
  }
  return `${lines.join('\n')}\n`;
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
    .description("Answer a question from a pipeline's document index, with citations")
    .argument('<question>', 'the question')
    .option('--pipeline <name>', 'pipeline whose index to query', 'documents')
    .option('--company <id>', 'tenant whose documents may be used (required)')
    .option('--product <name>', 'only chunks of this product')
    .option('--document <id>', 'only chunks of this document')
    .option('--since <date>', 'only chunks dated on or after this ISO date')
    .option('--until <date>', 'only chunks dated on or before this ISO date')
    .option('-k, --top <n>', 'chunks to retrieve', '5')
    .option('--format <format>', 'text | json', 'text')
    .action(
      async (
        question: string,
        options: {
          pipeline: string;
          company?: string;
          product?: string;
          document?: string;
          since?: string;
          until?: string;
          top: string;
          format: string;
        },
      ) => {
        if (options.format !== 'text' && options.format !== 'json') {
          throw new TributaryError('USAGE', `--format must be text or json, got ${options.format}`);
        }
        if (!options.company)
          throw new TributaryError(
            'USAGE',
            "--company is required: answers only ever use one company's documents",
          );
        const k = Number(options.top);
        if (!Number.isInteger(k) || k < 1 || k > 50)
          throw new TributaryError('USAGE', `--top must be an integer in [1, 50], got ${options.top}`);
        const config = context.config();
        const dir = resolveInside(dataDirPaths(config.dataDir).index, options.pipeline);
        const index = await HybridIndex.open(dir, { embedder: createEmbedder(config), readOnly: true });
        const llm = config.llmUrl
          ? { url: config.llmUrl, model: config.llmModel, apiKey: config.llmApiKey }
          : undefined;
        const streamText = options.format === 'text' && llm !== undefined;
        const result = await ask(index, question, {
          company: options.company,
          k,
          llm,
          filters: {
            product: options.product,
            documentId: options.document,
            dateFrom: options.since,
            dateTo: options.until,
          },
          onToken: streamText ? (piece) => process.stdout.write(piece) : undefined,
        });
        if (options.format === 'json') {
          await write(`${JSON.stringify({ answer: result.answer, citations: result.citations })}\n`);
        } else if (streamText) {
          await write(renderAnswer({ ...result, answer: '' }));
        } else {
          await write(renderAnswer(result));
        }
      },
    );
}
