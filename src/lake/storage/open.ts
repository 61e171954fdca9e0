import { dataDirPaths, TributaryError, type TributaryConfig } from '../../core/index.js';
import type { LakeStorage } from '../types.js';
import { LocalStorage } from './local.js';
import { S3Storage, type S3StorageOptions } from './s3.js';

/** The configuration keys `openStorage` reads (a `TributaryConfig` fits). */
export type StorageConfig = Pick<TributaryConfig, 'storage' | 'dataDir'> &
  Partial<
    Pick<
      TributaryConfig,
      's3Endpoint' | 's3Region' | 's3ForcePathStyle' | 's3AccessKeyId' | 's3SecretAccessKey'
    >
  > & {
    s3ConditionalWrites?: S3StorageOptions['conditionalWrites'];
  };

/**
 * Picks the backend from `config.storage`: `local` → `<dataDir>/lake`, `s3://bucket/prefix` → S3.
 *
 * @example
 * const storage = openStorage({ storage: 's3://lake/prod', dataDir: '.tributary', s3Endpoint: 'http://127.0.0.1:9000', s3ForcePathStyle: true });
 */
export function openStorage(config: StorageConfig): LakeStorage {
  if (config.storage === 'local') return new LocalStorage(dataDirPaths(config.dataDir).lake);
  const match = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(config.storage);
  if (!match)
    throw new TributaryError(
      'CONFIG_INVALID',
      `storage = ${JSON.stringify(config.storage)}: expected local or s3://bucket[/prefix]`,
    );
  return new S3Storage({
    bucket: match[1],
    prefix: match[2] ?? '',
    region: config.s3Region ?? 'us-east-1',
    ...(config.s3Endpoint ? { endpoint: config.s3Endpoint } : {}),
    forcePathStyle: config.s3ForcePathStyle ?? false,
    ...(config.s3AccessKeyId ? { accessKeyId: config.s3AccessKeyId } : {}),
    ...(config.s3SecretAccessKey ? { secretAccessKey: config.s3SecretAccessKey } : {}),
    ...(config.s3ConditionalWrites ? { conditionalWrites: config.s3ConditionalWrites } : {}),
  });
}
