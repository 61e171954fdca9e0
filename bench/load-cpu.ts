/**
 * Loaded with `--import` into the load generator's process (see httpLoad): at exit it writes the
 * CPU time (user + system, µs, every thread) the process used from its first client socket on to
 * stderr, after `loadCpuMarker`, so a benchmark can show what its client cost on the machine the
 * server shares. Start-up is left out: loading autocannon alone takes about 0.3 s of CPU.
 */

import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { writeSync } from 'node:fs';
import { loadCpuMarker } from './http-load.js';

let atFirstSocket: NodeJS.CpuUsage | undefined;
const onSocket = () => {
  atFirstSocket = process.cpuUsage();
  unsubscribe('net.client.socket', onSocket);
};
subscribe('net.client.socket', onSocket);

process.on('exit', () => {
  const used = process.cpuUsage(atFirstSocket);
  writeSync(2, `\n${loadCpuMarker}${atFirstSocket === undefined ? 0 : used.user + used.system}\n`);
});
