import type { z } from 'zod';
import { TributaryError } from '../core/index.js';

/**
 * Validates a connector's options against its schema: the parsed options, or CONFIG_INVALID
 * listing every problem with its path (`(root)` for the options object itself) in the message and
 * as `details.issues`, so the CLI, the API and the constructors report bad options the same way.
 *
 * @example
 * this.options = checkConnectorOptions('postgres source', postgresSourceOptionsSchema, options);
 */
export function checkConnectorOptions<S extends z.ZodType>(
  connector: string,
  schema: S,
  options: unknown,
): z.output<S> {
  const result = schema.safeParse(options);
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
  throw new TributaryError(
    'CONFIG_INVALID',
    `${connector} options: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`,
    { details: { connector, issues } },
  );
}
