// Child process for the spool crash test (test/connectors/spool-crash.test.ts): delivers a spool
// directory into a topic of the embedded log, with small batches so a `kill -9` lands mid-file.
// Usage: node dist/src/connectors/testing/spool-child.js <spoolDir> <logDir>
import { openEmbeddedLog } from '../../log/index.js';
import { createSpoolSource } from '../index.js';

const [dir, logDir] = process.argv.slice(2);
if (!dir || !logDir) {
  process.stderr.write('usage: spool-child <spoolDir> <logDir>\n');
  process.exit(2);
}
const log = await openEmbeddedLog({ dir: logDir, fsync: 'always', retentionCheckMs: 0 });
const source = createSpoolSource({ dir, topic: 'crash', stableMs: 0, batchRecords: 50 }, { log });
const report = await source.poll();
process.stdout.write(`${JSON.stringify({ records: report.records, files: report.files })}\n`);
await log.close();
