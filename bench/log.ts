import fs from 'node:fs';
import path from 'node:path';
import {
  connectRemoteLog,
  openEmbeddedLog,
  readLogServerInfo,
  serveLog,
  type Log,
  type ProducerRecord,
} from '../src/log/index.js';
import type { Benchmark, BenchContext, BenchResult } from './types.js';

const recordCount = Number(process.env.TRIBUTARY_BENCH_LOG_RECORDS ?? 1_000_000);
const valueBytes = 200;
const recordsPerAppend = 2_000;
const appendsInFlight = 16;
const partitions = 4;
const groupCommitMs = 2;

function listSegments(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(entry.parentPath, entry.name);
    if (entry.isDirectory()) out.push(...listSegments(full));
    else if (entry.name.endsWith('.log')) out.push(full);
  }
  return out.sort();
}

/** Appends `recordCount` records with group commit; returns elapsed seconds and commit count. */
async function appendAll(dir: string): Promise<{ seconds: number; bytes: number; commits: number }> {
  const log = await openEmbeddedLog({ dir, fsync: 'group', groupCommitMs, retentionCheckMs: 0 });
  await log.createTopic('bench', { partitions, retentionMs: -1 });
  const value = Buffer.alloc(valueBytes, 0x61);
  const batches: ProducerRecord[][] = [];
  for (let p = 0; p < partitions; p++) {
    batches.push(Array.from({ length: recordsPerAppend }, () => ({ topic: 'bench', partition: p, value })));
  }
  const { metricsRegistry } = await import('../src/core/index.js');
  const commitsBefore = await fsyncCount(metricsRegistry);
  let sent = 0;
  let call = 0;
  const started = performance.now();
  const worker = async () => {
    while (sent < recordCount) {
      sent += recordsPerAppend;
      await log.append(batches[call++ % partitions]);
    }
  };
  await Promise.all(Array.from({ length: appendsInFlight }, worker));
  const seconds = (performance.now() - started) / 1000;
  const commits = (await fsyncCount(metricsRegistry)) - commitsBefore;
  await log.close();
  const bytes = listSegments(dir).reduce((sum, f) => sum + fs.statSync(f).size, 0);
  return { seconds, bytes, commits };
}

async function fsyncCount(registry: {
  getSingleMetricAsString(name: string): Promise<string>;
}): Promise<number> {
  const text = await registry.getSingleMetricAsString('tributary_log_fsync_seconds');
  const match = /tributary_log_fsync_seconds_count(?:\{[^}]*\})? (\d+)/.exec(text);
  return match ? Number(match[1]) : 0;
}

/** Baseline: the same number of bytes written sequentially to one file, with as many fdatasyncs. */
function rawWrite(file: string, bytes: number, commits: number): number {
  const fd = fs.openSync(file, 'w');
  const chunkBytes = Math.max(1, Math.ceil(bytes / Math.max(1, commits)));
  const chunk = Buffer.alloc(chunkBytes, 0x61);
  const started = performance.now();
  let written = 0;
  while (written < bytes) {
    const n = Math.min(chunkBytes, bytes - written);
    fs.writeSync(fd, chunk, 0, n);
    fs.fdatasyncSync(fd);
    written += n;
  }
  const seconds = (performance.now() - started) / 1000;
  fs.closeSync(fd);
  fs.rmSync(file);
  return seconds;
}

const appendBench: Benchmark = {
  name: 'log.append',
  description: `${recordCount.toLocaleString('en-US')} records of ${valueBytes} bytes, group commit ${groupCommitMs} ms, durable acks`,
  async run(context: BenchContext): Promise<BenchResult> {
    const { dir } = context;
    const logDir = path.join(dir, 'log');
    const ours = await appendAll(logDir);
    context.progress(
      `appended ${ours.bytes.toLocaleString('en-US')} bytes in ${ours.seconds.toFixed(2)} s with ${ours.commits} group commits`,
    );
    const baselineSeconds = rawWrite(path.join(dir, 'raw.bin'), ours.bytes, ours.commits);
    const value = recordCount / ours.seconds;
    const baseline = recordCount / baselineSeconds;
    return {
      value,
      unit: 'records/s',
      baseline,
      baseline_name: 'raw sequential write + same fdatasync cadence',
      ratio: value / baseline,
      goal: '>= 1,000,000 records/s and ratio >= 0.5',
      commits: ours.commits,
      ms_per_commit: (ours.seconds * 1000) / Math.max(1, ours.commits),
    };
  },
};

const readBench: Benchmark = {
  name: 'log.read',
  description: `read ${recordCount.toLocaleString('en-US')} records of ${valueBytes} bytes back from segment files`,
  async run(context: BenchContext): Promise<BenchResult> {
    const { dir } = context;
    const logDir = path.join(dir, 'log');
    await appendAll(logDir);
    const log = await openEmbeddedLog({ dir: logDir, retentionCheckMs: 0 });
    const started = performance.now();
    let read = 0;
    let checksum = 0;
    for (let p = 0; p < partitions; p++) {
      let offset = 0;
      for (;;) {
        const records = await log.fetch('bench', p, offset, { maxRecords: 10_000 });
        if (records.length === 0) break;
        read += records.length;
        checksum += records[records.length - 1].value!.length;
        offset = records[records.length - 1].offset + 1;
      }
    }
    const seconds = (performance.now() - started) / 1000;
    await log.close();
    if (read !== recordCount || checksum === 0)
      throw new Error(`read ${read} records, expected ${recordCount}`);
    // Baseline: the segment bytes read with plain fs reads in 4 MiB chunks (no decoding).
    const files = listSegments(logDir);
    const rawStarted = performance.now();
    const buf = Buffer.allocUnsafe(4 * 1024 * 1024);
    let rawBytes = 0;
    for (const file of files) {
      const fd = fs.openSync(file, 'r');
      for (;;) {
        const n = fs.readSync(fd, buf, 0, buf.length, null);
        if (n === 0) break;
        rawBytes += n;
      }
      fs.closeSync(fd);
    }
    const rawSeconds = (performance.now() - rawStarted) / 1000;
    context.progress(
      `read ${read.toLocaleString('en-US')} records in ${seconds.toFixed(3)} s; raw read of ${rawBytes.toLocaleString('en-US')} bytes in ${rawSeconds.toFixed(3)} s`,
    );
    const value = read / seconds;
    const baseline = recordCount / rawSeconds;
    return {
      value,
      unit: 'records/s',
      baseline,
      baseline_name: 'raw sequential read of the segment files (records/s equivalent)',
      ratio: value / baseline,
      goal: '>= 2,000,000 records/s',
    };
  },
};

const remoteFetchRecords = Number(process.env.TRIBUTARY_BENCH_REMOTE_FETCH_RECORDS ?? 500_000);
const remoteFetchValueBytes = 100;

/** Reads every partition of `topic` from offset 0 to its end; returns records and seconds. */
export async function fetchEverything(
  log: Log,
  topic: string,
): Promise<{ records: number; seconds: number }> {
  const started = performance.now();
  let records = 0;
  let checksum = 0;
  for (const p of (await log.describeTopic(topic)).partitions) {
    let offset = 0;
    while (offset < p.endOffset) {
      const batch = await log.fetch(topic, p.partition, offset, { maxRecords: 10_000 });
      if (batch.length === 0) break;
      records += batch.length;
      checksum += batch[batch.length - 1].value!.length;
      offset = batch[batch.length - 1].offset + 1;
    }
  }
  const seconds = (performance.now() - started) / 1000;
  if (checksum === 0) throw new Error('fetched no values');
  return { records, seconds };
}

const remoteFetchBench: Benchmark = {
  name: 'log.remote_fetch',
  description: `fetch ${remoteFetchRecords.toLocaleString('en-US')} records of ${remoteFetchValueBytes} bytes through a log server (TCP on 127.0.0.1; server and client in this process)`,
  async run(context: BenchContext): Promise<BenchResult> {
    const logDir = path.join(context.dir, 'log');
    const log = await openEmbeddedLog({ dir: logDir, fsync: 'group', groupCommitMs, retentionCheckMs: 0 });
    const server = await serveLog(log, { dir: logDir });
    const info = readLogServerInfo(logDir);
    if (info === null) throw new Error(`the log server wrote no server.json in ${logDir}`);
    const client = await connectRemoteLog({ host: info.host, port: info.port, token: info.token });
    try {
      await log.createTopic('bench', { partitions, retentionMs: -1 });
      const value = Buffer.alloc(remoteFetchValueBytes, 0x62);
      const batch = (p: number) =>
        Array.from({ length: recordsPerAppend }, () => ({ topic: 'bench', partition: p, value }));
      for (let sent = 0, call = 0; sent < remoteFetchRecords; sent += recordsPerAppend * appendsInFlight) {
        await Promise.all(
          Array.from({ length: appendsInFlight }, () => log.append(batch(call++ % partitions))),
        );
      }
      await log.flush();
      // Two rounds each, alternating, best of each: the first read of a round may still warm caches.
      let direct = Infinity;
      let remote = Infinity;
      let records = 0;
      for (let round = 0; round < 2; round++) {
        const local = await fetchEverything(log, 'bench');
        const served = await fetchEverything(client, 'bench');
        if (served.records !== local.records)
          throw new Error(`remote fetch read ${served.records} records, direct ${local.records}`);
        records = local.records;
        direct = Math.min(direct, local.seconds);
        remote = Math.min(remote, served.seconds);
      }
      context.progress(
        `${records.toLocaleString('en-US')} records: direct fetch ${direct.toFixed(3)} s, through the log server ${remote.toFixed(3)} s`,
      );
      const valuePerS = records / remote;
      const baseline = records / direct;
      return {
        value: valuePerS,
        unit: 'records/s',
        baseline,
        baseline_name: 'direct embedded fetch of the same records',
        ratio: valuePerS / baseline,
        goal: '>= 300,000 records/s',
        mb_per_s: (records * remoteFetchValueBytes) / remote / 1e6,
      };
    } finally {
      await client.close();
      await server.close();
      await log.close();
    }
  },
};

export const logBenchmarks: Benchmark[] = [appendBench, readBench, remoteFetchBench];
