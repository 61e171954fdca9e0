import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

/**
 * Runs the README's shell blocks as a reader would, offline, each in a fresh directory against
 * the built CLI (`npx tributary` and `tributary` call bin/tributary.js; nothing is fetched).
 *
 * Every shell block carries an HTML comment just above it, invisible in the rendered README:
 *   <!-- readme-test: run -->                          run it; every command must exit 0
 *   <!-- readme-test: run; files: a.md -->             the reader's own files, created first
 *   <!-- readme-test: run; background: simulate tmdb -->  lines containing the text are servers:
 *                                                      started in the background, stopped at the end
 *   <!-- readme-test: run; with: up -->                `tributary up` runs meanwhile (the README's
 *                                                      fixed ports are mapped to free ones)
 *   <!-- readme-test: skip: <reason> -->               not runnable offline (installs, the suite)
 * A new shell block without a marker fails this test, so the README cannot gain an untested one.
 */
const root = path.resolve(import.meta.dirname, '../..');
const bin = path.join(root, 'bin', 'tributary.js');
const readme = readFileSync(path.join(root, 'README.md'), 'utf8');

interface Block {
  line: number;
  code: string;
  marker: string | undefined;
}

/** Shell blocks: fenced with no language tag, or sh / bash / shell. Diagrams have no command line. */
function shellBlocks(text: string): Block[] {
  const blocks: Block[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]);
    if (!open) continue;
    let end = i + 1;
    while (end < lines.length && !/^```\s*$/.test(lines[end])) end++;
    const code = lines.slice(i + 1, end).join('\n');
    const shell =
      ['', 'sh', 'bash', 'shell'].includes(open[1]) &&
      /^\s*(npx |npm |[A-Z_]+=|kcat |tributary )/m.test(code);
    if (shell) {
      const before = lines[i - 1] ?? '';
      blocks.push({ line: i + 1, code, marker: /^<!-- readme-test: (.+) -->$/.exec(before.trim())?.[1] });
    }
    i = end;
  }
  return blocks;
}

function parseMarker(marker: string): {
  run: boolean;
  files: string[];
  background: string[];
  withUp: boolean;
} {
  if (marker.startsWith('skip:')) return { run: false, files: [], background: [], withUp: false };
  const parts = marker.split(';').map((p) => p.trim());
  if (parts[0] !== 'run') throw new Error(`unknown readme-test marker: ${marker}`);
  const values = (name: string) =>
    parts
      .filter((p) => p.startsWith(`${name}:`))
      .flatMap((p) => p.slice(name.length + 1).split('|'))
      .map((v) => v.trim());
  return {
    run: true,
    files: values('files'),
    background: values('background'),
    withUp: values('with').includes('up'),
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** The environment of a reader's shell: none of this machine's Tributary settings. */
function readerEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('TRIBUTARY_') && name !== 'CI'),
  );
}

/** Starts `tributary up` in `cwd` and resolves once it printed "Press Ctrl-C" (an event, not a poll). */
async function startUp(
  cwd: string,
  kafkaPort: number,
): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, [bin, 'up', '--port', '0', '--kafka-port', String(kafkaPort)], {
    cwd,
    env: readerEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const seen = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Press Ctrl-C')) resolve();
    };
    child.stdout.on('data', seen);
    child.stderr.on('data', seen);
    child.on('exit', (code) => reject(new Error(`up exited (${code}) before it was ready:\n${output}`)));
  });
  return { child, output: () => output };
}

function runShell(script: string, cwd: string): Promise<{ code: number | null; output: string }> {
  const child = spawn('bash', ['-c', script], { cwd, env: readerEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, output })));
}

/**
 * The block as a bash script: `npx tributary` and `tributary` run the built CLI, each command must
 * succeed (`set -e`, every line's status checked), and background servers stop at the end.
 */
function scriptOf(code: string, background: string[]): string {
  const commands = code.replace(/\\\n\s*/g, ' ').split('\n');
  const lines = commands.map((command) => {
    if (command.trim() === '') return '';
    // A server exec'd in its own subshell: the job's pid is the server's, so the trap stops it
    // (through the `tributary` function it would stop only the subshell around it).
    if (background.some((text) => command.includes(text)))
      return `(exec ${command
        .replace(/#.*$/, '')
        .trim()
        .replace(/^(npx )?tributary /, `node ${JSON.stringify(bin)} `)}) &`;
    return command;
  });
  return [
    'set -euo pipefail',
    `tributary() { node ${JSON.stringify(bin)} "$@"; }`,
    'npx() { if [ "$1" = tributary ]; then shift; tributary "$@"; else echo "npx $1: not offline" >&2; return 1; fi; }',
    "trap 'jobs -p | xargs -r kill' EXIT",
    ...lines,
  ].join('\n');
}

/** What the reader's own files (`files:`) hold, by extension: a note, a review in Amazon's 2014 layout. */
const readerFiles: Record<string, string> = {
  '.md': '# Warranty\n\nEvery Trailbeam headlamp has a two-year warranty from the date of purchase.\n',
  '.jsonl': `${JSON.stringify({
    reviewerID: 'A1READER',
    asin: 'B00HEADLMP',
    reviewText: 'The battery life is excellent: a full week of evening runs on one charge.',
    overall: 5,
    summary: 'Lasts all week',
    unixReviewTime: 1732233600,
    reviewTime: '11 22, 2024',
  })}\n`,
};

const blocks = shellBlocks(readme);
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('README command blocks', () => {
  it('every shell block says whether it runs offline', () => {
    expect(blocks.length).toBeGreaterThan(3);
    const unmarked = blocks.filter((b) => b.marker === undefined).map((b) => `README.md:${b.line}`);
    expect(unmarked).toEqual([]);
    for (const block of blocks) parseMarker(block.marker!);
  });

  it('the built CLI exists (npm run build)', () => {
    expect(existsSync(path.join(root, 'dist', 'src', 'cli', 'main.js')), 'run `npm run build` first').toBe(
      true,
    );
  });

  for (const block of blocks.filter((b) => b.marker !== undefined && parseMarker(b.marker).run)) {
    const marker = parseMarker(block.marker!);
    it(`README.md:${block.line}: ${block.code.split('\n')[0]}`, async () => {
      const cwd = await mkdtemp(path.join(os.tmpdir(), 'tributary-readme-'));
      cleanups.push(() => rm(cwd, { recursive: true, force: true }));
      for (const file of marker.files) {
        await mkdir(path.dirname(path.join(cwd, file)), { recursive: true });
        await writeFile(path.join(cwd, file), readerFiles[path.extname(file)] ?? '');
      }
      let code = block.code;
      if (marker.withUp) {
        const kafkaPort = await freePort();
        const up = await startUp(cwd, kafkaPort);
        cleanups.push(async () => {
          const exited = new Promise((resolve) => up.child.on('exit', resolve));
          up.child.kill('SIGTERM');
          await exited;
        });
        code = code.replaceAll('127.0.0.1:9092', `127.0.0.1:${kafkaPort}`);
      }
      const { code: exitCode, output } = await runShell(scriptOf(code, marker.background), cwd);
      expect(exitCode, `README.md:${block.line}\n${output}`).toBe(0);
    }, 600_000);
  }
});
