import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/**
 * Structured JSON logs on stderr (stdout stays free for command output such as `query --format
 * json`). `TRIBUTARY_LOG_LEVEL` is only the level before configuration is loaded; the configured
 * `logLevel` (file, environment or `--log-level`) is applied with `setLogLevel` once it is.
 */
export const rootLogger: Logger = pino(
  { name: 'tributary', level: process.env.TRIBUTARY_LOG_LEVEL ?? 'warn', base: { pid: process.pid } },
  pino.destination({ fd: 2, sync: false }),
);

// pino copies the level into a child when it is created, and most children are created at module
// load, before configuration exists; they are remembered (weakly) so a later level reaches them.
const children = new Set<WeakRef<Logger>>();
const forget = new FinalizationRegistry<WeakRef<Logger>>((ref) => children.delete(ref));

export function childLogger(component: string, bindings: Record<string, unknown> = {}): Logger {
  const child = rootLogger.child({ component, ...bindings });
  const ref = new WeakRef(child);
  children.add(ref);
  forget.register(child, ref);
  return child;
}

/** Applies a log level to the root logger and every child logger made so far and later. */
export function setLogLevel(level: LevelWithSilent): void {
  rootLogger.level = level;
  for (const ref of children) {
    const child = ref.deref();
    if (child) child.level = level;
  }
}
