import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataDirPaths } from '../../src/core/index.js';
import {
  HashedEmbedder,
  HybridIndex,
  chunkCitations,
  chunkDocument,
  chunkRecord,
  extractText,
  sampleDocumentsDir,
  type IndexRecord,
} from '../../src/ml/index.js';

// These tests run the compiled CLI (`npm test` builds dist/ first through `pretest`).
const cli = path.resolve('bin/tributary.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], stdin?: string, env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin ?? '');
  });
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tributary-ml-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('tributary sentiment', () => {
  it('adds sentiment fields to each JSONL record read from stdin, in order', async () => {
    const input = [
      '{"text":"I love it!"}',
      '{"id":2,"text":"This is terrible."}',
      '',
      '{"text":"It is a chair."}',
    ].join('\n');
    const result = await run(['--data-dir', dir, 'sentiment'], input);
    expect(result.code).toBe(0);
    const lines = result.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatchObject({ text: 'I love it!', sentiment_label: 'positive' });
    expect(lines[0].sentiment_score).toBeGreaterThan(0.5);
    expect(lines[1]).toMatchObject({ id: 2, sentiment_label: 'negative' });
    expect(lines[2]).toMatchObject({
      sentiment_score: 0,
      sentiment_label: 'neutral',
      sentiment_confidence: 1,
    });
  });

  it('fails naming the bad line, after writing the lines before it', async () => {
    const result = await run(
      ['--data-dir', dir, 'sentiment'],
      '{"text":"good"}\n{"text": nope}\n{"text":"bad"}\n',
    );
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('line 2');
    expect(result.stdout.trim().split('\n')).toHaveLength(1);
  });

  it('with --dlq writes bad lines to stderr as error records and goes on', async () => {
    const file = path.join(dir, 'in.jsonl');
    await writeFile(file, '{"review":"great"}\nnot json\n{"text":"x"}\n{"review":"awful"}\n');
    const result = await run([
      '--data-dir',
      dir,
      'sentiment',
      '--input',
      file,
      '--text-field',
      'review',
      '--dlq',
    ]);
    expect(result.code).toBe(0);
    const out = result.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(out.map((r) => r.sentiment_label)).toEqual(['positive', 'negative']);
    const errors = result.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(errors).toEqual([
      expect.objectContaining({ line: 2, raw: 'not json' }),
      { line: 3, error: 'missing field "review"', raw: '{"text":"x"}' },
    ]);
  });

  it('reports a missing input file and a missing Hugging Face runtime clearly', async () => {
    const missing = await run(['--data-dir', dir, 'sentiment', '--input', path.join(dir, 'nope.jsonl')]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('nope.jsonl');
    const hf = await run(
      [
        '--data-dir',
        dir,
        'sentiment',
        '--sentiment-model',
        'hf:distilbert-base-uncased-finetuned-sst-2-english',
      ],
      '{"text":"hi"}\n',
    );
    expect(hf.code).not.toBe(0);
    expect(hf.stderr).toContain('MODEL_MISSING');
    expect(hf.stderr).toContain('hf:distilbert-base-uncased-finetuned-sst-2-english');
  });
});

describe('tributary ask', () => {
  beforeAll(async () => {
    // Index the sample documents for two companies the way the documents pipeline will.
    const records: IndexRecord[] = [];
    const samples = sampleDocumentsDir();
    for (const filename of await readdir(samples)) {
      const doc = await extractText({ filename, data: await readFile(path.join(samples, filename)) });
      for (const chunk of chunkDocument(doc, { maxChars: 500, overlapChars: 80 }))
        records.push(chunkRecord(chunk, { company_id: 'northwind' }));
    }
    records.push({
      id: 'other-1',
      text: 'Rival refunds are processed within 60 days.',
      metadata: { company_id: 'rival', document_id: 'other', filename: 'other.md', page: 1 },
    });
    const index = await HybridIndex.fromRecords(records, {
      embedder: new HashedEmbedder(),
      schema: { tenantField: 'company_id', ...chunkCitations },
    });
    await index.save(path.join(dataDirPaths(dir).index, 'documents'));
  });

  it('answers with citations as JSON', async () => {
    const result = await run([
      '--data-dir',
      dir,
      'ask',
      'How long does a refund take to be processed?',
      '--company',
      'northwind',
      '--format',
      'json',
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const answer = JSON.parse(result.stdout);
    expect(answer.answer).toContain('5 business days');
    expect(answer.citations.length).toBeGreaterThan(0);
    expect(answer.citations[0]).toEqual(
      expect.objectContaining({
        document_id: 'returns-and-refunds.md',
        filename: 'returns-and-refunds.md',
        page: 1,
      }),
    );
    expect(Object.keys(answer.citations[0]).sort()).toEqual([
      'chunk_id',
      'document_id',
      'filename',
      'page',
      'score',
      'text',
    ]);
    expect(result.stdout).not.toContain('Rival');
  });

  it('prints text with sources, and "not found" for unrelated questions', async () => {
    const text = await run([
      '--data-dir',
      dir,
      'ask',
      'How long is the password reset link valid?',
      '--company',
      'northwind',
    ]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('30 minutes');
    expect(text.stdout).toContain('Sources:');
    const none = await run([
      '--data-dir',
      dir,
      'ask',
      'Who won the 1998 football world cup?',
      '--company',
      'northwind',
    ]);
    expect(none.stdout.trim()).toBe('Not found in the documents.');
  });

  it('requires a company and an existing pipeline index', async () => {
    const noCompany = await run(['--data-dir', dir, 'ask', 'refunds']);
    expect(noCompany.code).not.toBe(0);
    expect(noCompany.stderr).toContain('--company is required');
    const noIndex = await run([
      '--data-dir',
      dir,
      'ask',
      'refunds',
      '--company',
      'northwind',
      '--pipeline',
      'other',
    ]);
    expect(noIndex.code).not.toBe(0);
    expect(noIndex.stderr).toContain('no index');
    const escape = await run([
      '--data-dir',
      dir,
      'ask',
      'refunds',
      '--company',
      'northwind',
      '--pipeline',
      '../../etc',
    ]);
    expect(escape.stderr).toContain('PATH_REFUSED');
  });
});
