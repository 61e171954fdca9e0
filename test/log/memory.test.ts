import { logContract } from '../../src/log/contract.case.js';
import { createMemoryLog, type MemoryLog } from '../../src/log/index.js';

logContract('memory', {
  open: () => Promise.resolve(createMemoryLog()),
  enforceRetention: (log) => (log as MemoryLog).enforceRetention(),
});
