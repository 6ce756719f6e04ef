// The control plane of the daemon: HTTP API + WebSockets (see server.ts for the request path).

export { startControlServer, type ControlServer, type ControlServerOptions, type ControlServerStats, type ControlLogger } from './server.ts';
export { logHistory, type LogHistory, type RingQuery, type FileReadResult } from './history.ts';
export { DEFAULT_LOG_STREAM_LIMITS, type LogStreamLimits, type LogClientStats } from './ws-logs.ts';
export * from './protocol.ts';
