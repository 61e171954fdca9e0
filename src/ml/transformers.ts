import { TributaryError } from '../core/index.js';

/** The part of `@huggingface/transformers` Tributary uses. */
export interface TransformersModule {
  env: { allowLocalModels: boolean; localModelPath: string; allowRemoteModels?: boolean };
  pipeline(task: string, model: string, options?: Record<string, unknown>): Promise<unknown>;
}

/** Indirection so tests can check the "package missing" path without uninstalling anything. */
let importer: (name: string) => Promise<unknown> = (name) => import(name);

export function setTransformersImporterForTests(fn: ((name: string) => Promise<unknown>) | undefined): void {
  importer = fn ?? ((name) => import(name));
}

/**
 * Imports `@huggingface/transformers` lazily: it is an optional peer that is not installed by
 * default (it pulls in onnxruntime). Missing → MODEL_MISSING naming the model and the fix.
 */
export async function loadTransformers(model: string): Promise<TransformersModule> {
  const name = '@huggingface/transformers';
  try {
    return (await importer(name)) as TransformersModule;
  } catch (error) {
    throw new TributaryError(
      'MODEL_MISSING',
      `model ${model} needs the optional package ${name}, which is not installed; run \`npm i ${name}\` and provide the model files (a local model directory, or the transformers.js cache populated on a machine with network access), or use the offline default`,
      { cause: error, details: { model } },
    );
  }
}
