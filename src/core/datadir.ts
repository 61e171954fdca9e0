import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { TributaryError } from './errors.js';
import { writeFileAtomic } from './fs.js';

/**
 * Version of the on-disk layout under the data dir. Bumped when a format changes incompatibly; a
 * data dir written by a newer version is refused rather than misread.
 */
export const dataDirFormatVersion = 1;

/** Well-known locations under the data dir; every layer asks here instead of joining paths. */
export function dataDirPaths(dataDir: string) {
  return {
    root: dataDir,
    formatFile: path.join(dataDir, 'FORMAT'),
    log: path.join(dataDir, 'log'),
    lake: path.join(dataDir, 'lake'),
    state: path.join(dataDir, 'state'),
    checkpoints: path.join(dataDir, 'checkpoints'),
    index: path.join(dataDir, 'index'),
    uploads: path.join(dataDir, 'uploads'),
    keys: path.join(dataDir, 'keys.json'),
    jobs: path.join(dataDir, 'jobs'),
    pglite: path.join(dataDir, 'pglite'),
    spool: path.join(dataDir, 'spool'),
    schemas: path.join(dataDir, 'schemas'),
  };
}

/** Creates the data dir on first use and checks the format version on every later one. */
export async function openDataDir(dataDir: string): Promise<ReturnType<typeof dataDirPaths>> {
  const paths = dataDirPaths(dataDir);
  if (existsSync(paths.formatFile)) {
    const text = readFileSync(paths.formatFile, 'utf8');
    const match = /^tributary-data-dir (\d+)$/m.exec(text);
    if (!match)
      throw new TributaryError('FORMAT_VERSION', `${paths.formatFile} is not a Tributary format file`);
    const version = Number(match[1]);
    if (version > dataDirFormatVersion) {
      throw new TributaryError(
        'FORMAT_VERSION',
        `data dir ${dataDir} was written by a newer Tributary (format ${version}; this build reads up to ${dataDirFormatVersion}). Upgrade Tributary or use another --data-dir.`,
      );
    }
  } else {
    mkdirSync(dataDir, { recursive: true });
    await writeFileAtomic(paths.formatFile, `tributary-data-dir ${dataDirFormatVersion}\n`);
  }
  return paths;
}
