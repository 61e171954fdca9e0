import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import {
  createApp,
  KeyStore,
  startServer,
  type AppOptions,
  type RunningServer,
  type TributaryApp,
} from '../../src/serve/index.js';

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

export interface ServedDashboard {
  api: TributaryApp;
  server: RunningServer;
  context: BrowserContext;
  /** The key store of the app, for tests that add tenant keys. */
  keys: KeyStore;
  adminKey: string;
  /** Chromium, the app and its server, in that order. */
  close(): Promise<void>;
}

/**
 * The dashboard as the browser tests serve it: the client compiled under `dir`, a key store with an
 * admin key, the app (rate limits out of the way: a page load makes many requests) on a free port,
 * and chromium with its profile under `dir`.
 */
export async function serveDashboard(
  dir: string,
  options: Omit<AppOptions, 'keys' | 'ui' | 'rateLimit' | 'statusTickMs'>,
): Promise<ServedDashboard> {
  const clientDir = compileClient(path.join(dir, 'client'));
  const keys = KeyStore.open(path.join(dir, 'keys.json'));
  const adminKey = (await keys.create({ scopes: ['admin'], name: 'admin' })).key;
  const api = createApp({
    ...options,
    keys,
    rateLimit: { ratePerSecond: 10_000, burst: 10_000 },
    statusTickMs: 0,
    ui: { clientDir },
  });
  const server = await startServer(api.app, { port: 0 });
  const context = await launchChromium(path.join(dir, 'chromium'));
  return {
    api,
    server,
    context,
    keys,
    adminKey,
    async close() {
      await context.close();
      await api.close();
      await server.close(200);
    },
  };
}
