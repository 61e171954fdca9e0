import type { RegisterCommands } from '../context.js';
import { registerConfigCommands } from './config.js';

/**
 * The one list of CLI command modules. Each layer owns its module; adding a command group is one
 * line here.
 */
export const commandModules: RegisterCommands[] = [
  registerConfigCommands,];
