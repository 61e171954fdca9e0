import { isUtf8 } from 'node:buffer';
import { limits, TributaryError } from '../../core/index.js';

/**
 * Checks that `bytes` is one JSON array (RFC 8259, as strict as JSON.parse, in UTF-8, nesting at
 * most `depthMax` levels like parseJsonBounded) and returns its elements as views of those bytes
 * (no copy), each without the whitespace around it.
 *
 * HTTP ingest stores each element's text as a record value. Checking and slicing the posted bytes
 * builds no objects: JSON.parse of the body and JSON.stringify of every element (then UTF-8 encoding
 * it again) cost several times as much per request, and an element stays exactly as sent (a 20-digit
 * integer or `1.50` is not rounded or reformatted). Throws INVALID_ARGUMENT naming the byte position.
 *
 * @example
 * jsonArrayElements(Buffer.from('[{"a": 1}, "x"]')).map(String) // ['{"a": 1}', '"x"']
 */
export function jsonArrayElements(input: Uint8Array, depthMax: number = limits.jsonDepthMax): Uint8Array[] {
  if (!isUtf8(input)) throw invalid(input, -1, 'it is not valid UTF-8');
  // A plain Uint8Array view: the scan's byte loads stay monomorphic (indexing a Buffer, a subclass,
  // is slower), and the elements are plain views too (no Buffer object per element).
  const bytes = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  const base = input.byteOffset;
  const elements: Uint8Array[] = [];
  const n = bytes.length;
  let i = skipSpace(bytes, 0, n);
  if (i >= n || bytes[i] !== 0x5b /* [ */) throw invalid(bytes, i, "expected '['");
  i = skipSpace(bytes, i + 1, n);
  if (i >= n || bytes[i] !== 0x5d /* ] */) {
    for (;;) {
      const start = i;
      i = skipValue(bytes, i, n, depthMax);
      elements.push(new Uint8Array(bytes.buffer, base + start, i - start));
      i = skipSpace(bytes, i, n);
      const c = i < n ? bytes[i] : -1;
      if (c === 0x2c /* , */) i = skipSpace(bytes, i + 1, n);
      else if (c === 0x5d) break;
      else throw invalid(bytes, i, "expected ',' or ']'");
    }
  }
  i = skipSpace(bytes, i + 1, n);
  if (i !== n) throw invalid(bytes, i, 'unexpected data after the array');
  return elements;
}

/** True when the first byte that is not whitespace is '[' (the body is meant as a JSON array). */
export function startsAsJsonArray(bytes: Uint8Array): boolean {
  return bytes[skipSpace(bytes, 0, bytes.length)] === 0x5b;
}

function invalid(bytes: Uint8Array, at: number, reason: string): TributaryError {
  const where = at < 0 ? '' : at >= bytes.length ? ' at its end' : ` at byte ${at}`;
  return new TributaryError('INVALID_ARGUMENT', `request body is not valid JSON${where}: ${reason}`, {
    details: at < 0 ? {} : { position: at },
  });
}

// Every read below is bounds-checked against `n`: a load past the end of a typed array returns
// undefined, which makes V8 fall back to a slower generic load for the whole loop. Numbers and
// literals are scanned inline in skipValue's loop and a string's loop leaves escapes to a call of
// their own: on records of short keys and values, the calls per number and per character cost a
// fifth of the scan's time.

function skipSpace(b: Uint8Array, i: number, n: number): number {
  while (i < n) {
    const c = b[i];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    i++;
  }
  return i;
}

/** The closing byte ('}' or ']') of each open container of the element being scanned; grows as needed. */
let closers = new Uint8Array(64);

/**
 * Checks one JSON value at `i` (nested containers without recursion), an element of the outer array
 * (so its containers start at depth 2); returns the index after it.
 */
function skipValue(b: Uint8Array, i: number, n: number, depthMax: number): number {
  let depth = 0;
  for (;;) {
    if (i >= n) throw invalid(b, i, 'expected a value');
    let c = b[i];
    if (c === 0x22 /* " */) {
      i = skipString(b, i, n);
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (depth + 2 > depthMax) {
        throw new TributaryError(
          'INVALID_ARGUMENT',
          `request body nests arrays/objects more than ${depthMax} levels deep (jsonDepthMax)`,
          { details: { limit: 'jsonDepthMax', max: depthMax } },
        );
      }
      const close = c + 2; // '}' or ']'
      i = skipSpace(b, i + 1, n);
      if (i < n && b[i] === close) i++;
      else {
        if (depth === closers.length) {
          const grown = new Uint8Array(closers.length * 2);
          grown.set(closers);
          closers = grown;
        }
        closers[depth++] = close;
        if (c === 0x7b) i = skipKey(b, i, n);
        continue;
      }
    } else if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      if (c === 0x2d) c = ++i < n ? b[i] : -1;
      if (c === 0x30) i++;
      else if (c >= 0x31 && c <= 0x39) {
        i++;
        while (i < n && (c = b[i]) >= 0x30 && c <= 0x39) i++;
      } else throw invalid(b, i, 'bad number');
      if (i < n && b[i] === 0x2e /* . */) {
        i++;
        if (!(i < n && (c = b[i]) >= 0x30 && c <= 0x39)) throw invalid(b, i, 'bad number');
        i++;
        while (i < n && (c = b[i]) >= 0x30 && c <= 0x39) i++;
      }
      if (i < n && ((c = b[i]) === 0x65 || c === 0x45) /* e E */) {
        i++;
        if (i < n && ((c = b[i]) === 0x2b || c === 0x2d)) i++;
        if (!(i < n && (c = b[i]) >= 0x30 && c <= 0x39)) throw invalid(b, i, 'bad number');
        i++;
        while (i < n && (c = b[i]) >= 0x30 && c <= 0x39) i++;
      }
    } else if (c === 0x74 /* t */) {
      if (i + 4 <= n && b[i + 1] === 0x72 && b[i + 2] === 0x75 && b[i + 3] === 0x65) i += 4;
      else throw invalid(b, i, 'expected true');
    } else if (c === 0x66 /* f */) {
      if (i + 5 <= n && b[i + 1] === 0x61 && b[i + 2] === 0x6c && b[i + 3] === 0x73 && b[i + 4] === 0x65)
        i += 5;
      else throw invalid(b, i, 'expected false');
    } else if (c === 0x6e /* n */) {
      if (i + 4 <= n && b[i + 1] === 0x75 && b[i + 2] === 0x6c && b[i + 3] === 0x6c) i += 4;
      else throw invalid(b, i, 'expected null');
    } else throw invalid(b, i, 'expected a value');
    // A value ended: close the containers it completes, then go on to the next value, if any.
    for (;;) {
      if (depth === 0) return i;
      i = skipSpace(b, i, n);
      const close = closers[depth - 1];
      const next = i < n ? b[i] : -1;
      if (next === 0x2c /* , */) {
        i = skipSpace(b, i + 1, n);
        if (close === 0x7d) i = skipKey(b, i, n);
        break;
      }
      if (next !== close) throw invalid(b, i, close === 0x7d ? "expected ',' or '}'" : "expected ',' or ']'");
      depth--;
      i++;
    }
  }
}

/** An object key and its colon; returns the index of the value. */
function skipKey(b: Uint8Array, i: number, n: number): number {
  if (i >= n || b[i] !== 0x22) throw invalid(b, i, 'expected a string key');
  i = skipSpace(b, skipString(b, i, n), n);
  if (i >= n || b[i] !== 0x3a /* : */) throw invalid(b, i, "expected ':'");
  return skipSpace(b, i + 1, n);
}

/** The string whose opening quote is at `i`; returns the index after its closing quote. */
function skipString(b: Uint8Array, i: number, n: number): number {
  for (i++; i < n;) {
    const c = b[i];
    if (c === 0x22) return i + 1;
    if (c === 0x5c /* \ */) i = skipEscape(b, i, n);
    else if (c < 0x20) throw invalid(b, i, 'control character in a string');
    else i++;
  }
  throw invalid(b, n, 'unterminated string');
}

function skipEscape(b: Uint8Array, i: number, n: number): number {
  const e = i + 1 < n ? b[i + 1] : -1;
  if (
    e === 0x22 ||
    e === 0x5c ||
    e === 0x2f ||
    e === 0x62 ||
    e === 0x66 ||
    e === 0x6e ||
    e === 0x72 ||
    e === 0x74
  )
    return i + 2;
  if (e === 0x75 /* u */) {
    for (let k = 2; k < 6; k++) if (i + k >= n || !isHex(b[i + k])) throw invalid(b, i, 'bad \\u escape');
    return i + 6;
  }
  throw invalid(b, i, 'bad escape in a string');
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}
