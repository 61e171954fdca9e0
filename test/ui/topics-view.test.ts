import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AvroSerde,
  CachedSchemaRegistry,
  createMemoryLog,
  LocalSchemaRegistry,
  type MemoryLog,
} from '../../src/log/index.js';
import { topicsModule } from '../../src/serve/index.js';
import { startFixture, type Fixture } from '../serve/fixture.js';
import { chromiumPath, launchChromium } from './browser.js';

/** The dashboard's topic view in chromium: an Avro topic's values appear as JSON. */
const repoRoot = path.resolve(import.meta.dirname, '../..');

let f: Fixture;
let log: MemoryLog;
let context: BrowserContext;
let userDataDir: string;
let registryDir: string;

beforeAll(async () => {
  execFileSync(
    process.execPath,
    [
      path.join(repoRoot, 'node_modules/typescript/bin/tsc'),
      '-p',
      path.join(repoRoot, 'src/ui/client/tsconfig.json'),
    ],
    { stdio: 'inherit' },
  );
  registryDir = await mkdtemp(path.join(os.tmpdir(), 'tributary-topics-view-'));
  const registry = new CachedSchemaRegistry(await LocalSchemaRegistry.open(registryDir));
  const writer = await new AvroSerde(registry).writer('ratings-value', {
    type: 'record',
    name: 'Rating',
    fields: [
      { name: 'movie', type: 'string' },
      { name: 'stars', type: 'int' },
    ],
  });
  log = createMemoryLog();
  await log.ensureTopic('ratings', { partitions: 2 });
  await log.append([
    { topic: 'ratings', key: 'alien', value: writer.encode({ movie: 'alien', stars: 5 }) },
    { topic: 'ratings', key: 'heat', value: writer.encode({ movie: 'heat', stars: 4 }) },
  ]);
  await log.ensureTopic('notes', { partitions: 1 });
  await log.append([{ topic: 'notes', value: 'plain text' }]);
  f = await startFixture({ pipelines: [topicsModule(log, registry)], schemaRegistry: registry });
  userDataDir = await mkdtemp(path.join(os.tmpdir(), 'tributary-chromium-'));
  if (existsSync(chromiumPath)) context = await launchChromium(userDataDir);
}, 120_000);

afterAll(async () => {
  await context?.close();
  await f?.close();
  await log?.close();
  if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
  if (registryDir) await rm(registryDir, { recursive: true, force: true });
});

describe.skipIf(!existsSync(chromiumPath))('topic view in chromium', () => {
  it('lists topics and shows Avro values decoded to JSON', async () => {
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    await page.goto(`${f.url}/docs`);
    await page.evaluate(() => window.localStorage.clear());
    await page.goto(`${f.url}/`);
    await page.waitForSelector('#login-form');
    await page.fill('#api-key', f.keys.admin);
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('body[data-ready]');
    await page.click('nav a[data-page=topics]');
    await page.waitForSelector('#topic-list a');
    expect(await page.locator('#topic-list a').allTextContents()).toEqual(['notes', 'ratings']);
    await page.click('#topic-list a:text-is("ratings")');
    await page.waitForSelector('#topic-records .record-value');
    const values = await page.locator('#topic-records .record-value').allTextContents();
    expect(values.sort()).toEqual(['{"movie":"alien","stars":5}', '{"movie":"heat","stars":4}']);
    expect(errors, errors.join('\n')).toEqual([]);
    await page.close();
  });
});
