// `bksup restart|stop|start <unit…>` and `bksup down`.

import { join } from 'node:path';
import { readControlFile } from '../control/control-file.ts';
import type { UnitAction } from '../control/protocol.ts';
import { isAlive } from '../util/proc.ts';
import { STATE_DIR, apiRequest, findDaemon, placeOf, type DaemonDir } from './daemon.ts';
import { STYLE, errStream, painter, useColor, type ClientIO } from './format.ts';

/** Asks for the action on each unit in turn. Exit code 1 if any was refused or failed. */
export async function controlCommand(dir: DaemonDir, action: UnitAction, units: readonly string[], io: ClientIO): Promise<number> {
  const err = errStream(io);
  if (units.length === 0) {
    err.write(`${action}: name at least one unit (see bksup status)\n`);
    return 1;
  }
  const found = await findDaemon(dir);
  if (!found.ok) {
    err.write(`${found.error}\n`);
    return 1;
  }
  const paint = painter(useColor(io));
  let code = 0;
  for (const unit of units) {
    const res = await apiRequest(found.daemon, 'POST', `/api/units/${encodeURIComponent(unit)}/${action}`);
    if (res.ok) {
      io.out.write(`${paint(STYLE.green, '✓')} ${action} ${unit}\n`);
    } else {
      err.write(`${paint(STYLE.red, '✗')} ${action} ${unit}: ${res.error}\n`);
      code = 1;
    }
  }
  return code;
}

export interface DownOptions {
  /** How long to wait for the daemon to finish stopping everything (default 120 s). */
  timeoutMs?: number;
  pollMs?: number;
}

/**
 * Asks the daemon to shut down, then waits until it is gone: its control.json removed (or
 * replaced by another daemon's) or its process dead. Exit code 0 once it is, 1 otherwise.
 */
export async function downCommand(dir: DaemonDir, io: ClientIO, opts: DownOptions = {}): Promise<number> {
  const err = errStream(io);
  const found = await findDaemon(dir);
  if (!found.ok) {
    err.write(`${found.error}\n`);
    return 1;
  }
  const { info } = found.daemon;
  const res = await apiRequest(found.daemon, 'POST', '/api/shutdown');
  if (!res.ok) {
    err.write(`down: ${res.error}\n`);
    return 1;
  }
  io.out.write(`stopping the supervisor (pid ${info.pid})…\n`);
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const pollMs = opts.pollMs ?? 100;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const current = await readControlFile(join(placeOf(dir).root, STATE_DIR));
    const fileGone = !current.ok ? current.reason === 'missing' : current.info.token !== info.token;
    if (fileGone || !isAlive(info.pid)) {
      io.out.write('supervisor stopped\n');
      return 0;
    }
    if (Date.now() > deadline) {
      err.write(`down: the supervisor (pid ${info.pid}) is still stopping after ${Math.round(timeoutMs / 1000)} s; see logs/supervisor.log\n`);
      return 1;
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
