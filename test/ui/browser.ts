import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/** Debian's chromium (installed by .ci/run when missing); playwright never downloads a browser. */
export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Headless chromium with a throwaway profile. Background networking is off: this machine has no
 * network, and chromium's own update and sync calls would otherwise fail loudly at every start.
 */
export function launchChromium(userDataDir: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--disable-sync',
    ],
    viewport: { width: 1366, height: 900 },
  });
}

/**
 * Compiles the browser modules from src/ui/client into `outDir` (a test's own directory, so
 * parallel UI tests never read half-written files); returns the `clientDir` for `createApp({ ui })`.
 */
export function compileClient(outDir: string): string {
  const repoRoot = path.resolve(import.meta.dirname, '../..');
  execFileSync(
    process.execPath,
    [
      path.join(repoRoot, 'node_modules/typescript/bin/tsc'),
      '-p',
      path.join(repoRoot, 'src/ui/client/tsconfig.json'),
      '--outDir',
      outDir,
    ],
    { stdio: 'inherit' },
  );
  return path.join(outDir, 'src', 'ui', 'client');
}

/**
 * Opens the dashboard at `hash` with `key` stored as the page's API key, and collects console
 * errors and uncaught exceptions (tests expect none).
 */
export async function openDashboard(
  context: BrowserContext,
  baseUrl: string,
  key: string,
  hash: string,
): Promise<{ page: Page; errors: string[] }> {
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(error.message));
  // The key is set from /docs, which never uses it, so no dashboard request races the setting.
  await page.goto(`${baseUrl}/docs`);
  await page.evaluate((value) => window.localStorage.setItem('tributary.apiKey', value), key);
  await page.goto(`${baseUrl}/${hash}`);
  await page.waitForSelector('body[data-ready]');
  return { page, errors };
}
