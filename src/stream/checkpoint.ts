/**
 * Checkpoint files of a stream job, under `<dataDir>/checkpoints/<job>/`.
 *
 * A checkpoint is two files, written in this order:
 * 1. `chk-<id, 10 digits>.json` — the state file:
 *      {"format":"tributary.stream.state","version":1,"job":"sales","checkpointId":7,
 *       "offsets":{"sales/0":1200,"sales/1":980},       next offset to read, per topic/partition
 *       "task":{watermark, windows, processes, counters}, operator state (see runtime.ts)
 *       "sinks":[<per-sink preCommit state>, ...],        e.g. staged lake files, topic end offsets
 *       "sideEndOffsets":{"sales.dlq":{"0":12}},          end offsets of the side-output topics
 *                                                          (DLQ, late) that existed; optional
 *       "bounded":{"run":3,"finished":true}}               scaled-out task in a bounded run (scale.ts); optional
 * 2. `CURRENT` — the manifest, replaced atomically (writeFileAtomic: temp + fsync + rename + fsync dir):
 *      {"format":"tributary.stream.checkpoint","version":1,"job":"sales","checkpointId":7,
 *       "stateFile":"chk-0000000007.json","stateSha256":"<hex>","stateBytes":5120,"createdAtMs":...}
 * The manifest is the commit point: a crash before it leaves the previous checkpoint in force (the
 * orphan state file is overwritten or removed later); a state file whose checksum does not match
 * its manifest is refused as CORRUPT_DATA rather than half-restored.
 *
 * `INTENT` (sink intent) covers the time before a job's first checkpoint, when no state file says
 * where its outputs start. See `encodeSinkIntent`.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { dataDirPaths, noSpaceError, processAlive, TributaryError, writeFileAtomic } from '../core/index.js';
import type { TaskSnapshot } from './runtime.js';

export const checkpointFormatVersion = 1;

export interface CheckpointState {
  format: 'tributary.stream.state';
  version: number;
  job: string;
  checkpointId: number;
  offsets: Record<string, number>;
  task: TaskSnapshot;
  sinks: unknown[];
  /** Side-output topic → partition → end offset (absent in checkpoints of older builds). */
  sideEndOffsets?: Record<string, Record<string, number>>;
  /** A task of a scaled-out job in a bounded run: the run's number, and whether its input ended. */
  bounded?: { run: number; finished: boolean };
}

export interface CheckpointManifest {
  format: 'tributary.stream.checkpoint';
  version: number;
  job: string;
  checkpointId: number;
  stateFile: string;
  stateSha256: string;
  stateBytes: number;
  createdAtMs: number;
  /** Task checkpoints (task-store.ts): the lease generation of the owner that wrote it. */
  generation?: number;
}

export function checkpointDir(dataDir: string, job: string): string {
  return path.join(dataDirPaths(dataDir).checkpoints, job);
}

/** Encodes a state file (bytes exactly as stored). */
export function encodeCheckpointState(state: CheckpointState): Uint8Array {
  return Buffer.from(JSON.stringify(state), 'utf8');
}

/** The manifest naming a checkpoint's state file (its digest and size), local or in a task's store. */
export function checkpointManifest(
  state: CheckpointState,
  stateFile: string,
  data: Uint8Array,
  createdAtMs: number,
): CheckpointManifest {
  return {
    format: 'tributary.stream.checkpoint',
    version: checkpointFormatVersion,
    job: state.job,
    checkpointId: state.checkpointId,
    stateFile,
    stateSha256: createHash('sha256').update(data).digest('hex'),
    stateBytes: data.length,
    createdAtMs,
  };
}

/** Writes state then manifest; returns the manifest (with the state size). */
export async function writeCheckpoint(
  dir: string,
  state: CheckpointState,
  createdAtMs: number,
): Promise<CheckpointManifest> {
  const data = encodeCheckpointState(state);
  const stateFile = `chk-${String(state.checkpointId).padStart(10, '0')}.json`;
  await writeFileAtomic(path.join(dir, stateFile), data);
  const manifest = checkpointManifest(state, stateFile, data, createdAtMs);
  await writeFileAtomic(path.join(dir, 'CURRENT'), `${JSON.stringify(manifest)}\n`);
  // Older state files are garbage once the manifest points past them.
  for (const name of await readdir(dir)) {
    if (name.startsWith('chk-') && name !== stateFile) await rm(path.join(dir, name), { force: true });
  }
  return manifest;
}

/** The last completed checkpoint of a job, or null when it has none. */
export async function readCheckpoint(
  dir: string,
): Promise<{ manifest: CheckpointManifest; state: CheckpointState } | null> {
  const manifestPath = path.join(dir, 'CURRENT');
  if (!existsSync(manifestPath)) return null;
  let manifest: CheckpointManifest;
  try {
    manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as CheckpointManifest;
  } catch (error) {
    throw new TributaryError('CORRUPT_DATA', `checkpoint manifest ${manifestPath} is not JSON`, {
      cause: error,
    });
  }
  checkCheckpointManifest(manifest, manifestPath);
  const statePath = path.join(dir, path.basename(manifest.stateFile));
  return { manifest, state: decodeCheckpointState(manifest, await readFile(statePath), statePath) };
}

/**
 * Checks a manifest (`where` names it in errors) as `readCheckpoint` does: format and version.
 * Shared with the task store (task-store.ts), whose manifests are objects, not files.
 */
export function checkCheckpointManifest(manifest: CheckpointManifest, where: string): void {
  if (manifest?.format !== 'tributary.stream.checkpoint')
    throw new TributaryError('CORRUPT_DATA', `${where} is not a checkpoint manifest`);
  if (manifest.version > checkpointFormatVersion) {
    throw new TributaryError(
      'FORMAT_VERSION',
      `${where} has format version ${manifest.version}; this build reads up to ${checkpointFormatVersion}`,
    );
  }
}

/** Decodes a state file after checking it against its manifest (checksum, job, id). */
export function decodeCheckpointState(
  manifest: CheckpointManifest,
  data: Uint8Array,
  where: string,
): CheckpointState {
  const sha = createHash('sha256').update(data).digest('hex');
  if (sha !== manifest.stateSha256) {
    throw new TributaryError(
      'CORRUPT_DATA',
      `checkpoint state ${where} does not match its manifest checksum (${sha} != ${manifest.stateSha256})`,
    );
  }
  const state = JSON.parse(Buffer.from(data).toString('utf8')) as CheckpointState;
  if (state.checkpointId !== manifest.checkpointId || state.job !== manifest.job) {
    throw new TributaryError(
      'CORRUPT_DATA',
      `checkpoint state ${where} belongs to ${state.job}#${state.checkpointId}, manifest says ${manifest.job}#${manifest.checkpointId}`,
    );
  }
  return state;
}

export interface SinkIntent {
  format: 'tributary.stream.sink-intent';
  version: number;
  job: string;
  /** Per sink (job order), what its `intent()` returned; null for sinks without one. */
  sinks: unknown[];
  /** Side-output topic → partition → end offset, for the topics that existed. */
  sideEndOffsets: Record<string, Record<string, number>>;
  createdAtMs: number;
}

export const sinkIntentFormatVersion = 1;

/**
 * Encodes `<dataDir>/checkpoints/<job>/INTENT`, written with writeFileAtomic (temp + fsync + rename
 * + fsync dir) by a run whose job has no checkpoint, BEFORE its first output:
 *   {"format":"tributary.stream.sink-intent","version":1,"job":"sales",
 *    "sinks":[{"endOffsets":{"0":1200,"1":980}}, null],   per sink: what its intent() returned
 *    "sideEndOffsets":{"sales.dlq":{"0":12}},              side-output topics that existed
 *    "createdAtMs":1763769600000}
 * e.g. a topic sink's output end offsets (partition → offset) before the job wrote anything.
 * A restart that finds no checkpoint but an INTENT hands each sink its entry, and keeps the file
 * as it is (its offsets stay the earliest, so repeated crashes before the first checkpoint are
 * all covered). The first checkpoint manifest supersedes it; the file is then deleted.
 */
export function encodeSinkIntent(intent: SinkIntent): string {
  return `${JSON.stringify(intent)}\n`;
}

export function sinkIntentFile(dir: string): string {
  return path.join(dir, 'INTENT');
}

export async function writeSinkIntent(dir: string, intent: SinkIntent): Promise<void> {
  await writeFileAtomic(sinkIntentFile(dir), encodeSinkIntent(intent));
}

/** The sink intent of a job that has no checkpoint yet, or null. */
export async function readSinkIntent(dir: string, job: string): Promise<SinkIntent | null> {
  const file = sinkIntentFile(dir);
  if (!existsSync(file)) return null;
  return decodeSinkIntent(await readFile(file, 'utf8'), file, job);
}

/** Parses and checks a sink intent (`where` names it in errors). */
export function decodeSinkIntent(text: string, where: string, job: string): SinkIntent {
  let intent: SinkIntent;
  try {
    intent = JSON.parse(text) as SinkIntent;
  } catch (error) {
    throw new TributaryError('CORRUPT_DATA', `sink intent ${where} is not JSON`, { cause: error });
  }
  if (intent?.format !== 'tributary.stream.sink-intent' || !Array.isArray(intent.sinks))
    throw new TributaryError('CORRUPT_DATA', `${where} is not a sink intent file`);
  if (intent.version > sinkIntentFormatVersion) {
    throw new TributaryError(
      'FORMAT_VERSION',
      `${where} has format version ${intent.version}; this build reads up to ${sinkIntentFormatVersion}`,
    );
  }
  if (intent.job !== job)
    throw new TributaryError('CORRUPT_DATA', `sink intent ${where} belongs to job ${intent.job}, not ${job}`);
  return intent;
}

export async function removeSinkIntent(dir: string): Promise<void> {
  await rm(sinkIntentFile(dir), { force: true });
}

/** Deletes a job's checkpoints (its next run starts from its `from` position with empty state). */
export async function resetCheckpoints(dataDir: string, job: string): Promise<void> {
  await rm(checkpointDir(dataDir, job), { recursive: true, force: true });
}

/**
 * One process runs a job at a time: its checkpoint dir holds a `LOCK` file with the owner's pid
 * (plain decimal text). A lock whose process is gone (kill -9) is taken over; a live one is a
 * CONFLICT — two processes restoring and writing the same checkpoints would double-count.
 */
export function lockJob(dir: string, job: string): () => void {
  const file = path.join(dir, 'LOCK');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      return () => rmSync(file, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        // Created by us but not written (a full disk): an empty lock would outlive the error.
        rmSync(file, { force: true });
        throw noSpaceError(error, `taking the lock of job ${job}`);
      }
      const owner = Number(readFileSync(file, 'utf8').trim());
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && processAlive(owner)) {
        throw new TributaryError(
          'CONFLICT',
          `job ${job} is already running in process ${owner} (lock ${file})`,
        );
      }
      rmSync(file, { force: true });
    }
  }
  throw new TributaryError('CONFLICT', `could not take the lock ${file} for job ${job}`);
}
