import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  HashedEmbedder,
  HybridIndex,
  VaderSentiment,
  ask,
  chunkCitations,
  chunkDocument,
  chunkRecord,
  extractText,
  mlDataDir,
  sampleDocumentsDir,
  type IndexRecord,
  type SentimentLabel,
} from '../src/ml/index.js';

/**
 * `npm run eval [-- --json]`: quality figures for the ML layer on the committed evaluation sets
 * (see src/ml/data/README.md for their origin).
 *  - sentiment: agreement of VADER's label with the hand-written labels, plus per-class recall;
 *  - retrieval: hit@5 and MRR of hybrid search over the sample documents;
 *  - RAG: share of answerable questions answered, and of unanswerable ones answered "not found".
 */

export interface SentimentFigures {
  /** Labelled texts scored (sentences, or whole multi-sentence reviews). */
  texts: number;
  agreement: number;
  recall: Record<SentimentLabel, number>;
  confusion: Record<SentimentLabel, Record<SentimentLabel, number>>;
}

export interface EvalReport {
  /** Short review sentences. */
  sentiment: SentimentFigures;
  /** Whole reviews of several sentences, as the reviews pipeline scores them. */
  sentimentReviews: SentimentFigures;
  retrieval: {
    /** Questions with an answering document (the others measure abstention). */
    questions: number;
    chunks: number;
    hybrid: { hit_at_5: number; mrr: number };
    misses: string[];
  };
  rag: {
    /**
     * Answerable questions whose answer contains the question's expected fact (`fact` in
     * retrieval-questions.jsonl, case-insensitive): an answer that misses it does not count.
     */
    answered: number;
    /** Answerable questions answered without their fact (question, fact, what was said). */
    wrong: string[];
    /** Questions the documents do not answer that got "not found". */
    abstained: number;
    unanswerable: number;
  };
}

const labels: SentimentLabel[] = ['positive', 'neutral', 'negative'];

/** VADER's label against the hand-written labels of one evaluation file (`<label>\t<text>` lines). */
export async function evaluateSentiment(fileName = 'sentiment-labelled.tsv'): Promise<SentimentFigures> {
  const file = path.join(mlDataDir(), 'eval', fileName);
  const rows = (await readFile(file, 'utf8'))
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'))
    .map((line, i) => {
      const [label, text] = line.split('\t');
      if (!labels.includes(label as SentimentLabel) || !text)
        throw new Error(`${file}: data line ${i + 1} is not "<label>\\t<text>"`);
      return { label: label as SentimentLabel, text };
    });
  const model = new VaderSentiment();
  const confusion = Object.fromEntries(
    labels.map((l) => [l, Object.fromEntries(labels.map((p) => [p, 0]))]),
  ) as Record<SentimentLabel, Record<SentimentLabel, number>>;
  let agree = 0;
  for (const row of rows) {
    const predicted = model.scoreSync(row.text).label;
    confusion[row.label][predicted]++;
    if (predicted === row.label) agree++;
  }
  const recall = Object.fromEntries(
    labels.map((l) => {
      const total = labels.reduce((sum, p) => sum + confusion[l][p], 0);
      return [l, total === 0 ? 0 : confusion[l][l] / total];
    }),
  ) as Record<SentimentLabel, number>;
  return { texts: rows.length, agreement: agree / rows.length, recall, confusion };
}

/** Extracts, chunks and indexes the sample documents for one company. */
export async function indexSampleDocuments(company = 'northwind'): Promise<HybridIndex> {
  const dir = sampleDocumentsDir();
  const records: IndexRecord[] = [];
  for (const filename of (await readdir(dir)).sort()) {
    const doc = await extractText({
      filename,
      data: await readFile(path.join(dir, filename)),
      documentId: filename,
    });
    for (const chunk of chunkDocument(doc, { maxChars: 500, overlapChars: 80 })) {
      records.push(chunkRecord(chunk, { company_id: company }));
    }
  }
  return HybridIndex.fromRecords(records, {
    embedder: new HashedEmbedder(),
    schema: { tenantField: 'company_id', ...chunkCitations },
  });
}

export async function evaluateRetrieval(): Promise<EvalReport['retrieval']> {
  const file = path.join(mlDataDir(), 'eval', 'retrieval-questions.jsonl');
  const questions = (await readFile(file, 'utf8'))
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { question: string; document: string | null })
    .filter((q): q is { question: string; document: string } => q.document !== null);
  const index = await indexSampleDocuments();
  let hits = 0;
  let reciprocal = 0;
  const misses: string[] = [];
  for (const q of questions) {
    const results = await index.search({ text: q.question, filters: { company_id: 'northwind' }, k: 5 });
    const rank = results.findIndex((r) => r.metadata.filename === q.document);
    if (rank >= 0) {
      hits++;
      reciprocal += 1 / (rank + 1);
    } else {
      misses.push(
        `${q.question} (expected ${q.document}, got ${results[0]?.metadata.filename ?? 'nothing'})`,
      );
    }
  }
  return {
    questions: questions.length,
    chunks: index.count,
    hybrid: { hit_at_5: hits / questions.length, mrr: reciprocal / questions.length },
    misses,
  };
}

/** A RAG eval question: answerable ones name their document and a fact the answer must contain. */
export interface RagQuestion {
  question: string;
  document: string | null;
  fact?: string;
}

export async function readRagQuestions(): Promise<RagQuestion[]> {
  const file = path.join(mlDataDir(), 'eval', 'retrieval-questions.jsonl');
  return (await readFile(file, 'utf8'))
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as RagQuestion);
}

export async function evaluateRag(questions?: RagQuestion[]): Promise<EvalReport['rag']> {
  const asked = questions ?? (await readRagQuestions());
  const index = await indexSampleDocuments();
  let answerable = 0;
  let answered = 0;
  let unanswerable = 0;
  let abstained = 0;
  const wrong: string[] = [];
  for (const q of asked) {
    const result = await ask(index, q.question, { filters: { company_id: 'northwind' } });
    if (q.document === null) {
      unanswerable++;
      if (result.mode === 'none') abstained++;
      continue;
    }
    if (q.fact === undefined)
      throw new Error(`RAG eval question ${JSON.stringify(q.question)} has a document but no fact`);
    answerable++;
    if (result.mode !== 'none' && result.answer.toLowerCase().includes(q.fact.toLowerCase())) answered++;
    else if (result.mode !== 'none')
      wrong.push(`${q.question} (expected "${q.fact}", answered "${result.answer}")`);
  }
  return {
    answered: answerable === 0 ? 0 : answered / answerable,
    wrong,
    abstained: unanswerable === 0 ? 0 : abstained / unanswerable,
    unanswerable,
  };
}

async function main(argv: string[]): Promise<void> {
  const report: EvalReport = {
    sentiment: await evaluateSentiment(),
    sentimentReviews: await evaluateSentiment('reviews-labelled.tsv'),
    retrieval: await evaluateRetrieval(),
    rag: await evaluateRag(),
  };
  if (argv.includes('--json')) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const s = report.sentiment;
  const sr = report.sentimentReviews;
  const r = report.retrieval;
  process.stdout.write(
    [
      `sentiment (VADER) on ${s.texts} hand-labelled review sentences: agreement ${pct(s.agreement)}`,
      `  recall: positive ${pct(s.recall.positive)}, neutral ${pct(s.recall.neutral)}, negative ${pct(s.recall.negative)}`,
      `sentiment (VADER) on ${sr.texts} hand-labelled whole reviews (several sentences each): agreement ${pct(sr.agreement)}`,
      `  recall: positive ${pct(sr.recall.positive)}, neutral ${pct(sr.recall.neutral)}, negative ${pct(sr.recall.negative)}`,
      `retrieval (hybrid: hashed embeddings + BM25, RRF) on ${r.questions} questions over ${r.chunks} chunks of the sample documents:`,
      `  hit@5 ${pct(r.hybrid.hit_at_5)}  MRR ${r.hybrid.mrr.toFixed(3)}`,
      ...r.misses.map((m) => `  miss: ${m}`),
      `RAG (extractive, offline): answered ${pct(report.rag.answered)} of answerable questions with their expected fact, "not found" for ${pct(report.rag.abstained)} of ${report.rag.unanswerable} unanswerable ones`,
      ...report.rag.wrong.map((w) => `  without the fact: ${w}`),
      '',
    ].join('\n'),
  );
}

const isEntryPoint = process.argv[1] !== undefined && /eval\.[jt]s$/.test(process.argv[1]);
if (isEntryPoint) await main(process.argv.slice(2));
