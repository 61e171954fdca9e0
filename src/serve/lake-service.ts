import { TributaryError } from '../core/index.js';
import { openLakeFromConfig, type Lake } from '../lake/index.js';
import { openSqlEngine, type SqlEngine } from '../sql/index.js';
import { createLakeTableProvider } from './lake-tables.js';
import type { TableProvider } from './types.js';
import type { UpContext, UpService } from './up.js';

/**
 * An `up` service that opens the configured lake and a read-only SQL engine over it, and offers
 * them as the API's TableProvider. Pipelines that write the lake should use `lake()` so their
 * commits reach the API's cache invalidation (commit listeners are per `Lake` object).
 */
export interface LakeService extends UpService {
  lake(): Lake;
  sql(): SqlEngine;
  tables(): TableProvider;
}

export function lakeService(): LakeService {
  let lake: Lake | undefined;
  let sql: SqlEngine | undefined;
  let tables: TableProvider | undefined;
  const need = <T>(value: T | undefined): T => {
    if (value === undefined) throw new TributaryError('INTERNAL', 'the lake service is not started');
    return value;
  };
  return {
    name: 'lake and SQL engine',
    async start(context: UpContext) {
      lake = await openLakeFromConfig(context.config);
      sql = await openSqlEngine(lake);
      tables = createLakeTableProvider({ lake, sql });
      const names = await lake.tableNames();
      context.progress(`${names.length} table(s) committed`);
    },
    async stop() {
      sql?.close();
      await lake?.close();
      sql = undefined;
      lake = undefined;
    },
    lake: () => need(lake),
    sql: () => need(sql),
    tables: () => need(tables),
  };
}
