import { seededRandom } from '../../core/index.js';
import { eventFields, type QuarantineReason } from './validate.js';

/**
 * Seeded viewing events that behave like a streaming service's: users in several countries watch
 * mostly in their local prime time (20:00–23:00), binge runs of consecutive series episodes, play /
 * pause / resume / stop / complete with positions and watched seconds that add up, ratings after
 * some completions, a device mix per user, and sessions (an app-provided `session_id` on most
 * events; web players send none, so their sessions come from a 30-minute gap). A sprinkle of every
 * kind of bad record and of exact duplicates is mixed in, and the generator reports exactly what it
 * injected, so tests compare the pipeline with ground truth.
 */
export interface GenerateViewingOptions {
  users?: number;
  days?: number;
  seed?: number;
  /** Events fall in the `days` days before this time (epoch ms). Default now. */
  endMs?: number;
  /** Bad records of each reason (default 3); 0 for a clean set. */
  badPerReason?: number;
  /** Exact duplicates re-sent (default 1% of the events). */
  duplicates?: number;
}

/** A record as a source sends it: strings for CSV, mixed types as JSON would carry them. */
export type RawEvent = Record<string, string | number | null>;

export interface GeneratedViewing {
  /** Every record in ingestion order: valid events, bad records and duplicates, interleaved. */
  records: RawEvent[];
  /** The valid events (first occurrences), as generated. */
  valid: RawEvent[];
  /** Bad records injected, per quarantine reason. */
  quarantined: Partial<Record<QuarantineReason, number>>;
  duplicates: number;
}

interface Show {
  id: string;
  title: string;
  type: 'movie' | 'series' | 'documentary' | 'special';
  durationS: number;
  seasons: number;
  episodes: number;
}

const showNames = [
  ['series', 'The Lighthouse Keepers'],
  ['series', 'Northern Lines'],
  ['series', 'Kitchen Confidential Live'],
  ['series', 'Orbit Station'],
  ['series', 'Small Town Secrets'],
  ['series', 'The Heist Crew'],
  ['series', 'Mountain Rescue'],
  ['series', 'Code & Coffee'],
  ['series', 'Royal Courts'],
  ['series', 'Desert Winds'],
  ['movie', 'Midnight Express Train'],
  ['movie', 'The Last Orchard'],
  ['movie', 'Paper Planes'],
  ['movie', 'Storm Chasers'],
  ['movie', 'A Quiet Harbour'],
  ['movie', 'Neon Alley'],
  ['movie', 'The Cartographer'],
  ['movie', 'Glass Garden'],
  ['documentary', 'Oceans Unseen'],
  ['documentary', 'The Bee Economy'],
  ['documentary', 'Cities at Night'],
  ['documentary', 'Inside the Vault'],
  ['special', 'New Year Countdown Concert'],
  ['special', 'Comedy Gala 2026'],
] as const;

const countries = [
  { code: 'US', offsetH: -5, weight: 30 },
  { code: 'GB', offsetH: 0, weight: 12 },
  { code: 'DE', offsetH: 1, weight: 10 },
  { code: 'FR', offsetH: 1, weight: 8 },
  { code: 'BR', offsetH: -3, weight: 12 },
  { code: 'IN', offsetH: 5, weight: 14 },
  { code: 'JP', offsetH: 9, weight: 8 },
  { code: 'AU', offsetH: 10, weight: 6 },
] as const;

const deviceWeights = [
  ['tv', 40],
  ['mobile', 25],
  ['web', 15],
  ['tablet', 12],
  ['console', 8],
] as const;

function weighted<T>(random: () => number, items: readonly (readonly [T, number])[]): T {
  const total = items.reduce((sum, [, w]) => sum + w, 0);
  let roll = random() * total;
  for (const [item, w] of items) {
    roll -= w;
    if (roll < 0) return item;
  }
  return items[items.length - 1][0];
}

export function generateViewing(options: GenerateViewingOptions = {}): GeneratedViewing {
  const random = seededRandom(options.seed ?? 1);
  const users = options.users ?? 200;
  const days = options.days ?? 14;
  const endMs = options.endMs ?? Date.now();
  const startDayMs = Math.floor(endMs / 86_400_000) * 86_400_000 - days * 86_400_000;
  const shows: Show[] = showNames.map(([type, title], i) => ({
    id: `show-${String(i + 1).padStart(3, '0')}`,
    title,
    type,
    durationS:
      type === 'series'
        ? 1500 + Math.floor(random() * 2100)
        : type === 'movie'
          ? 5400 + Math.floor(random() * 3600)
          : 2700 + Math.floor(random() * 1800),
    seasons: type === 'series' ? 1 + Math.floor(random() * 4) : 0,
    episodes: type === 'series' ? 6 + Math.floor(random() * 6) : 0,
  }));
  const valid: RawEvent[] = [];
  let sequence = 0;
  const nextId = () => `ev-${(options.seed ?? 1).toString(36)}-${(sequence++).toString(36).padStart(7, '0')}`;

  for (let u = 0; u < users; u++) {
    const userId = `user-${String(u + 1).padStart(5, '0')}`;
    const country = weighted(
      random,
      countries.map((c) => [c, c.weight] as const),
    );
    const devicesOfUser = [weighted(random, deviceWeights), weighted(random, deviceWeights)];
    const favourite = shows[Math.floor(random() * shows.length)];
    const activity = 0.25 + random() * 0.6;
    // Where the user is in each series: season and episode of their next watch.
    const progress = new Map<string, { season: number; episode: number }>();
    for (let day = 0; day < days; day++) {
      if (random() > activity) continue;
      const device = devicesOfUser[random() < 0.75 ? 0 : 1];
      const withSessionId = device !== 'web';
      // Local prime time 20:00–23:00, some afternoon viewing.
      const localHour = random() < 0.75 ? 20 + random() * 3 : 13 + random() * 5;
      let ts = startDayMs + day * 86_400_000 + Math.floor((localHour - country.offsetH) * 3_600_000);
      const sessions = random() < 0.2 ? 2 : 1;
      for (let s = 0; s < sessions; s++) {
        const sessionId = withSessionId ? `sess-${userId}-${day}-${s}` : null;
        const show = random() < 0.45 ? favourite : shows[Math.floor(random() * shows.length)];
        const items = show.type === 'series' ? 1 + Math.floor(random() * 4) : 1;
        for (let item = 0; item < items; item++) {
          const at = progress.get(show.id) ?? { season: 1, episode: 1 };
          const emit = (type: string, watch: number, position: number, rating: number | null = null) => {
            valid.push({
              event_id: nextId(),
              user_id: userId,
              show_id: show.id,
              show_title: show.title,
              show_type: show.type,
              season: show.type === 'series' ? at.season : null,
              episode: show.type === 'series' ? at.episode : null,
              event_type: type,
              event_ts: new Date(ts).toISOString(),
              watch_seconds: watch,
              position_seconds: position,
              duration_seconds: show.durationS,
              device,
              country: country.code,
              rating,
              session_id: sessionId,
            });
          };
          emit('play', 0, 0);
          let position = 0;
          const finishes = random() < 0.7;
          const target = finishes ? show.durationS : Math.floor(show.durationS * (0.1 + random() * 0.7));
          if (random() < 0.3) {
            const watched = Math.floor(target * (0.2 + random() * 0.5));
            ts += watched * 1000;
            position += watched;
            emit('pause', watched, position);
            ts += Math.floor(60_000 + random() * 600_000);
            emit('resume', 0, position);
          }
          const rest = target - position;
          ts += rest * 1000;
          position = target;
          emit(finishes ? 'complete' : 'stop', rest, position);
          if (finishes && random() < 0.35) {
            ts += 5_000;
            emit('rate', 0, position, 1 + Math.floor(random() * 5));
          }
          if (show.type === 'series' && finishes) {
            progress.set(
              show.id,
              at.episode >= show.episodes
                ? { season: Math.min(at.season + 1, show.seasons), episode: 1 }
                : { season: at.season, episode: at.episode + 1 },
            );
          }
          ts += Math.floor(30_000 + random() * 120_000);
        }
        // The second session of a day starts well after the first (> 30 min gap).
        ts += Math.floor(2 * 3_600_000 + random() * 3_600_000);
      }
    }
  }

  // Late-evening sessions of the last day can run past `endMs`: those events have not happened yet.
  let kept = 0;
  for (const event of valid) if (Date.parse(String(event.event_ts)) <= endMs) valid[kept++] = event;
  valid.length = kept;

  // Bad records, each built from a valid event with one fault; every one is checked again in tests.
  const perReason = valid.length === 0 ? 0 : (options.badPerReason ?? 3);
  const quarantined: Partial<Record<QuarantineReason, number>> = {};
  const bad: RawEvent[] = [];
  const faults: [QuarantineReason, (e: RawEvent) => RawEvent][] = [
    ['missing_field:event_id', (e) => ({ ...e, event_id: '  ' })],
    ['missing_field:user_id', (e) => ({ ...e, user_id: null })],
    ['missing_field:show_id', (e) => ({ ...e, show_id: '' })],
    ['invalid_enum:show_type', (e) => ({ ...e, show_type: 'podcast' })],
    ['invalid_number:season', (e) => ({ ...e, season: 'two' })],
    ['invalid_enum:event_type', (e) => ({ ...e, event_type: 'rewind' })],
    ['invalid_timestamp', (e) => ({ ...e, event_ts: String(e.event_ts).replace(/Z$/, '') })],
    ['future_timestamp', (e) => ({ ...e, event_ts: new Date(endMs + 86_400_000 + 3_600_000).toISOString() })],
    ['invalid_number:watch_seconds', (e) => ({ ...e, watch_seconds: 'ten' })],
    ['negative_value:watch_seconds', (e) => ({ ...e, watch_seconds: -30 })],
    ['position_exceeds_duration', (e) => ({ ...e, position_seconds: Number(e.duration_seconds) + 600 })],
    ['invalid_enum:device', (e) => ({ ...e, device: 'fridge' })],
    ['invalid_enum:country', (e) => ({ ...e, country: 'USA' })],
    ['invalid_rating', (e) => ({ ...e, event_type: 'rate', rating: 9 })],
  ];
  for (const [reason, fault] of faults) {
    for (let i = 0; i < perReason; i++) {
      const base = valid[Math.floor(random() * valid.length)];
      bad.push(
        fault({
          ...base,
          event_id:
            base.event_id === null
              ? null
              : `bad-${reason.replace(/[^a-z]/g, '')}-${i}-${String(base.event_id)}`,
        }),
      );
      quarantined[reason] = (quarantined[reason] ?? 0) + 1;
    }
  }
  // Records interleave in a plausible ingestion order: by event time, with bad ones and repeats
  // (a repeat always after its original) spread in. One merge pass, so large sets stay cheap.
  const duplicateCount = valid.length === 0 ? 0 : (options.duplicates ?? Math.floor(valid.length / 100));
  const inserts: { after: number; record: RawEvent }[] = [];
  for (const record of bad) inserts.push({ after: Math.floor(random() * valid.length), record });
  for (let i = 0; i < duplicateCount; i++) {
    const at = Math.floor(random() * valid.length);
    inserts.push({
      after: Math.min(valid.length - 1, at + Math.floor(random() * 50)),
      record: { ...valid[at] },
    });
  }
  inserts.sort((a, b) => a.after - b.after);
  const records: RawEvent[] = [];
  let next = 0;
  for (let i = 0; i < valid.length; i++) {
    records.push(valid[i]);
    while (next < inserts.length && inserts[next].after === i) records.push(inserts[next++].record);
  }
  return { records, valid, quarantined, duplicates: duplicateCount };
}

function csvCell(value: string | number | null): string {
  if (value === null) return '';
  const text = String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** CSV with the schema's header (every value as text; null as an empty cell). */
export function toCsv(records: readonly RawEvent[]): string {
  const lines = [eventFields.join(',')];
  for (const r of records) lines.push(eventFields.map((f) => csvCell(r[f] ?? null)).join(','));
  return `${lines.join('\n')}\n`;
}

/** JSON lines. */
export function toNdjson(records: readonly RawEvent[]): string {
  return records.map((r) => JSON.stringify(r)).join('\n') + '\n';
}

const liveShows = [
  ['show-001', 'The Lighthouse Keepers', 'series', 2400],
  ['show-011', 'Midnight Express Train', 'movie', 6600],
  ['show-019', 'Oceans Unseen', 'documentary', 3000],
  ['show-004', 'Orbit Station', 'series', 1800],
] as const;

/**
 * Fresh events stamped at the time given (a live tail for demos): plays and stops of a few
 * popular shows by a pool of users, ids `<prefix>-<n>`.
 */
export function liveEvents(prefix: string, seed: number): (nowMs: number) => RawEvent {
  const random = seededRandom(seed);
  let sequence = 0;
  return (nowMs) => {
    const [showId, title, type, duration] = liveShows[Math.floor(random() * liveShows.length)];
    const watched = Math.floor(random() * 300);
    return {
      event_id: `${prefix}-${sequence++}`,
      user_id: `user-${String(1 + Math.floor(random() * 500)).padStart(5, '0')}`,
      show_id: showId,
      show_title: title,
      show_type: type,
      season: type === 'series' ? 1 : null,
      episode: type === 'series' ? 1 + Math.floor(random() * 8) : null,
      event_type: random() < 0.5 ? 'play' : 'stop',
      event_ts: new Date(nowMs).toISOString(),
      watch_seconds: watched,
      position_seconds: Math.min(duration, watched),
      duration_seconds: duration,
      device: deviceWeights[Math.floor(random() * deviceWeights.length)][0],
      country: countries[Math.floor(random() * countries.length)].code,
      rating: null,
      session_id: null,
    };
  };
}
