import type { Command } from 'commander';
import { RateBudgets, type TributaryConfig } from '../../core/index.js';
import { SourceRunner, type SourceDrainReport } from '../../connectors/index.js';
import { findPipeline, pipelineDefinitions } from '../../pipelines/index.js';
import { jobRegistry, runRegisteredPipeline } from '../../stream/index.js';
import type { CliContext } from '../context.js';
import { acquirePlatform, registerPipelineJobs } from '../platform.js';
import { createUpPlan } from '../up-plan.js';
import { upPlan } from './serve.js';

/**
 * The declared sources of a pipeline on the shared platform: drained once (`run --once`: each
 * reads what is there) or started supervised until `signal` aborts (`run` without `--once`).
 */
async function withSources(
  config: TributaryConfig,
  name: string,
  once: boolean,
): Promise<{ drained: SourceDrainReport[]; stop: () => Promise<void> }> {
  const definition = findPipeline(name);
  const none = { drained: [], stop: () => Promise.resolve() };
  if (!definition.sources) return none;
  const platform = await acquirePlatform(config);
  try {
    const budgets = new RateBudgets();
    for (const [budget, options] of Object.entries(definition.rateBudgets ?? {}))
      budgets.declare(budget, options);
    const runner = new SourceRunner([{ pipeline: name, sources: definition.sources(platform.services) }], {
      log: platform.log,
      lake: platform.lake,
      dataDir: config.dataDir,
      budgets,
    });
    if (once) {
      const drained = await runner.drain();
      await platform.release();
      return { drained, stop: () => Promise.resolve() };
    }
    runner.start();
    return {
      drained: [],
      stop: async () => {
        await runner.stop();
        await platform.release();
      },
    };
  } catch (error) {
    await platform.release();
    throw error;
  }
}

/**
 * `tributary pipelines` and `tributary run <pipeline> [--once] [--worker]`: a pipeline's stream jobs
 * and batch DAG, bounded (its declared sources read what is there, every stage drains what its
 * inputs hold, in upstream-first order, then the DAG runs and the process exits) or continuous until Ctrl-C; `--worker` runs the stream jobs as one
 * of several worker processes (src/stream/scale.ts).
 */
export function registerPipelineCommands(program: Command, context: CliContext): void {
  registerPipelineJobs();
  upPlan.factory = createUpPlan;

  program
    .command('pipelines')
    .description('list the pipelines this build knows')
    .option('--json', 'print JSON')
    .action((options: { json?: boolean }) => {
      const rows = pipelineDefinitions.map((p) => ({
        name: p.name,
        title: p.title,
        description: p.description,
      }));
      if (options.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      else for (const r of rows) process.stdout.write(`${r.name.padEnd(12)} ${r.description}\n`);
    });

  const run = program
    .command('run <pipeline>')
    .description('run a pipeline: --once drains its inputs through every stage, runs its batch DAG and exits')
    .option('--once', 'bounded run (like Flink bounded mode): exit 0 when everything has flowed through')
    .option(
      '--worker',
      "run the stream jobs as one worker of each job's group: start several to share the partitions (needs `tributary up` or `tributary log serve` on the data dir); no batch jobs",
    )
    .option('--partition <partition>', 'partition the batch jobs compute (default: today, UTC)')
    .option('--source-url <url>', 'PostgreSQL source for pipelines that read one (env NORTHWIND_PG_URL)')
    .option('--json', 'print the run result as JSON');
  // Each pipeline's own settings, as flags of `run` (a flag sets the setting's environment variable).
  const settings = pipelineDefinitions.flatMap((p) =>
    (p.settings ?? []).map((s) => ({ pipeline: p.name, ...s })),
  );
  for (const setting of settings)
    run.option(setting.flag, `${setting.pipeline}: ${setting.description} (env ${setting.env})`);
  run.action(
    async (
      name: string,
      options: {
        once?: boolean;
        worker?: boolean;
        partition?: string;
        sourceUrl?: string;
        json?: boolean;
      } & Record<string, unknown>,
    ) => {
      const definition = findPipeline(name);
      for (const setting of definition.settings ?? []) {
        const value = options[run.options.find((o) => o.flags === setting.flag)?.attributeName() ?? ''];
        if (typeof value === 'string') process.env[setting.env] = value;
      }
      const config = context.config({ northwindPgUrl: options.sourceUrl });
      const controller = new AbortController();
      const stop = () => controller.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        // Declared sources: drained first under --once (the stages then see what they read), else
        // supervised beside the stages until Ctrl-C. Workers leave sources to `up` / `run`.
        const sources =
          options.worker === true
            ? { drained: [], stop: () => Promise.resolve() }
            : await withSources(config, name, options.once ?? false);
        const drained = sources.drained;
        const result = await runRegisteredPipeline(
          jobRegistry,
          name,
          { config },
          {
            once: options.once ?? false,
            worker: options.worker ?? false,
            partition: options.partition ?? null,
            signal: controller.signal,
          },
        );
        if (options.json) {
          process.stdout.write(`${JSON.stringify({ sources: drained, ...result }, null, 2)}\n`);
        } else {
          for (const d of drained) {
            process.stdout.write(
              `source ${d.name} (${d.kind}): ${d.outcome}; records ${d.records}, refused ${d.refused}${d.position ? `; at ${d.position}` : ''}${d.error ? `; ${d.error}` : ''}\n`,
            );
          }
          for (const s of result.streams) {
            const c = s.counters;
            process.stdout.write(
              `stream ${s.job}${s.task === undefined ? '' : ` [${s.task}]`}: ${s.state}; in ${c.in} = accepted ${c.accepted} + filtered ${c.filtered} + dlq ${c.dlq} + late ${c.late}; outputs ${c.outputs}\n`,
            );
          }
          for (const r of result.batch) {
            process.stdout.write(
              `batch  ${r.job}: ${r.status} in ${r.durationMs} ms; rows in ${r.rowsIn ?? '-'} out ${r.rowsOut ?? '-'}${r.error ? `; ${r.error}` : ''}\n`,
            );
          }
        }
        await sources.stop();
        if (definition.report && options.once && !options.json) {
          const platform = await acquirePlatform(config);
          try {
            for (const line of await definition.report(platform.services)) process.stdout.write(`${line}\n`);
          } finally {
            await platform.release();
          }
        }
        if (!result.ok || drained.some((d) => d.outcome === 'failed')) process.exitCode = 1;
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    },
  );
}
