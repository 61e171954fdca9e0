import type { PipelineSetting } from './types.js';

/** The value of a pipeline setting: its environment variable (set by `run`'s flag when given). */
export function pipelineSetting(
  setting: PipelineSetting,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const value = env[setting.env];
  return value === undefined || value === '' ? undefined : value;
}
