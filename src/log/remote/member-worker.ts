/**
 * Group-member worker for the cross-process test (test/log/remote-crash.test.ts, run from the
 * compiled build): opens the log of `<dataDir>` with `openLog`, which connects to the log server
 * named in `<dataDir>/log/server.json`, joins `<group>` on `<topic>` and polls until SIGTERM.
 *
 * Prints one line per event on stdout:
 *   ready <log kind>
 *   assignment <partition,partition,...>   after each onAssignment callback (empty list: none)
 *   read <partition> <offset>              for each record polled
 *   closed                                 after SIGTERM closed the member and the client
 *
 * Usage: node member-worker.js <dataDir> <group> <topic>
 */
import { openLog } from '../open.js';

const [dataDir, group, topic] = process.argv.slice(2);
if (dataDir === undefined || group === undefined || topic === undefined) {
  process.stderr.write('usage: member-worker <dataDir> <group> <topic>\n');
  process.exit(2);
}

const log = await openLog({
  dataDir,
  log: 'embedded',
  logFsync: 'group',
  logGroupCommitMs: 2,
  logRetentionMs: -1,
  logRetentionBytes: -1,
});
process.stdout.write(`ready ${log.kind}\n`);

const controller = new AbortController();
const stop = () => controller.abort();
process.once('SIGTERM', stop);
process.once('SIGINT', stop);

const consumer = log.consumer({
  group,
  topics: [topic],
  onAssignment: () => {
    const partitions = consumer.assignment().map((tp) => tp.partition);
    process.stdout.write(`assignment ${partitions.join(',')}\n`);
  },
});
while (!controller.signal.aborted) {
  const records = await consumer.poll({ waitMs: 500, signal: controller.signal });
  if (records.length > 0)
    process.stdout.write(records.map((r) => `read ${r.partition} ${r.offset}\n`).join(''));
}
await consumer.close();
await log.close();
process.stdout.write('closed\n');
