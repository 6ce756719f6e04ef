// `.supervisor/control.json`: written when the control server listens, removed when it closes.
// It holds the token, so it is created 0600 from the start (a temp file opened with that mode,
// then renamed over): there is no moment where it exists with looser permissions or half written.

import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { CONTROL_FILE, asControlFile, type ControlFile } from './protocol.ts';

export function controlFilePath(stateDir: string): string {
  return join(stateDir, CONTROL_FILE);
}

export async function writeControlFile(stateDir: string, info: ControlFile): Promise<string> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const target = controlFilePath(stateDir);
  // Unique among this process's concurrent writes; opened 'wx', so the name need not be secret
  // (and clients, which import this file to read control.json, do not load node:crypto).
  const tmp = `${target}.${process.pid}.${Math.random().toString(16).slice(2, 10)}.tmp`;
  const fh = await open(tmp, 'wx', 0o600);
  try {
    // The umask can only remove bits, but be explicit in case the file system ignores the mode.
    await fh.chmod(0o600);
    await fh.writeFile(`${JSON.stringify(info, null, 2)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, target);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  return target;
}

export type ControlFileRead =
  | { ok: true; info: ControlFile }
  | { ok: false; reason: 'missing' | 'invalid' | 'unreadable'; detail: string };

export async function readControlFile(stateDir: string): Promise<ControlFileRead> {
  const path = controlFilePath(stateDir);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { ok: false, reason: 'missing', detail: `${path} does not exist` };
    return { ok: false, reason: 'unreadable', detail: `cannot read ${path}: ${code ?? String(err)}` };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'invalid', detail: `${path} is not valid JSON` };
  }
  const info = asControlFile(parsed);
  if (!info) return { ok: false, reason: 'invalid', detail: `${path} does not describe a control server` };
  return { ok: true, info };
}

/** Removes control.json only if it is still ours (a newer daemon may have replaced it). */
export async function removeControlFile(stateDir: string, token: string): Promise<void> {
  const current = await readControlFile(stateDir);
  if (current.ok && current.info.token !== token) return;
  if (!current.ok && current.reason === 'missing') return;
  await unlink(controlFilePath(stateDir)).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}
