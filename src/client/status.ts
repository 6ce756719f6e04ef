// `bksup status [--json]`: the units of the running daemon as a table, or exactly the JSON of
// `GET /api/units`. PROCS counts every live process of a unit, detached ones included.

import type { UnitSnapshot } from '../units/types.ts';
import { apiRequest, findDaemon, type DaemonDir } from './daemon.ts';
import { errStream, formatDuration, painter, renderTable, stateColor, useColor, STYLE, type Cell, type ClientIO } from './format.ts';

const UP_STATES = new Set(['starting', 'running', 'healthy', 'unhealthy']);
const REASON_STATES = new Set(['failed', 'backoff', 'stopped', 'unhealthy', 'pending', 'skipped', 'completed', 'disabled']);

export function formatStatusTable(units: UnitSnapshot[], opts: { color: boolean; now: number }): string {
  const paint = painter(opts.color);
  const rows: Cell[][] = units.map((u) => {
    const up = UP_STATES.has(u.state) ? formatDuration(opts.now - u.since) : '-';
    let detail = (REASON_STATES.has(u.state) && u.reason) || u.health || u.reason || '';
    if (u.adopted) detail = detail ? `${detail} (adopted)` : 'adopted';
    const healthStyle = u.health?.startsWith('failing') || u.state === 'failed' ? STYLE.red : u.health === 'passing' ? STYLE.green : undefined;
    return [
      { text: u.name, style: STYLE.bold },
      { text: u.kind },
      { text: u.state, style: stateColor(u.state) },
      { text: u.pid === null ? '-' : String(u.pid) },
      { text: u.processes === undefined ? '-' : String(u.processes) },
      { text: up },
      { text: String(u.restarts) },
      healthStyle ? { text: detail, style: healthStyle } : { text: detail },
    ];
  });
  const table = renderTable(['UNIT', 'KIND', 'STATE', 'PID', 'PROCS', 'UPTIME', 'RESTARTS', 'HEALTH / REASON'], rows, paint);
  const tolerated = units.filter((u) => u.optional && u.state === 'failed').map((u) => u.name);
  if (tolerated.length === 0) return table;
  const warning = `warning: optional task${tolerated.length > 1 ? 's' : ''} ${tolerated.join(', ')} failed; nothing waits on ${tolerated.length > 1 ? 'them' : 'it'}, but what ${tolerated.length > 1 ? 'they set' : 'it sets'} up is missing (bksup logs ${tolerated[0]})`;
  return `${table}${paint(STYLE.yellow, warning)}\n`;
}

/** Exit code: 0, or 1 when no daemon runs or it did not answer. */
export async function statusCommand(dir: DaemonDir, opts: { json?: boolean }, io: ClientIO): Promise<number> {
  const found = await findDaemon(dir);
  if (!found.ok) {
    errStream(io).write(`${found.error}\n`);
    return 1;
  }
  const res = await apiRequest(found.daemon, 'GET', '/api/units');
  if (!res.ok) {
    errStream(io).write(`status: ${res.error}\n`);
    return 1;
  }
  if (!Array.isArray(res.body)) {
    errStream(io).write('status: the supervisor answered something that is not a unit list\n');
    return 1;
  }
  const units = res.body as UnitSnapshot[];
  if (opts.json) io.out.write(`${JSON.stringify(units, null, 2)}\n`);
  else io.out.write(formatStatusTable(units, { color: useColor(io), now: (io.now ?? Date.now)() }));
  if (!opts.json) io.out.write(await refusedReload(found.daemon));
  return 0;
}

/** A refused config reload, worded as `up` words a bad config: the stack runs the previous one. */
async function refusedReload(daemon: Parameters<typeof apiRequest>[0]): Promise<string> {
  const res = await apiRequest(daemon, 'GET', '/api/reload');
  const last = res.ok ? (res.body as { ok?: boolean; trigger?: string; errors?: string[] } | undefined) : undefined;
  if (!last || last.ok !== false) return '';
  return `\nreload (${last.trigger ?? '?'}): the config is not valid, nothing was changed (the stack runs the previous config):\n${(last.errors ?? []).map((e) => `  ${e}`).join('\n')}\n`;
}
