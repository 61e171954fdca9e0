import { chunkDocument, extractText, type ChunkOptions } from '../../ml/index.js';
import type { ExtractAndChunk } from './stages.js';

/**
 * docproc's extraction + chunking through the ML layer: text per page (PDF pages kept), chunks by
 * size with overlap on paragraph/sentence boundaries, stable chunk ids (content hash + document id
 * + position), so a replayed document yields the same chunk ids.
 */
export function mlExtractAndChunk(options: ChunkOptions = {}): ExtractAndChunk {
  return async ({ documentId, filename, bytes }) => {
    const document = await extractText({ filename, data: bytes, documentId });
    return chunkDocument(document, options).map((chunk) => ({
      chunk_id: chunk.chunkId,
      text: chunk.text,
      page: chunk.page,
    }));
  };
}
