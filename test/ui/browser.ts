import { chromium, type BrowserContext } from 'playwright-core';

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
