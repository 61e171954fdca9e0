import { spawn } from 'node:child_process';

/**
 * Runs `node <args>` (a crash-test worker from src/stream/testing) and kills it with SIGKILL as soon
 * as `killWhen(stdout so far)` is true (default: it printed `held`). Resolves with the signal that
 * ended it, or null when it exited 0; rejects when it failed on its own.
 */
export function runKillableWorker(
  args: string[],
  killWhen: (stdout: string) => boolean = (stdout) => stdout.includes('held\n'),
): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (killWhen(stdout)) child.kill('SIGKILL');
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (code !== 0 && signal === null) reject(new Error(`worker exited ${code}: ${stderr}`));
      else resolve(signal);
    });
  });
}
