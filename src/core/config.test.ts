import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';
import { TributaryError } from './errors.js';

function tempDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'tributary-config-'));
}

describe('loadConfig', () => {
  it('applies defaults and resolves the data dir against cwd', () => {
    const cwd = tempDir();
    const config = loadConfig({ cwd, env: {} });
    expect(config.dataDir).toBe(path.join(cwd, '.tributary'));
    expect(config.log).toBe('embedded');
    expect(config.logFsync).toBe('group');
    expect(config.port).toBe(3000);
  });

  it('layers file < .env < environment < flags', () => {
    const cwd = tempDir();
    writeFileSync(
      path.join(cwd, 'tributary.config.json'),
      JSON.stringify({ port: 4000, logFsync: 'always', host: '0.0.0.0' }),
    );
    writeFileSync(path.join(cwd, '.env'), 'TRIBUTARY_PORT=5000\nTRIBUTARY_LOG_FSYNC=never\n');
    const config = loadConfig({
      cwd,
      env: { TRIBUTARY_PORT: '6000' },
      overrides: { dataDir: 'elsewhere', port: undefined },
    });
    expect(config.port).toBe(6000);
    expect(config.logFsync).toBe('never');
    expect(config.host).toBe('0.0.0.0');
    expect(config.dataDir).toBe(path.join(cwd, 'elsewhere'));
  });

  it('maps well-known variables such as REDIS_URL', () => {
    const config = loadConfig({
      cwd: tempDir(),
      env: { REDIS_URL: 'redis://127.0.0.1:6379', NORTHWIND_PG_URL: 'postgres://u@h/db' },
    });
    expect(config.redisUrl).toBe('redis://127.0.0.1:6379');
    // A pipeline's own settings are not core keys: the northwind pipeline reads NORTHWIND_PG_URL.
    expect(Object.keys(config).filter((key) => /northwind/i.test(key))).toEqual([]);
    expect(config.pipelineSettings).toEqual({});
  });

  it('names the key, the value and the expected form of a bad value', () => {
    const call = () => loadConfig({ cwd: tempDir(), env: { TRIBUTARY_LOG_FSYNC: 'sometimes' } });
    expect(call).toThrow(TributaryError);
    expect(call).toThrow(/logFsync = "sometimes" \(environment: TRIBUTARY_LOG_FSYNC\)/);
  });

  it('refuses an unknown TRIBUTARY_ variable by name', () => {
    expect(() => loadConfig({ cwd: tempDir(), env: { TRIBUTARY_PROT: '3000' } })).toThrow(
      /unknown setting TRIBUTARY_PROT/,
    );
  });

  it('refuses an unknown key in the config file, naming the file', () => {
    const cwd = tempDir();
    writeFileSync(path.join(cwd, 'tributary.config.json'), JSON.stringify({ prot: 1 }));
    expect(() => loadConfig({ cwd, env: {} })).toThrow(/unknown key\(s\) "prot".*tributary\.config\.json/s);
  });

  it('refuses a config file that is not JSON', () => {
    const cwd = tempDir();
    writeFileSync(path.join(cwd, 'custom.json'), '{ port: ');
    expect(() => loadConfig({ cwd, env: {}, file: 'custom.json' })).toThrow(
      /custom\.json is not readable JSON/,
    );
  });

  it('validates backend URLs', () => {
    expect(loadConfig({ cwd: tempDir(), env: { TRIBUTARY_LOG: 'kafka://b1:9092,b2:9092' } }).log).toBe(
      'kafka://b1:9092,b2:9092',
    );
    expect(() => loadConfig({ cwd: tempDir(), env: { TRIBUTARY_STORAGE: 'ftp://x' } })).toThrow(
      /storage = "ftp:\/\/x"/,
    );
  });
});
