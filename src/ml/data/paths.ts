import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Directory of the ML data files (sample documents, evaluation sets). They are committed under
 * `src/ml/data/` and not copied by the TypeScript build, so code running from `dist/src/ml/data/`
 * looks back into the source tree.
 */
export function mlDataDir(): string {
  for (const candidate of ['./', '../../../../src/ml/data/']) {
    const dir = fileURLToPath(new URL(candidate, import.meta.url));
    if (existsSync(`${dir}samples`)) return dir;
  }
  return fileURLToPath(new URL('./', import.meta.url));
}

/** The sample documents shipped for demos and the retrieval evaluation. */
export function sampleDocumentsDir(): string {
  return `${mlDataDir()}samples`;
}
