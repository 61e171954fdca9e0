import { counter, histogram } from '../core/index.js';

/** Lake metrics on the process registry (served at /metrics by the API). */
export const lakeMetrics = {
  commits: counter('tributary_lake_commits_total', 'Lake commits applied', ['table', 'operation']),
  commitRetries: counter(
    'tributary_lake_commit_retries_total',
    'Commit attempts lost to a concurrent committer and retried',
    ['table'],
  ),
  commitsDeduplicated: counter(
    'tributary_lake_commits_deduplicated_total',
    'Commits recognised as already applied (retries)',
    ['table'],
  ),
  filesWritten: counter('tributary_lake_files_written_total', 'Parquet files written (staged)', ['table']),
  bytesWritten: counter('tributary_lake_bytes_written_total', 'Parquet bytes written (staged)', ['table']),
  rowsWritten: counter('tributary_lake_rows_written_total', 'Rows written into Parquet files (staged)', [
    'table',
  ]),
  filesDeleted: counter('tributary_lake_files_garbage_collected_total', 'Unreferenced files deleted by gc', [
    'table',
  ]),
  commitSeconds: histogram(
    'tributary_lake_commit_seconds',
    'Time to publish a commit (manifest write, retries, markers)',
    ['table'],
  ),
};
