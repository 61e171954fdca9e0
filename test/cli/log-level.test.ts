import { Command } from 'commander';
import { afterEach, describe, expect, it } from 'vitest';
import { createCliContext } from '../../src/cli/context.js';
import { childLogger, rootLogger, setLogLevel } from '../../src/core/index.js';

const initialLevel = rootLogger.level;
afterEach(() => setLogLevel(initialLevel as Parameters<typeof setLogLevel>[0]));

describe('log level', () => {
  it('reaches child loggers made before and after it is set', () => {
    const early = childLogger('early');
    setLogLevel('debug');
    const late = childLogger('late');
    expect(early.isLevelEnabled('debug')).toBe(true);
    expect(late.isLevelEnabled('debug')).toBe(true);
    setLogLevel('error');
    expect(early.isLevelEnabled('warn')).toBe(false);
    expect(late.level).toBe('error');
  });

  it('the CLI applies --log-level when it loads the configuration', () => {
    const moduleLevelLogger = childLogger('module');
    const program = new Command().option('--log-level <level>').option('--data-dir <dir>');
    program.parse(['--log-level', 'trace', '--data-dir', '/tmp/tributary-log-level'], { from: 'user' });
    const config = createCliContext(program).config();
    expect(config.logLevel).toBe('trace');
    expect(moduleLevelLogger.isLevelEnabled('trace')).toBe(true);
  });
});
