import { TributaryError } from '../../core/index.js';

/** One parsed CSV row with the 1-based physical line it started on (quoted newlines span lines). */
export interface CsvRow {
  fields: string[];
  line: number;
}

/**
 * Incremental RFC 4180 parser: fields separated by `delimiter`, records by CRLF or LF (a lone CR
 * too), fields optionally enclosed in double quotes, `""` inside quotes is one quote, and quoted
 * fields may contain delimiters and newlines. Chunks may split anywhere (even inside `""`).
 *
 * Strictness where RFC 4180 is silent: a quote inside an unquoted field is kept literally (as
 * most producers emit it), but text after a closing quote (`"a"b`) and an unterminated quote at
 * end of input are errors, because they mean the file is not what it claims to be.
 *
 * @example
 * const parser = new CsvParser();
 * const rows = [...parser.push('a,"b ""q"""\n1,"x\ny"\n'), ...parser.end()];
 * // rows[0].fields = ['a', 'b "q"'], rows[1].fields = ['1', 'x\ny'], rows[1].line = 2
 */
export class CsvParser {
  readonly #delimiter: number;
  #field = '';
  #fields: string[] = [];
  /** 0 = at field start, 1 = in unquoted field, 2 = in quoted field, 3 = quote seen inside quotes. */
  #state = 0;
  #line = 1;
  #rowLine = 1;
  #pendingCr = false;
  #rowHasContent = false;
  readonly #recordCharsMax: number;
  /** Characters of the current row read in earlier chunks. */
  #rowChars = 0;

  /**
   * `recordCharsMax` bounds one row (quoted newlines included): a longer one — typically an
   * unclosed quote — fails with PAYLOAD_TOO_LARGE as soon as a chunk takes it past the limit,
   * so it is never held whole. Default unbounded.
   */
  constructor(options: { delimiter?: string; recordCharsMax?: number } = {}) {
    this.#recordCharsMax = options.recordCharsMax ?? Number.POSITIVE_INFINITY;
    const delimiter = options.delimiter ?? ',';
    if (delimiter.length !== 1 || delimiter === '"' || delimiter === '\n' || delimiter === '\r') {
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `CSV delimiter must be one character other than quote/newline`,
      );
    }
    this.#delimiter = delimiter.charCodeAt(0);
  }

  /** Feeds a chunk; returns the rows it completed. */
  push(chunk: string): CsvRow[] {
    const rows: CsvRow[] = [];
    const delimiter = this.#delimiter;
    let i = 0;
    const length = chunk.length;
    // A CR at the end of the previous chunk: swallow the LF that completes CRLF.
    if (this.#pendingCr) {
      this.#pendingCr = false;
      if (length > 0 && chunk.charCodeAt(0) === 10) i = 1;
    }
    let start = i;
    // Where the current row began in this chunk (rows completed here reset it).
    let rowStart = i;
    while (i < length) {
      const c = chunk.charCodeAt(i);
      const state = this.#state;
      if (state === 2) {
        // Inside quotes: scan to the next quote in one slice; count newlines for line numbers.
        const quote = chunk.indexOf('"', i);
        const end = quote === -1 ? length : quote;
        const part = chunk.slice(i, end);
        this.#field += part;
        for (let k = 0; k < part.length; k++) if (part.charCodeAt(k) === 10) this.#line++;
        if (quote === -1) {
          i = length;
        } else {
          this.#state = 3;
          i = quote + 1;
        }
        start = i;
        continue;
      }
      if (state === 3) {
        if (c === 34) {
          this.#field += '"';
          this.#state = 2;
          i++;
          start = i;
          continue;
        }
        if (c === delimiter || c === 10 || c === 13) {
          this.#state = 1;
          start = i;
          // fall through to the unquoted handling of this separator below
        } else {
          throw new TributaryError(
            'DECODE_FAILED',
            `CSV line ${this.#line}: unexpected character after closing quote`,
            {
              details: { line: this.#line },
            },
          );
        }
      }
      if (this.#state === 0 && c === 34) {
        this.#state = 2;
        this.#rowHasContent = true;
        i++;
        start = i;
        continue;
      }
      if (c === delimiter) {
        this.#field += chunk.slice(start, i);
        this.#fields.push(this.#field);
        this.#field = '';
        this.#state = 0;
        this.#rowHasContent = true;
        i++;
        start = i;
        continue;
      }
      if (c === 10 || c === 13) {
        this.#field += chunk.slice(start, i);
        this.#checkRowSize(i - rowStart);
        this.#endRow(rows);
        this.#line++;
        if (c === 13) {
          if (i + 1 < length) {
            if (chunk.charCodeAt(i + 1) === 10) i++;
          } else {
            this.#pendingCr = true;
          }
        }
        i++;
        start = i;
        rowStart = i;
        continue;
      }
      this.#state = 1;
      this.#rowHasContent = true;
      i++;
    }
    if (this.#state !== 2 && this.#state !== 3 && start < length) this.#field += chunk.slice(start, length);
    this.#checkRowSize(length - rowStart);
    this.#rowChars += length - rowStart;
    return rows;
  }

  #checkRowSize(charsInChunk: number): void {
    if (this.#rowChars + charsInChunk > this.#recordCharsMax) {
      throw new TributaryError(
        'PAYLOAD_TOO_LARGE',
        `CSV line ${this.#rowLine}: record is longer than ${this.#recordCharsMax} characters; is a closing quote missing?`,
        { details: { line: this.#rowLine, limit: 'recordBytesMax', max: this.#recordCharsMax } },
      );
    }
  }

  /** Ends the input; returns the last row when the input did not end with a newline. */
  end(): CsvRow[] {
    if (this.#state === 2) {
      throw new TributaryError('DECODE_FAILED', `CSV line ${this.#rowLine}: quoted field is never closed`, {
        details: { line: this.#rowLine },
      });
    }
    const rows: CsvRow[] = [];
    if (this.#rowHasContent || this.#field.length > 0 || this.#fields.length > 0) this.#endRow(rows);
    return rows;
  }

  #endRow(rows: CsvRow[]): void {
    // A blank line is not a record (RFC 4180 has no empty records; producers emit trailing blanks).
    if (this.#rowHasContent || this.#field.length > 0 || this.#fields.length > 0) {
      this.#fields.push(this.#field);
      rows.push({ fields: this.#fields, line: this.#rowLine });
    }
    this.#fields = [];
    this.#field = '';
    this.#state = 0;
    this.#rowHasContent = false;
    this.#rowChars = 0;
    this.#rowLine = this.#line + 1;
  }
}

/** Formats one CSV field per RFC 4180 (quoted only when needed). */
export function csvField(value: string, delimiter = ','): string {
  if (value.includes('"') || value.includes(delimiter) || value.includes('\n') || value.includes('\r')) {
    return `"${value.replaceAll('"', '""')}"`;
  }
  return value;
}
