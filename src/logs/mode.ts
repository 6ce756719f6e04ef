// Who may read the logs. Child output holds tokens, DSNs and passwords, so by default only the
// daemon's user can: the directory is created 0700 and every file (live, rotated, supervisor.log)
// is 0600. `logs.fileMode` relaxes it (e.g. 0o640 for a group); the directory then gets the
// matching search bits, so whoever may read a file may also reach it.

import * as fs from 'node:fs';

export const DEFAULT_LOG_FILE_MODE = 0o600;

export interface LogModes {
  file: number;
  dir: number;
}

export function logModes(fileMode: number = DEFAULT_LOG_FILE_MODE): LogModes {
  const file = fileMode & 0o666;
  // x wherever r is: r-- → r-x.
  const dir = file | ((file & 0o444) >> 2) | 0o700;
  return { file, dir };
}

/**
 * Creates the directory with the private mode. A directory that already exists is left alone
 * (it may be shared with other things); the files in it are what gets tightened.
 */
export function ensureLogDir(dir: string, modes: LogModes): void {
  const created = fs.mkdirSync(dir, { recursive: true, mode: modes.dir });
  // mkdir's mode is cut by the umask; set it exactly on what we created.
  if (created !== undefined) fs.chmodSync(dir, modes.dir);
}

/**
 * Opens a log file for appending with exactly `mode` (not cut by the umask, and tightened when
 * an earlier version or run left it readable by others).
 */
export function openLogFile(file: string, modes: LogModes): { fd: number; size: number } {
  const fd = fs.openSync(file, 'a', modes.file);
  try {
    const st = fs.fstatSync(fd);
    if ((st.mode & 0o777) !== modes.file) fs.fchmodSync(fd, modes.file);
    return { fd, size: st.size };
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}
