// The CLI client of the control API, one function per command. Each takes the project root
// and its output streams and resolves with the exit code, so src/cli.ts only wires arguments.

export { findDaemon, apiRequest, noDaemonMessage, STATE_DIR, type Daemon, type DaemonDir, type DaemonLookup, type DaemonPlace, type ApiResult } from './daemon.ts';
export { locateDaemon, type LocateOptions } from './locate.ts';
export { statusCommand, formatStatusTable } from './status.ts';
export { logsCommand, DEFAULT_TAIL, type LogsOptions, type LogsIO } from './logs.ts';
export { controlCommand, downCommand, type DownOptions } from './control.ts';
export { dashboardCommand } from './dashboard.ts';
export type { ClientIO } from './format.ts';
