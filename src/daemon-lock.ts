// One daemon per project directory: `.supervisor/daemon.lock` holds the owner's pid and kernel
// start time. A lock whose pid is dead, a zombie, or now belongs to another process (different
// start time) is stale and taken over.

import { mkdirSync, openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive, readStat } from './util/proc.ts';

export type LockResult =
  | { ok: true; release: () => void; tookOverFrom?: number }
  | { ok: false; pid: number; reason: string };

export function acquireDaemonLock(stateDir: string): LockResult {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const path = join(stateDir, 'daemon.lock');
  const me = readStat(process.pid);
  const body = JSON.stringify({ pid: process.pid, startTime: me?.startTime ?? 0, startedAt: Date.now() }) + '\n';
  let tookOverFrom: number | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, body);
      closeSync(fd);
      const release = (): void => {
        try {
          const cur = JSON.parse(readFileSync(path, 'utf8')) as { pid?: number };
          if (cur.pid === process.pid) rmSync(path, { force: true });
        } catch {
          // already gone
        }
      };
      return tookOverFrom === undefined ? { ok: true, release } : { ok: true, release, tookOverFrom };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let holder: { pid?: number; startTime?: number } = {};
    try {
      holder = JSON.parse(readFileSync(path, 'utf8')) as typeof holder;
    } catch {
      // unreadable lock: treat as stale
    }
    if (typeof holder.pid === 'number' && holder.pid !== process.pid && isAlive(holder.pid, holder.startTime)) {
      return { ok: false, pid: holder.pid, reason: `another supervisor (pid ${holder.pid}) already supervises this directory: use \`bksup status\`, or \`bksup down\` to stop it` };
    }
    tookOverFrom = holder.pid;
    rmSync(path, { force: true });
  }
  return { ok: false, pid: 0, reason: `could not take the lock ${path}` };
}
