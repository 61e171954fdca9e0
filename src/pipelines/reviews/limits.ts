/**
 * The reviews pipeline's own bounds (the platform's are in `src/core/limits.ts`), kept together
 * so they can be read and reviewed at once. Units last.
 */
export const reviewLimits = {
  /** Texts scored in one call of an asynchronous sentiment model (a Hugging Face pipeline). */
  sentimentBatchSizeMax: 32,
} as const;
