/**
 * The movies pipeline's own bounds (the platform's are in `src/core/limits.ts`). Units last.
 */
export const moviesLimits = {
  /** TMDB stops /movie/popular at page 500. */
  popularPagesMax: 500,
  /** TMDB's `/movie/changes` spans at most 14 days; an older cursor is clamped to this. */
  changesDaysMax: 14,
} as const;
