import type { z } from 'zod';
import { TributaryError, type TributaryConfig } from '../core/index.js';

/**
 * A setting a pipeline declares for itself (core config knows no pipeline): its value comes from
 * the config's `pipelineSettings.<pipeline>.<name>` (config file, or the setting's `flag` of
 * `tributary run`), else from the first of its environment variables that is set.
 */
export interface PipelineSetting {
  description: string;
  /** Environment variables read when the config does not set it, first set wins. */
  env: string[];
  /** Validates the text value (an optional setting may be absent). */
  schema: z.ZodType<string>;
  /** Flag of `tributary run` that sets it, with its argument, e.g. `--spool-dir <dir>`. */
  flag?: string;
}

export type PipelineSettingsSpec = Record<string, PipelineSetting>;

/**
 * The values of a pipeline's declared settings. CONFIG_INVALID names the setting, where its value
 * came from and what was expected; a configured setting the pipeline does not declare is refused.
 *
 * @example
 * const { sourceUrl } = resolvePipelineSettings('northwind', northwindSettings, config);
 */
export function resolvePipelineSettings<S extends PipelineSettingsSpec>(
  pipeline: string,
  spec: S,
  config: Pick<TributaryConfig, 'pipelineSettings'>,
  env: NodeJS.ProcessEnv = process.env,
): { [K in keyof S]: string | undefined } {
  const configured = config.pipelineSettings[pipeline] ?? {};
  const unknown = Object.keys(configured).filter((name) => !(name in spec));
  if (unknown.length > 0)
    throw new TributaryError(
      'CONFIG_INVALID',
      `pipeline ${pipeline} has no setting ${unknown.join(', ')}; its settings: ${Object.keys(spec).join(', ') || '(none)'}`,
    );
  const values: Record<string, string | undefined> = {};
  for (const [name, setting] of Object.entries(spec)) {
    let origin = `pipelineSettings.${pipeline}.${name}`;
    let value: string | undefined = configured[name];
    if (value === undefined) {
      const variable = setting.env.find((v) => env[v] !== undefined && env[v] !== '');
      if (variable !== undefined) {
        value = env[variable];
        origin = `environment: ${variable}`;
      }
    }
    if (value === undefined) {
      values[name] = undefined;
      continue;
    }
    const parsed = setting.schema.safeParse(value);
    if (!parsed.success)
      throw new TributaryError(
        'CONFIG_INVALID',
        `pipeline ${pipeline} setting ${name} (${origin}): expected ${parsed.error.issues.map((i) => i.message).join('; ')}`,
        { details: { pipeline, setting: name } },
      );
    values[name] = parsed.data;
  }
  return values as { [K in keyof S]: string | undefined };
}
