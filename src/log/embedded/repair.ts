import fs from 'node:fs';
import path from 'node:path';
import { fsyncDirectory, TributaryError } from '../../core/index.js';
import { checkBatch, parseSegmentFileName } from './format.js';
import { logLayout, releaseLock, takeLock } from './log.js';

/** One segment of a partition, as a full checksummed scan found it. */
export interface SegmentInspection {
  /** File name inside the partition directory (`<20-digit base offset>.log`). */
  file: string;
  baseOffset: number;
  bytes: number;
  /** Bytes of whole, intact batches from the start of the file up to the damage (all when intact). */
  goodBytes: number;
  /** Offset after the last intact record of the segment. */
  goodEndOffset: number;
  /** The first damage found, when there is one. */
  damage?: { position: number; reason: string };
}

/** What `inspectPartition` found and what a repair would drop. */
export interface PartitionInspection {
  topic: string;
  partition: number;
  segments: SegmentInspection[];
  damaged: boolean;
  /** Offset after the last intact record before the first damage: the partition ends here after repair. */
  lastGoodEndOffset: number;
  /** What truncating after the last good batch removes. */
  drop: { bytes: number; segmentsTruncated: string[]; segmentsDeleted: string[] };
}

/**
 * Reads every segment of one partition of the embedded log in `logDir`, verifying every batch's
 * magic, length, checksum and offset continuity, and reports the first damage and what a repair
 * would drop. Takes the log's lock (refused while `tributary up` or another process has the log
 * open): an operator inspects and repairs a stopped log, never one being written.
 */
export async function inspectPartition(
  logDir: string,
  topic: string,
  partition: number,
): Promise<PartitionInspection> {
  return withLogLocked(logDir, () => scanPartition(partitionDir(logDir, topic, partition), topic, partition));
}

/**
 * Truncates one partition after its last intact batch: the damaged segment is cut at the first
 * damage and every later segment is deleted (their offsets would no longer follow on). Deliberate
 * and lossy: callers show `inspectPartition`'s report first. Returns what was dropped.
 */
export async function repairPartition(
  logDir: string,
  topic: string,
  partition: number,
): Promise<PartitionInspection> {
  return withLogLocked(logDir, async () => {
    const dir = partitionDir(logDir, topic, partition);
    const report = scanPartition(dir, topic, partition);
    if (!report.damaged) return report;
    for (const name of report.drop.segmentsTruncated) {
      const segment = report.segments.find((s) => s.file === name)!;
      const fd = fs.openSync(path.join(dir, name), 'r+');
      try {
        fs.ftruncateSync(fd, segment.goodBytes);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    }
    for (const name of report.drop.segmentsDeleted) fs.rmSync(path.join(dir, name), { force: true });
    await fsyncDirectory(dir);
    return report;
  });
}

function partitionDir(logDir: string, topic: string, partition: number): string {
  const dir = path.join(logDir, logLayout.topics, topic, String(partition));
  if (!/^[A-Za-z0-9._-]+$/.test(topic) || !fs.existsSync(dir)) {
    throw new TributaryError(
      'NOT_FOUND',
      `topic ${topic} has no partition ${partition} in the log at ${logDir}`,
    );
  }
  return dir;
}

async function withLogLocked<T>(logDir: string, work: () => T | Promise<T>): Promise<T> {
  const dir = path.resolve(logDir);
  takeLock(dir);
  try {
    return await work();
  } finally {
    releaseLock(dir);
  }
}

function scanPartition(dir: string, topic: string, partition: number): PartitionInspection {
  const names = fs
    .readdirSync(dir)
    .map((name) => ({ name, base: parseSegmentFileName(name) }))
    .filter((e): e is { name: string; base: number } => e.base !== undefined)
    .sort((a, b) => a.base - b.base);
  const segments: SegmentInspection[] = [];
  let expected: number | undefined;
  let damagedAt = -1;
  for (const { name, base } of names) {
    const buf = fs.readFileSync(path.join(dir, name));
    const segment: SegmentInspection = {
      file: name,
      baseOffset: base,
      bytes: buf.length,
      goodBytes: 0,
      goodEndOffset: base,
    };
    segments.push(segment);
    if (damagedAt >= 0) continue;
    if (expected !== undefined && base !== expected) {
      segment.damage = {
        position: 0,
        reason: `segment starts at offset ${base}, the previous one ends at ${expected}`,
      };
      damagedAt = segments.length - 1;
      continue;
    }
    let at = 0;
    let next = base;
    while (at < buf.length) {
      const check = checkBatch(buf, at, true);
      const reason = !check.ok
        ? check.reason
        : check.header.baseOffset !== next
          ? `batch has base offset ${check.header.baseOffset}, expected ${next}`
          : undefined;
      if (reason !== undefined) {
        segment.damage = { position: at, reason };
        break;
      }
      if (!check.ok) break;
      at += check.header.batchBytes;
      next = check.header.baseOffset + check.header.recordCount;
    }
    segment.goodBytes = at;
    segment.goodEndOffset = next;
    expected = next;
    if (segment.damage !== undefined) damagedAt = segments.length - 1;
  }
  const damaged = damagedAt >= 0;
  const lastGood = damaged
    ? segments[damagedAt].damage!.position === 0 && segments[damagedAt].goodBytes === 0 && damagedAt > 0
      ? segments[damagedAt - 1].goodEndOffset
      : segments[damagedAt].goodEndOffset
    : (segments[segments.length - 1]?.goodEndOffset ?? 0);
  const truncated: string[] = [];
  const deleted: string[] = [];
  let bytes = 0;
  if (damaged) {
    for (let i = damagedAt; i < segments.length; i++) {
      const s = segments[i];
      // The first segment stays (empty) so the partition keeps its start offset.
      if (i === damagedAt && (s.goodBytes > 0 || i === 0)) {
        truncated.push(s.file);
        bytes += s.bytes - s.goodBytes;
      } else {
        deleted.push(s.file);
        bytes += s.bytes;
      }
    }
  }
  return {
    topic,
    partition,
    segments,
    damaged,
    lastGoodEndOffset: lastGood,
    drop: { bytes, segmentsTruncated: truncated, segmentsDeleted: deleted },
  };
}
