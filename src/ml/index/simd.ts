import { TributaryError } from '../../core/index.js';

/**
 * `dot(aByteOffset, bByteOffset, count) → f32`: inner product of two f32 vectors inside a
 * WebAssembly memory, using 128-bit SIMD (four f32 lanes, four accumulators). Compiled from
 * `dot.wat` next to this file with wabt's `wat2wasm dot.wat` (1.0.32) and embedded as base64 so
 * nothing is loaded from disk or network at run time. About 10× faster than a scalar JS loop on
 * 384-dimension vectors, which is what makes HNSW construction fit its time budget.
 */
const dotWasmBase64 =
  'AGFzbQEAAAABCAFgA39/fwF9Ag8BA2VudgZtZW1vcnkCAAEDAgEABwcBA2RvdAAACvUBAfIBAwR7An8BfSAAIAJBcHFBAnRqIQcCQANAIAAgB08NASADIAD9AAQAIAH9AAQA/eYB/eQBIQMgBCAA/QAEECAB/QAEEP3mAf3kASEEIAUgAP0ABCAgAf0ABCD95gH95AEhBSAGIAD9AAQwIAH9AAQw/eYB/eQBIQYgAEHAAGohACABQcAAaiEBDAALCyACQQ9xIQgCQANAIAhFDQEgCSAAKgIAIAEqAgCUkiEJIABBBGohACABQQRqIQEgCEEBayEIDAALCyADIAT95AEgBSAG/eQB/eQBIQMgCSAD/R8AIAP9HwGSIAP9HwIgA/0fA5KSkgs=';

let compiled: WebAssembly.Module | undefined;

export type DotFunction = (aByteOffset: number, bByteOffset: number, count: number) => number;

/** Instantiates the SIMD kernel over `memory` (one instance per memory). */
export function simdDot(memory: WebAssembly.Memory): DotFunction {
  try {
    compiled ??= new WebAssembly.Module(Buffer.from(dotWasmBase64, 'base64'));
    const instance = new WebAssembly.Instance(compiled, { env: { memory } });
    return instance.exports.dot as DotFunction;
  } catch (error) {
    throw new TributaryError(
      'INTERNAL',
      `this Node.js cannot run the WebAssembly SIMD vector kernel: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
}
