// `bksup dashboard`: asks the running daemon for a one-time login link to the browser dashboard
// and prints it. The link carries a short-lived single-use token, never the control token: the
// page trades it for a session cookie and removes it from the address bar.

import type { LoginTokenResponse } from '../control/protocol.ts';
import { apiRequest, findDaemon, type DaemonDir } from './daemon.ts';
import { errStream, type ClientIO } from './format.ts';

function isLoginToken(v: unknown): v is LoginTokenResponse {
  if (typeof v !== 'object' || v === null) return false;
  const t = v as Record<string, unknown>;
  return typeof t.token === 'string' && typeof t.path === 'string' && t.path.startsWith('/login?') && typeof t.expiresAt === 'number';
}

/** Exit code 0 with the URL on stdout (alone on its line, for scripts), 1 otherwise. */
export async function dashboardCommand(dir: DaemonDir, io: ClientIO): Promise<number> {
  const err = errStream(io);
  const found = await findDaemon(dir);
  if (!found.ok) {
    err.write(`${found.error}\n`);
    return 1;
  }
  const res = await apiRequest(found.daemon, 'POST', '/api/login-tokens');
  if (!res.ok) {
    err.write(`dashboard: ${res.error}\n`);
    return 1;
  }
  if (!isLoginToken(res.body)) {
    err.write('dashboard: the supervisor answered something that is not a login token (is it an older version?)\n');
    return 1;
  }
  const now = (io.now ?? Date.now)();
  const secs = Math.max(0, Math.round((res.body.expiresAt - now) / 1000));
  io.out.write(`${typeof res.body.url === 'string' && res.body.url.startsWith('http://') ? res.body.url : `${found.daemon.baseUrl}${res.body.path}`}\n`);
  err.write(`open this link in a browser on this machine: it works once, within ${secs} s (run bksup dashboard again for a new one)\n`);
  return 0;
}
