import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Hono } from 'hono';

const moduleDir = path.dirname(fileURLToPath(import.meta.url));

/**
 * Where the dashboard's files live, from both `src/ui` (tests run the sources) and `dist/src/ui`
 * (the build): HTML/CSS are never compiled, so they are always read from `src/ui/static`; the
 * browser modules are tsc's output of `src/ui/client/*.ts`, i.e. `dist/src/ui/client`.
 */
export function defaultUiDirs(): { staticDir: string; clientDir: string } {
  const fromDist = path.basename(path.resolve(moduleDir, '../..')) === 'dist';
  const repoRoot = fromDist ? path.resolve(moduleDir, '../../..') : path.resolve(moduleDir, '../..');
  return {
    staticDir: path.join(repoRoot, 'src', 'ui', 'static'),
    clientDir: path.join(repoRoot, 'dist', 'src', 'ui', 'client'),
  };
}

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};

/** Only plain file names are served; anything with a slash, dot-dot or odd character is a 404. */
const fileNamePattern = /^[a-z0-9][a-z0-9-]*\.(html|css|js|svg|ico)$/;

export interface UiRoutesOptions {
  staticDir?: string;
  /** Directory of the compiled browser modules (tsc output of src/ui/client). */
  clientDir?: string;
}

/**
 * The dashboard's public files: `/` (the single-page app), `/docs` (API reference rendered from
 * `/openapi.json`) and `/ui/<file>`. Nothing here carries data: every data request the page makes
 * goes to `/api/*` with the user's key.
 */
export function createUiRoutes(options: UiRoutesOptions = {}): Hono {
  const defaults = defaultUiDirs();
  const staticDir = options.staticDir ?? defaults.staticDir;
  const clientDir = options.clientDir ?? defaults.clientDir;
  const app = new Hono();
  const send = async (file: string, cacheable: boolean): Promise<Response | null> => {
    const extension = path.extname(file);
    let body: Buffer;
    try {
      body = await readFile(file);
    } catch {
      return null;
    }
    return new Response(new Uint8Array(body), {
      headers: {
        'content-type': contentTypes[extension] ?? 'application/octet-stream',
        'cache-control': cacheable ? 'public, max-age=60' : 'no-cache',
      },
    });
  };
  app.get('/', async (c) => (await send(path.join(staticDir, 'index.html'), false)) ?? c.notFound());
  app.get('/docs', async (c) => (await send(path.join(staticDir, 'docs.html'), false)) ?? c.notFound());
  app.get('/ui/:file', async (c) => {
    const name = c.req.param('file');
    if (!fileNamePattern.test(name)) return c.notFound();
    const fromStatic = await send(path.join(staticDir, name), true);
    if (fromStatic) return fromStatic;
    if (name.endsWith('.js')) {
      const compiled = await send(path.join(clientDir, name), true);
      if (compiled) return compiled;
      if (!existsSync(clientDir)) {
        return c.json(
          { error: { code: 'UNAVAILABLE', message: 'dashboard scripts are not built; run `npm run build`' } },
          503,
        );
      }
    }
    return c.notFound();
  });
  return app;
}
