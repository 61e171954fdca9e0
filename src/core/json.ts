import { TributaryError } from './errors.js';
import { limits } from './limits.js';

/**
 * How deep `text` nests arrays and objects, read in one linear pass that skips string contents;
 * it stops counting once past `stopAbove`. Invalid JSON is left to `JSON.parse`.
 */
export function jsonNestingDepth(text: string, stopAbove = Number.POSITIVE_INFINITY): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > deepest) {
        deepest = depth;
        if (deepest > stopAbove) return deepest;
      }
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return deepest;
}

/**
 * `JSON.parse` for text from outside: nesting deeper than `depthMax` is refused before parsing
 * (INVALID_ARGUMENT, an HTTP 400), because every later recursive walk — validation, copying,
 * `JSON.stringify` — would otherwise overflow the stack on it; malformed text is INVALID_ARGUMENT
 * naming `what`.
 *
 * @example
 * const body = parseJsonBounded(await c.req.text(), 'request body');
 */
export function parseJsonBounded(
  text: string,
  what: string,
  depthMax: number = limits.jsonDepthMax,
): unknown {
  const depth = jsonNestingDepth(text, depthMax);
  if (depth > depthMax) {
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `${what} nests arrays/objects more than ${depthMax} levels deep (jsonDepthMax)`,
      { details: { limit: 'jsonDepthMax', max: depthMax } },
    );
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new TributaryError('INVALID_ARGUMENT', `${what} is not valid JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
}
