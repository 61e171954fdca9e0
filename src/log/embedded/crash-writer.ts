/**
 * Crash-test writer (run by test/log/crash.test.ts from the compiled build, then killed with
 * SIGKILL at a random moment): appends records to topic `crash` of the embedded log in `<dir>` and
 * prints `ack <seq> <partition> <offset>` for every record whose append was acknowledged.
 *
 * Record `seq` has key `k<seq>` and value `<seq>:` followed by `seq % 97` letters, so a reader can
 * check every byte of every record it sees. Usage: node crash-writer.js <dir> <seed> [fsync]
 */
import { seededRandom } from '../../core/index.js';
import { openEmbeddedLog, type FsyncPolicy } from './log.js';

const [dir, seedText, fsyncText] = process.argv.slice(2);
if (dir === undefined || seedText === undefined) {
  process.stderr.write('usage: crash-writer <dir> <seed> [always|group|never]\n');
  process.exit(2);
}

export function crashValue(seq: number): string {
  return `${seq}:${'abcdefghijklmnopqrstuvwxyz'.repeat(4).slice(0, seq % 97)}`;
}

const next = seededRandom(Number(seedText));
const log = await openEmbeddedLog({
  dir,
  fsync: (fsyncText as FsyncPolicy | undefined) ?? 'group',
  groupCommitMs: 2,
  segmentBytes: 64 * 1024,
  retentionCheckMs: 0,
});
await log.ensureTopic('crash', { partitions: 3, retentionMs: -1 });
// Continue the sequence after whatever earlier (killed) runs left behind.
let seq = 0;
for (const p of (await log.describeTopic('crash')).partitions) {
  if (p.endOffset > 0) {
    const [last] = await log.fetch('crash', p.partition, p.endOffset - 1);
    if (last?.key) seq = Math.max(seq, Number(new TextDecoder().decode(last.key).slice(1)) + 1);
  }
}
process.stdout.write('ready\n');

async function producer(): Promise<void> {
  for (;;) {
    const count = 1 + Math.floor(next() * 40);
    const seqs = Array.from({ length: count }, () => seq++);
    const results = await log.append(
      seqs.map((s) => ({ topic: 'crash', key: `k${s}`, value: crashValue(s) })),
    );
    process.stdout.write(results.map((r, i) => `ack ${seqs[i]} ${r.partition} ${r.offset}\n`).join(''));
  }
}

await Promise.all([producer(), producer(), producer()]);
