// `bksup reload`: asks the running daemon to load its config again and apply the difference.
// Exit 0 when applied, 2 when the new config is invalid (errors printed as `up` prints them;
// the running stack was not touched), 1 when no daemon answered.

import { findDaemon, type Daemon } from './daemon.ts';
import { errStream, type ClientIO } from './format.ts';

type Answer = { ok: true; summary: string; warnings?: string[] } | { ok: false; errors?: string[]; error?: string };

async function post(daemon: Daemon): Promise<{ status: number; body: Answer } | { error: string }> {
  try {
    // Long: changed units stop first, each within its stop timeout.
    const res = await fetch(`${daemon.baseUrl}/api/reload`, { method: 'POST', headers: { authorization: `Bearer ${daemon.info.token}` }, signal: AbortSignal.timeout(300_000) });
    return { status: res.status, body: (await res.json()) as Answer };
  } catch (err) {
    return { error: `the supervisor (pid ${daemon.info.pid}) at ${daemon.baseUrl} did not answer: ${(err as Error).message}` };
  }
}

export async function reloadCommand(dir: string, io: ClientIO): Promise<number> {
  const err = errStream(io);
  const found = await findDaemon(dir);
  if (!found.ok) {
    err.write(`${found.error}\n`);
    return 1;
  }
  const res = await post(found.daemon);
  if ('error' in res) {
    err.write(`reload: ${res.error}\n`);
    return 1;
  }
  const a = res.body;
  if (a.ok) {
    io.out.write(`config reloaded: ${a.summary}\n`);
    for (const w of a.warnings ?? []) err.write(`bksup: preflight: ${w}\n`);
    return 0;
  }
  if (a.errors) {
    err.write(`bksup: the config is not valid, nothing was changed:\n${a.errors.map((e) => `  ${e}`).join('\n')}\n`);
    return 2;
  }
  err.write(`reload: ${a.error ?? `HTTP ${res.status}`}\n`);
  return 1;
}
