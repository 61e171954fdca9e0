// The log server and its client: one process holds the embedded log and serves it over TCP on
// this machine, so CLI commands and worker processes of one consumer group can share a data dir.
export { serveLog, defaultSessionTimeoutMs, type LogServer, type LogServerOptions } from './server.js';
export { connectRemoteLog, type RemoteLog, type RemoteLogOptions } from './client.js';
export { readLogServerInfo, serverInfoFile, type LogServerInfo } from './info.js';
