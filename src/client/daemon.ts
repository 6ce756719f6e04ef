// Finding the running daemon (through `.supervisor/control.json`) and talking HTTP to it.
// A control.json whose pid is gone is what a crashed daemon leaves behind: it counts as none.

import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { readControlFile } from '../control/control-file.ts';
import { hostPort } from '../util/host-port.ts';
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

/** Where a daemon keeps its state (see src/client/locate.ts), and how that was decided. */
export interface DaemonPlace {
  /** The project root: `.supervisor/` is under it. */
  root: string;
  /** Why this root, e.g. `the root of /x/supervisor.config.ts (from --config)`: said when no daemon is there. */
  how?: string;
  /** Said before the command's output: the daemon found is not at the root this evaluation names. */
  notice?: string;
}

/** A project root as such, or a located place. */
export type DaemonDir = string | DaemonPlace;

export function placeOf(dir: DaemonDir): DaemonPlace {
  return typeof dir === 'string' ? { root: dir } : dir;
}

export function noDaemonMessage(dir: DaemonDir): string {
  const { root, how } = placeOf(dir);
  return `no supervisor is running in ${root}${how ? ` (looked for ${STATE_DIR}/control.json there: ${how})` : ''}: start one with bksup up (npm run supervise in the bk-supervisor checkout)`;
}

function connectHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '::1';
  return host;
}

/** `dir` is the project root (the one holding `.supervisor/`), or where locateDaemon found it. */
export async function findDaemon(dir: DaemonDir): Promise<DaemonLookup> {
  const read = await readControlFile(join(placeOf(dir).root, STATE_DIR));
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

type Raw = { ok: true; status: number; text: string } | { ok: false; why: string };

/**
 * node:http rather than fetch: fetch loads undici on first use, ~25 ms of a client command's
 * start-up. The whole exchange (connect to last byte) is bounded by `timeoutMs`.
 */
function request(daemon: Daemon, method: string, path: string, timeoutMs: number): Promise<Raw> {
  return new Promise((resolve) => {
    // agent: false — one connection, closed after the answer: a kept-alive socket would hold a
    // short-lived client process open until the server drops it.
    const req = httpRequest(`${daemon.baseUrl}${path}`, { method, agent: false, headers: { authorization: `Bearer ${daemon.info.token}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ ok: true, status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, why: err.code ?? err.message }));
    });
    const timer = setTimeout(() => {
      resolve({ ok: false, why: 'timed out' });
      req.destroy();
    }, timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, why: err.code ?? err.message }));
    req.on('close', () => clearTimeout(timer));
    req.end();
  });
}

/** One JSON request; every failure comes back as a value with a message fit for the user. */
export async function apiRequest(daemon: Daemon, method: string, path: string, opts: { timeoutMs?: number } = {}): Promise<ApiResult> {
  const res = await request(daemon, method, path, opts.timeoutMs ?? 15_000);
  if (!res.ok) return { ok: false, status: undefined, error: `the supervisor (pid ${daemon.info.pid}) at ${daemon.baseUrl} did not answer: ${res.why}` };
  let body: unknown = undefined;
  try {
    body = res.text === '' ? undefined : JSON.parse(res.text);
  } catch {
    body = res.text;
  }
  if (res.status >= 200 && res.status < 300) return { ok: true, status: res.status, body };
  const message = typeof body === 'object' && body !== null && typeof (body as ErrorResponse).error === 'string' ? (body as ErrorResponse).error : `HTTP ${res.status}`;
  return { ok: false, status: res.status, error: message };
}
