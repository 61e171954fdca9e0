import type { RegisterCommands } from '../context.js';
import { registerConfigCommands } from './config.js';
import { registerConnectorsCommands } from './connectors.js';
import { registerDocumentsCommands } from './documents.js';
import { registerJobsCommands } from './jobs.js';
import { registerLakeCommands } from './lake.js';
import { registerLogServerCommands } from './log-server.js';
import { registerMlCommands } from './ml.js';
import { registerMoviesCommands } from './movies.js';
import { registerNorthwindCommands } from './northwind.js';
import { registerPipelineCommands } from './pipelines.js';
import { registerSchemasCommands } from './schemas.js';
import { registerServeCommands } from './serve.js';
import { registerTopicsCommands } from './topics.js';
import { registerViewingCommands } from './viewing.js';

/**
 * The one list of CLI command modules. Each layer owns its module; adding a command group is one
 * line here.
 */
export const commandModules: RegisterCommands[] = [
  registerConfigCommands,
  registerConnectorsCommands,
  registerDocumentsCommands,
  registerJobsCommands,
  registerLakeCommands,
  registerLogServerCommands,
  registerMlCommands,
  registerMoviesCommands,
  registerNorthwindCommands,
  registerTopicsCommands,
  registerSchemasCommands,
  registerViewingCommands,
  registerServeCommands,
  registerPipelineCommands,
];
