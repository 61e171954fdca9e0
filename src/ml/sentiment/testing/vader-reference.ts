import { emojiNamesTsv } from '../../data/emoji-names.js';
import { loadVaderLexicon, type VaderScores } from '../vader.js';

/**
 * The VADER implementation as it was before the allocation-free rewrite in `../vader.ts`, kept
 * frozen (only renamed, its lexicon loader shared) as the oracle of the parity tests and the
 * baseline of the `ml.sentiment.reviews` benchmark. Not part of the package (`testing/`).
 *
 * VADER (Hutto & Gilbert 2014, "VADER: A Parsimonious Rule-based Model for Sentiment Analysis of
 * Social Media Text", ICWSM-14), ported rule for rule from the reference Python `vaderSentiment`
 * (3.3.x): lexicon valences, negation (with the reference's "never so/this" and "without doubt"
 * idioms), booster/dampener words, "but" shifts, ALL-CAPS emphasis when only some words are in caps,
 * "!" and "?" emphasis, special-case idioms ("the bomb", "kiss of death"), "least" handling and
 * emoji replaced by their CLDR names before scoring. The compound score is `x / sqrt(x² + 15)`,
 * rounded to 4 decimals like the reference prints it.
 *
 * Speed comes from tokenising each sentence once into parallel arrays (original token, lower-case
 * token, lexicon valence or NaN), so every rule below is array look-ups instead of re-lowering and
 * re-hashing words as the reference does inside its loops.
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

let sharedEmoji: Map<number, string> | undefined;

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

/** Python's `str.isupper()`: at least one cased character and no lower-case one. */
function isUpper(word: string, lower: string): boolean {
  return word !== lower && word === word.toUpperCase();
}

function codePointLength(s: string): number {
  if (s.length > 4) return s.length;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdbff) n++;
  }
  return n;
}

/**
 * The VADER analyzer. One instance holds the lexicon and emoji tables (shared across instances);
 * `scores(text)` is synchronous and allocation-light.
 *
 * @example
 * const vader = new Vader();
 * vader.scores('VADER is smart, handsome, and funny.').compound; // 0.8316
 */
export class VaderReference {
  readonly #lexicon: Map<string, number>;
  readonly #emoji: Map<number, string>;

  constructor(lexicon?: Map<string, number>) {
    this.#lexicon = lexicon ?? loadVaderLexicon();
    this.#emoji = loadEmoji();
  }

  /** Emoji → " description" as the reference does (a space before unless one is already there). */
  #replaceEmoji(text: string): string {
    let found = false;
    for (let i = 0; i < text.length; i++) {
      if (text.charCodeAt(i) >= 0xa9) {
        found = true;
        break;
      }
    }
    if (!found) return text;
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

  scores(input: string): VaderScores {
    const text = this.#replaceEmoji(input);
    const lexicon = this.#lexicon;

    // Tokenise once: whitespace split, strip ASCII punctuation at both ends unless that leaves
    // two characters or fewer (then the token was probably an emoticon such as ":)").
    const words: string[] = [];
    const n = text.length;
    let exclamations = 0;
    let questions = 0;
    let i = 0;
    while (i < n) {
      let c = text.charCodeAt(i);
      if (isSpace(c)) {
        i++;
        continue;
      }
      const start = i;
      while (i < n) {
        c = text.charCodeAt(i);
        if (isSpace(c)) break;
        if (c === 33) exclamations++;
        else if (c === 63) questions++;
        i++;
      }
      let s = start;
      let e = i;
      while (s < e && text.charCodeAt(s) < 128 && isPunct[text.charCodeAt(s)] === 1) s++;
      while (e > s && text.charCodeAt(e - 1) < 128 && isPunct[text.charCodeAt(e - 1)] === 1) e--;
      if (s === start && e === i) words.push(text.slice(start, i));
      else {
        const stripped = text.slice(s, e);
        words.push(codePointLength(stripped) <= 2 ? text.slice(start, i) : stripped);
      }
    }
    const count = words.length;
    if (count === 0) return { neg: 0, neu: 0, pos: 0, compound: 0 };

    const lower: string[] = new Array<string>(count);
    const valences = new Float64Array(count);
    let allCaps = 0;
    for (let k = 0; k < count; k++) {
      const w = words[k];
      const l = w.toLowerCase();
      lower[k] = l;
      const v = lexicon.get(l);
      valences[k] = v === undefined ? NaN : v;
      if (isUpper(w, l)) allCaps++;
    }
    const isCapDiff = allCaps > 0 && allCaps < count;

    const sentiments: number[] = new Array<number>(count);
    for (let k = 0; k < count; k++) {
      const l = lower[k];
      if (BOOSTERS.has(l) || (k < count - 1 && l === 'kind' && lower[k + 1] === 'of')) {
        sentiments[k] = 0;
        continue;
      }
      sentiments[k] = this.#valence(k, words, lower, valences, isCapDiff);
    }

    if (lower.includes('but')) butCheck(lower.indexOf('but'), sentiments);
    return scoreValence(sentiments, exclamations, questions);
  }

  #valence(k: number, words: string[], lower: string[], valences: Float64Array, isCapDiff: boolean): number {
    const base = valences[k];
    if (Number.isNaN(base)) return 0;
    const count = words.length;
    let valence = base;
    // "no" before another lexicon word negates that word instead of scoring on its own.
    if (lower[k] === 'no' && k !== count - 1 && !Number.isNaN(valences[k + 1])) valence = 0;
    if (
      (k > 0 && lower[k - 1] === 'no') ||
      (k > 1 && lower[k - 2] === 'no') ||
      (k > 2 && lower[k - 3] === 'no' && (lower[k - 1] === 'or' || lower[k - 1] === 'nor'))
    ) {
      valence = base * N_SCALAR;
    }
    if (isCapDiff && isUpper(words[k], lower[k])) valence += valence > 0 ? C_INCR : -C_INCR;

    for (let startI = 0; startI < 3; startI++) {
      const j = k - (startI + 1);
      if (k > startI && Number.isNaN(valences[j])) {
        let s = 0;
        const boost = BOOSTERS.get(lower[j]);
        if (boost !== undefined) {
          s = valence < 0 ? -boost : boost;
          if (isCapDiff && isUpper(words[j], lower[j])) s += valence > 0 ? C_INCR : -C_INCR;
        }
        if (startI === 1 && s !== 0) s *= 0.95;
        if (startI === 2 && s !== 0) s *= 0.9;
        valence += s;
        valence = negationCheck(valence, lower, startI, k);
        if (startI === 2) valence = specialIdiomsCheck(valence, lower, k);
      }
    }

    // "least" negates ("the least compelling") unless it is "at least" / "very least".
    if (k > 1 && Number.isNaN(valences[k - 1]) && lower[k - 1] === 'least') {
      if (lower[k - 2] !== 'at' && lower[k - 2] !== 'very') valence *= N_SCALAR;
    } else if (k > 0 && Number.isNaN(valences[k - 1]) && lower[k - 1] === 'least') {
      valence *= N_SCALAR;
    }
    return valence;
  }
}

function negated(word: string): boolean {
  return NEGATE.has(word) || word.includes("n't");
}

function negationCheck(valence: number, lower: string[], startI: number, k: number): number {
  if (startI === 0) {
    if (negated(lower[k - 1])) return valence * N_SCALAR;
  } else if (startI === 1) {
    if (lower[k - 2] === 'never' && (lower[k - 1] === 'so' || lower[k - 1] === 'this')) return valence * 1.25;
    if (lower[k - 2] === 'without' && lower[k - 1] === 'doubt') return valence;
    if (negated(lower[k - 2])) return valence * N_SCALAR;
  } else {
    // Operator precedence copied from the reference: "so"/"this" right before the word boosts
    // even without "never".
    if (
      (lower[k - 3] === 'never' && (lower[k - 2] === 'so' || lower[k - 2] === 'this')) ||
      lower[k - 1] === 'so' ||
      lower[k - 1] === 'this'
    ) {
      return valence * 1.25;
    }
    if (lower[k - 3] === 'without' && (lower[k - 2] === 'doubt' || lower[k - 1] === 'doubt')) return valence;
    if (negated(lower[k - 3])) return valence * N_SCALAR;
  }
  return valence;
}

function specialIdiomsCheck(valence: number, lower: string[], k: number): number {
  const w0 = lower[k];
  const w1 = lower[k - 1];
  const w2 = lower[k - 2];
  const w3 = lower[k - 3];
  const threeTwoOne = `${w3} ${w2} ${w1}`;
  const threeTwo = `${w3} ${w2}`;
  const twoOne = `${w2} ${w1}`;
  for (const seq of [`${w1} ${w0}`, `${w2} ${w1} ${w0}`, twoOne, threeTwoOne, threeTwo]) {
    const v = SPECIAL_CASES.get(seq);
    if (v !== undefined) {
      valence = v;
      break;
    }
  }
  if (lower.length - 1 > k) {
    const v = SPECIAL_CASES.get(`${w0} ${lower[k + 1]}`);
    if (v !== undefined) valence = v;
  }
  if (lower.length - 1 > k + 1) {
    const v = SPECIAL_CASES.get(`${w0} ${lower[k + 1]} ${lower[k + 2]}`);
    if (v !== undefined) valence = v;
  }
  for (const gram of [threeTwoOne, threeTwo, twoOne]) {
    const v = BOOSTERS.get(gram);
    if (v !== undefined) valence += v;
  }
  return valence;
}

/**
 * Contrastive "but": sentiments before the first "but" are halved, after it multiplied by 1.5.
 * The reference finds each value's position with `list.index(value)` (the FIRST equal value), so
 * with repeated values it rescales the first occurrence again; that quirk is kept for parity.
 */
function butCheck(bi: number, sentiments: number[]): void {
  for (let k = 0; k < sentiments.length; k++) {
    const sentiment = sentiments[k];
    const si = sentiments.indexOf(sentiment);
    if (si < bi) sentiments[si] = sentiment * 0.5;
    else if (si > bi) sentiments[si] = sentiment * 1.5;
  }
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

function scoreValence(sentiments: number[], exclamations: number, questions: number): VaderScores {
  let sum = 0;
  let posSum = 0;
  let negSum = 0;
  let neuCount = 0;
  for (const s of sentiments) {
    sum += s;
    if (s > 0) posSum += s + 1;
    else if (s < 0) negSum += s - 1;
    else neuCount++;
  }
  const ep = Math.min(exclamations, 4) * 0.292;
  const qm = questions > 1 ? (questions <= 3 ? questions * 0.18 : 0.96) : 0;
  const amplifier = ep + qm;
  if (sum > 0) sum += amplifier;
  else if (sum < 0) sum -= amplifier;
  const compound = Math.max(-1, Math.min(1, sum / Math.sqrt(sum * sum + 15)));
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
