import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs on stderr (stdout stays free for command output such as `query --format
 * json`). The level comes from config; `TRIBUTARY_LOG_LEVEL` is read here only as an early default.
 */
export const rootLogger: Logger = pino(
  { name: 'tributary', level: process.env.TRIBUTARY_LOG_LEVEL ?? 'warn', base: { pid: process.pid } },
  pino.destination({ fd: 2, sync: false }),
);

export function childLogger(component: string, bindings: Record<string, unknown> = {}): Logger {
  return rootLogger.child({ component, ...bindings });
}
