import { hash } from 'node:crypto';

/**
 * The review layouts the pipeline reads, detected per record from its field names (a spool
 * directory may hold files of every layout, and a `.gz` is decoded before this sees it):
 *
 * - `amazon-2014`: Amazon reviews 2014 / 2018 JSON lines — `reviewerID, asin, reviewerName, helpful,
 *   reviewText, overall, summary, unixReviewTime (s), reviewTime`. The 2014 "loose JSON" files
 *   (one Python dict literal per line, single-quoted) are read too.
 * - `amazon-2023`: Amazon reviews 2023 JSON lines — `rating, title, text, images, asin, parent_asin,
 *   user_id, timestamp (ms), helpful_vote, verified_purchase`.
 * - `fine-food-csv`: the Kaggle "Amazon Fine Food Reviews" CSV — `Id, ProductId, UserId,
 *   ProfileName, HelpfulnessNumerator, HelpfulnessDenominator, Score, Time (s), Summary, Text`.
 */
export const reviewFormats = ['amazon-2014', 'amazon-2023', 'fine-food-csv'] as const;
export type ReviewFormat = (typeof reviewFormats)[number];

/** One accepted review, the shape of `silver.product_reviews` before sentiment. */
export interface Review {
  /** The source's id when it has one (`fine-food:<Id>`), else `h:` + a hash of product, user, time and text. */
  review_id: string;
  product_id: string;
  user_id: string | null;
  /** Stars 1–5; null when the source gives none. */
  rating: number | null;
  title: string | null;
  text: string;
  /** Epoch ms; null when the source gives no time. */
  review_ts: number | null;
  source_file: string;
  source_line: number;
  source_format: ReviewFormat;
}

/**
 * Why a record was quarantined (stable codes, the `reason` column of `silver.reviews_quarantine`,
 * followed by `: <detail>`).
 */
export const quarantineReasons = [
  'invalid_json',
  'malformed_record',
  'unknown_layout',
  'missing_product',
  'missing_text',
  'rating_out_of_range',
  'invalid_timestamp',
] as const;
export type QuarantineReason = (typeof quarantineReasons)[number];

export type NormalisedRecord =
  | { ok: true; review: Review }
  | { ok: false; reason: QuarantineReason; detail: string; format: ReviewFormat | null };

export interface RecordSource {
  file: string;
  line: number;
  /** Set when the spool could not decode the record (its text is then `raw`). */
  decodeError?: string;
}

/**
 * Normalises one raw record (its text as read: a JSON line, or a CSV row as a JSON object) into a
 * review, or says why it is quarantined.
 */
export function normaliseReview(raw: string, source: RecordSource): NormalisedRecord {
  let value: unknown;
  if (source.decodeError === undefined) {
    try {
      value = JSON.parse(raw);
    } catch (error) {
      return bad('invalid_json', (error as Error).message, null);
    }
  } else {
    // The 2014 dump's "loose JSON" is one Python dict literal per line; JSON.parse refused it.
    value = raw.trimStart().startsWith('{') ? parsePythonLiteral(raw) : undefined;
    if (value === undefined) {
      const json = source.decodeError.includes('not valid JSON');
      return bad(json ? 'invalid_json' : 'malformed_record', source.decodeError, null);
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return bad('invalid_json', 'a review must be a JSON object', null);
  }
  const record = value as Record<string, unknown>;
  const format = detectFormat(record);
  if (format === null) {
    const fields = Object.keys(record).slice(0, 8).join(', ');
    return bad('unknown_layout', `no known review layout has the fields ${fields || '(none)'}`, null);
  }
  const fields = layouts[format];
  const productId =
    text(record[fields.product]) ?? (format === 'amazon-2023' ? text(record.parent_asin) : null);
  if (productId === null) return bad('missing_product', `field ${fields.product} is empty`, format);
  const body = text(record[fields.text]);
  if (body === null) return bad('missing_text', `field ${fields.text} is empty`, format);
  const rating = number(record[fields.rating]);
  if (
    rating === undefined ||
    (rating !== null && !(Number.isInteger(rating) && rating >= 1 && rating <= 5))
  ) {
    return bad(
      'rating_out_of_range',
      `${fields.rating} = ${JSON.stringify(record[fields.rating])}; stars are a whole number from 1 to 5`,
      format,
    );
  }
  const ts = timestampOf(record, format);
  if (ts === undefined)
    return bad('invalid_timestamp', `${fields.time} = ${JSON.stringify(record[fields.time])}`, format);
  const userId = text(record[fields.user]);
  const sourceId = format === 'fine-food-csv' ? text(record.Id) : null;
  return {
    ok: true,
    review: {
      review_id: sourceId === null ? hashedId(productId, userId, ts, body) : `fine-food:${sourceId}`,
      product_id: productId,
      user_id: userId,
      rating,
      title: text(record[fields.title]),
      text: body,
      review_ts: ts,
      source_file: source.file,
      source_line: source.line,
      source_format: format,
    },
  };
}

function bad(reason: QuarantineReason, detail: string, format: ReviewFormat | null): NormalisedRecord {
  return { ok: false, reason, detail, format };
}

const layouts: Record<
  ReviewFormat,
  { product: string; user: string; rating: string; title: string; text: string; time: string }
> = {
  'amazon-2014': {
    product: 'asin',
    user: 'reviewerID',
    rating: 'overall',
    title: 'summary',
    text: 'reviewText',
    time: 'unixReviewTime',
  },
  'amazon-2023': {
    product: 'asin',
    user: 'user_id',
    rating: 'rating',
    title: 'title',
    text: 'text',
    time: 'timestamp',
  },
  'fine-food-csv': {
    product: 'ProductId',
    user: 'UserId',
    rating: 'Score',
    title: 'Summary',
    text: 'Text',
    time: 'Time',
  },
};

export function detectFormat(record: Record<string, unknown>): ReviewFormat | null {
  if ('reviewerID' in record || 'reviewText' in record || 'overall' in record) return 'amazon-2014';
  if ('ProductId' in record || 'Score' in record || 'HelpfulnessNumerator' in record) return 'fine-food-csv';
  if ('parent_asin' in record || ('asin' in record && ('rating' in record || 'text' in record))) {
    return 'amazon-2023';
  }
  return null;
}

/** Trimmed non-empty string, or null. Numbers are ids in some dumps; they become their text. */
function text(value: unknown): string | null {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value !== 'string') return null;
  const trimmed = value.trim();
  return trimmed.length === 0 ? null : trimmed;
}

/** null when absent or empty, undefined when present but not a number. */
function number(value: unknown): number | null | undefined {
  if (value === undefined || value === null) return null;
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'string') {
    const trimmed = value.trim();
    if (trimmed === '') return null;
    const parsed = Number(trimmed);
    return Number.isFinite(parsed) ? parsed : undefined;
  }
  return undefined;
}

const months = ['01', '02', '03', '04', '05', '06', '07', '08', '09', '10', '11', '12'];

/** Epoch ms of the review; null without a time, undefined for a time that is not one. */
function timestampOf(record: Record<string, unknown>, format: ReviewFormat): number | null | undefined {
  const field = layouts[format].time;
  const value = number(record[field]);
  if (value === undefined) return undefined;
  if (value !== null) {
    // 2014/2018 and the CSV count seconds, 2023 milliseconds.
    const ms = format === 'amazon-2023' ? value : value * 1000;
    return Number.isInteger(ms) && ms >= 0 && ms < 4_102_444_800_000 ? ms : undefined;
  }
  if (format === 'amazon-2014') {
    // "09 13, 2009" — the 2014 dump's human-readable date, used when unixReviewTime is absent.
    const human = text(record.reviewTime);
    if (human === null) return null;
    const match = /^(\d{1,2}) (\d{1,2}), (\d{4})$/.exec(human);
    if (!match) return undefined;
    const month = months[Number(match[1]) - 1];
    if (month === undefined) return undefined;
    const ms = Date.parse(`${match[3]}-${month}-${match[2].padStart(2, '0')}T00:00:00Z`);
    return Number.isNaN(ms) ? undefined : ms;
  }
  return null;
}

/** A stable id for sources without one: the same review in two files gets the same id. */
export function hashedId(product: string, user: string | null, ts: number | null, body: string): string {
  // One-shot `crypto.hash` (no Hash object per review); the same SHA-256 as createHash().update().
  const digest = hash('sha256', `${product}\u0000${user ?? ''}\u0000${ts ?? ''}\u0000${body}`, 'hex');
  return `h:${digest.slice(0, 24)}`;
}

/**
 * Parses one Python literal of the kinds the 2014 "loose JSON" dump holds (dicts, lists, single- or
 * double-quoted strings, numbers, True / False / None). One pass, no backtracking; anything else is
 * undefined. The whole text must be one literal.
 */
export function parsePythonLiteral(source: string): unknown {
  let at = 0;
  const fail: unique symbol = Symbol('fail');
  type Failed = typeof fail;
  const space = () => {
    while (
      at < source.length &&
      (source[at] === ' ' || source[at] === '\t' || source[at] === '\r' || source[at] === '\n')
    )
      at++;
  };
  const parseString = (): string | Failed => {
    const quote = source[at];
    at++;
    let out = '';
    while (at < source.length) {
      const c = source[at];
      if (c === quote) {
        at++;
        return out;
      }
      if (c !== '\\') {
        out += c;
        at++;
        continue;
      }
      const e = source[at + 1];
      at += 2;
      switch (e) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'x':
        case 'u': {
          const length = e === 'x' ? 2 : 4;
          const hex = source.slice(at, at + length);
          if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== length) return fail;
          out += String.fromCharCode(Number.parseInt(hex, 16));
          at += length;
          break;
        }
        case undefined:
          return fail;
        default:
          out += e; // \\, \', \" and anything else Python keeps as the character
      }
    }
    return fail;
  };
  const parseValue = (depth: number): { value: unknown } | Failed => {
    if (depth > 32) return fail;
    space();
    const c = source[at];
    if (c === "'" || c === '"') {
      const parsed = parseString();
      return parsed === fail ? fail : { value: parsed };
    }
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      const object: Record<string, unknown> = {};
      const list: unknown[] = [];
      at++;
      space();
      if (source[at] === close) {
        at++;
        return { value: c === '{' ? object : list };
      }
      for (;;) {
        if (c === '{') {
          space();
          const key = source[at] === "'" || source[at] === '"' ? parseString() : fail;
          if (typeof key !== 'string') return fail;
          space();
          if (source[at] !== ':') return fail;
          at++;
          const parsed = parseValue(depth + 1);
          if (parsed === fail) return fail;
          object[key] = parsed.value;
        } else {
          const parsed = parseValue(depth + 1);
          if (parsed === fail) return fail;
          list.push(parsed.value);
        }
        space();
        if (source[at] === ',') {
          at++;
          space();
          if (source[at] === close) {
            at++;
            return { value: c === '{' ? object : list };
          }
          continue;
        }
        if (source[at] === close) {
          at++;
          return { value: c === '{' ? object : list };
        }
        return fail;
      }
    }
    for (const [word, value] of [
      ['True', true],
      ['False', false],
      ['None', null],
    ] as const) {
      if (source.startsWith(word, at)) {
        at += word.length;
        return { value };
      }
    }
    const start = at;
    if (source[at] === '-' || source[at] === '+') at++;
    while (at < source.length && /[0-9.eE+-]/.test(source[at])) at++;
    const number = Number(source.slice(start, at));
    return at > start && Number.isFinite(number) ? { value: number } : fail;
  };
  const parsed = parseValue(0);
  space();
  return parsed === fail || at !== source.length ? undefined : parsed.value;
}
