import { TributaryError } from '../core/index.js';
import type { PlatformStatus, TableInfo } from './types.js';

function age(epochMs: number | null | undefined, nowMs: number): string {
  if (epochMs === null || epochMs === undefined) return '-';
  const seconds = Math.max(0, Math.round((nowMs - epochMs) / 1000));
  if (seconds < 120) return `${seconds}s ago`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m ago`;
  return `${Math.round(seconds / 3600)}h ago`;
}

function columns(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** `tributary status` text: pipelines, jobs (lag, watermark, checkpoint, DLQ, late), sources, lake tables. */
export function formatStatus(status: PlatformStatus, tables: TableInfo[] = [], nowMs = Date.now()): string {
  const parts: string[] = [];
  parts.push(
    status.pipelines.length === 0
      ? 'Pipelines: none registered'
      : `Pipelines\n${columns([
          ['NAME', 'STATE', 'JOBS', 'LAST RUN', 'RESULT'],
          ...status.pipelines.map((p) => [
            p.name,
            p.state,
            String(p.jobs.length),
            age(p.lastRunMs, nowMs),
            p.lastRunStatus ?? '-',
          ]),
        ])}`,
  );
  parts.push(
    status.jobs.length === 0
      ? 'Jobs: none'
      : `Jobs\n${columns([
          ['JOB', 'PIPELINE', 'STATE', 'REC/S', 'RECORDS', 'LAG', 'WATERMARK', 'CHECKPOINT', 'DLQ', 'LATE'],
          ...status.jobs.map((j) => [
            j.name,
            j.pipeline ?? '-',
            j.state === 'stopped' && j.lastSeenMs
              ? `stopped (last seen ${age(j.lastSeenMs, nowMs)})`
              : j.state,
            (j.throughputPerSecond ?? 0).toFixed(1),
            String(j.recordsIn ?? 0),
            String(j.consumerLag ?? 0),
            j.watermarkMs ? new Date(j.watermarkMs).toISOString().replace('.000Z', 'Z') : '-',
            j.lastCheckpoint ? `#${j.lastCheckpoint.id} ${age(j.lastCheckpoint.atMs, nowMs)}` : '-',
            String(j.dlqCount ?? 0),
            String(j.lateCount ?? 0),
          ]),
        ])}`,
  );
  const sources = status.sources ?? [];
  if (sources.length > 0) {
    parts.push(
      `Sources\n${columns([
        ['SOURCE', 'KIND', 'STATE', 'REC/S', 'RECORDS', 'REFUSED', 'RESTARTS', 'POSITION'],
        ...sources.map((s) => [
          s.name,
          s.kind,
          s.state,
          s.recordsPerSecond.toFixed(1),
          String(s.records),
          String(s.refused),
          String(s.restarts),
          s.position ?? '-',
        ]),
      ])}`,
    );
  }
  const fenced = status.fencedPartitions ?? [];
  if (fenced.length > 0) {
    parts.push(
      `Fenced log partitions (damaged data; reads and writes refused)\n${fenced
        .map((f) => `  ${f.topic}/${f.partition}: ${f.reason}`)
        .join('\n')}`,
    );
  }
  const failed = [
    ...status.jobs.filter((j) => j.error).map((j) => `  ${j.name}: ${j.error}`),
    ...sources
      .filter((s) => s.lastError)
      .map((s) => `  ${s.name}: ${s.lastError} (${age(s.lastErrorAtMs, nowMs)})`),
  ];
  if (failed.length > 0) parts.push(`Errors\n${failed.join('\n')}`);
  if (tables.length > 0) {
    parts.push(
      `Lake\n${columns([
        ['TABLE', 'PARTITIONS', 'FILES', 'ROWS', 'SIZE', 'UPDATED'],
        ...tables.map((t) => [
          `${t.layer}.${t.name}`,
          String(t.partitions.length),
          String(t.files),
          t.rows === undefined ? '-' : String(t.rows),
          bytes(t.sizeBytes),
          age(t.updatedAtMs, nowMs),
        ]),
      ])}`,
    );
  }
  return `${parts.join('\n\n')}\n`;
}

/** Reads status (and tables) from a running API with a key; null when the API has no status route. */
export async function fetchStatus(
  url: string,
  key: string,
  timeoutMs = 5000,
): Promise<{ status: PlatformStatus; tables: TableInfo[] }> {
  const get = async (route: string) => {
    let response: Response;
    try {
      response = await fetch(`${url}${route}`, {
        headers: { authorization: `Bearer ${key}` },
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      throw new TributaryError(
        'UNAVAILABLE',
        `cannot reach the running API at ${url}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    if (response.status === 404) return null;
    if (!response.ok)
      throw new TributaryError(
        response.status === 401 ? 'UNAUTHENTICATED' : 'EXTERNAL',
        `GET ${url}${route} answered ${response.status}: ${await response.text()}`,
      );
    return (await response.json()) as unknown;
  };
  const status = ((await get('/api/status')) as PlatformStatus | null) ?? {
    generatedAtMs: Date.now(),
    pipelines: [],
    jobs: [],
  };
  const tables = ((await get('/api/tables')) as { tables: TableInfo[] } | null)?.tables ?? [];
  return { status, tables };
}
