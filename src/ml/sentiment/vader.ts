import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { TributaryError } from '../../core/index.js';
import { emojiNamesTsv } from '../data/emoji-names.js';

/**
 * VADER (Hutto & Gilbert 2014, "VADER: A Parsimonious Rule-based Model for Sentiment Analysis of
 * Social Media Text", ICWSM-14), ported rule for rule from the reference Python `vaderSentiment`
 * (3.3.x): lexicon valences, negation (with the reference's "never so/this" and "without doubt"
 * idioms), booster/dampener words, "but" shifts, ALL-CAPS emphasis when only some words are in caps,
 * "!" and "?" emphasis, special-case idioms ("the bomb", "kiss of death"), "least" handling and
 * emoji replaced by their CLDR names before scoring. The compound score is `x / sqrt(x² + 15)`,
 * rounded to 4 decimals like the reference prints it.
 *
 * Speed (100-word reviews are the pipeline's unit) comes from doing no per-token allocation: one
 * linear pass over the text finds each token, strips its punctuation, lower-cases ASCII on the fly
 * and looks it up in an open-addressing table built once per lexicon (`WordTable`), which gives
 * every word any rule mentions a small integer id together with its valence, booster value and
 * negation flag. The rules then compare ids in reusable typed arrays; the idioms ("the bomb",
 * "kind of") are n-grams of ids. Only tokens with non-ASCII characters take a string (sliced,
 * `toLowerCase`d, looked up in a `Map`), so Unicode case rules stay exactly JavaScript's. The
 * results are the previous string-based implementation's to the bit: `testing/vader-reference.ts`
 * keeps it, and `vader.test.ts` compares both on the evaluation sets and on random text.
 */

const B_INCR = 0.293;
const B_DECR = -0.293;
const C_INCR = 0.733;
const N_SCALAR = -0.74;

const NEGATE = new Set([
  'aint', 'arent', 'cannot', 'cant', 'couldnt', 'darent', 'didnt', 'doesnt',
  "ain't", "aren't", "can't", "couldn't", "daren't", "didn't", "doesn't",
  'dont', 'hadnt', 'hasnt', 'havent', 'isnt', 'mightnt', 'mustnt', 'neither',
  "don't", "hadn't", "hasn't", "haven't", "isn't", "mightn't", "mustn't",
  'neednt', "needn't", 'never', 'none', 'nope', 'nor', 'not', 'nothing', 'nowhere',
  'oughtnt', 'shant', 'shouldnt', 'uhuh', 'wasnt', 'werent',
  "oughtn't", "shan't", "shouldn't", 'uh-uh', "wasn't", "weren't",
  'without', 'wont', 'wouldnt', "won't", "wouldn't", 'rarely', 'seldom', 'despite',
]); // prettier-ignore

const BOOSTERS = new Map<string, number>([
  ...[
    'absolutely', 'amazingly', 'awfully', 'completely', 'considerable', 'considerably', 'decidedly',
    'deeply', 'effing', 'enormous', 'enormously', 'entirely', 'especially', 'exceptional',
    'exceptionally', 'extreme', 'extremely', 'fabulously', 'flipping', 'flippin', 'frackin',
    'fracking', 'fricking', 'frickin', 'frigging', 'friggin', 'fully', 'fuckin', 'fucking', 'fuggin',
    'fugging', 'greatly', 'hella', 'highly', 'hugely', 'incredible', 'incredibly', 'intensely',
    'major', 'majorly', 'more', 'most', 'particularly', 'purely', 'quite', 'really', 'remarkably',
    'so', 'substantially', 'thoroughly', 'total', 'totally', 'tremendous', 'tremendously', 'uber',
    'unbelievably', 'unusually', 'utter', 'utterly', 'very',
  ].map((w): [string, number] => [w, B_INCR]),
  ...[
    'almost', 'barely', 'hardly', 'just enough', 'kind of', 'kinda', 'kindof', 'kind-of', 'less',
    'little', 'marginal', 'marginally', 'occasional', 'occasionally', 'partly', 'scarce', 'scarcely',
    'slight', 'slightly', 'somewhat', 'sort of', 'sorta', 'sortof', 'sort-of',
  ].map((w): [string, number] => [w, B_DECR]),
]); // prettier-ignore

const SPECIAL_CASES = new Map<string, number>([
  ['the shit', 3],
  ['the bomb', 3],
  ['bad ass', 1.5],
  ['badass', 1.5],
  ['bus stop', 0.0],
  ['yeah right', -2],
  ['kiss of death', -1.5],
  ['to die for', 3],
  ['beating heart', 3.1],
  ['broken heart', -2.9],
]);

/** Per-component VADER output, as the reference's `polarity_scores` returns it. */
export interface VaderScores {
  neg: number;
  neu: number;
  pos: number;
  compound: number;
}

let sharedLexicon: Map<string, number> | undefined;
let sharedEmoji: Map<number, string> | undefined;

/**
 * Reads `vader_lexicon.txt` from the installed `vader-sentiment` package (a runtime dependency):
 * tab-separated `token, mean valence, sd, raw ratings`; a later duplicate wins, as in the reference.
 */
export function loadVaderLexicon(): Map<string, number> {
  if (sharedLexicon) return sharedLexicon;
  let file: string;
  try {
    const require = createRequire(import.meta.url);
    file = path.join(path.dirname(require.resolve('vader-sentiment/package.json')), 'vader_lexicon.txt');
  } catch (error) {
    throw new TributaryError(
      'MODEL_MISSING',
      'the VADER lexicon comes from the npm package vader-sentiment, which is not installed; run `npm ci`',
      { cause: error },
    );
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new TributaryError(
      'MODEL_MISSING',
      `cannot read the VADER lexicon ${file}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  const lexicon = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const fields = line.trim().split('\t');
    const value = Number(fields[1]);
    if (fields.length < 2 || !Number.isFinite(value)) {
      throw new TributaryError(
        'CORRUPT_DATA',
        `${file}: line ${JSON.stringify(line.slice(0, 60))} is not "token<TAB>valence"`,
      );
    }
    lexicon.set(fields[0], value);
  }
  sharedLexicon = lexicon;
  return lexicon;
}

function loadEmoji(): Map<number, string> {
  if (sharedEmoji) return sharedEmoji;
  const map = new Map<number, string>();
  for (const line of emojiNamesTsv.split('\n')) {
    const tab = line.indexOf('\t');
    if (tab > 0) map.set(parseInt(line.slice(0, tab), 16), line.slice(tab + 1));
  }
  sharedEmoji = map;
  return map;
}

/** Python's `str.split()` whitespace (Unicode White_Space plus the ASCII separators 0x1c–0x1f). */
function isSpace(c: number): boolean {
  if (c <= 32) return c === 32 || (c >= 9 && c <= 13) || (c >= 28 && c <= 31);
  if (c < 0x85) return false;
  return (
    c === 0x85 ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000
  );
}

/** Python's `string.punctuation`: the 32 ASCII punctuation characters. */
const isPunct = new Uint8Array(128);
for (const ch of '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~') isPunct[ch.charCodeAt(0)] = 1;

/** Code points in `text[start, end)`, exactly only where it matters (up to 4 UTF-16 units). */
function codePointLength(text: string, start: number, end: number): number {
  if (end - start > 4) return end - start;
  let n = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c < 0xd800 || c > 0xdbff) n++;
  }
  return n;
}

/**
 * Whether the "t" at `i` ends "n't" (either case) inside the token's stripped part from `s`: the
 * "n" is no punctuation, so it lies at or after `s` whenever it is there.
 */
function isNtBefore(text: string, i: number, s: number): boolean {
  return i - 2 >= s && text.charCodeAt(i - 1) === 39 && (text.charCodeAt(i - 2) | 32) === 110;
}

/** FNV-1a over UTF-16 units, then a final avalanche so short keys spread over the table. */
const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;
function finishHash(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  return h ^ (h >>> 13);
}

const ENTRY_NEGATE = 1;
const ENTRY_BOOSTER = 2;
/** The word is part of a multi-word idiom or booster phrase. */
const ENTRY_IDIOM = 4;

/**
 * Every word a rule can ask about, by id: the lexicon's words, the negations, the boosters and
 * the words of the idioms. ASCII words are also in an open-addressing hash table whose keys live
 * in one `Uint16Array`, so an ASCII token is found from its characters without a string.
 */
class WordTable {
  readonly ids = new Map<string, number>();
  readonly valence: Float64Array;
  readonly booster: Float64Array;
  readonly flags: Uint8Array;
  readonly #slots: Int32Array;
  readonly #mask: number;
  readonly #keyStart: Int32Array;
  readonly #keyLength: Int32Array;
  readonly #keys: Uint16Array;
  /** Idioms as id n-grams: key `a·2^32 + b·2^16 + c` (ids < 2^16), value the idiom's valence. */
  readonly special2 = new Map<number, number>();
  readonly special3 = new Map<number, number>();
  readonly booster2 = new Map<number, number>();
  readonly booster3 = new Map<number, number>();
  readonly word: Record<(typeof ruleWords)[number], number>;

  constructor(lexicon: Map<string, number>) {
    const words: string[] = [];
    const add = (w: string): number => {
      let id = this.ids.get(w);
      if (id === undefined) {
        id = words.length;
        words.push(w);
        this.ids.set(w, id);
      }
      return id;
    };
    for (const w of lexicon.keys()) add(w);
    for (const w of NEGATE) add(w);
    for (const w of BOOSTERS.keys()) for (const part of w.split(' ')) add(part);
    for (const w of BOOSTERS.keys()) add(w);
    for (const w of SPECIAL_CASES.keys()) for (const part of w.split(' ')) add(part);
    for (const w of ruleWords) add(w);
    if (words.length >= 0xffff) throw new RangeError('VADER word table: more than 65535 words');

    const n = words.length;
    this.valence = new Float64Array(n).fill(NaN);
    this.booster = new Float64Array(n);
    this.flags = new Uint8Array(n);
    for (const [w, v] of lexicon) this.valence[this.ids.get(w)!] = v;
    for (const w of NEGATE) this.flags[this.ids.get(w)!] |= ENTRY_NEGATE;
    for (const [w, v] of BOOSTERS) {
      const id = this.ids.get(w)!;
      this.booster[id] = v;
      this.flags[id] |= ENTRY_BOOSTER;
    }
    const gram = (phrase: string): { length: number; key: number } => {
      const parts = phrase.split(' ').map((p) => this.ids.get(p)!);
      if (parts.length > 1) for (const id of parts) this.flags[id] |= ENTRY_IDIOM;
      return { length: parts.length, key: ngramKey(parts[0], parts[1] ?? 0, parts[2] ?? 0) };
    };
    for (const [phrase, v] of SPECIAL_CASES) {
      const g = gram(phrase);
      if (g.length === 2) this.special2.set(g.key, v);
      else if (g.length === 3) this.special3.set(g.key, v);
    }
    for (const [phrase, v] of BOOSTERS) {
      const g = gram(phrase);
      if (g.length === 2) this.booster2.set(g.key, v);
      else if (g.length === 3) this.booster3.set(g.key, v);
    }
    this.word = Object.fromEntries(ruleWords.map((w) => [w, this.ids.get(w)!])) as WordTable['word'];

    let size = 16;
    while (size < n * 4) size *= 2;
    this.#slots = new Int32Array(size).fill(-1);
    this.#mask = size - 1;
    this.#keyStart = new Int32Array(n);
    this.#keyLength = new Int32Array(n).fill(-1);
    let chars = 0;
    for (const w of words) chars += w.length;
    this.#keys = new Uint16Array(chars);
    let at = 0;
    for (let id = 0; id < n; id++) {
      const w = words[id];
      let ascii = true;
      let h = FNV_OFFSET;
      for (let i = 0; i < w.length; i++) {
        const c = w.charCodeAt(i);
        if (c >= 128) ascii = false;
        this.#keys[at + i] = c;
        h = Math.imul(h ^ c, FNV_PRIME);
      }
      this.#keyStart[id] = at;
      at += w.length;
      if (!ascii) continue; // only reachable through `ids` (non-ASCII tokens)
      this.#keyLength[id] = w.length;
      let slot = finishHash(h) & this.#mask;
      while (this.#slots[slot] !== -1) slot = (slot + 1) & this.#mask;
      this.#slots[slot] = id;
    }
  }

  /**
   * The id of the ASCII token `text[start, end)` lower-cased, or -1. `hash` is FNV-1a of the
   * lower-cased characters (the caller computes it while scanning the token).
   */
  findAscii(text: string, start: number, end: number, hash: number): number {
    const length = end - start;
    const keys = this.#keys;
    let slot = finishHash(hash) & this.#mask;
    for (;;) {
      const id = this.#slots[slot];
      if (id === -1) return -1;
      if (this.#keyLength[id] === length) {
        const k = this.#keyStart[id];
        let i = 0;
        while (i < length) {
          let c = text.charCodeAt(start + i);
          if (c >= 65 && c <= 90) c += 32;
          if (keys[k + i] !== c) break;
          i++;
        }
        if (i === length) return id;
      }
      slot = (slot + 1) & this.#mask;
    }
  }
}

/** Words the rules below test by identity. */
const ruleWords = [
  'no', 'but', 'kind', 'of', 'least', 'at', 'very', 'never', 'so', 'this', 'without', 'doubt',
  'or', 'nor',
] as const; // prettier-ignore

/** `id` when it is a word of some multi-word phrase, else NONE. */
function idiomId(flags: Uint8Array, id: number): number {
  return id !== NONE && (flags[id] & ENTRY_IDIOM) !== 0 ? id : NONE;
}

function ngramKey(a: number, b: number, c: number): number {
  return a * 4294967296 + b * 65536 + c;
}

const tables = new WeakMap<Map<string, number>, WordTable>();
function wordTable(lexicon: Map<string, number>): WordTable {
  let table = tables.get(lexicon);
  if (!table) {
    table = new WordTable(lexicon);
    tables.set(lexicon, table);
  }
  return table;
}

const TOKEN_UPPER = 1;
const TOKEN_NEGATED = 2;
const NONE = -1;

/**
 * The VADER analyzer. One instance holds the word table (shared by instances on one lexicon) and
 * reusable token buffers, so it is not re-entrant; `compound(text)` and `scores(text)` are
 * synchronous and allocate nothing for ASCII text beyond the result.
 *
 * @example
 * const vader = new Vader();
 * vader.scores('VADER is smart, handsome, and funny.').compound; // 0.8316
 */
export class Vader {
  readonly #table: WordTable;
  readonly #emoji: Map<number, string>;
  // Per-token buffers, grown by doubling: word id (or NONE), lexicon valence (or NaN), flags,
  // and the token's sentiment.
  #ids = new Int32Array(256);
  #valences = new Float64Array(256);
  #flags = new Uint8Array(256);
  #sentiments = new Float64Array(256);
  #nonZero = new Int32Array(256);
  #count = 0;
  /** Token flags of the last `#lookupRange` (kept in a field so the lookup returns a number). */
  #lookupFlags = 0;
  #exclamations = 0;
  #questions = 0;

  constructor(lexicon?: Map<string, number>) {
    this.#table = wordTable(lexicon ?? loadVaderLexicon());
    this.#emoji = loadEmoji();
  }

  /**
   * Emoji → " description" as the reference does (a space before unless one is already there).
   * Called only for a text with a character ≥ U+00A9 (the tokeniser notices them).
   */
  #replaceEmoji(text: string): string {
    let out = '';
    let prevSpace = true;
    for (const ch of text) {
      const name =
        ch.length > 1 || ch.charCodeAt(0) >= 0xa9 ? this.#emoji.get(ch.codePointAt(0)!) : undefined;
      if (name !== undefined) {
        if (!prevSpace) out += ' ';
        out += name;
        prevSpace = false;
      } else {
        out += ch;
        prevSpace = ch === ' ';
      }
    }
    return out;
  }

  #grow(): void {
    const size = this.#ids.length * 2;
    const ids = new Int32Array(size);
    ids.set(this.#ids);
    this.#ids = ids;
    const valences = new Float64Array(size);
    valences.set(this.#valences);
    this.#valences = valences;
    const flags = new Uint8Array(size);
    flags.set(this.#flags);
    this.#flags = flags;
    this.#sentiments = new Float64Array(size);
    this.#nonZero = new Int32Array(size);
  }

  /**
   * Tokenises in one pass: whitespace split, ASCII punctuation stripped at both ends unless that
   * leaves two code points or fewer (then the token was probably an emoticon such as ":)"). While
   * an ASCII token is scanned its lower-case FNV hash is carried along, with the value it had
   * after the last non-punctuation character, which is the hash of the stripped token; so the
   * common token is read once and looked up without a string. Tokens with non-ASCII characters
   * and the short ones whose stripping is undone are looked up by `#lookupRange`.
   */
  #tokenise(text: string): boolean {
    const table = this.#table;
    const tableFlags = table.flags;
    const tableValence = table.valence;
    let ids = this.#ids;
    let valences = this.#valences;
    let tokenFlags = this.#flags;
    const n = text.length;
    let count = 0;
    let exclamations = 0;
    let questions = 0;
    let maybeEmoji = false;
    let i = 0;
    while (i < n) {
      let c = text.charCodeAt(i);
      if ((c <= 32 || c >= 0x85) && isSpace(c)) {
        i++;
        continue;
      }
      const start = i;
      let s = -1; // first non-punctuation character
      let e = -1; // after the last one
      let ascii = true;
      let hash = FNV_OFFSET;
      let strippedHash = FNV_OFFSET;
      let hasUpper = false;
      let hasLower = false;
      // "n't" anywhere in the lower-cased token negates it (the reference's `"n't" in word`).
      let nt = false;
      for (; i < n; i++) {
        c = text.charCodeAt(i);
        if (c >= 97 && c <= 122) {
          // a–z, most characters of a review: nothing to lower-case.
          if (s === -1) s = i;
          e = i + 1;
          hasLower = true;
          if (c === 116 && isNtBefore(text, i, s)) nt = true;
          hash = Math.imul(hash ^ c, FNV_PRIME);
          strippedHash = hash;
        } else if (c < 128) {
          if (c <= 32 && isSpace(c)) break;
          if (isPunct[c] === 1) {
            if (c === 33) exclamations++;
            else if (c === 63) questions++;
            if (s === -1) continue;
            hash = Math.imul(hash ^ c, FNV_PRIME);
          } else {
            if (s === -1) s = i;
            e = i + 1;
            if (c >= 65 && c <= 90) {
              hasUpper = true;
              c += 32;
              if (c === 116 && isNtBefore(text, i, s)) nt = true;
            }
            hash = Math.imul(hash ^ c, FNV_PRIME);
            strippedHash = hash;
          }
        } else {
          if (c >= 0x85 && isSpace(c)) break;
          if (c >= 0xa9) maybeEmoji = true;
          ascii = false;
          if (s === -1) s = i;
          e = i + 1;
        }
      }
      if (count === ids.length) {
        this.#grow();
        ids = this.#ids;
        valences = this.#valences;
        tokenFlags = this.#flags;
      }
      let id: number;
      let flags: number;
      if (s === -1 || ((s !== start || e !== i) && codePointLength(text, s, e) <= 2)) {
        // All punctuation, or stripping would leave an emoticon-like stub: the whole token.
        id = this.#lookupRange(text, start, i);
        flags = this.#lookupFlags;
      } else if (!ascii) {
        id = this.#lookupRange(text, s, e);
        flags = this.#lookupFlags;
      } else {
        id = table.findAscii(text, s, e, strippedHash);
        flags = hasUpper && !hasLower ? TOKEN_UPPER : 0;
        if (nt || (id !== NONE && (tableFlags[id] & ENTRY_NEGATE) !== 0)) flags |= TOKEN_NEGATED;
      }
      ids[count] = id;
      valences[count] = id === NONE ? NaN : tableValence[id];
      tokenFlags[count] = flags;
      count++;
    }
    this.#count = count;
    this.#exclamations = exclamations;
    this.#questions = questions;
    return maybeEmoji;
  }

  /** The id of `text[s, e)` lower-cased (or NONE), its flags left in `#lookupFlags`. */
  #lookupRange(text: string, s: number, e: number): number {
    const table = this.#table;
    let ascii = true;
    for (let j = s; j < e; j++) {
      if (text.charCodeAt(j) >= 128) {
        ascii = false;
        break;
      }
    }
    let id: number;
    let flags = 0;
    let nt: boolean;
    if (ascii) {
      let hash = FNV_OFFSET;
      let hasUpper = false;
      let hasLower = false;
      nt = false;
      let prev1 = 0;
      let prev2 = 0;
      for (let j = s; j < e; j++) {
        let ch = text.charCodeAt(j);
        if (ch >= 65 && ch <= 90) {
          hasUpper = true;
          ch += 32;
        } else if (ch >= 97 && ch <= 122) hasLower = true;
        if (ch === 116 && prev1 === 39 && prev2 === 110) nt = true;
        prev2 = prev1;
        prev1 = ch;
        hash = Math.imul(hash ^ ch, FNV_PRIME);
      }
      id = table.findAscii(text, s, e, hash);
      if (hasUpper && !hasLower) flags |= TOKEN_UPPER;
    } else {
      const word = text.slice(s, e);
      const lower = word.toLowerCase();
      id = table.ids.get(lower) ?? NONE;
      if (word !== lower && word === word.toUpperCase()) flags |= TOKEN_UPPER;
      nt = lower.includes("n't");
    }
    if (nt || (id !== NONE && (table.flags[id] & ENTRY_NEGATE) !== 0)) flags |= TOKEN_NEGATED;
    this.#lookupFlags = flags;
    return id;
  }

  /** Tokenises `input` and fills the sentiment of every token; returns the token count. */
  #sentimentsOf(input: string): number {
    // Emoji are rare: tokenise the text as it is, and again after replacing them if it has any
    // character from U+00A9 on (emoji never count as white space, so they are seen either way).
    if (this.#tokenise(input)) this.#tokenise(this.#replaceEmoji(input));
    const count = this.#count;
    const ids = this.#ids;
    const flags = this.#flags;
    const valences = this.#valences;
    const sentiments = this.#sentiments;
    const table = this.#table;
    const word = table.word;
    let allCaps = 0;
    for (let k = 0; k < count; k++) if ((flags[k] & TOKEN_UPPER) !== 0) allCaps++;
    const isCapDiff = allCaps > 0 && allCaps < count;
    let but = -1;
    for (let k = 0; k < count; k++) {
      const id = ids[k];
      if (id === word.but && but === -1) but = k;
      if (
        (id !== NONE && (table.flags[id] & ENTRY_BOOSTER) !== 0) ||
        (k < count - 1 && id === word.kind && ids[k + 1] === word.of)
      ) {
        sentiments[k] = 0;
        continue;
      }
      sentiments[k] = Number.isNaN(valences[k]) ? 0 : this.#valence(k, isCapDiff);
    }
    if (but !== -1) butCheck(but, sentiments, count, this.#nonZero);
    return count;
  }

  #valence(k: number, isCapDiff: boolean): number {
    const ids = this.#ids;
    const valences = this.#valences;
    const flags = this.#flags;
    const table = this.#table;
    const word = table.word;
    const count = this.#count;
    const base = valences[k];
    let valence = base;
    // "no" before another lexicon word negates that word instead of scoring on its own.
    if (ids[k] === word.no && k !== count - 1 && !Number.isNaN(valences[k + 1])) valence = 0;
    if (
      (k > 0 && ids[k - 1] === word.no) ||
      (k > 1 && ids[k - 2] === word.no) ||
      (k > 2 && ids[k - 3] === word.no && (ids[k - 1] === word.or || ids[k - 1] === word.nor))
    ) {
      valence = base * N_SCALAR;
    }
    if (isCapDiff && (flags[k] & TOKEN_UPPER) !== 0) valence += valence > 0 ? C_INCR : -C_INCR;

    for (let startI = 0; startI < 3; startI++) {
      const j = k - (startI + 1);
      if (k > startI && Number.isNaN(valences[j])) {
        let s = 0;
        const id = ids[j];
        if (id !== NONE && (table.flags[id] & ENTRY_BOOSTER) !== 0) {
          const boost = table.booster[id];
          s = valence < 0 ? -boost : boost;
          if (isCapDiff && (flags[j] & TOKEN_UPPER) !== 0) s += valence > 0 ? C_INCR : -C_INCR;
        }
        if (startI === 1 && s !== 0) s *= 0.95;
        if (startI === 2 && s !== 0) s *= 0.9;
        valence += s;
        valence = this.#negationCheck(valence, startI, k);
        if (startI === 2) valence = this.#specialIdiomsCheck(valence, k);
      }
    }

    // "least" negates ("the least compelling") unless it is "at least" / "very least".
    if (k > 1 && Number.isNaN(valences[k - 1]) && ids[k - 1] === word.least) {
      if (ids[k - 2] !== word.at && ids[k - 2] !== word.very) valence *= N_SCALAR;
    } else if (k > 0 && Number.isNaN(valences[k - 1]) && ids[k - 1] === word.least) {
      valence *= N_SCALAR;
    }
    return valence;
  }

  #negationCheck(valence: number, startI: number, k: number): number {
    const ids = this.#ids;
    const flags = this.#flags;
    const word = this.#table.word;
    if (startI === 0) {
      if ((flags[k - 1] & TOKEN_NEGATED) !== 0) return valence * N_SCALAR;
    } else if (startI === 1) {
      if (ids[k - 2] === word.never && (ids[k - 1] === word.so || ids[k - 1] === word.this)) {
        return valence * 1.25;
      }
      if (ids[k - 2] === word.without && ids[k - 1] === word.doubt) return valence;
      if ((flags[k - 2] & TOKEN_NEGATED) !== 0) return valence * N_SCALAR;
    } else {
      // Operator precedence copied from the reference: "so"/"this" right before the word boosts
      // even without "never".
      if (
        (ids[k - 3] === word.never && (ids[k - 2] === word.so || ids[k - 2] === word.this)) ||
        ids[k - 1] === word.so ||
        ids[k - 1] === word.this
      ) {
        return valence * 1.25;
      }
      if (ids[k - 3] === word.without && (ids[k - 2] === word.doubt || ids[k - 1] === word.doubt)) {
        return valence;
      }
      if ((flags[k - 3] & TOKEN_NEGATED) !== 0) return valence * N_SCALAR;
    }
    return valence;
  }

  /**
   * Idioms around word k (k ≥ 3), as n-grams of ids. A token outside the word table (NONE) is in
   * no idiom, and no token holds a space, so id n-grams match exactly where the reference's
   * space-joined strings do.
   */
  #specialIdiomsCheck(valence: number, k: number): number {
    const ids = this.#ids;
    const table = this.#table;
    const count = this.#count;
    // Only words of some phrase can be in one; the rest count as NONE here (no Map look-up).
    const f = table.flags;
    const w0 = idiomId(f, ids[k]);
    const w1 = idiomId(f, ids[k - 1]);
    const w2 = idiomId(f, ids[k - 2]);
    const w3 = idiomId(f, ids[k - 3]);
    const a1 = count - 1 > k ? idiomId(f, ids[k + 1]) : NONE;
    const a2 = count - 1 > k + 1 ? idiomId(f, ids[k + 2]) : NONE;
    const has01 = w0 !== NONE && w1 !== NONE;
    const has12 = w1 !== NONE && w2 !== NONE;
    const has23 = w2 !== NONE && w3 !== NONE;
    let v: number | undefined;
    // The reference's order: "w1 w0", "w2 w1 w0", "w2 w1", "w3 w2 w1", "w3 w2"; the first wins.
    if (has01) v = table.special2.get(ngramKey(w1, w0, 0));
    if (v === undefined && has01 && w2 !== NONE) v = table.special3.get(ngramKey(w2, w1, w0));
    if (v === undefined && has12) v = table.special2.get(ngramKey(w2, w1, 0));
    if (v === undefined && has12 && w3 !== NONE) v = table.special3.get(ngramKey(w3, w2, w1));
    if (v === undefined && has23) v = table.special2.get(ngramKey(w3, w2, 0));
    if (v !== undefined) valence = v;
    if (w0 !== NONE && a1 !== NONE) {
      const after = table.special2.get(ngramKey(w0, a1, 0));
      if (after !== undefined) valence = after;
    }
    if (w0 !== NONE && a1 !== NONE && a2 !== NONE) {
      const after = table.special3.get(ngramKey(w0, a1, a2));
      if (after !== undefined) valence = after;
    }
    // Booster phrases ("kind of", "sort of", "just enough") before the word.
    if (has12 && w3 !== NONE) {
      const b = table.booster3.get(ngramKey(w3, w2, w1));
      if (b !== undefined) valence += b;
    }
    if (has23) {
      const b = table.booster2.get(ngramKey(w3, w2, 0));
      if (b !== undefined) valence += b;
    }
    if (has12) {
      const b = table.booster2.get(ngramKey(w2, w1, 0));
      if (b !== undefined) valence += b;
    }
    return valence;
  }

  /** The compound score alone (what the pipelines store); no object is allocated. */
  compound(input: string): number {
    const count = this.#sentimentsOf(input);
    if (count === 0) return 0;
    const sentiments = this.#sentiments;
    let sum = 0;
    for (let k = 0; k < count; k++) sum += sentiments[k];
    return round(compoundOf(sum, amplifierOf(this.#exclamations, this.#questions)), 4);
  }

  scores(input: string): VaderScores {
    const count = this.#sentimentsOf(input);
    if (count === 0) return { neg: 0, neu: 0, pos: 0, compound: 0 };
    return scoreValence(this.#sentiments, count, this.#exclamations, this.#questions);
  }
}

/**
 * Contrastive "but": sentiments before the first "but" are halved, after it multiplied by 1.5.
 * The reference finds each value's position with `list.index(value)` (the FIRST equal value), so
 * with repeated values it rescales the first occurrence again; that quirk is kept for parity.
 * Zero sentiments (most tokens) are skipped: rescaling a zero leaves a zero, and a non-zero value
 * never becomes zero, so the positions holding non-zero values are fixed and the first equal value
 * of a non-zero one is found among them alone. (The sign of a zero changes no result.)
 */
function butCheck(bi: number, sentiments: Float64Array, count: number, nonZero: Int32Array): void {
  let m = 0;
  for (let k = 0; k < count; k++) if (sentiments[k] !== 0) nonZero[m++] = k;
  for (let a = 0; a < m; a++) {
    const sentiment = sentiments[nonZero[a]];
    let b = 0;
    while (sentiments[nonZero[b]] !== sentiment) b++;
    const si = nonZero[b];
    if (si < bi) sentiments[si] = sentiment * 0.5;
    else if (si > bi) sentiments[si] = sentiment * 1.5;
  }
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

function amplifierOf(exclamations: number, questions: number): number {
  const ep = Math.min(exclamations, 4) * 0.292;
  const qm = questions > 1 ? (questions <= 3 ? questions * 0.18 : 0.96) : 0;
  return ep + qm;
}

function compoundOf(sum: number, amplifier: number): number {
  if (sum > 0) sum += amplifier;
  else if (sum < 0) sum -= amplifier;
  return Math.max(-1, Math.min(1, sum / Math.sqrt(sum * sum + 15)));
}

function scoreValence(
  sentiments: Float64Array,
  count: number,
  exclamations: number,
  questions: number,
): VaderScores {
  let sum = 0;
  let posSum = 0;
  let negSum = 0;
  let neuCount = 0;
  for (let k = 0; k < count; k++) {
    const s = sentiments[k];
    sum += s;
    if (s > 0) posSum += s + 1;
    else if (s < 0) negSum += s - 1;
    else neuCount++;
  }
  const amplifier = amplifierOf(exclamations, questions);
  const compound = compoundOf(sum, amplifier);
  if (posSum > Math.abs(negSum)) posSum += amplifier;
  else if (posSum < Math.abs(negSum)) negSum -= amplifier;
  const total = posSum + Math.abs(negSum) + neuCount;
  return {
    neg: round(Math.abs(negSum / total), 3),
    neu: round(Math.abs(neuCount / total), 3),
    pos: round(Math.abs(posSum / total), 3),
    compound: round(compound, 4),
  };
}
