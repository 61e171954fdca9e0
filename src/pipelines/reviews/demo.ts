import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { seededRandom } from '../../core/index.js';

/**
 * Demo review files, generated from a seed (no real reviews are shipped): products of three shops,
 * reviews over `days` days in all three layouts, with the faults the pipeline must survive — a few
 * bad lines (not JSON, no text, rating out of range, unknown layout), reviews repeated across files
 * (duplicates), loose-JSON lines of the 2014 dump, a gzipped file, and one file that cannot be read
 * at all (a damaged gzip stream), which the spool moves to `failed/`.
 */
export interface DemoReviewsOptions {
  /** Reviews per layout (three layouts). Default 1000. */
  reviewsPerFormat?: number;
  days?: number;
  seed?: number;
  /** Reviews are dated in the `days` days up to this time (epoch ms). */
  endMs?: number;
}

export interface DemoReviewFiles {
  files: string[];
  /** Good reviews written, duplicates included. */
  reviews: number;
  duplicates: number;
  badLines: number;
  unreadableFiles: number;
}

export interface DemoProduct {
  id: string;
  name: string;
  kind: keyof typeof phrases;
  /** How the product is liked, 0..1: shifts its ratings and the tone of its reviews. */
  quality: number;
}

export const demoProducts: readonly DemoProduct[] = [
  { id: 'B00HEADLMP', name: 'TrailBeam 400 headlamp', kind: 'gear', quality: 0.85 },
  { id: 'B01TENT2P', name: 'Ridgeline two-person tent', kind: 'gear', quality: 0.7 },
  { id: 'B02STOVE1', name: 'Pocket gas stove', kind: 'gear', quality: 0.35 },
  { id: 'B03KETTLE', name: 'Gooseneck electric kettle', kind: 'kitchen', quality: 0.8 },
  { id: 'B04BLENDR', name: 'Compact blender', kind: 'kitchen', quality: 0.25 },
  { id: 'B05PAN28C', name: '28 cm cast iron pan', kind: 'kitchen', quality: 0.9 },
  { id: 'B06TEA100', name: 'Oolong tea, 100 g', kind: 'food', quality: 0.75 },
  { id: 'B07GRANOL', name: 'Maple granola', kind: 'food', quality: 0.55 },
  { id: 'B08COFFEE', name: 'Dark roast coffee beans', kind: 'food', quality: 0.6 },
  { id: 'B09CHOCO', name: 'Sea salt chocolate bar', kind: 'food', quality: 0.95 },
  { id: 'B10EARBUD', name: 'Wireless earbuds', kind: 'gear', quality: 0.3 },
  { id: 'B11MUGSET', name: 'Stoneware mug set', kind: 'kitchen', quality: 0.65 },
];

const phrases = {
  gear: {
    good: [
      'The battery lasts for days and charging is quick.',
      'It feels solid and survived a wet weekend without trouble.',
      'Setup took five minutes and everything fit in my pack.',
      'Bright, light and comfortable, exactly what I wanted for night hikes.',
      'Great value for the price, I would buy it again.',
    ],
    bad: [
      'It stopped working after two weeks and support never answered.',
      'The strap broke on the first trip, very disappointing.',
      'Much heavier than described and the zipper keeps jamming.',
      'Poor build quality, the plastic cracked in the cold.',
      'Terrible battery life, it died halfway through the evening.',
    ],
    neutral: [
      'I used it on three trips so far.',
      'It arrived in a plain box with a short manual.',
      'The colour is a darker green than in the photos.',
      'It comes with a small carrying bag.',
    ],
  },
  kitchen: {
    good: [
      'Heats evenly and cleans up easily.',
      'It looks beautiful on the counter and works perfectly.',
      'Boils water in under three minutes, I love it.',
      'Sturdy, well made and a pleasure to cook with.',
      'Excellent quality, worth every penny.',
    ],
    bad: [
      'The motor is loud and it leaks from the lid.',
      'It rusted after a month despite careful drying.',
      'Awful smell of burning plastic the first few uses.',
      'Broke within a week, a complete waste of money.',
      'The handle gets dangerously hot, I am not happy.',
    ],
    neutral: [
      'I use it most mornings.',
      'It replaced an older model I had for years.',
      'The box said it is dishwasher safe.',
      'It is about the size of a shoebox.',
    ],
  },
  food: {
    good: [
      'Delicious, rich flavour and arrived fresh.',
      'My whole family loves it, we order it every month.',
      'Smooth and aromatic, the best I have tried in a long time.',
      'Perfect balance of sweet and salty, highly recommended.',
      'Great taste and nicely packaged.',
    ],
    bad: [
      'Stale and bland, it tasted like cardboard.',
      'The bag was torn and half of it had gone bad.',
      'Far too sweet, I could not finish it.',
      'Bitter and burnt, I threw it away.',
      'Disappointing, nothing like the description.',
    ],
    neutral: [
      'I bought it for an office party.',
      'It comes in a resealable bag.',
      'The label lists the origin and roast date.',
      'I tried it with milk and without.',
    ],
  },
} as const;

interface GeneratedReview {
  product: DemoProduct;
  user: string;
  userName: string;
  rating: number;
  title: string;
  text: string;
  tsMs: number;
}

function generator(
  seed: number,
  days: number,
  endMs: number,
  products: readonly DemoProduct[] = demoProducts,
) {
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const dayStart = Math.floor(endMs / 86_400_000) * 86_400_000;
  return (): GeneratedReview => {
    const product = pick(products);
    // Ratings lean on the product's quality; one review in twelve says the opposite of its stars.
    const liked = random() < product.quality;
    const rating = liked ? (random() < 0.6 ? 5 : 4) : random() < 0.6 ? 1 : random() < 0.5 ? 2 : 3;
    const contrary = random() < 1 / 12;
    const tone = rating >= 4 !== contrary ? 'good' : 'bad';
    const set = phrases[product.kind];
    const sentences: string[] = [];
    const length = 3 + Math.floor(random() * 6);
    for (let i = 0; i < length; i++) {
      const roll = random();
      sentences.push(
        roll < 0.65
          ? pick(set[tone])
          : roll < 0.9
            ? pick(set.neutral)
            : pick(set[tone === 'good' ? 'bad' : 'good']),
      );
    }
    const userNumber = Math.floor(random() * 400);
    const day = Math.floor(random() * days);
    return {
      product,
      user: `U${String(userNumber).padStart(5, '0')}`,
      userName: `Shopper ${userNumber}`,
      rating,
      title: `${product.name}: ${tone === 'good' ? pick(['works great', 'love it', 'very good', 'recommended']) : pick(['not worth it', 'disappointed', 'returned it', 'avoid'])}`,
      text: `${sentences.join(' ')}`,
      // Whole days before the end time's day: no review is dated in the future.
      tsMs: dayStart - (day + 1) * 86_400_000 + Math.floor(random() * 86_400) * 1000,
    };
  };
}

const pad = (n: number) => String(n).padStart(2, '0');

function amazon2014Line(r: GeneratedReview): Record<string, unknown> {
  const date = new Date(r.tsMs);
  return {
    reviewerID: r.user,
    asin: r.product.id,
    reviewerName: r.userName,
    helpful: [0, 0],
    reviewText: r.text,
    overall: r.rating,
    summary: r.title,
    unixReviewTime: Math.floor(r.tsMs / 1000),
    reviewTime: `${pad(date.getUTCMonth() + 1)} ${pad(date.getUTCDate())}, ${date.getUTCFullYear()}`,
  };
}

function amazon2023Line(r: GeneratedReview): Record<string, unknown> {
  return {
    rating: r.rating,
    title: r.title,
    text: r.text,
    images: [],
    asin: r.product.id,
    parent_asin: r.product.id,
    user_id: r.user,
    timestamp: r.tsMs,
    helpful_vote: 0,
    verified_purchase: true,
  };
}

function csvField(value: string | number): string {
  const text = String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** A Python dict literal, as the 2014 dump's "loose JSON" lines are written. */
function pythonLiteral(value: unknown): string {
  if (value === null) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  if (Array.isArray(value)) return `[${value.map(pythonLiteral).join(', ')}]`;
  return `{${Object.entries(value as Record<string, unknown>)
    .map(([k, v]) => `${pythonLiteral(k)}: ${pythonLiteral(v)}`)
    .join(', ')}}`;
}

/**
 * Writes the demo file set into `dir` (created when missing). Each file is written under a dotted
 * temporary name and renamed, as a well-behaved spool writer does.
 */
export async function writeDemoReviews(
  dir: string,
  options: DemoReviewsOptions = {},
): Promise<DemoReviewFiles> {
  const perFormat = options.reviewsPerFormat ?? 1000;
  const next = generator(options.seed ?? 7, options.days ?? 14, options.endMs ?? Date.now());
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  const put = async (name: string, content: string | Buffer) => {
    const temporary = path.join(dir, `.${name}.tmp`);
    await writeFile(temporary, content);
    await rename(temporary, path.join(dir, name));
    files.push(name);
  };
  let reviews = 0;
  let duplicates = 0;
  let badLines = 0;

  // 2014 / 2018 JSON lines; every fifth line in the 2014 dump's loose (Python literal) form.
  const lines2014: string[] = [];
  const repeated: GeneratedReview[] = [];
  for (let i = 0; i < perFormat; i++) {
    const review = next();
    if (i % 50 === 0) repeated.push(review);
    const line = amazon2014Line(review);
    lines2014.push(i % 5 === 4 ? pythonLiteral(line) : JSON.stringify(line));
    reviews++;
  }
  lines2014.splice(17, 0, '{"reviewerID": "A1", "asin": "B00HEADLMP", "reviewText": "truncated');
  lines2014.splice(101, 0, JSON.stringify({ ...amazon2014Line(next()), reviewText: '   ' }));
  badLines += 2;
  await put('amazon-2014-gear-and-kitchen.jsonl', `${lines2014.join('\n')}\n`);

  // 2023 JSON lines, gzipped; repeats some 2014 reviews (same product, user, time and text: the
  // same hashed id, so they are duplicates).
  const lines2023: string[] = [];
  for (let i = 0; i < perFormat; i++) {
    lines2023.push(JSON.stringify(amazon2023Line(next())));
    reviews++;
  }
  const repeats = repeated.map((r) => {
    const line = amazon2014Line(r);
    return JSON.stringify(line);
  });
  lines2023.push(...repeats);
  duplicates += repeats.length;
  reviews += repeats.length;
  lines2023.splice(40, 0, JSON.stringify({ ...amazon2023Line(next()), rating: 7 }));
  lines2023.splice(80, 0, JSON.stringify({ sku: 'X-1', comment: 'wrong export' }));
  badLines += 2;
  await put('amazon-2023-all.jsonl.gz', gzipSync(`${lines2023.join('\n')}\n`));

  // The Kaggle fine-food CSV (food products), with one Id repeated.
  const header =
    'Id,ProductId,UserId,ProfileName,HelpfulnessNumerator,HelpfulnessDenominator,Score,Time,Summary,Text';
  const rows = [header];
  const foodNext = generator(
    (options.seed ?? 7) + 1,
    options.days ?? 14,
    options.endMs ?? Date.now(),
    demoProducts.filter((p) => p.kind === 'food'),
  );
  const row = (id: number, r: GeneratedReview) =>
    [id, r.product.id, r.user, r.userName, 1, 2, r.rating, Math.floor(r.tsMs / 1000), r.title, r.text]
      .map(csvField)
      .join(',');
  for (let i = 1; i <= perFormat; i++) {
    const review = foodNext();
    rows.push(row(i, review));
    reviews++;
    if (i === 10) {
      rows.push(row(i, review));
      reviews++;
      duplicates++;
    }
  }
  rows.splice(30, 0, 'not,a,valid,row');
  badLines += 1;
  await put('fine-food-reviews.csv', `${rows.join('\n')}\n`);

  // One file nobody can read: a gzip stream cut short.
  const damaged = gzipSync(`${JSON.stringify(amazon2023Line(next()))}\n`.repeat(20)).subarray(0, 40);
  await put('upload-interrupted.jsonl.gz', damaged);
  return { files, reviews, duplicates, badLines, unreadableFiles: 1 };
}
