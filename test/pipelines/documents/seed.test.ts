import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  demoCompanies,
  documentsPipeline,
  sampleDocumentsDir,
  seedDocuments,
  topics,
} from '../../../src/pipelines/documents/index.js';
import { runPipelineOnce } from '../../../src/stream/index.js';
import { json, readAll, startPlatform, type Platform } from './helpers.js';

describe('demo seeding with the sample documents', () => {
  let platform: Platform;
  beforeAll(async () => {
    platform = await startPlatform();
  });
  afterAll(async () => platform.close());

  it('uploads every sample once, spread over the demo companies, and makes them answerable', async () => {
    const dir = sampleDocumentsDir();
    expect(dir).not.toBeNull();
    const samples = readdirSync(dir!).filter((name) => /\.(pdf|txt|md|html?)$/i.test(name));
    expect(samples.length).toBeGreaterThan(0);
    await documentsPipeline.seedDemo!(platform.services);
    expect(await seedDocuments(platform.log, platform.lake)).toBe(0);
    const raw = (await readAll(platform.log, topics.raw)).map(json);
    expect(raw).toHaveLength(samples.length);
    expect(new Set(raw.map((r) => r.company_id))).toEqual(
      new Set(demoCompanies.slice(0, Math.min(samples.length, demoCompanies.length))),
    );

    const built = await documentsPipeline.jobs(platform.services);
    const result = await runPipelineOnce(
      { streams: built.stream ?? [] },
      { dataDir: platform.services.config.dataDir },
    );
    expect(result.ok).toBe(true);
    expect(await readAll(platform.log, topics.rawDlq)).toHaveLength(0);
    const refunds = raw.find((r) => String(r.s3_path).endsWith('returns-and-refunds.md'))!;
    const response = await fetch(`${platform.url}/ask`, {
      method: 'POST',
      body: JSON.stringify({
        question: 'How do I return an item for a refund?',
        company_id: refunds.company_id,
      }),
      headers: { authorization: `Bearer ${platform.keys.readOnly}`, 'content-type': 'application/json' },
    });
    const body = (await response.json()) as { citations: { filename: string }[] };
    expect(body.citations.map((c) => c.filename)).toContain('returns-and-refunds.md');
  });
});
