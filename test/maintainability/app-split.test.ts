import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { createApp, KeyStore } from '../../src/serve/index.js';

/**
 * Issue 19: `createApp` was one closure that owned auth, caching, live events and a dozen routes.
 * It now only assembles modules, one per concern, the way `topic-routes.ts` is written.
 */
const serveDir = path.resolve(import.meta.dirname, '../../src/serve');
const source = (file: string) => readFileSync(path.join(serveDir, file), 'utf8');

it('createApp defines no route, guard, cache or stream itself', () => {
  const app = source('app.ts');
  expect(app).not.toMatch(/\.route\(\{/);
  expect(app).not.toMatch(/streamSSE|setInterval|WWW-Authenticate|cache\.get\(/);
  expect(app.split('\n').length).toBeLessThan(250);
});

it('each concern has its module, and the app mounts every route they define', () => {
  const modules: Record<string, string[]> = {
    'auth.ts': ['/api/whoami', '/api/keys'],
    'status-routes.ts': ['/health', '/ready', '/metrics', '/openapi.json', '/api/pipelines', '/api/status'],
    'table-routes.ts': ['/api/tables', '/api/tables/:layer/:name'],
    'sse-routes.ts': ['/api/events/token', '/api/events'],
    'ask-routes.ts': ['/api/ask'],
  };
  const keys = KeyStore.open(path.join(serveDir, 'no-such-keys.json'), { reloadMs: 0 });
  const tables = {
    listTables: () => Promise.resolve([]),
    describeTable: () => Promise.resolve(null),
    readRows: () => Promise.reject(new Error('unused')),
  };
  const api = createApp({
    keys,
    tables,
    status: { getStatus: () => Promise.resolve({ generatedAtMs: 0, pipelines: [], jobs: [] }) },
    ask: () => Promise.resolve({}),
    statusTickMs: 0,
    ui: false,
  });
  const mounted = api.router.routes().map((r) => r.path);
  for (const [file, paths] of Object.entries(modules)) {
    for (const route of paths) {
      expect(source(file), `${route} in ${file}`).toContain(`path: '${route}'`);
      expect(mounted).toContain(route);
    }
  }
  void api.close();
});
