import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isTributaryError, loadConfig } from '../../src/core/index.js';
import { northwindPipeline, northwindSourceConfig } from '../../src/pipelines/northwind/index.js';
import { resolvePipelineSettings } from '../../src/pipelines/index.js';
import { runCli } from '../cli/in-process.js';

/** Pipeline settings belong to their pipeline: core config holds only `pipelineSettings`. */
describe('pipeline settings', () => {
  const config = (overrides: Record<string, unknown> = {}) =>
    loadConfig({ env: {}, dotenv: false, cwd: '/tmp', overrides });

  it('northwind declares sourceUrl, read from NORTHWIND_PG_URL', () => {
    expect(Object.keys(northwindPipeline.settings ?? {})).toEqual(['sourceUrl']);
    expect(northwindSourceConfig(config(), {}).sourceUrl).toBeUndefined();
    expect(northwindSourceConfig(config(), { NORTHWIND_PG_URL: 'postgres://u@h:5432/nw' }).sourceUrl).toBe(
      'postgres://u@h:5432/nw',
    );
  });

  it('the config value (run northwind --source-url) wins over the environment', () => {
    const fromFlag = config({ pipelineSettings: { northwind: { sourceUrl: 'postgres://flag@h/nw' } } });
    expect(northwindSourceConfig(fromFlag, { NORTHWIND_PG_URL: 'postgres://env@h/nw' }).sourceUrl).toBe(
      'postgres://flag@h/nw',
    );
  });

  it('a bad value is CONFIG_INVALID naming the setting and where it came from', () => {
    const call = () => northwindSourceConfig(config(), { NORTHWIND_PG_URL: 'mysql://h/nw' });
    expect(call).toThrow(/pipeline northwind setting sourceUrl \(environment: NORTHWIND_PG_URL\)/);
    try {
      call();
    } catch (error) {
      expect(isTributaryError(error, 'CONFIG_INVALID')).toBe(true);
    }
  });

  it('a setting the pipeline does not declare is refused', () => {
    const call = () =>
      resolvePipelineSettings(
        'documents',
        {},
        config({ pipelineSettings: { documents: { sourceUrl: 'x' } } }),
      );
    expect(call).toThrow(/pipeline documents has no setting sourceUrl/);
  });

  it("run <pipeline> --source-url sets the pipeline's sourceUrl, checked before anything runs", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pipeline-settings-'));
    try {
      await expect(
        runCli(['--data-dir', dir, 'run', 'documents', '--once', '--source-url', 'postgres://h/db']),
      ).rejects.toThrow(/--source-url is not a setting of pipeline documents \(it is one of northwind\)/);
      await expect(
        runCli(['--data-dir', dir, 'run', 'northwind', '--once', '--source-url', 'mysql://h/db']),
      ).rejects.toThrow(/pipeline northwind setting sourceUrl \(pipelineSettings.northwind.sourceUrl\)/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
