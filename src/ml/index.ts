// ML layer: sentiment (VADER, optional Hugging Face), text extraction and chunking, embeddings,
// hybrid vector + BM25 retrieval index, RAG answers, and retrieval for any pipeline (a persisted
// index with metadata filters, and the stream sink that feeds it). Depends on core (and on the
// stream layer's `Sink` type for the index sink).

// Sentiment
export * from './sentiment/vader.js';
export * from './sentiment/sentiment.js';

// Text extraction and chunking
export * from './text/filetype.js';
export * from './text/extract.js';
export * from './text/chunk.js';
export * from './text/isolate.js';

// Embeddings
export * from './embed/embedder.js';

// Vector, lexical and hybrid indexes
export {
  Hnsw,
  VectorStore,
  dotAt,
  exactSearch,
  exactSearchIds,
  type HnswOptions,
  type ScoredId,
} from './index/hnsw.js';
export { Bm25Index, bm25Terms, reciprocalRankFusion, type Bm25Options } from './index/bm25.js';
export * from './index/hybrid.js';
export * from './index/filter.js';

// Retrieval-augmented answers
export * from './rag/ask.js';

// Retrieval for any pipeline: a persisted index under index/<pipeline>/ and its stream sink
export * from './retrieval/store.js';
export { indexSink } from './retrieval/sink.js';

// Optional Hugging Face runtime
export { loadTransformers, type TransformersModule } from './transformers.js';
export { mlDataDir, sampleDocumentsDir } from './data/paths.js';
