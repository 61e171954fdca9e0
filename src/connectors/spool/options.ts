import { z } from 'zod';

/** Options of the spool-directory source: the one schema behind validation, docs, API and forms. */
export const spoolOptionsSchema = z
  .object({
    dir: z
      .string()
      .min(1)
      .describe('Directory to watch. Files appear here complete (stable size or atomic rename).'),
    topic: z.string().min(1).optional().describe('Topic the records are appended to (give topic or table).'),
    table: z
      .string()
      .regex(/^(bronze|silver|gold)\.[A-Za-z_][A-Za-z0-9_]*$/, 'layer.name, e.g. bronze.reviews')
      .optional()
      .describe(
        'Lake table each file is committed to atomically (one commit per file; give topic or table).',
      ),
    format: z
      .enum(['auto', 'txt', 'jsonl', 'csv', 'json'])
      .default('auto')
      .describe(
        'Record format; auto picks it from the extension (.txt .log .jsonl .ndjson .csv .json, each optionally .gz).',
      ),
    pollIntervalMs: z
      .number()
      .int()
      .min(10)
      .max(3_600_000)
      .default(500)
      .describe('How often the directory is scanned.'),
    stableMs: z
      .number()
      .int()
      .min(0)
      .max(3_600_000)
      .default(1000)
      .describe(
        'A file is picked up once its size and mtime have not changed for this long (0 = writers rename atomically).',
      ),
    onComplete: z
      .enum(['rename', 'delete', 'move'])
      .default('rename')
      .describe(
        'What happens to a fully delivered file: rename to <name><completedSuffix>, delete, or move to completedDir.',
      ),
    completedSuffix: z
      .string()
      .min(1)
      .default('.COMPLETED')
      .describe('Suffix of delivered files when onComplete = rename.'),
    completedDir: z
      .string()
      .default('completed')
      .describe('Where delivered files go when onComplete = move (relative to dir).'),
    failedDir: z
      .string()
      .default('failed')
      .describe('Where refused files go, each with a <name>.reason file (relative to dir).'),
    stateFile: z
      .string()
      .optional()
      .describe(
        'Position-tracking state file; default <dir>/.tributary-spool.state.json (a dotfile, so never ingested).',
      ),
    batchRecords: z.number().int().min(1).max(100_000).default(5000).describe('Records per log append.'),
    batchBytes: z
      .number()
      .int()
      .min(1024)
      .max(64 * 1024 * 1024)
      .default(4 * 1024 * 1024)
      .describe('Bytes per log append (whichever of batchRecords/batchBytes is reached first).'),
    keyField: z
      .string()
      .optional()
      .describe(
        'For structured records: field whose value becomes the record key; several comma-separated names take the first one present (files of different layouts in one directory).',
      ),
    badRecords: z
      .enum(['refuse-file', 'forward'])
      .default('refuse-file')
      .describe(
        "A malformed record inside a file (a JSON line that does not parse, a CSV row with the wrong field count): refuse-file moves the whole file to failed/ (Flume's behaviour, without stopping); forward appends it as read with a 'tributary.decode-error' header naming file, line and reason, for the pipeline to quarantine, and delivers the rest of the file.",
      ),
    csvDelimiter: z.string().length(1).default(',').describe('CSV field delimiter.'),
    jsonFileBytesMax: z
      .number()
      .int()
      .min(1)
      .default(256 * 1024 * 1024)
      .describe('Largest .json (array) file accepted; NDJSON has no limit.'),
    completedNamesMax: z
      .number()
      .int()
      .min(0)
      .max(1_000_000)
      .default(10_000)
      .describe('How many delivered file names are remembered to detect a reused name.'),
  })
  .strict()
  .refine((o) => (o.topic === undefined) !== (o.table === undefined), {
    message: 'give exactly one of topic or table',
    path: ['topic'],
  });

export type SpoolOptions = z.infer<typeof spoolOptionsSchema>;
export type SpoolOptionsInput = z.input<typeof spoolOptionsSchema>;
