/**
 * Entry of a document-extraction worker thread (started by `DocumentExtractor`, isolate.ts): it
 * extracts and chunks one document per message, inside the heap limit the thread was started
 * with, and answers with the chunks or the error. CPU time is watched from the parent thread,
 * which terminates this one past its budget.
 */
import { parentPort } from 'node:worker_threads';
import { isTributaryError } from '../../core/index.js';
import { chunkDocument } from './chunk.js';
import { extractText } from './extract.js';
import type { ExtractionReply, ExtractionRequest } from './isolate.js';

const port = parentPort;
if (port === null) throw new Error('src/ml/text/worker.ts runs only as a worker thread');

function handle(request: ExtractionRequest): Promise<ExtractionReply> {
  return (async (): Promise<ExtractionReply> => {
    try {
      const document = await extractText({
        filename: request.filename,
        data: request.data,
        documentId: request.documentId,
        ...(request.mediaType === undefined ? {} : { mediaType: request.mediaType }),
        limits: request.limits,
      });
      const chunks = chunkDocument(document, request.chunk);
      let outputBytes = 0;
      for (const chunk of chunks) outputBytes += Buffer.byteLength(chunk.text) + chunk.chunkId.length;
      if (outputBytes > request.outputBytesMax) {
        return {
          id: request.id,
          ok: false,
          error: {
            code: 'PAYLOAD_TOO_LARGE',
            message: `${request.filename}: chunks hold ${outputBytes} bytes of text (limit ${request.outputBytesMax}, outputBytesMax)`,
            details: { file: request.filename, limit: 'outputBytesMax', max: request.outputBytesMax },
          },
        };
      }
      return { id: request.id, ok: true, format: document.format, pages: document.pages.length, chunks };
    } catch (error) {
      if (isTributaryError(error)) {
        return {
          id: request.id,
          ok: false,
          // Details cross the thread boundary as JSON (structured clone refuses functions).
          error: {
            code: error.code,
            message: error.message,
            details: JSON.parse(JSON.stringify(error.details)) as Record<string, unknown>,
          },
        };
      }
      return {
        id: request.id,
        ok: false,
        error: {
          code: 'DECODE_FAILED',
          message: `${request.filename}: cannot extract text: ${(error as Error).message}`,
          details: { file: request.filename },
        },
      };
    }
  })();
}

port.on('message', (request: ExtractionRequest) => {
  void handle(request).then((reply) => port.postMessage(reply));
});
port.postMessage({ ready: true });
