import { describe, expect, it } from 'vitest';
import { generateViewing } from './generate.js';
import { parseEventTs, validateEvent, type QuarantineReason } from './validate.js';

const now = Date.UTC(2026, 11, 3, 12);
const good = {
  event_id: 'e1',
  user_id: 'u1',
  show_id: 's1',
  show_title: 'Show',
  show_type: 'Series',
  season: '2',
  episode: 3,
  event_type: 'PLAY',
  event_ts: '2026-12-03T10:00:00+01:00',
  watch_seconds: '0',
  position_seconds: 0,
  duration_seconds: 1800,
  device: 'TV',
  country: 'us',
  rating: '',
  session_id: '',
};
const reason = (patch: Record<string, unknown>) => {
  const result = validateEvent({ ...good, ...patch }, now);
  return result.ok ? 'valid' : result.reason;
};

describe('viewing event validation', () => {
  it('normalises a valid event (enums lower-case, country upper-case, UTC time, empties null)', () => {
    expect(validateEvent(good, now)).toEqual({
      ok: true,
      event: {
        event_id: 'e1',
        user_id: 'u1',
        show_id: 's1',
        show_title: 'Show',
        show_type: 'series',
        season: 2,
        episode: 3,
        event_type: 'play',
        event_ts: Date.UTC(2026, 11, 3, 9),
        event_date: '2026-12-03',
        watch_seconds: 0,
        position_seconds: 0,
        duration_seconds: 1800,
        device: 'tv',
        country: 'US',
        rating: null,
        session_id: null,
      },
    });
  });

  it('names the first failing rule in the schema order', () => {
    expect(reason({ event_id: ' ', user_id: null })).toBe('missing_field:event_id');
    expect(reason({ user_id: undefined, show_type: 'podcast' })).toBe('missing_field:user_id');
    expect(reason({ show_type: 'podcast', device: 'fridge' })).toBe('invalid_enum:show_type');
    expect(reason({ season: 'x' })).toBe('invalid_number:season');
    expect(reason({ season: 0 })).toBe('invalid_number:season');
    expect(reason({ episode: -1 })).toBe('negative_value:episode');
    expect(reason({ event_type: 'rewind' })).toBe('invalid_enum:event_type');
    expect(reason({ event_ts: '2026-12-03T10:00:00' })).toBe('invalid_timestamp');
    expect(reason({ event_ts: 'yesterday' })).toBe('invalid_timestamp');
    expect(reason({ event_ts: '' })).toBe('missing_field:event_ts');
    expect(reason({ event_ts: now + 5 * 60_000 })).toBe('valid');
    expect(reason({ event_ts: now + 5 * 60_000 + 1 })).toBe('future_timestamp');
    expect(reason({ event_ts: String(now - 1) })).toBe('valid');
    expect(reason({ watch_seconds: 'ten' })).toBe('invalid_number:watch_seconds');
    expect(reason({ watch_seconds: -1, position_seconds: 'x' })).toBe('negative_value:watch_seconds');
    expect(reason({ position_seconds: 1861 })).toBe('position_exceeds_duration');
    expect(reason({ position_seconds: 1860 })).toBe('valid');
    expect(reason({ device: 'fridge', country: 'USA' })).toBe('invalid_enum:device');
    expect(reason({ country: 'USA' })).toBe('invalid_enum:country');
    expect(reason({ country: 'U1' })).toBe('invalid_enum:country');
    expect(reason({ event_type: 'rate' })).toBe('invalid_rating');
    expect(reason({ event_type: 'rate', rating: '4.5' })).toBe('invalid_rating');
    expect(reason({ event_type: 'rate', rating: 6 })).toBe('invalid_rating');
    expect(reason({ event_type: 'rate', rating: '5' })).toBe('valid');
    expect(reason({ rating: 3 })).toBe('invalid_rating');
  });

  it('reads ISO-8601 with Z or an offset, and epoch milliseconds as a number or digits', () => {
    expect(parseEventTs('2026-01-02T03:04:05Z')).toBe(Date.UTC(2026, 0, 2, 3, 4, 5));
    expect(parseEventTs('2026-01-02T03:04:05.123456-02:30')).toBe(Date.UTC(2026, 0, 2, 5, 34, 5, 123));
    expect(parseEventTs(1_700_000_000_000)).toBe(1_700_000_000_000);
    expect(parseEventTs('1700000000000')).toBe(1_700_000_000_000);
    expect(parseEventTs('2026-01-02 03:04:05Z')).toBeNaN();
    expect(parseEventTs(1.5)).toBeNaN();
  });

  it('the generator injects exactly the bad records it reports, and its valid events pass', () => {
    const set = generateViewing({ users: 40, days: 7, seed: 11, endMs: now });
    const counts: Partial<Record<QuarantineReason, number>> = {};
    let valid = 0;
    for (const record of set.records) {
      const result = validateEvent(record, now);
      if (result.ok) valid++;
      else counts[result.reason] = (counts[result.reason] ?? 0) + 1;
    }
    expect(counts).toEqual(set.quarantined);
    expect(valid).toBe(set.valid.length + set.duplicates);
    expect(Object.keys(set.quarantined)).toHaveLength(14);
  });

  it('the generator never emits events after its end time (late sessions of the last day are cut)', () => {
    const endMs = Date.UTC(2026, 11, 3, 0, 30);
    const set = generateViewing({ users: 80, days: 3, seed: 4, endMs, badPerReason: 0, duplicates: 0 });
    expect(set.valid.length).toBeGreaterThan(0);
    for (const event of set.valid) {
      expect(Date.parse(String(event.event_ts))).toBeLessThanOrEqual(endMs);
      expect(validateEvent(event, endMs).ok).toBe(true);
    }
  });
});
