/**
 * Crash-test writer (run from the compiled build by test/lake/crash.test.ts, then killed with
 * SIGKILL at a random point). Commits to `bronze.crash` in a loop and reports on stdout, which is a
 * pipe and therefore written synchronously on Linux:
 *
 *   ready                      lake open, about to commit
 *   begin <commitId>           a commit is about to be attempted (its outcome is unknown until ack)
 *   ack <commitId> <version>   the commit is durable and visible
 *
 * Usage: node crash-writer.js <lakeDir> <runTag> [<retryCommitId>]
 * Every commit writes `rowsPerCommit` rows tagged with its id. Every fourth commit overwrites the
 * partition `date=special` instead of appending. When `retryCommitId` is given, the writer first
 * retries that commit (as a caller would after a crash with an unknown outcome).
 */
import { LocalStorage } from '../storage/local.js';
import { openLake } from '../lake.js';

export const rowsPerCommit = 20;

async function main(): Promise<void> {
  const [dir, runTag, retryId] = process.argv.slice(2);
  if (!dir || !runTag) throw new Error('usage: crash-writer <lakeDir> <runTag> [<retryCommitId>]');
  const lake = await openLake({ storage: new LocalStorage(dir) });
  const table = lake.table('bronze', 'crash');
  const out = (line: string) => process.stdout.write(`${line}\n`);
  out('ready');
  const commitOnce = async (commitId: string, overwrite: boolean) => {
    const rows = Array.from({ length: rowsPerCommit }, (_, seq) => ({
      commit: commitId,
      seq,
      date: overwrite ? 'special' : `d${seq % 3}`,
    }));
    out(`begin ${commitId}`);
    // Two-phase, with a deterministic file name as a stream engine would use.
    const pending = await table.stage(rows, { partitionBy: ['date'], source: 'crash', fileName: commitId });
    const result = await table.commit({
      commitId,
      add: pending,
      ...(overwrite ? { overwritePartitions: 'touched' as const } : {}),
    });
    out(`ack ${commitId} ${result.version}`);
  };
  if (retryId) await commitOnce(retryId, retryId.endsWith('-o'));
  for (let i = 0; ; i++) {
    const overwrite = i % 4 === 3;
    await commitOnce(`${runTag}-${i}${overwrite ? '-o' : ''}`, overwrite);
  }
}

await main();
