// One daemon per project directory: `.supervisor/daemon.lock` holds the owner's pid and kernel
// start time. A lock whose pid is dead, a zombie, or now belongs to another process (different
// start time) is stale and taken over.
//
// Several starters may race (two terminals after a crash). Two rules keep it to one winner:
// - the lock appears complete or not at all: written to a file of our own, then hard-linked into
//   place (link fails when the name exists, like O_EXCL), so nobody reads it empty and calls it stale;
// - only the holder of `daemon.lock.takeover` removes a stale lock, and only after reading it again
//   and finding the very lock it judged stale. Without that, a starter that judged the old lock
//   stale could remove the lock another starter had just put in its place, and both would run.

import { closeSync, linkSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive, readStat } from './util/proc.ts';

export type LockResult =
  | { ok: true; release: () => void; tookOverFrom?: number }
  | { ok: false; pid: number; reason: string };

/** A takeover lasts microseconds; a takeover file this old was left by a starter that died in it. */
const TAKEOVER_STALE_MS = 5000;
const GIVE_UP_MS = 10_000;

export function acquireDaemonLock(stateDir: string): LockResult {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const path = join(stateDir, 'daemon.lock');
  const me = readStat(process.pid);
  const body = JSON.stringify({ pid: process.pid, startTime: me?.startTime ?? 0, startedAt: Date.now() }) + '\n';
  const mine = `${path}.${process.pid}.tmp`;
  writeFileSync(mine, body, { mode: 0o600 });
  let tookOverFrom: number | undefined;
  const deadline = Date.now() + GIVE_UP_MS;
  try {
    for (;;) {
      try {
        createLock(path, mine, body);
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
      const text = readText(path);
      if (text === undefined) continue; // removed meanwhile: try again
      let holder: { pid?: number; startTime?: number } = {};
      try {
        holder = JSON.parse(text) as typeof holder;
      } catch {
        // unreadable lock: stale (a lock is never seen half written)
      }
      if (typeof holder.pid === 'number' && holder.pid !== process.pid && isAlive(holder.pid, holder.startTime)) {
        return { ok: false, pid: holder.pid, reason: `another supervisor (pid ${holder.pid}) already supervises this directory: use \`bksup status\`, or \`bksup down\` to stop it` };
      }
      if (Date.now() > deadline) return { ok: false, pid: 0, reason: `could not take the lock ${path} (another starter kept ${path}.takeover)` };
      const takeover = `${path}.takeover`;
      if (!tryCreate(takeover)) {
        removeIfOlder(takeover, TAKEOVER_STALE_MS);
        pause(10);
        continue;
      }
      try {
        if (readText(path) === text) {
          rmSync(path, { force: true });
          tookOverFrom = holder.pid;
        }
      } finally {
        rmSync(takeover, { force: true });
      }
    }
  } finally {
    rmSync(mine, { force: true });
  }
}

/** Puts the lock in place if none exists (throws EEXIST otherwise). */
function createLock(path: string, mine: string, body: string): void {
  try {
    linkSync(mine, path);
  } catch (err) {
    // A file system without hard links: O_EXCL, with a short moment where the lock is empty.
    if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
    const fd = openSync(path, 'wx', 0o600);
    writeSync(fd, body);
    closeSync(fd);
  }
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function tryCreate(path: string): boolean {
  try {
    const fd = openSync(path, 'wx', 0o600);
    writeSync(fd, `${process.pid}\n`);
    closeSync(fd);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return false;
  }
}

function removeIfOlder(path: string, ms: number): void {
  try {
    if (Date.now() - statSync(path).mtimeMs > ms) rmSync(path, { force: true });
  } catch {
    // gone meanwhile
  }
}

/** Lock acquisition is synchronous; this wait is for the rare moment another starter is mid-takeover. */
function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
