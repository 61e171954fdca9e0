import { describe, expect, it } from 'vitest';
import { cleanMovie, cleanReview, cleanTrending, isoDate, popularityTier, ratingTier } from './clean.js';

describe('movies cleaner', () => {
  it('puts each measure in exactly one contiguous tier, lower bounds inclusive', () => {
    expect([0, 4.99, 5, 19.99, 20, 99.99, 100, 5000].map(popularityTier)).toEqual([
      'niche',
      'niche',
      'known',
      'known',
      'popular',
      'popular',
      'blockbuster',
      'blockbuster',
    ]);
    expect(popularityTier(null)).toBeNull();
    expect(ratingTier(9.5, 9)).toBe('unrated');
    expect([4.99, 5, 6.49, 6.5, 7.49, 7.5].map((v) => ratingTier(v, 10))).toEqual([
      'poor',
      'mixed',
      'mixed',
      'good',
      'good',
      'acclaimed',
    ]);
  });

  it("treats TMDB's empty strings as missing and standardises language and dates", () => {
    const movie = cleanMovie(
      {
        id: 550,
        title: ' Fight Club ',
        original_language: 'EN',
        overview: '',
        release_date: '',
        genres: [{ id: 18, name: 'Drama' }, { id: 1 }],
        popularity: 61.4,
        vote_average: 8.4,
        vote_count: 26280,
        runtime: 139,
      },
      Date.UTC(2026, 0, 2),
    );
    expect(movie).toMatchObject({
      movie_id: 550,
      title: 'Fight Club',
      original_language: 'en',
      overview: null,
      release_date: null,
      release_year: null,
      genres: '["Drama"]',
      popularity_tier: 'popular',
      rating_tier: 'acclaimed',
    });
    expect(isoDate('2023-02-30')).toBeNull();
    expect(isoDate('1999-10-15')).toBe('1999-10-15');
    expect(cleanMovie({ id: '12' }, 0).movie_id).toBe(12);
    expect(cleanMovie({ id: -3, title: 'x' }, 0).movie_id).toBeNull();
    const review = cleanReview(
      {
        id: 'r1',
        movie_id: 550,
        author: '',
        author_details: { username: 'kim', rating: null },
        content: 'Great.',
      },
      0,
    );
    expect(review).toMatchObject({ review_id: 'r1', movie_id: 550, author: 'kim', author_rating: null });
  });

  it("ranks a trending fetch in TMDB's order, an entry without an id keeping its place", () => {
    const rows = cleanTrending(
      {
        date: '2026-12-03',
        time_window: 'day',
        fetched_at: '2026-12-03T10:00:00.000Z',
        results: [
          { id: 7, title: 'A', popularity: 9.5 },
          { title: 'no id' },
          { id: 3, title: '', popularity: 1 },
        ],
      },
      0,
    );
    expect(rows.map((r) => [r.movie_id, r.rank, r.title])).toEqual([
      [7, 1, 'A'],
      [3, 3, null],
    ]);
    expect(rows[0]).toMatchObject({ date: '2026-12-03', time_window: 'day', popularity: 9.5 });
    expect(rows[0].updated_at.toISOString()).toBe('2026-12-03T10:00:00.000Z');
  });
});
