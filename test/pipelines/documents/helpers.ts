import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import type { Hono } from 'hono';
import { PDFDocument, StandardFonts } from 'pdf-lib';
import { loadConfig, type ConfigKey } from '../../../src/core/index.js';
import { LocalStorage, openLake, type Lake } from '../../../src/lake/index.js';
import { createMemoryLog, type LogRecord, type MemoryLog } from '../../../src/log/index.js';
import type { PipelineServices } from '../../../src/pipelines/types.js';
import { createApp, KeyStore, type LiveEvent } from '../../../src/serve/index.js';
import { documentsModule } from '../../../src/pipelines/documents/index.js';
import { openSqlEngine } from '../../../src/sql/index.js';
import { zip } from '../../fixtures/zip.js';

/** Starts a real HTTP server for a Hono app on 127.0.0.1, port 0. */
export async function listen(app: Hono): Promise<{ url: string; close(): Promise<void> }> {
  const server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve()))),
  };
}

/** A real PDF with one line of text per page (pdf-lib, standard font). */
export async function makePdf(pages: string[]): Promise<Uint8Array> {
  const pdf = await PDFDocument.create();
  const font = await pdf.embedFont(StandardFonts.Helvetica);
  for (const text of pages) {
    const page = pdf.addPage([595, 842]);
    let y = 800;
    for (const line of text.split('\n')) {
      page.drawText(line, { x: 40, y, size: 11, font });
      y -= 16;
    }
  }
  return pdf.save();
}

/**
 * A minimal DOCX: a ZIP (deflate) holding `[Content_Types].xml` and `word/document.xml` with one
 * `<w:p>` per paragraph — what the ML layer's DOCX extraction reads.
 */
export function makeDocx(paragraphs: string[]): Uint8Array {
  const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const body = paragraphs.map((p) => `<w:p><w:r><w:t>${escape(p)}</w:t></w:r></w:p>`).join('');
  const files: Record<string, string> = {
    '[Content_Types].xml':
      '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>',
    'word/document.xml': `<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>${body}</w:body></w:document>`,
  };
  return zip(files);
}

export function form(
  fields: Record<string, string | { name: string; bytes: Uint8Array; type?: string }>,
): FormData {
  const data = new FormData();
  for (const [name, value] of Object.entries(fields)) {
    if (typeof value === 'string') data.append(name, value);
    else
      data.append(
        name,
        new Blob([Buffer.from(value.bytes)], { type: value.type ?? 'application/octet-stream' }),
        value.name,
      );
  }
  return data;
}

export async function readAll(log: MemoryLog, topic: string): Promise<LogRecord[]> {
  if (!(await log.listTopics()).includes(topic)) return [];
  const out: LogRecord[] = [];
  for (const p of (await log.describeTopic(topic)).partitions)
    out.push(...(await log.fetch(topic, p.partition, p.startOffset, { maxRecords: 100_000 })));
  return out;
}

export const json = (r: LogRecord) => JSON.parse(Buffer.from(r.value!).toString()) as Record<string, unknown>;

export interface Platform {
  dir: string;
  services: PipelineServices;
  log: MemoryLog;
  lake: Lake;
  events: LiveEvent[];
  url: string;
  keys: Record<'admin' | 'acmeIngest' | 'globexIngest' | 'acmeRead' | 'globexRead' | 'readOnly', string>;
  close(): Promise<void>;
}

/**
 * The platform as `tributary up` wires it, on a temp data dir: memory log, real lake (Parquet via
 * DuckDB), real key store, the serving layer's app with the documents module, on a real port;
 * `overrides` are configuration keys (document budgets, …).
 */
export async function startPlatform(overrides: Partial<Record<ConfigKey, unknown>> = {}): Promise<Platform> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'documents-platform-'));
  const config = loadConfig({
    env: {},
    cwd: dir,
    dotenv: false,
    overrides: { dataDir: path.join(dir, 'data'), embeddingModel: 'hashed:128', ...overrides },
  });
  const log = createMemoryLog();
  const lake = await openLake({ storage: new LocalStorage(path.join(config.dataDir, 'lake')) });
  const sql = await openSqlEngine(lake);
  const events: LiveEvent[] = [];
  const services: PipelineServices = {
    config,
    log,
    lake,
    query: (text, params) => sql.query(text, params),
    publish: (event) => events.push(event),
  };
  const store = KeyStore.open(path.join(dir, 'keys.json'));
  const keys = {
    admin: (await store.create({ scopes: ['admin'] })).key,
    acmeIngest: (await store.create({ scopes: ['ingest'], tenant: 'acme' })).key,
    globexIngest: (await store.create({ scopes: ['ingest'], tenant: 'globex' })).key,
    acmeRead: (await store.create({ scopes: ['read'], tenant: 'acme' })).key,
    globexRead: (await store.create({ scopes: ['read'], tenant: 'globex' })).key,
    readOnly: (await store.create({ scopes: ['read'] })).key,
  };
  const { app } = createApp({
    keys: store,
    pipelines: [documentsModule(services)],
    ui: false,
    rateLimit: { ratePerSecond: 10_000, burst: 10_000 },
  });
  const server = await listen(app);
  return {
    dir,
    services,
    log,
    lake,
    events,
    url: server.url,
    keys,
    async close() {
      await server.close();
      sql.close();
      await lake.close();
      await log.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
