// SQL: a read-only DuckDB engine over the lake's committed tables. Depends on core and lake.
export {
  SqlEngine,
  openSqlEngine,
  type SqlEngineOptions,
  type QueryResult,
  type QueryParams,
  type QueryOptions,
} from './engine.js';
export { checkReadOnlySql, allowedTableFunctions } from './sandbox.js';
export { toJsonValue, type ResultColumn } from './convert.js';
