/**
 * A process that holds the lease of one task and checkpoints under it, for the lease tests
 * (test/stream/scale-lease.test.ts), which stop it with SIGSTOP and wake it with SIGCONT:
 *
 *   node dist/src/stream/testing/lease-holder.js <checkpoint dir> --ttl-ms=N [--interval-ms=N]
 *
 * waits for the lease of task `t0` of job `lease` in `<checkpoint dir>` (local lake storage, so
 * the lease's liveness is the TTL: a stopped process is alive), prints `acquired <generation>
 * restored <checkpoint id>`, renews it every ttl/4 and writes checkpoint after checkpoint (each
 * continuing the restored id, as a task does), printing `checkpoint <id> generation <g>`. When a
 * write or renewal is refused it prints `fenced <code>` and exits with code 3.
 */
import { isTributaryError, toTributaryError } from '../../core/index.js';
import { LocalStorage } from '../../lake/index.js';
import { JobCheckpoints } from '../task-store.js';
import { numberFlag } from './worker-args.js';

async function main(dir: string, args: string[]): Promise<void> {
  const ttlMs = numberFlag(args, 'ttl-ms') ?? 1_000;
  const intervalMs = numberFlag(args, 'interval-ms') ?? 20;
  const store = new JobCheckpoints(new LocalStorage(dir), 'lease', { leaseTtlMs: ttlMs }).task('t0');
  await store.acquire(() => false, 20);
  const restored = await store.read();
  let id = restored?.state.checkpointId ?? 0;
  process.stdout.write(`acquired ${store.generation} restored ${id}\n`);
  let failure: unknown = null;
  const renewal = setInterval(() => {
    store.renew().catch((error: unknown) => (failure ??= error));
  }, ttlMs / 4);
  try {
    for (;;) {
      if (failure !== null) throw toTributaryError(failure);
      id++;
      await store.write(
        {
          format: 'tributary.stream.state',
          version: 1,
          job: 'lease',
          checkpointId: id,
          offsets: { 'lease.in/0': id * 10 },
          task: { owner: store.generation } as never,
          sinks: [],
        },
        Date.now(),
      );
      process.stdout.write(`checkpoint ${id} generation ${store.generation}\n`);
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  } catch (error) {
    if (!isTributaryError(error, 'FENCED')) throw error;
    process.stdout.write(`fenced ${error.code}\n`);
    process.exitCode = 3;
  } finally {
    clearInterval(renewal);
  }
}

if (process.argv[1] !== undefined && /stream[/\\]testing[/\\]lease-holder\.js$/.test(process.argv[1])) {
  await main(process.argv[2] ?? '.', process.argv.slice(3));
}
