// The daemon lock, case by case, in this process: a live holder is refused by pid, every kind of
// stale lock (dead pid, reused pid, garbage, a takeover file left by a starter that died) is taken
// over, and release never removes another daemon's lock. Racing starters need separate processes:
// test/fault-lock-race.test.ts. Holders here are real processes (a `sleep` this test started).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { acquireDaemonLock } from '../src/daemon-lock.ts';
import { isAlive, readStat } from '../src/util/proc.ts';
import { waitFor } from './helpers/wait.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function stateDir(): string {
  const root = mkdtempSync(join(tmpdir(), 'bksup-lock-'));
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  return join(root, '.supervisor');
}

async function liveProcess(): Promise<{ pid: number; startTime: number }> {
  const child: ChildProcess = spawn('sleep', ['60'], { stdio: 'ignore' });
  cleanups.push(() => child.kill('SIGKILL'));
  const pid = child.pid!;
  const stat = await waitFor(() => readStat(pid), { timeout: 10_000, message: 'sleep to start' });
  return { pid, startTime: stat.startTime };
}

function deadPid(): number {
  let pid = 4_000_000;
  while (isAlive(pid)) pid--;
  return pid;
}

const lockOf = (dir: string) => JSON.parse(readFileSync(join(dir, 'daemon.lock'), 'utf8')) as { pid: number; startTime: number };
const writeLock = (dir: string, body: string) => {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'daemon.lock'), body);
};

describe('daemon lock', () => {
  it('takes a free lock: pid and start time inside, private file in a private dir, nothing else left', () => {
    const dir = stateDir();
    const r = acquireDaemonLock(dir);
    expect(r).toMatchObject({ ok: true });
    expect(r.ok && 'tookOverFrom' in r).toBe(false);
    expect(lockOf(dir)).toMatchObject({ pid: process.pid, startTime: readStat(process.pid)!.startTime });
    expect(readFileSync(join(dir, 'daemon.lock'), 'utf8')).toMatch(/^\{.*\}\n$/);
    expect(statSync(join(dir, 'daemon.lock')).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(readdirSync(dir)).toEqual(['daemon.lock']);
    if (r.ok) r.release();
    expect(existsSync(join(dir, 'daemon.lock'))).toBe(false);
  });

  it('refuses while the holder lives, naming its pid and what to do, and leaves its lock alone', async () => {
    const dir = stateDir();
    const holder = await liveProcess();
    const body = JSON.stringify({ ...holder, startedAt: 1 }) + '\n';
    writeLock(dir, body);
    expect(acquireDaemonLock(dir)).toEqual({
      ok: false,
      pid: holder.pid,
      reason: `another supervisor (pid ${holder.pid}) already supervises this directory: use \`bksup status\`, or \`bksup down\` to stop it`,
    });
    expect(readFileSync(join(dir, 'daemon.lock'), 'utf8')).toBe(body);
    expect(readdirSync(dir)).toEqual(['daemon.lock']);
  });

  it('takes over a lock whose pid is dead, and says from whom', () => {
    const dir = stateDir();
    const dead = deadPid();
    writeLock(dir, JSON.stringify({ pid: dead, startTime: 1, startedAt: 1 }) + '\n');
    const r = acquireDaemonLock(dir);
    expect(r).toMatchObject({ ok: true, tookOverFrom: dead });
    expect(lockOf(dir).pid).toBe(process.pid);
    expect(readdirSync(dir)).toEqual(['daemon.lock']);
  });

  it('takes over a lock whose pid now belongs to another process (different start time)', async () => {
    const dir = stateDir();
    const other = await liveProcess();
    writeLock(dir, JSON.stringify({ pid: other.pid, startTime: other.startTime - 1, startedAt: 1 }) + '\n');
    expect(acquireDaemonLock(dir)).toMatchObject({ ok: true, tookOverFrom: other.pid });
    expect(lockOf(dir).pid).toBe(process.pid);
  });

  it('takes over an unreadable lock and one without a numeric pid', () => {
    // process.ppid is alive: a pid written as a string must not pass for a live holder.
    for (const body of ['garbage', '{"startTime":5}\n', '', `{"pid":"${process.ppid}"}\n`]) {
      const dir = stateDir();
      writeLock(dir, body);
      const r = acquireDaemonLock(dir);
      expect(r, body).toMatchObject({ ok: true });
      expect(lockOf(dir).pid).toBe(process.pid);
    }
  });

  it('takes over its own pid in a lock left by an earlier run of this very process id', () => {
    const dir = stateDir();
    writeLock(dir, JSON.stringify({ pid: process.pid, startTime: readStat(process.pid)!.startTime, startedAt: 1 }) + '\n');
    expect(acquireDaemonLock(dir)).toMatchObject({ ok: true, tookOverFrom: process.pid });
  });

  it('removes a takeover file left by a starter that died in it (older than 5 s), then takes the stale lock', () => {
    const dir = stateDir();
    writeLock(dir, JSON.stringify({ pid: deadPid(), startTime: 1, startedAt: 1 }) + '\n');
    const takeover = join(dir, 'daemon.lock.takeover');
    writeFileSync(takeover, '1\n');
    const old = (Date.now() - 6000) / 1000;
    utimesSync(takeover, old, old);
    expect(acquireDaemonLock(dir)).toMatchObject({ ok: true });
    expect(lockOf(dir).pid).toBe(process.pid);
    expect(readdirSync(dir)).toEqual(['daemon.lock']);
  });

  it('leaves a takeover file younger than 5 s to the starter holding it, and takes over once it has aged', () => {
    const dir = stateDir();
    const dead = deadPid();
    writeLock(dir, JSON.stringify({ pid: dead, startTime: 1, startedAt: 1 }) + '\n');
    const takeover = join(dir, 'daemon.lock.takeover');
    writeFileSync(takeover, '1\n');
    const young = (Date.now() - 4000) / 1000;
    utimesSync(takeover, young, young);
    const t0 = Date.now();
    expect(acquireDaemonLock(dir)).toMatchObject({ ok: true, tookOverFrom: dead });
    // Not a speed check: taking over before the file is 5 s old would break another starter's takeover.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(readdirSync(dir)).toEqual(['daemon.lock']);
  });

  it('release removes only its own lock: never one another daemon put in its place', async () => {
    const dir = stateDir();
    const r = acquireDaemonLock(dir);
    if (!r.ok) throw new Error(r.reason);
    const other = await liveProcess();
    const body = JSON.stringify({ ...other, startedAt: 2 }) + '\n';
    writeFileSync(join(dir, 'daemon.lock'), body);
    r.release();
    expect(readFileSync(join(dir, 'daemon.lock'), 'utf8')).toBe(body);
    rmSync(join(dir, 'daemon.lock'));
    expect(() => r.release()).not.toThrow();
  });
});
