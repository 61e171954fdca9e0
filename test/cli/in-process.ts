import { buildProgram } from '../../src/cli/main.js';

/** Runs `tributary <args…>` in this process and returns what it printed on stdout. */
export async function runCli(args: string[]): Promise<string> {
  const printed: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = (chunk: string) => {
    printed.push(chunk);
    return true;
  };
  try {
    await buildProgram().parseAsync(['node', 'tributary', ...args]);
  } finally {
    process.stdout.write = write;
  }
  return printed.join('');
}
