import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { TributaryError, limits } from '../../core/index.js';
import { CsvParser } from './csv.js';

/** Record formats understood by the spool source, the file import and the ingest endpoint. */
export const recordFormats = ['txt', 'jsonl', 'csv', 'json'] as const;
export type RecordFormat = (typeof recordFormats)[number];

/** One decoded record: `value` is the record's text (JSON for structured formats). */
export interface DecodedRecord {
  /** 0-based record index within the file (deterministic; used for resume and record ids). */
  index: number;
  /** 1-based line the record starts on (for .json arrays: 1). */
  line: number;
  /** For txt the line, for jsonl the line as written, for csv/json a JSON object text. */
  value: string;
  /**
   * txt and jsonl: `value`'s UTF-8 bytes, a view of the bytes read (the line was checked to be
   * UTF-8, so they are what encoding `value` again would give). A caller appending the record to
   * the log passes them instead of encoding the text a second time.
   */
  bytes?: Uint8Array;
  /** Parsed value for structured formats (csv object, json element, jsonl value). */
  parsed?: unknown;
  /**
   * Set (with `badRecords: 'yield'`) on a record that could not be decoded: why, naming the line.
   * `value` is then the record's text as read (for CSV, its fields joined by the delimiter).
   */
  error?: string;
}

/** Format and compression from a file name: `x.ndjson.gz` → { format: 'jsonl', gzip: true }. */
export function formatFromName(name: string): { format: RecordFormat; gzip: boolean } | null {
  let base = name.toLowerCase();
  const gzip = base.endsWith('.gz');
  if (gzip) base = base.slice(0, -3);
  const ext = base.slice(base.lastIndexOf('.') + 1);
  switch (ext) {
    case 'txt':
    case 'log':
      return { format: 'txt', gzip };
    case 'jsonl':
    case 'ndjson':
      return { format: 'jsonl', gzip };
    case 'csv':
      return { format: 'csv', gzip };
    case 'json':
      return { format: 'json', gzip };
    default:
      return null;
  }
}

export interface DecodeOptions {
  format: RecordFormat;
  gzip: boolean;
  /** Name used in error messages. */
  name: string;
  /** Parse structured records (jsonl values) even when only the text is needed. Default true. */
  parse?: boolean;
  /** Largest .json array file decoded (it is parsed whole). */
  jsonFileBytesMax?: number;
  csvDelimiter?: string;
  /**
   * A malformed record (a JSON line that does not parse, a CSV row with the wrong number of fields):
   * 'throw' (default) fails the whole file; 'yield' passes it on with `error` set, so the caller can
   * quarantine it and go on with the rest of the file. Errors of the file itself (not UTF-8, a bad
   * gzip stream, a CSV header) always throw.
   */
  badRecords?: 'throw' | 'yield';
  /**
   * Largest record in bytes (a line of txt/jsonl, a row of csv). A longer one — a file without
   * newlines, an unclosed quote — stops decoding with PAYLOAD_TOO_LARGE naming its line, as soon
   * as it passes the limit, so it is never held whole. Default `limits.recordBytesMax`.
   */
  recordBytesMax?: number;
  /**
   * Bytes read from the (decompressed) stream at most; past it decoding stops reading with
   * PAYLOAD_TOO_LARGE (a gzip bomb is cut off here). Default unbounded.
   */
  decodedBytesMax?: number;
}

const recordTooLarge = (name: string, line: number, max: number) =>
  new TributaryError(
    'PAYLOAD_TOO_LARGE',
    `${name} line ${line}: record is longer than ${max} bytes (recordBytesMax); is a newline or closing quote missing?`,
    { details: { file: name, line, limit: 'recordBytesMax', max } },
  );

const decodeError = (name: string, line: number, message: string, cause?: unknown) =>
  new TributaryError('DECODE_FAILED', `${name} line ${line}: ${message}`, {
    cause,
    details: { file: name, line },
  });

/**
 * Bytes per read of `openText`: 64 KiB, Node's own default for files. Every row and record decoded
 * from one chunk is alive at once while they are handed out; from 1 MiB chunks those thousands of
 * rows outlived each young-generation collection and were copied by it, which cost more than the
 * decoding itself (a 172k-row CSV decoded in 1.07 s with 1 MiB reads, 0.47 s with 64 KiB).
 */
const readChunkBytes = 64 * 1024;

/** Opens `file` as a text stream (gunzipped when asked); bytes that are not UTF-8 fail. */
export function openText(file: string, gzip: boolean): Readable {
  const raw = createReadStream(file, { highWaterMark: readChunkBytes });
  if (!gzip) return raw;
  const gunzip = createGunzip();
  raw.on('error', (error) => gunzip.destroy(error));
  return raw.pipe(gunzip);
}

/** Records per batch of `decodeStreamBatches` at most (a read chunk usually ends one first). */
const batchRecords = 4096;

/**
 * Groups `records` into arrays of at most `batchRecords`. When `records` throws, the records
 * before the failure are passed on first and the error is thrown at the next pull, so a batch
 * reader sees exactly the records, and then the error, that a record-by-record reader would.
 */
function* inBatches(records: Iterable<DecodedRecord>): Generator<DecodedRecord[]> {
  let pending: DecodedRecord[] = [];
  try {
    for (const record of records) {
      pending.push(record);
      if (pending.length >= batchRecords) {
        yield pending;
        pending = [];
      }
    }
  } catch (error) {
    if (pending.length > 0) yield pending;
    throw error;
  }
  if (pending.length > 0) yield pending;
}

/**
 * Decodes a byte stream into records, in order, with bounded memory (except `.json` arrays, which
 * are one JSON document and are bounded by `jsonFileBytesMax`). Throws DECODE_FAILED naming the
 * file and line on the first malformed record or on bytes that are not valid UTF-8.
 */
export async function* decodeStream(
  stream: AsyncIterable<Buffer | string>,
  options: DecodeOptions,
): AsyncGenerator<DecodedRecord> {
  for await (const batch of decodeStreamBatches(stream, options)) yield* batch;
}

/**
 * `decodeStream` in batches: the records of each chunk read (at most `batchRecords` at a time),
 * same records, same order, same errors. A reader of hundreds of thousands of records takes one
 * asynchronous step per batch instead of one per record through every generator in between.
 */
export async function* decodeStreamBatches(
  stream: AsyncIterable<Buffer | string>,
  options: DecodeOptions,
): AsyncGenerator<DecodedRecord[]> {
  const { name } = options;
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const decodeChunk = (chunk: Buffer | string, last: boolean): string => {
    try {
      if (typeof chunk === 'string') return chunk;
      return decoder.decode(chunk, { stream: !last });
    } catch (error) {
      throw new TributaryError('DECODE_FAILED', `${name}: not valid UTF-8 text`, {
        cause: error,
        details: { file: name },
      });
    }
  };
  const counted = bytesOf(stream, name, options.decodedBytesMax);
  try {
    if (options.format === 'json') {
      yield* decodeJsonArray(counted, options, decodeChunk);
      return;
    }
    if (options.format === 'csv') {
      yield* decodeCsv(counted, options, decodeChunk);
      return;
    }
    const parse = options.format === 'jsonl' && options.parse !== false;
    const validate = options.format === 'jsonl';
    const recordBytesMax = options.recordBytesMax ?? limits.recordBytesMax;
    let line = 0;
    let index = 0;
    const emit = function* (text: string, lineBytes: Buffer): Generator<DecodedRecord> {
      line++;
      const cr = text.endsWith('\r');
      const value = cr ? text.slice(0, -1) : text;
      if (value.length === 0 || (validate && value.trim().length === 0)) return;
      // The text's own bytes: without a byte-order mark lineText dropped and the '\r' cut above.
      const bom =
        line === 1 && lineBytes[0] === 0xef && lineBytes[1] === 0xbb && lineBytes[2] === 0xbf ? 3 : 0;
      const bytes = lineBytes.subarray(bom, lineBytes.length - (cr ? 1 : 0));
      if (validate) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(value);
        } catch (error) {
          const reason = `not valid JSON (${(error as Error).message})`;
          if (options.badRecords !== 'yield') throw decodeError(name, line, reason, error);
          yield { index: index++, line, value, bytes, error: `${name} line ${line}: ${reason}` };
          return;
        }
        yield parse ? { index: index++, line, value, bytes, parsed } : { index: index++, line, value, bytes };
        return;
      }
      yield { index: index++, line, value, bytes };
    };
    // Lines are split on the newline byte before decoding (0x0A never occurs inside a multi-byte
    // UTF-8 sequence): the unfinished line is kept as a list of pieces and joined once, when its
    // newline arrives, so a long line costs linear time, and it is refused as soon as it passes
    // `recordBytesMax`.
    let carry: Buffer[] = [];
    let carryBytes = 0;
    // Each line is decoded whole; only the file's first line may start with a byte-order mark.
    const lineDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
    const lineBytes = (piece: Buffer): Buffer => {
      const bytes = carry.length === 0 ? piece : Buffer.concat([...carry, piece]);
      carry = [];
      carryBytes = 0;
      return bytes;
    };
    const lineText = (bytes: Buffer): string => {
      let text: string;
      try {
        text = lineDecoder.decode(bytes);
      } catch (error) {
        throw new TributaryError('DECODE_FAILED', `${name}: not valid UTF-8 text`, {
          cause: error,
          details: { file: name },
        });
      }
      return line === 0 && text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
    };
    const linesOf = function* (bytes: Buffer): Generator<DecodedRecord> {
      let start = 0;
      let newline = bytes.indexOf(10, start);
      while (newline !== -1) {
        if (carryBytes + newline - start > recordBytesMax)
          throw recordTooLarge(name, line + 1, recordBytesMax);
        const piece = lineBytes(bytes.subarray(start, newline));
        yield* emit(lineText(piece), piece);
        start = newline + 1;
        newline = bytes.indexOf(10, start);
      }
      if (start < bytes.length) {
        carryBytes += bytes.length - start;
        if (carryBytes > recordBytesMax) throw recordTooLarge(name, line + 1, recordBytesMax);
        carry.push(Buffer.from(bytes.subarray(start)));
      }
    };
    for await (const bytes of counted) yield* inBatches(linesOf(bytes));
    if (carryBytes > 0) {
      const piece = lineBytes(Buffer.alloc(0));
      yield* inBatches(emit(lineText(piece), piece));
    }
  } catch (error) {
    if (error instanceof TributaryError) throw error;
    // zlib and fs errors: a corrupt .gz is an undecodable file, not an I/O fault of ours.
    const code = (error as NodeJS.ErrnoException).code ?? '';
    if (code.startsWith('Z_')) {
      throw new TributaryError(
        'DECODE_FAILED',
        `${name}: not a valid gzip stream (${(error as Error).message})`,
        {
          cause: error,
          details: { file: name },
        },
      );
    }
    throw new TributaryError('IO', `${name}: ${(error as Error).message}`, {
      cause: error,
      details: { file: name },
    });
  }
}

/**
 * The stream as Buffers, counting bytes: past `decodedBytesMax` it stops reading (the caller's
 * `for await` ends the stream) with PAYLOAD_TOO_LARGE.
 */
async function* bytesOf(
  stream: AsyncIterable<Buffer | string>,
  name: string,
  decodedBytesMax = Number.POSITIVE_INFINITY,
): AsyncGenerator<Buffer> {
  let total = 0;
  for await (const chunk of stream) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    total += bytes.length;
    if (total > decodedBytesMax) {
      throw new TributaryError(
        'PAYLOAD_TOO_LARGE',
        `${name}: more than ${decodedBytesMax} bytes after decompression (decodedBytesMax)`,
        { details: { file: name, limit: 'decodedBytesMax', max: decodedBytesMax } },
      );
    }
    yield bytes;
  }
}

async function* decodeCsv(
  stream: AsyncIterable<Buffer | string>,
  options: DecodeOptions,
  decodeChunk: (chunk: Buffer | string, last: boolean) => string,
): AsyncGenerator<DecodedRecord[]> {
  const parser = new CsvParser({
    ...(options.csvDelimiter === undefined ? {} : { delimiter: options.csvDelimiter }),
    recordCharsMax: options.recordBytesMax ?? limits.recordBytesMax,
  });
  let header: string[] | null = null;
  let index = 0;
  const name = options.name;
  const toRecords = function* (rows: ReturnType<CsvParser['push']>): Generator<DecodedRecord> {
    for (const row of rows) {
      if (header === null) {
        header = row.fields.map((f, i) => (i === 0 ? f.replace(/^\uFEFF/, '') : f).trim());
        const seen = new Set<string>();
        for (const column of header) {
          if (column === '') throw decodeError(name, row.line, 'CSV header has an empty column name');
          if (seen.has(column))
            throw decodeError(name, row.line, `CSV header repeats column ${JSON.stringify(column)}`);
          seen.add(column);
        }
        continue;
      }
      if (row.fields.length !== header.length) {
        const reason = `CSV row has ${row.fields.length} fields, header has ${header.length}`;
        if (options.badRecords !== 'yield') throw decodeError(name, row.line, reason);
        yield {
          index: index++,
          line: row.line,
          value: row.fields.join(options.csvDelimiter ?? ','),
          error: `${name} line ${row.line}: ${reason}`,
        };
        continue;
      }
      const object: Record<string, string> = {};
      for (let i = 0; i < header.length; i++) object[header[i]] = row.fields[i]!;
      yield { index: index++, line: row.line, value: JSON.stringify(object), parsed: object };
    }
  };
  try {
    for await (const chunk of stream) yield* inBatches(toRecords(parser.push(decodeChunk(chunk, false))));
    yield* inBatches(toRecords(parser.push(decodeChunk(Buffer.alloc(0), true))));
    yield* inBatches(toRecords(parser.end()));
  } catch (error) {
    if (
      error instanceof TributaryError &&
      (error.code === 'DECODE_FAILED' || error.code === 'PAYLOAD_TOO_LARGE') &&
      !error.message.startsWith(name)
    ) {
      throw new TributaryError(error.code, `${name}: ${error.message}`, {
        cause: error,
        details: { file: name, ...error.details },
      });
    }
    throw error;
  }
  if (header === null) throw decodeError(name, 1, 'CSV file has no header row');
}

async function* decodeJsonArray(
  stream: AsyncIterable<Buffer | string>,
  options: DecodeOptions,
  decodeChunk: (chunk: Buffer | string, last: boolean) => string,
): AsyncGenerator<DecodedRecord[]> {
  const max = options.jsonFileBytesMax ?? 256 * 1024 * 1024;
  const parts: string[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += chunk.length;
    if (size > max) {
      throw new TributaryError(
        'PAYLOAD_TOO_LARGE',
        `${options.name}: JSON array file is larger than ${max} bytes; use NDJSON`,
        {
          details: { file: options.name },
        },
      );
    }
    parts.push(decodeChunk(chunk, false));
  }
  parts.push(decodeChunk(Buffer.alloc(0), true));
  let parsed: unknown;
  try {
    parsed = JSON.parse(parts.join(''));
  } catch (error) {
    throw decodeError(options.name, 1, `not valid JSON (${(error as Error).message})`, error);
  }
  if (!Array.isArray(parsed))
    throw decodeError(options.name, 1, 'a .json file must hold one JSON array of records');
  const elements = parsed;
  yield* inBatches(
    (function* () {
      let index = 0;
      for (const element of elements)
        yield { index: index++, line: 1, value: JSON.stringify(element), parsed: element };
    })(),
  );
}

/** Decodes a whole file by its name's format. */
export function decodeFile(file: string, options: DecodeOptions): AsyncGenerator<DecodedRecord> {
  return decodeStream(openText(file, options.gzip), options);
}

/** `decodeFile` in batches (see `decodeStreamBatches`). */
export function decodeFileBatches(file: string, options: DecodeOptions): AsyncGenerator<DecodedRecord[]> {
  return decodeStreamBatches(openText(file, options.gzip), options);
}

/** Decodes an in-memory body (ingest endpoint, tests). */
export function decodeBytes(bytes: Uint8Array, options: DecodeOptions): AsyncGenerator<DecodedRecord> {
  if (options.gzip) {
    const gunzip = createGunzip();
    gunzip.end(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    return decodeStream(gunzip, options);
  }
  return decodeStream(
    Readable.from([Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)]),
    options,
  );
}
