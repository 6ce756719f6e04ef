// Finding the running daemon (through `.supervisor/control.json`) and talking HTTP to it.
// A control.json whose pid is gone is what a crashed daemon leaves behind: it counts as none.

import { join } from 'node:path';
import { readControlFile } from '../control/control-file.ts';
import { hostPort } from '../control/auth.ts';
import type { ControlFile, ErrorResponse } from '../control/protocol.ts';
import { isAlive } from '../util/proc.ts';

export const STATE_DIR = '.supervisor';

export interface Daemon {
  info: ControlFile;
  /** `http://host:port` to connect to (an unspecified listen address becomes loopback). */
  baseUrl: string;
  wsUrl: string;
}

export type DaemonLookup = { ok: true; daemon: Daemon } | { ok: false; error: string };

export function noDaemonMessage(dir: string): string {
  return `no supervisor is running in ${dir}: start one with npm run supervise`;
}

function connectHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '::1';
  return host;
}

/** `dir` is the project root (the one holding `.supervisor/`). */
export async function findDaemon(dir: string): Promise<DaemonLookup> {
  const read = await readControlFile(join(dir, STATE_DIR));
  if (!read.ok) {
    if (read.reason === 'missing') return { ok: false, error: noDaemonMessage(dir) };
    return { ok: false, error: `${noDaemonMessage(dir)} (${read.detail})` };
  }
  const info = read.info;
  if (!isAlive(info.pid)) return { ok: false, error: noDaemonMessage(dir) };
  const hp = hostPort(connectHost(info.host), info.port);
  return { ok: true, daemon: { info, baseUrl: `http://${hp}`, wsUrl: `ws://${hp}` } };
}

export type ApiResult = { ok: true; status: number; body: unknown } | { ok: false; status: number | undefined; error: string };

/** One JSON request; every failure comes back as a value with a message fit for the user. */
export async function apiRequest(daemon: Daemon, method: string, path: string, opts: { timeoutMs?: number } = {}): Promise<ApiResult> {
  let res: Response;
  try {
    res = await fetch(`${daemon.baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${daemon.info.token}` },
      signal: AbortSignal.timeout(opts.timeoutMs ?? 15_000),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = (err as Error).name === 'TimeoutError' ? 'timed out' : (cause?.code ?? cause?.message ?? (err as Error).message);
    return { ok: false, status: undefined, error: `the supervisor (pid ${daemon.info.pid}) at ${daemon.baseUrl} did not answer: ${why}` };
  }
  const text = await res.text().catch(() => '');
  let body: unknown = undefined;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = text;
  }
  if (res.ok) return { ok: true, status: res.status, body };
  const message = typeof body === 'object' && body !== null && typeof (body as ErrorResponse).error === 'string' ? (body as ErrorResponse).error : `HTTP ${res.status}`;
  return { ok: false, status: res.status, error: message };
}
