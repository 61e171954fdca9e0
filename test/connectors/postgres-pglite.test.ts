import { openPglite } from '../../src/connectors/index.js';
import { postgresConnectorCases } from './postgres.case.js';

postgresConnectorCases('PGlite (embedded)', () => openPglite());
