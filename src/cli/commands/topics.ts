import type { Command } from 'commander';
import { dataDirPaths, TributaryError, limits } from '../../core/index.js';
import {
  AvroSerde,
  inspectPartition,
  repairPartition,
  openLog,
  openSchemaRegistry,
  type Log,
  type LogRecord,
  type ProducerRecord,
} from '../../log/index.js';
import type { CliContext } from '../context.js';

const decoder = new TextDecoder('utf-8');

/** A record with key and value already decoded as UTF-8 (what `topics tail` prints). */
export interface TextRecord {
  topic: string;
  partition: number;
  offset: number;
  timestamp: number;
  key: string | null;
  value: string | null;
}

/** `{topic, partition, offset, timestamp, key, value}` with `value` parsed when it is JSON. */
export function textRecordToJson(record: TextRecord): Record<string, unknown> {
  let value: unknown = null;
  if (record.value !== null) {
    try {
      value = JSON.parse(record.value);
    } catch {
      value = record.value;
    }
  }
  return {
    topic: record.topic,
    partition: record.partition,
    offset: record.offset,
    timestamp: record.timestamp,
    key: record.key,
    value,
  };
}

/** `{topic, partition, offset, timestamp, key, value}` with `value` parsed when it is JSON. */
export function recordToJson(record: LogRecord): Record<string, unknown> {
  return textRecordToJson(toText(record));
}

function toText(record: LogRecord, serde?: AvroSerde): TextRecord {
  return {
    topic: record.topic,
    partition: record.partition,
    offset: record.offset,
    timestamp: record.timestamp,
    key: record.key === null ? null : decoder.decode(record.key),
    value: record.value === null ? null : (serde?.jsonText(record.value) ?? decoder.decode(record.value)),
  };
}

/**
 * The records as text, Avro values (Confluent wire format) as JSON: their schemas are looked up by
 * id in the schema registry first (once per id).
 */
async function recordsAsText(records: LogRecord[], serde: AvroSerde): Promise<TextRecord[]> {
  await serde.prepare(records.map((r) => r.value));
  return records.map((r) => toText(r, serde));
}

const isoPattern = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** Epoch ms from a field value: a number of epoch ms, or an ISO-8601 string. */
export function parseTimestamp(value: unknown): number | string {
  if (typeof value === 'number') {
    return Number.isSafeInteger(value) && value >= 0
      ? value
      : `epoch milliseconds must be a non-negative integer, got ${value}`;
  }
  if (typeof value === 'string') {
    if (/^\d+$/.test(value)) return Number(value);
    if (!isoPattern.test(value))
      return `expected epoch milliseconds or an ISO-8601 date-time, got ${JSON.stringify(value)}`;
    const ms = Date.parse(value);
    return Number.isNaN(ms) ? `not a valid date-time: ${JSON.stringify(value)}` : ms;
  }
  return `expected epoch milliseconds or an ISO-8601 string, got ${value === null ? 'null' : typeof value}`;
}

export interface NdjsonOptions {
  topic: string;
  keyField?: string | undefined;
  timestampField?: string | undefined;
  /** Name of the input in error messages. */
  source?: string;
}

/**
 * Parses NDJSON into producer records, all or nothing: the first bad line throws BAD_RECORD naming
 * the line and the reason, before anything is appended. Blank lines are skipped. The value is the
 * line's text as given; the key (from `keyField`, missing or null = no key) and the timestamp (from
 * `timestampField`, required when set) are read from the parsed object.
 */
export function parseNdjson(text: string, options: NdjsonOptions): ProducerRecord[] {
  const source = options.source ?? 'stdin';
  const records: ProducerRecord[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, '');
    if (line.trim() === '') continue;
    const where = `${source} line ${i + 1}`;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (error) {
      throw new TributaryError(
        'BAD_RECORD',
        `${where}: invalid JSON: ${(error as Error).message}; nothing was appended`,
        {
          details: { line: i + 1 },
        },
      );
    }
    const record: ProducerRecord = { topic: options.topic, value: line };
    if (options.keyField !== undefined || options.timestampField !== undefined) {
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        throw new TributaryError(
          'BAD_RECORD',
          `${where}: expected a JSON object to read fields from; nothing was appended`,
          {
            details: { line: i + 1 },
          },
        );
      }
      const object = parsed as Record<string, unknown>;
      if (options.keyField !== undefined) {
        const key = object[options.keyField];
        if (key !== undefined && key !== null) {
          if (typeof key === 'object') {
            throw new TributaryError(
              'BAD_RECORD',
              `${where}: key field "${options.keyField}" must be a string or number, got ${Array.isArray(key) ? 'an array' : 'an object'}; nothing was appended`,
              { details: { line: i + 1, field: options.keyField } },
            );
          }
          record.key = typeof key === 'string' ? key : JSON.stringify(key);
        }
      }
      if (options.timestampField !== undefined) {
        const raw = object[options.timestampField];
        if (raw === undefined) {
          throw new TributaryError(
            'BAD_RECORD',
            `${where}: timestamp field "${options.timestampField}" is missing; nothing was appended`,
            {
              details: { line: i + 1, field: options.timestampField },
            },
          );
        }
        const timestamp = parseTimestamp(raw);
        if (typeof timestamp === 'string') {
          throw new TributaryError(
            'BAD_RECORD',
            `${where}: timestamp field "${options.timestampField}": ${timestamp}; nothing was appended`,
            {
              details: { line: i + 1, field: options.timestampField },
            },
          );
        }
        record.timestamp = timestamp;
      }
    }
    records.push(record);
  }
  return records;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function positiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1)
      throw new TributaryError('USAGE', `${name} must be a positive integer, got ${JSON.stringify(value)}`);
    return n;
  };
}

/**
 * Runs a command on the log `openLog` selects. For the embedded log that is the data dir's log
 * server when `tributary up` or `tributary log serve` runs (the process holding the lock), else the
 * directory opened here; the command does the same either way.
 */
/** The embedded log directory of the data dir (inspect and repair work on its files directly). */
function embeddedLogDir(context: CliContext): string {
  const config = context.config();
  if (config.log.startsWith('tributary://') || config.log.startsWith('kafka://')) {
    throw new TributaryError(
      'USAGE',
      `topics inspect/repair work on the embedded log's files; log = ${config.log} is not embedded`,
    );
  }
  return dataDirPaths(config.dataDir).log;
}

function nonNegativeInt(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0)
      throw new TributaryError('USAGE', `${flag} must be a whole number >= 0, got ${JSON.stringify(value)}`);
    return n;
  };
}

async function withLog<T>(context: CliContext, run: (log: Log) => Promise<T>): Promise<T> {
  const log = await openLog(context.config(), { retentionCheckMs: 0 });
  try {
    return await run(log);
  } finally {
    await log.close();
  }
}

const out = (line: string) => process.stdout.write(`${line}\n`);

function recordBytes(record: ProducerRecord): number {
  const size = (field: ProducerRecord['key']) =>
    field === null || field === undefined
      ? 0
      : typeof field === 'string'
        ? Buffer.byteLength(field)
        : field.byteLength;
  return size(record.key) + size(record.value);
}

/** Appends in order, in batches under the bounds above; an empty input still creates the topic. */
async function produce(log: Log, topic: string, records: ProducerRecord[]): Promise<void> {
  await log.ensureTopic(topic, { partitions: 1 });
  const appends: Promise<unknown>[] = [];
  let batch: ProducerRecord[] = [];
  let batchBytes = 0;
  for (const record of records) {
    const size = recordBytes(record);
    if (
      batch.length > 0 &&
      (batch.length >= limits.produceBatchRecordsMax || batchBytes + size > limits.produceBatchBytesMax)
    ) {
      appends.push(log.append(batch));
      batch = [];
      batchBytes = 0;
    }
    batch.push(record);
    batchBytes += size;
  }
  if (batch.length > 0) appends.push(log.append(batch));
  await Promise.all(appends);
}

interface TailOptions {
  from: 'earliest' | 'latest';
  group?: string;
  limit?: number;
  follow?: boolean;
  serde: AvroSerde;
}

/** Prints records as JSON lines up to a limit; returns the records printed. */
function printer(limit: number) {
  let printed = 0;
  return {
    get printed() {
      return printed;
    },
    print(records: TextRecord[]): TextRecord[] {
      const shown = records.slice(0, Math.max(0, limit - printed));
      printed += shown.length;
      if (shown.length > 0)
        process.stdout.write(`${shown.map((r) => JSON.stringify(textRecordToJson(r))).join('\n')}\n`);
      return shown;
    },
  };
}

/** Tail as a consumer group member, committing exactly what was printed. */
async function tailGroup(log: Log, topic: string, group: string, opts: TailOptions): Promise<void> {
  const limit = opts.limit ?? Infinity;
  const description = await log.describeTopic(topic);
  const ends = new Map(description.partitions.map((p) => [p.partition, p.endOffset]));
  const out = printer(limit);
  const consumer = log.consumer({ group, topics: [topic], from: opts.from });
  try {
    for (;;) {
      const records = await consumer.poll({
        waitMs: opts.follow ? 1000 : 200,
        maxRecords: Math.min(1000, limit - out.printed),
      });
      const shown = out.print(await recordsAsText(records, opts.serde));
      if (shown.length > 0) {
        // Commit exactly what was printed (a --limit may cut a poll short).
        const next = new Map<number, number>();
        for (const r of shown) next.set(r.partition, r.offset + 1);
        await consumer.commit([...next].map(([partition, offset]) => ({ topic, partition, offset })));
      }
      if (out.printed >= limit) break;
      const caughtUp = consumer
        .assignment()
        .every((tp) => consumer.position(tp) >= (ends.get(tp.partition) ?? 0));
      if (!opts.follow && records.length === 0 && caughtUp) break;
    }
  } finally {
    await consumer.close();
  }
}

/** Tail without a group: every partition from its start (or end), until caught up unless --follow. */
async function tailPartitions(log: Log, topic: string, opts: TailOptions): Promise<void> {
  const limit = opts.limit ?? Infinity;
  const description = await log.describeTopic(topic);
  const ends = new Map(description.partitions.map((p) => [p.partition, p.endOffset]));
  const out = printer(limit);
  const positions = new Map(
    description.partitions.map((p) => [p.partition, opts.from === 'earliest' ? p.startOffset : p.endOffset]),
  );
  for (;;) {
    let any = false;
    for (const [partition, offset] of positions) {
      if (out.printed >= limit) break;
      if (!opts.follow && offset >= (ends.get(partition) ?? 0)) continue;
      const records = await log.fetch(topic, partition, offset, {
        maxRecords: Math.min(1000, limit - out.printed),
      });
      if (records.length > 0) {
        any = true;
        out.print(await recordsAsText(records, opts.serde));
        positions.set(partition, records[records.length - 1].offset + 1);
      }
    }
    if (out.printed >= limit) break;
    if (!any) {
      if (!opts.follow) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

export function registerTopicsCommands(program: Command, context: CliContext): void {
  const topics = program
    .command('topics')
    .description(
      'manage and inspect log topics (embedded log or Kafka); while `tributary up` or `tributary log serve` runs, through its log server',
    );

  topics
    .command('list')
    .description('print topic names, one per line')
    .action(() => withLog(context, async (log) => (await log.listTopics()).forEach((t) => out(t))));

  topics
    .command('create <topic>')
    .description('create a topic')
    .option('--partitions <n>', 'number of partitions', positiveInt('--partitions'), 1)
    .option('--retention-ms <ms>', 'delete data older than this (-1 = forever; default from config)')
    .option('--retention-bytes <bytes>', 'keep about this many bytes per partition (-1 = unbounded)')
    .action((topic: string, opts: { partitions: number; retentionMs?: string; retentionBytes?: string }) =>
      withLog(context, async (log) => {
        await log.createTopic(topic, {
          partitions: opts.partitions,
          ...(opts.retentionMs === undefined ? {} : { retentionMs: Number(opts.retentionMs) }),
          ...(opts.retentionBytes === undefined ? {} : { retentionBytes: Number(opts.retentionBytes) }),
        });
        out(`created topic ${topic} with ${opts.partitions} partition${opts.partitions === 1 ? '' : 's'}`);
      }),
    );

  topics
    .command('describe <topic>')
    .description('print partitions with start/end offsets and sizes, and retention, as JSON')
    .action((topic: string) =>
      withLog(context, async (log) => {
        out(JSON.stringify(await log.describeTopic(topic), null, 2));
      }),
    );

  topics
    .command('inspect <topic>')
    .description(
      'verify every batch of one partition of the embedded log (checksums, offsets) and print the first damage and what a repair would drop, as JSON; needs the log stopped (not under `tributary up`)',
    )
    .requiredOption('--partition <n>', 'the partition to inspect', nonNegativeInt('--partition'))
    .action(async (topic: string, opts: { partition: number }) => {
      const report = await inspectPartition(embeddedLogDir(context), topic, opts.partition);
      out(JSON.stringify(report, null, 2));
      if (report.damaged) process.exitCode = 1;
    });

  topics
    .command('repair <topic>')
    .description(
      'truncate a damaged partition of the embedded log after its last intact batch (the rest of the damaged segment and every later segment are deleted); without --truncate-after-last-good it only prints what it would drop',
    )
    .requiredOption('--partition <n>', 'the partition to repair', nonNegativeInt('--partition'))
    .option('--truncate-after-last-good', 'do it: drop everything after the last intact batch')
    .action(async (topic: string, opts: { partition: number; truncateAfterLastGood?: boolean }) => {
      const logDir = embeddedLogDir(context);
      const report = await (opts.truncateAfterLastGood
        ? repairPartition(logDir, topic, opts.partition)
        : inspectPartition(logDir, topic, opts.partition));
      if (!report.damaged) {
        out(
          `${topic} partition ${opts.partition} is intact (ends at offset ${report.lastGoodEndOffset}); nothing to repair`,
        );
        return;
      }
      const { drop } = report;
      const damage = report.segments.find((s) => s.damage !== undefined)!;
      const end = report.segments[report.segments.length - 1];
      const what =
        `${drop.bytes} bytes after offset ${report.lastGoodEndOffset}` +
        ` (damage in ${damage.file} at byte ${damage.damage!.position}: ${damage.damage!.reason}` +
        `; the partition's files ran to at least offset ${Math.max(end.goodEndOffset, end.baseOffset)})` +
        (drop.segmentsTruncated.length > 0 ? `; truncates ${drop.segmentsTruncated.join(', ')}` : '') +
        (drop.segmentsDeleted.length > 0 ? `; deletes ${drop.segmentsDeleted.join(', ')}` : '');
      if (opts.truncateAfterLastGood) {
        out(
          `repaired ${topic} partition ${opts.partition}: dropped ${what}. It now ends at offset ${report.lastGoodEndOffset}.`,
        );
        return;
      }
      out(`would drop ${what}.`);
      out(
        'nothing was changed; run again with --truncate-after-last-good to drop it (restore from a backup instead to keep it)',
      );
      process.exitCode = 1;
    });

  topics
    .command('produce <topic>')
    .description(
      'append NDJSON records from stdin (one record per line; the line is the value). All lines are validated first: a bad line appends nothing. A missing topic is created with 1 partition (like Kafka auto-create).',
    )
    .option('--key-field <field>', 'take the record key from this field (missing or null = no key)')
    .option('--timestamp-field <field>', 'take the timestamp from this field: epoch ms or ISO-8601')
    .action(async (topic: string, opts: { keyField?: string; timestampField?: string }) => {
      // Validated before the log is opened: a bad line appends nothing.
      const records = parseNdjson(await readStdin(), {
        topic,
        keyField: opts.keyField,
        timestampField: opts.timestampField,
      });
      await withLog(context, async (log) => {
        await produce(log, topic, records);
        out(`appended ${records.length} record${records.length === 1 ? '' : 's'} to ${topic}`);
      });
    });

  topics
    .command('tail <topic>')
    .description(
      'print records as JSON lines {topic, partition, offset, timestamp, key, value}, Avro values (Confluent wire format) decoded to JSON through the schema registry; stops at the end of the topic unless --follow',
    )
    .option(
      '--from <position>',
      'earliest | latest (with --group: only for partitions the group never committed)',
      'earliest',
    )
    .option('--group <group>', 'read as a member of this consumer group and commit what was printed')
    .option('--limit <n>', 'stop after n records', positiveInt('--limit'))
    .option('--follow', 'keep waiting for new records')
    .action((topic: string, opts: { from: string; group?: string; limit?: number; follow?: boolean }) => {
      if (opts.from !== 'earliest' && opts.from !== 'latest') {
        throw new TributaryError(
          'USAGE',
          `--from must be earliest or latest, got ${JSON.stringify(opts.from)}`,
        );
      }
      const group = opts.group;
      const from = opts.from;
      return withLog(context, async (log) => {
        const registry = await openSchemaRegistry(context.config());
        try {
          const options: TailOptions = { ...opts, from, serde: new AvroSerde(registry) };
          await (group === undefined
            ? tailPartitions(log, topic, options)
            : tailGroup(log, topic, group, options));
        } finally {
          await registry.close();
        }
      });
    });
}
