import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { TributaryError, openDataDir, type TributaryConfig } from '../../core/index.js';
import { openLakeFromConfig, type Lake } from '../../lake/index.js';
import { openLog, type Log } from '../../log/index.js';
import {
  createDocumentsRuntime,
  documentStages,
  ensureDocumentTopics,
  ingestDocument,
  runDailyReport,
  runStagesOnce,
  startStages,
  stopStages,
  type DocumentStage,
} from '../../pipelines/documents/index.js';
import { commandGroup, type CliContext, type RegisterCommands } from '../context.js';
import { callPlatform, runningPlatform } from '../remote.js';

interface Opened {
  config: TributaryConfig;
  log: Log;
  lake: Lake;
  close(): Promise<void>;
}

async function open(context: CliContext): Promise<Opened> {
  const config = context.config();
  await openDataDir(config.dataDir);
  const log = await openLog(config);
  const lake = await openLakeFromConfig(config);
  return {
    config,
    log,
    lake,
    async close() {
      await lake.close();
      await log.close();
    },
  };
}

function parseStages(text: string): DocumentStage[] {
  if (text === 'all') return [...documentStages];
  const stages = text.split(',').map((s) => s.trim());
  for (const stage of stages) {
    if (!(documentStages as readonly string[]).includes(stage)) {
      throw new TributaryError(
        'USAGE',
        `--stage ${JSON.stringify(stage)} is not one of ${documentStages.join(', ')}, all`,
      );
    }
  }
  return stages as DocumentStage[];
}

/**
 * `tributary ingest documents <files…> --company <id>` (the ingest service from the command line),
 * `tributary worker documents --stage docproc|embedding|analytics|sink[,…]|all [--once]` (one
 * microservice of seed 004 per process, or several), and
 * `tributary documents report [--date YYYY-MM-DD]` (the daily Spark report).
 */
export const registerDocumentsCommands: RegisterCommands = (program, context) => {
  commandGroup(program, 'ingest', 'Put data into the platform')
    .command('documents')
    .description(
      'Upload documents (PDF, TXT, Markdown, HTML, DOCX) into the documents pipeline; prints {file, document_id} per file',
    )
    .argument('<files...>', 'documents to upload')
    .requiredOption('--company <id>', 'company the documents belong to')
    .option('--metadata <json>', 'JSON object stored with each document')
    .action(async (files: string[], options: { company: string; metadata?: string }) => {
      let metadata: Record<string, unknown> | undefined;
      if (options.metadata !== undefined) {
        try {
          metadata = JSON.parse(options.metadata) as Record<string, unknown>;
        } catch (error) {
          throw new TributaryError('USAGE', `--metadata is not JSON: ${(error as Error).message}`);
        }
        if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata))
          throw new TributaryError('USAGE', '--metadata must be a JSON object');
      }
      const read = async (file: string): Promise<Uint8Array> => {
        try {
          return await readFile(file);
        } catch (error) {
          throw new TributaryError('NOT_FOUND', `${file}: cannot read: ${(error as Error).message}`, {
            cause: error,
          });
        }
      };
      const config = context.config();
      // While `tributary up` holds the embedded log, upload through its API (`POST /upload`), which
      // stores the original and appends to documents.raw exactly as the local path does.
      const platform = config.log === 'embedded' ? await runningPlatform(config.dataDir) : null;
      if (platform) {
        for (const file of files) {
          const form = new FormData();
          form.set('company_id', options.company);
          if (metadata) form.set('metadata', JSON.stringify(metadata));
          form.set('file', new Blob([new Uint8Array(await read(file))]), path.basename(file));
          const result = await callPlatform<{ document_id: string }>(platform, 'POST', '/upload', { form });
          // The API answers with the id only; where the original is stored stays with the server.
          process.stdout.write(`${JSON.stringify({ file, document_id: result.document_id })}\n`);
        }
        return;
      }
      const opened = await open(context);
      try {
        for (const file of files) {
          const bytes = await read(file);
          const result = await ingestDocument(
            { log: opened.log, storage: opened.lake.storage },
            {
              companyId: options.company,
              filename: path.basename(file),
              bytes,
              ...(metadata ? { metadata } : {}),
            },
          );
          process.stdout.write(
            `${JSON.stringify({ file, document_id: result.document_id, s3_path: result.s3_path })}\n`,
          );
        }
      } finally {
        await opened.close();
      }
    });

  commandGroup(program, 'worker', 'Run pipeline stages as worker processes')
    .command('documents')
    .description(
      'Run stages of the documents pipeline in this process until SIGTERM/SIGINT (or once with --once)',
    )
    .requiredOption('--stage <stages>', `${documentStages.join(' | ')} (comma-separated) or all`)
    .option('--once', 'bounded run: process what the topics hold now, commit, exit')
    .option('--checkpoint-interval-ms <ms>', 'wall time between checkpoints (default 10000)')
    .action(async (options: { stage: string; once?: boolean; checkpointIntervalMs?: string }) => {
      const checkpointIntervalMs =
        options.checkpointIntervalMs === undefined ? undefined : Number(options.checkpointIntervalMs);
      if (
        checkpointIntervalMs !== undefined &&
        (!Number.isInteger(checkpointIntervalMs) || checkpointIntervalMs < 10)
      ) {
        throw new TributaryError(
          'USAGE',
          `--checkpoint-interval-ms must be an integer >= 10, got ${options.checkpointIntervalMs}`,
        );
      }
      const stages = parseStages(options.stage);
      const opened = await open(context);
      try {
        await ensureDocumentTopics(opened.log);
        const runtime = createDocumentsRuntime({
          config: opened.config,
          log: opened.log,
          lake: opened.lake,
          ...(checkpointIntervalMs ? { checkpointIntervalMs } : {}),
        });
        const dataDir = opened.config.dataDir;
        if (options.once) {
          const statuses = await runStagesOnce(runtime.jobs, { dataDir }, stages);
          for (const status of statuses)
            process.stdout.write(
              `${JSON.stringify({ job: status.job, state: status.state, counters: status.counters })}\n`,
            );
          if (statuses.some((s) => s.state !== 'finished')) process.exitCode = 1;
        } else {
          const controller = new AbortController();
          const stop = () => controller.abort();
          process.once('SIGTERM', stop);
          process.once('SIGINT', stop);
          const handles = startStages(runtime.jobs, { dataDir, signal: controller.signal }, stages);
          process.stderr.write(
            `documents worker: running ${handles.map((h) => h.job.name).join(', ')} (pid ${process.pid})\n`,
          );
          // A job that fails ends the worker (non-zero exit) so a supervisor restarts it from its checkpoint.
          await Promise.race([
            new Promise<void>((resolve) =>
              controller.signal.addEventListener('abort', () => resolve(), { once: true }),
            ),
            ...handles.map((h) => h.done),
          ]);
          await stopStages(handles);
        }
        await runtime.index.save();
      } finally {
        await opened.close();
      }
    });

  commandGroup(program, 'documents', 'The documents pipeline (seed 004)')
    .command('report')
    .description('Daily report: chunks per company and document for one UTC day → gold.daily_chunk_count')
    .option('--date <YYYY-MM-DD>', 'the day (default yesterday, UTC)')
    .action(async (options: { date?: string }) => {
      const opened = await open(context);
      try {
        const result = await runDailyReport(
          opened.lake,
          options.date === undefined ? {} : { date: options.date },
        );
        process.stdout.write(`${JSON.stringify(result)}\n`);
      } finally {
        await opened.close();
      }
    });
};
