/**
 * Scale-out: one stream job as N worker processes of one consumer group (Kafka Streams' model, with
 * Flink's watermark propagation).
 *
 * A job splits at its first `keyBy` that feeds keyed state (a window or `process`):
 * - stage 0 (upstream) runs the steps up to that `keyBy` and writes every record to the internal
 *   topic `<job>.repartition`, keyed by the new key (murmur2 picks the partition, so each key has
 *   exactly one downstream partition); one task per source partition;
 * - stage 1 (downstream) re-applies the same key function (key functions must be deterministic, as
 *   in Flink) and runs the rest: windows, state, sinks; one task per repartition partition, owning
 *   the keyed state of the keys that hash there.
 * A job with no keyed state is a single stage: one task per source partition, no repartition topic.
 *
 * Which worker runs which task is the log's group membership (`job.<name>.workers.s<k>`): the
 * embedded log served to several processes (`tributary log serve`, or `tributary up`) assigns
 * partitions among members and takes a dead member's partitions away when its connection drops;
 * Kafka uses its consumer groups. A task has its own checkpoints, held under a lease with a
 * generation (task-store.ts), on local disk or in the lake's bucket: on a rebalance the old owner
 * finishes its batch, checkpoints and releases it, the new owner restores that checkpoint; after a
 * `kill -9` or a hang the lease expires and the new owner restores the last checkpoint and replays
 * (outputs deduplicated by id, as for a single process), while the old owner's writes are fenced.
 * State moves between workers only through checkpoints.
 *
 * Event time across the shuffle: every record names its upstream partition (`tributary-origin`),
 * and upstream tasks send their watermark to every repartition partition as marker records. A
 * downstream task tracks one clock per upstream partition, so its watermark is the minimum over
 * the source partitions, as in one process.
 *
 * Bounded runs (`once`) share one set of end offsets among the workers: the first worker writes
 * `<job>/bounded-<n>.json` in the checkpoint storage (exclusive create), later workers of the same run
 * read it, and a new run starts once every task recorded run n as finished. Upstream tasks read to
 * those offsets and write an end marker; a downstream task ends when it has read the end marker
 * of every upstream partition. A worker exits when every task it was assigned finished; a
 * finished task reassigned to another worker restores as finished and ends at once.
 *
 * Steps before the split must produce JSON-serialisable values: they cross the repartition topic
 * as JSON (Kafka Streams needs a serde there too). Jobs with windowed joins (`joinWindow`) or a
 * second keyed `keyBy` run in one process (`runJob`).
 */
import {
  childLogger,
  dataDirPaths,
  isTributaryError,
  systemClock,
  toTributaryError,
  TributaryError,
  type Clock,
} from '../core/index.js';
import type { Consumer, Log, TopicPartition } from '../log/index.js';
import { LocalStorage, type Storage } from '../lake/index.js';
import type { Stage, StreamJob } from './job.js';
import { startJob, type JobHandle, type JobStatus, type TaskAssignment } from './runner.js';
import { shuffleHeaders } from './runtime.js';
import { topicSink } from './sinks.js';
import { JobCheckpoints } from './task-store.js';
import type { Sink } from './types.js';

export interface WorkerOptions {
  /** Data dir of this worker (status files; the tasks' checkpoints unless `checkpoints` is given). */
  dataDir: string;
  /**
   * Where the tasks' checkpoints and leases live (task-store.ts): default `<dataDir>/checkpoints`
   * on local disk (workers of one machine); `openCheckpointStorage(config)` puts them in the lake's
   * S3 bucket, so workers on different machines share them.
   */
  checkpoints?: Storage;
  /** Lease TTL of this worker's tasks (default `limits.taskLeaseTtlMs`). */
  leaseTtlMs?: number;
  /** Clock of the task leases (default the system clock; the job's `clock` is for event time). */
  leaseClock?: Clock;
  /** Bounded run, shared with the other workers of the run (see the file comment). */
  once?: boolean;
  signal?: AbortSignal;
  clock?: Clock;
  tickMs?: number;
  pollMaxRecords?: number;
  /** Partitions of `<job>.repartition` when this worker creates it. Default: the most any source topic has. */
  repartitionPartitions?: number;
  /** Called after each batch of each task (tests use it to pace or observe a worker). */
  onBatch?: (task: string, handle: JobHandle) => void | Promise<void>;
  /** Called when this worker starts or stops a task (assignment changes). */
  onTask?: (event: 'start' | 'stop', task: string) => void;
  /** A bounded worker that got no partition in this long exits (another worker has them all). Default 3 s. */
  idleExitMs?: number;
}

export interface WorkerResult {
  job: string;
  /** Last status of every task this worker ran (a task run twice here shows its last run). */
  tasks: JobStatus[];
}

/** One stage of a scaled-out job. */
export interface ScaledStage {
  index: number;
  /** The stage as a job of its own (its sinks are templates: each task gets `forTask()` copies). */
  job: StreamJob;
  /** Group whose members split this stage's partitions. */
  membershipGroup: string;
  /** Group the stage's tasks commit offsets to (progress and lag). */
  offsetsGroup: string;
  /** Topic the stage writes its repartitioned output to, or null for the last stage. */
  repartitionTopic: string | null;
  /** Input of a downstream stage: tracks event time per upstream partition. */
  shuffled: boolean;
}

const logger = childLogger('stream.scale', {});

export function repartitionTopicOf(jobName: string): string {
  return `${jobName}.repartition`;
}

const statefulKinds = new Set<Stage['kind']>(['window', 'process']);

/** Index of the `keyBy` to repartition at, or -1 when no keyed state follows one. */
function splitIndex(job: StreamJob): number {
  const stages = job.stages;
  let split = -1;
  for (let i = 0; i < stages.length; i++) {
    if (stages[i].kind !== 'keyBy') continue;
    let stateful = false;
    for (let j = i + 1; j < stages.length && stages[j].kind !== 'keyBy'; j++) {
      if (statefulKinds.has(stages[j].kind)) stateful = true;
    }
    if (!stateful) continue;
    if (split >= 0) {
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `job ${job.name}: a scaled-out job repartitions once; its keyBy at step ${i + 1} re-keys state a second time (run it with runJob in one process)`,
      );
    }
    split = i;
  }
  return split;
}

/** Splits `job` into the stages its workers run (see the file comment). */
export function planScaledJob(job: StreamJob): ScaledStage[] {
  if (job.sides.length > 0) {
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `job ${job.name}: jobs with a windowed join (joinWindow) run in one process (runJob), not scaled out`,
    );
  }
  for (const sink of job.sinks) {
    if (sink.forTask === undefined)
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `job ${job.name}: sink ${sink.name} has no forTask(), so it cannot run in several tasks`,
      );
  }
  const split = splitIndex(job);
  const offsetsGroup = `job.${job.name}`;
  if (split < 0) {
    return [
      {
        index: 0,
        job,
        membershipGroup: `${offsetsGroup}.workers.s0`,
        offsetsGroup,
        repartitionTopic: null,
        shuffled: false,
      },
    ];
  }
  const topic = repartitionTopicOf(job.name);
  const upstream: StreamJob = {
    ...job,
    stages: job.stages.slice(0, split + 1),
    // Placeholder: every upstream task gets its own repartition sink naming its origin.
    sinks: [],
    outputTopics: [topic],
  };
  const downstream: StreamJob = {
    ...job,
    source: {
      log: job.source.log,
      topics: [topic],
      from: 'earliest',
      decode: 'json',
      validate: undefined,
      timestamp: undefined,
      outOfOrdernessMs: job.source.outOfOrdernessMs,
      idleTimeoutMs: job.source.idleTimeoutMs,
      shuffled: true,
    },
    stages: job.stages.slice(split),
    inputTopics: [topic],
  };
  return [
    {
      index: 0,
      job: upstream,
      membershipGroup: `${offsetsGroup}.workers.s0`,
      offsetsGroup,
      repartitionTopic: topic,
      shuffled: false,
    },
    {
      index: 1,
      job: downstream,
      membershipGroup: `${offsetsGroup}.workers.s1`,
      offsetsGroup: `${offsetsGroup}.s1`,
      repartitionTopic: null,
      shuffled: true,
    },
  ];
}

const originOf = (tp: TopicPartition) => `${tp.topic}/${tp.partition}`;

function taskIdOf(stage: ScaledStage, tp: TopicPartition): string {
  return stage.shuffled ? `s${stage.index}-p${tp.partition}` : `s${stage.index}-${tp.topic}-${tp.partition}`;
}

async function partitionsOf(log: Log, topics: readonly string[]): Promise<TopicPartition[]> {
  const out: TopicPartition[] = [];
  for (const topic of topics) {
    const d = await log.describeTopic(topic);
    for (const p of d.partitions) out.push({ topic, partition: p.partition });
  }
  return out;
}

/** `bounded-<n>.json`: `{"run":3,"ends":{"sales/0":1200,"sales/1":980},"createdAtMs":1795380000000}`. */
interface BoundedRun {
  run: number;
  /** End offset of every source partition for this run. */
  ends: Record<string, number>;
  createdAtMs: number;
}

/**
 * The bounded run this worker joins: the newest `bounded-<n>.json` while some task has not
 * finished run n, else a new one with the source's end offsets now (exclusive create: of two
 * workers starting together one writes it, the other reads it).
 */
async function joinBoundedRun(
  checkpoints: JobCheckpoints,
  job: StreamJob,
  stages: ScaledStage[],
  clock: Clock,
): Promise<BoundedRun> {
  const log = job.source.log;
  for (;;) {
    const latest = (await checkpoints.boundedRuns()).at(-1);
    if (latest !== undefined) {
      const run = (await checkpoints.readBoundedRun(latest)) as BoundedRun;
      if (!(await boundedRunFinished(checkpoints, job, stages, run))) return run;
    }
    const next: BoundedRun = { run: (latest ?? 0) + 1, ends: {}, createdAtMs: clock.now() };
    for (const tp of await partitionsOf(log, job.inputTopics)) {
      const d = await log.describeTopic(tp.topic);
      next.ends[originOf(tp)] = d.partitions[tp.partition].endOffset;
    }
    if (await checkpoints.createBoundedRun(next.run, next)) return next;
    // Another worker started run n+1 first: read it on the next turn.
  }
}

/**
 * True when every task of every stage is past bounded run `run`: its checkpoint says it finished
 * that run (or a later one), or it was written by an unbounded run after this run began.
 */
async function boundedRunFinished(
  checkpoints: JobCheckpoints,
  job: StreamJob,
  stages: ScaledStage[],
  run: BoundedRun,
): Promise<boolean> {
  for (const stage of stages) {
    for (const tp of await partitionsOf(job.source.log, stage.job.inputTopics)) {
      const saved = await checkpoints.task(taskIdOf(stage, tp)).read();
      if (saved === null) return false;
      const bounded = saved.state.bounded;
      const past =
        bounded === undefined
          ? saved.manifest.createdAtMs > run.createdAtMs
          : bounded.run > run.run || (bounded.run === run.run && bounded.finished);
      if (!past) return false;
    }
  }
  return true;
}

/**
 * Runs this process as one worker of a scaled-out job: joins the job's groups, runs the tasks of
 * the partitions it is assigned, hands them over on rebalance. Unbounded: until `signal` aborts.
 * Bounded: until every task it was assigned has finished the run.
 */
export async function runWorker(job: StreamJob, options: WorkerOptions): Promise<WorkerResult> {
  const stages = planScaledJob(job);
  const log = job.source.log;
  const clock = options.clock ?? systemClock;
  const bounded = options.once ?? false;
  for (const topic of job.inputTopics) await log.ensureTopic(topic, { partitions: 1 });
  const sourcePartitions = await partitionsOf(log, job.inputTopics);
  const repartition = stages[0].repartitionTopic;
  if (repartition !== null) {
    const counts = new Map<string, number>();
    for (const tp of sourcePartitions) counts.set(tp.topic, (counts.get(tp.topic) ?? 0) + 1);
    await log.ensureTopic(repartition, {
      partitions: options.repartitionPartitions ?? Math.max(...counts.values()),
    });
  }
  const checkpoints = new JobCheckpoints(
    options.checkpoints ?? new LocalStorage(dataDirPaths(options.dataDir).checkpoints),
    job.name,
    {
      clock: options.leaseClock ?? systemClock,
      ...(options.leaseTtlMs === undefined ? {} : { leaseTtlMs: options.leaseTtlMs }),
    },
  );
  const boundedRun = bounded ? await joinBoundedRun(checkpoints, job, stages, clock) : null;
  const origins = sourcePartitions.map(originOf);

  const tasks = new Map<string, JobHandle>();
  const finalStatus = new Map<string, JobStatus>();
  let failure: unknown = undefined;
  let stopping = false;

  function assignmentFor(stage: ScaledStage, tp: TopicPartition): TaskAssignment {
    const id = taskIdOf(stage, tp);
    const assignment: TaskAssignment = {
      id,
      partitions: [tp],
      group: stage.offsetsGroup,
      store: checkpoints.task(id),
    };
    if (stage.repartitionTopic !== null)
      assignment.markers = { topic: stage.repartitionTopic, origin: originOf(tp) };
    if (stage.shuffled) assignment.origins = origins;
    if (boundedRun !== null) {
      assignment.boundedRun = boundedRun.run;
      if (!stage.shuffled) assignment.boundedEnds = { [originOf(tp)]: boundedRun.ends[originOf(tp)] ?? 0 };
    }
    return assignment;
  }

  function sinksFor(stage: ScaledStage, tp: TopicPartition): Sink<unknown>[] {
    if (stage.repartitionTopic !== null) {
      return [topicSink(stage.repartitionTopic, { headers: { [shuffleHeaders.origin]: originOf(tp) } })];
    }
    return stage.job.sinks.map((sink) => sink.forTask!());
  }

  function startTask(stage: ScaledStage, tp: TopicPartition): void {
    const assignment = assignmentFor(stage, tp);
    if (tasks.has(assignment.id)) return;
    const taskJob: StreamJob = { ...stage.job, sinks: sinksFor(stage, tp) };
    const handle = startJob(taskJob, {
      dataDir: options.dataDir,
      once: bounded,
      clock,
      task: assignment,
      ...(options.tickMs === undefined ? {} : { tickMs: options.tickMs }),
      ...(options.pollMaxRecords === undefined ? {} : { pollMaxRecords: options.pollMaxRecords }),
      ...(options.onBatch === undefined
        ? {}
        : { onBatch: (h: JobHandle) => options.onBatch!(assignment.id, h) }),
    });
    tasks.set(assignment.id, handle);
    options.onTask?.('start', assignment.id);
    handle.done.then(
      (status) => finalStatus.set(assignment.id, status),
      (error: unknown) => {
        if (!isTributaryError(error, 'FENCED')) {
          failure ??= error;
          return;
        }
        // The task's lease lapsed or was taken (this worker hung past the TTL): the run stopped
        // without writing. Run it again if the partition is still ours: it waits for the lease
        // like any new owner and restores the latest checkpoint, whoever wrote it.
        logger.warn({ err: error, task: assignment.id }, 'task fenced; restarting it if still assigned');
        if (tasks.get(assignment.id) === handle) tasks.delete(assignment.id);
        options.onTask?.('stop', assignment.id);
        const membership = memberships.find((m) => m.stage === stage);
        const still = membership?.consumer
          .assignment()
          .some((a) => a.topic === tp.topic && a.partition === tp.partition);
        if (still === true && !stopping) startTask(stage, tp);
      },
    );
  }

  async function stopTask(id: string): Promise<void> {
    const handle = tasks.get(id);
    if (handle === undefined) return;
    tasks.delete(id);
    try {
      finalStatus.set(id, await handle.stop());
    } catch (error) {
      // Fenced: another worker owns the task now and its last checkpoint stands; not a failure.
      if (!isTributaryError(error, 'FENCED')) failure ??= error;
    }
    options.onTask?.('stop', id);
  }

  const memberships: { stage: ScaledStage; consumer: Consumer; assignedOnce: boolean }[] = [];
  for (const stage of stages) {
    const entry = { stage, consumer: null as unknown as Consumer, assignedOnce: false };
    entry.consumer = log.consumer({
      group: stage.membershipGroup,
      topics: [...stage.job.inputTopics],
      from: 'earliest',
      onAssignment: async (assigned, revoked) => {
        // Revoked first: a partition moving here from elsewhere waits for its lease anyway, but a
        // partition this worker gives up must be checkpointed and released promptly.
        await Promise.all(revoked.map((tp) => stopTask(taskIdOf(stage, tp))));
        if (stopping) return;
        // A rebalance during those stops (a checkpoint and a lease release each) may already have
        // moved some of `assigned` on: start only what is still ours.
        const current = entry.consumer.assignment();
        const still = assigned.filter((tp) =>
          current.some((c) => c.topic === tp.topic && c.partition === tp.partition),
        );
        if (still.length > 0) {
          entry.assignedOnce = true;
          // Membership consumers read nothing themselves; the tasks do.
          entry.consumer.pause(still);
        }
        for (const tp of still) startTask(stage, tp);
      },
    });
    memberships.push(entry);
  }

  const startedMs = clock.now();
  const idleExitMs = options.idleExitMs ?? 3_000;
  try {
    for (;;) {
      if (failure !== undefined) throw toTributaryError(failure);
      if (options.signal?.aborted) break;
      for (const m of memberships) await m.consumer.poll({ waitMs: 50, maxRecords: 1 });
      if (bounded) {
        const waited = clock.now() - startedMs >= idleExitMs;
        const assignedEverywhere = memberships.every((m) => m.assignedOnce || waited);
        const allFinished = [...tasks.values()].every((h) => h.status().state === 'finished');
        if (assignedEverywhere && allFinished && failure === undefined) break;
      }
    }
  } finally {
    stopping = true;
    await Promise.all([...tasks.keys()].map((id) => stopTask(id)));
    for (const m of memberships) await m.consumer.close();
  }
  if (failure !== undefined) throw toTributaryError(failure);
  return { job: job.name, tasks: [...finalStatus.values()] };
}
