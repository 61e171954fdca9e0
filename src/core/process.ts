/**
 * Whether process `pid` is alive on this machine: how lock, lease and server files (`LOCK`, task
 * lease records, `server.json`, `up.json`) that hold an owner's pid tell a live owner from a dead
 * one's leftover. EPERM means the process exists but belongs to another user: alive.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
