import type { Command } from 'commander';
import { TributaryError } from '../../core/index.js';
import {
  BatchDag,
  batchHistoryFile,
  lineageFor,
  dateRange,
  jobRegistry,
  type BatchJob,
  type JobRegistry,
  type RunRecord,
} from '../../stream/index.js';
import type { CliContext } from '../context.js';

/**
 * `tributary jobs list | run <job> [--partition p | --from a --to b] [--with-upstream] | history`.
 * Batch jobs come from the pipelines registered in `jobRegistry`; all of them form one DAG, so a
 * job of one pipeline may depend on another pipeline's output table.
 */
export function registerJobsCommands(
  program: Command,
  context: CliContext,
  registry: JobRegistry = jobRegistry,
): void {
  const jobs = program
    .command('jobs')
    .description('batch jobs of the registered pipelines: list, run, backfill, history');

  async function withDag<T>(fn: (dag: BatchDag, owners: Map<string, string>) => Promise<T>): Promise<T> {
    const config = context.config();
    const built = await registry.batchJobs({ config });
    try {
      const all: BatchJob[] = [];
      const owners = new Map<string, string>();
      for (const { pipeline, jobs: list } of built) {
        for (const job of list) {
          owners.set(job.name, pipeline);
          all.push(job);
        }
      }
      const dag = new BatchDag(all, {
        historyFile: batchHistoryFile(config.dataDir),
        lineage: lineageFor(config.dataDir),
      });
      return await fn(dag, owners);
    } finally {
      for (const b of built) await b.close();
    }
  }

  jobs
    .command('list')
    .description('batch jobs in dependency order with inputs, outputs and schedule')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      await withDag((dag, owners) => {
        const now = Date.now();
        const next = new Map(dag.nextRuns(now).map((n) => [n.job, n.atMs]));
        const rows = dag.order().map((name) => {
          const job = dag.jobs.get(name)!;
          return {
            job: name,
            pipeline: owners.get(name) ?? '',
            dependsOn: dag.upstreamOf(name),
            inputs: job.inputs ?? [],
            outputs: job.outputs ?? [],
            schedule: job.schedule ?? null,
            nextRun: next.has(name) ? new Date(next.get(name)!).toISOString() : null,
            description: job.description ?? '',
          };
        });
        if (options.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        else if (rows.length === 0) process.stdout.write('no batch jobs registered\n');
        else {
          for (const r of rows) {
            process.stdout.write(
              `${r.job}  [${r.pipeline}]  ${r.inputs.join(',') || '-'} → ${r.outputs.join(',') || '-'}` +
                `${r.dependsOn.length ? `  after ${r.dependsOn.join(',')}` : ''}${r.schedule ? `  cron "${r.schedule}" next ${r.nextRun}` : ''}\n`,
            );
          }
        }
        return Promise.resolve();
      });
    });

  jobs
    .command('run <job>')
    .description('run a batch job now (retries with backoff); --from/--to backfills a date range')
    .option('--partition <partition>', 'partition to compute, e.g. 2026-11-21')
    .option('--from <date>', 'backfill: first date (YYYY-MM-DD)')
    .option('--to <date>', 'backfill: last date (YYYY-MM-DD)')
    .option('--with-upstream', 'run the jobs it depends on first')
    .option('--json', 'print the run records as JSON')
    .action(
      async (
        name: string,
        options: { partition?: string; from?: string; to?: string; withUpstream?: boolean; json?: boolean },
      ) => {
        if ((options.from === undefined) !== (options.to === undefined))
          throw new TributaryError('USAGE', '--from and --to go together');
        if (options.from !== undefined && options.partition !== undefined)
          throw new TributaryError('USAGE', 'use either --partition or --from/--to');
        const records = await withDag(async (dag) =>
          options.from !== undefined
            ? dag.backfill(name, dateRange(options.from, options.to!), {
                withUpstream: options.withUpstream ?? false,
              })
            : [
                await dag.run(name, {
                  partition: options.partition ?? null,
                  withUpstream: options.withUpstream ?? false,
                  trigger: 'manual',
                }),
              ],
        );
        printRecords(records, options.json ?? false);
        if (records.some((r) => r.status !== 'succeeded')) process.exitCode = 1;
      },
    );

  jobs
    .command('history')
    .description('past batch runs: status, duration, rows in/out, error')
    .option('--job <job>', 'only this job')
    .option('--limit <n>', 'last n runs', '50')
    .option('--json', 'print JSON')
    .action(async (options: { job?: string; limit: string; json?: boolean }) => {
      const limit = Number(options.limit);
      if (!Number.isInteger(limit) || limit <= 0)
        throw new TributaryError('USAGE', `--limit must be a positive integer, got ${options.limit}`);
      const config = context.config();
      const dag = new BatchDag([], { historyFile: batchHistoryFile(config.dataDir) });
      printRecords(
        await dag.listHistory({ ...(options.job ? { job: options.job } : {}), limit }),
        options.json ?? false,
      );
    });
}

function printRecords(records: RunRecord[], json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(records, null, 2)}\n`);
    return;
  }
  if (records.length === 0) process.stdout.write('no runs\n');
  for (const r of records) {
    process.stdout.write(
      `${new Date(r.startedAtMs).toISOString()}  ${r.job}${r.partition ? `[${r.partition}]` : ''}  ${r.status}  ${r.durationMs.toFixed(0)} ms` +
        `  attempts ${r.attempts}  rows ${r.rowsIn ?? '-'} → ${r.rowsOut ?? '-'}${r.error ? `  error: ${r.error}` : ''}\n`,
    );
  }
}
