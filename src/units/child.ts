// Starting one child in its own session/process group and ending its whole tree.
//
// Why a session: `detached: true` makes the child call setsid(), so it leads a new session
// and process group whose ids equal its pid. Grandchildren (`uv run` → python, `pnpm` → node)
// inherit both, so one kill(-pgid) reaches them, and a /proc scan by session id still finds
// those that were re-parented to PID 1 or moved to another process group.
//
// Why a mark: a process that leaves the session (setsid, a daemon's double fork) and whose
// parent exits is re-parented to PID 1 and found by none of those ids. Every child carries
// BKSUP_UNIT=<run>:<unit>:<start> in its environment (src/units/marker.ts), which its
// descendants inherit, so the scans below find them by that too.
//
// Why setpriv: when the supervisor itself is SIGKILLed nothing can run in it, so direct
// children are asked (PR_SET_PDEATHSIG) to receive SIGTERM from the kernel; the next `up`
// finds and stops whatever survived through state.json and the marks of that run (see
// src/state-store.ts, src/leftovers.ts).

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { isAlive, listProcesses, treeMembers, type ProcStat } from '../util/proc.ts';
import { plainArgv } from '../util/shell-words.ts';
import { withMarker } from './marker.ts';

export interface SpawnSpec {
  command: string | readonly string[];
  cwd: string;
  env: Readonly<Record<string, string>>;
  /** BKSUP_UNIT for this child and everything it starts (src/units/marker.ts). */
  marker?: string;
}

/** Which marks belong to the processes being looked for. */
export type MarkMatch = (mark: string) => boolean;

/** Matches exactly one child's mark. */
export function markIs(marker: string | undefined): MarkMatch | undefined {
  return marker === undefined ? undefined : (m) => m === marker;
}

/** The environment a child is spawned with: the spec's, plus its mark. */
export function envFor(spec: Pick<SpawnSpec, 'env' | 'marker'>): Readonly<Record<string, string>> {
  return spec.marker === undefined ? spec.env : withMarker(spec.env, spec.marker);
}

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export type SpawnResult =
  | { ok: true; child: ChildProcess; pid: number }
  | { ok: false; reason: string };

const SETPRIV = '/usr/bin/setpriv';
const hasSetpriv = existsSync(SETPRIV) && process.platform === 'linux';

/**
 * The command as an argv: a string runs through `/bin/sh -c`, unless it is plain words, which
 * are exec'd as they are. Same program, arguments and environment as through the shell, but
 * the unit's pid is the program itself: dash (Debian's /bin/sh) does not exec the last command
 * of `-c`, so it stayed as a parent (one more process per unit, a fork more per start, and a
 * crash by a signal reported as the shell's exit code 128+N).
 */
export function baseArgv(command: string | readonly string[]): string[] {
  if (typeof command !== 'string') return [...command];
  return plainArgv(command) ?? ['/bin/sh', '-c', command];
}

/** What is actually spawned: baseArgv behind setpriv's parent-death signal where it exists. */
export function argvFor(command: string | readonly string[]): string[] {
  const base = baseArgv(command);
  return hasSetpriv ? [SETPRIV, '--pdeathsig', 'SIGTERM', '--', ...base] : base;
}

export function spawnChild(spec: SpawnSpec): SpawnResult {
  if (!existsSync(spec.cwd)) return { ok: false, reason: `working directory ${spec.cwd} does not exist` };
  const [file, ...args] = argvFor(spec.command);
  if (!file) return { ok: false, reason: 'empty command' };
  let child: ChildProcess;
  try {
    child = spawn(file, args, {
      cwd: spec.cwd,
      env: envFor(spec),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    return { ok: false, reason: `could not start: ${(err as Error).message}` };
  }
  if (child.pid === undefined) {
    // spawn failed synchronously-ish (ENOENT, EACCES): the 'error' event carries the cause.
    child.on('error', () => {});
    return { ok: false, reason: `could not start ${file}: not found or not executable` };
  }
  return { ok: true, child, pid: child.pid };
}

/**
 * One /proc scan shared by the callers of the same few milliseconds: a shutdown stops all units
 * at once, and each would otherwise read every /proc/PID/stat before signalling (~3 ms per scan
 * with ~100 processes), delaying the last unit's stop by the sum of them. Liveness is always
 * rechecked per pid (TreeMemory.recheck); only the list of candidates is shared.
 */
const SCAN_REUSE_MS = 5;
let scanCache: ReturnType<typeof listProcesses> | undefined;
let scanAt = 0;
function scanProcesses(): ReturnType<typeof listProcesses> {
  const now = performance.now();
  if (scanCache === undefined || now - scanAt > SCAN_REUSE_MS) {
    scanAt = now;
    scanCache = listProcesses();
  }
  return scanCache;
}

/** Live processes of the tree led by `leader` (the child's pid = its session and group id). */
export function liveTree(leader: number | undefined, marked?: MarkMatch): number[] {
  return treeMembers(leader, scanProcesses(), marked)
    .filter((p) => p.pid !== process.pid)
    .map((p) => p.pid);
}

/**
 * Whether any process is still in the group led by `leader`: one kill(-pgid, 0) instead of a
 * /proc scan. Zombies count as present (the slow path then judges them by /proc).
 */
export function groupAlive(leader: number): boolean {
  try {
    process.kill(-leader, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Members of a finished child's tree that are outside its process group (they changed group
 * within the session, left it and are found through a member's descendants, or carry its mark).
 * The leader was reaped, so a process with its pid is a reuse and is not counted.
 */
export function leftoversOutsideGroup(leader: number, all: ProcStat[] = listProcesses(), marked?: MarkMatch): number[] {
  return treeMembers(leader, all, marked)
    .filter((p) => p.pid !== process.pid && p.pid !== leader)
    .map((p) => p.pid);
}

/**
 * Calls `found(pids)` with the members a finished leader's tree left outside its process group
 * (often none), after a /proc scan made at least `delayMs` later. Leaders queued meanwhile share one scan, and
 * scans are at least SWEEP_EVERY_MS apart: a crash loop restarting 15 times a second costs one
 * scan per second (~3 ms), not one per restart.
 */
export function sweepLeftovers(leader: number, delayMs: number, found: (pids: number[]) => void, marked?: MarkMatch): void {
  sweepQueue.push({ leader, found, marked });
  if (sweepTimer !== undefined) return;
  const wait = Math.max(delayMs, lastSweepAt + SWEEP_EVERY_MS - Date.now());
  sweepTimer = setTimeout(runSweep, wait);
  sweepTimer.unref();
}

const SWEEP_EVERY_MS = 1000;
let sweepQueue: { leader: number; found: (pids: number[]) => void; marked: MarkMatch | undefined }[] = [];
let sweepTimer: NodeJS.Timeout | undefined;
let lastSweepAt = Number.NEGATIVE_INFINITY;

function runSweep(): void {
  sweepTimer = undefined;
  lastSweepAt = Date.now();
  const queue = sweepQueue;
  sweepQueue = [];
  const all = listProcesses();
  for (const { leader, found, marked } of queue) found(leftoversOutsideGroup(leader, all, marked));
}

/**
 * Runs the queued sweeps at once: a stop or a shutdown must not leave what a finished run left
 * behind to a timer that the daemon's exit would cancel.
 */
export function sweepNow(): void {
  if (sweepTimer === undefined) return;
  clearTimeout(sweepTimer);
  runSweep();
}

/**
 * Every process ever seen in a tree during one stop, by pid and start time. A grandchild that
 * left the session (setsid) with a cleared environment is found only through its parent; once
 * the parent dies it is re-parented to PID 1 and no scan finds it again, so it must be
 * remembered from earlier scans.
 */
class TreeMemory {
  readonly #seen = new Map<number, number>();

  constructor(
    readonly leader: number | undefined,
    readonly marked: MarkMatch | undefined,
  ) {}

  /** A full /proc scan: finds new members (forks) too. `fresh`: never the shared recent scan. */
  scan(fresh = false): number[] {
    for (const p of treeMembers(this.leader, fresh ? listProcesses() : scanProcesses(), this.marked)) {
      if (p.pid !== process.pid && !this.#seen.has(p.pid)) this.#seen.set(p.pid, p.startTime);
    }
    return this.recheck();
  }

  /** Only the members already known: one /proc/PID/stat read each. */
  recheck(): number[] {
    const alive: number[] = [];
    for (const [pid, start] of this.#seen) {
      if (isAlive(pid, start)) alive.push(pid);
      else this.#seen.delete(pid);
    }
    return alive;
  }
}

function signalGroup(leader: number | undefined, signal: NodeJS.Signals): void {
  if (leader === undefined) return;
  try {
    process.kill(-leader, signal);
  } catch {
    // ESRCH: the group is already empty.
  }
}

function signalPids(pids: number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // gone meanwhile
    }
  }
}

const FULL_SCAN_MS = 100;

export interface StopTreeOptions {
  signal: NodeJS.Signals;
  timeoutMs: number;
  /** Resolves when the direct child has exited (and been reaped by us). */
  exited: Promise<unknown>;
  /** Processes with a mark this accepts belong to the tree too, wherever they moved. */
  marked?: MarkMatch;
  /** Called every `slowEveryMs` while the tree is still alive, with the pids holding it up. */
  onSlow?: (alive: number[], elapsedMs: number) => void;
  slowEveryMs?: number;
  pollMs?: number;
}

export interface StopTreeResult {
  /** SIGKILL was needed. */
  killed: boolean;
  elapsedMs: number;
}

/**
 * Ends a whole tree: `signal` to the process group and every other member, then SIGKILL to
 * everything still alive after `timeoutMs`. Resolves once the child was reaped and no member
 * of the tree is alive (zombies awaiting PID 1 count as gone). Without a leader (a previous
 * run's processes found only by their mark), the members are those `opts.marked` accepts.
 */
export async function stopTree(leader: number | undefined, opts: StopTreeOptions): Promise<StopTreeResult> {
  const started = Date.now();
  const maxPollMs = opts.pollMs ?? 20;
  const slowEveryMs = opts.slowEveryMs ?? 2000;
  let exited = false;
  const exitedNow = opts.exited.then(() => {
    exited = true;
  });
  const memory = new TreeMemory(leader, opts.marked);
  // Scan before signalling: a parent that dies of the signal takes the way to its
  // setsid grandchildren with it.
  const before = memory.scan();
  signalGroup(leader, opts.signal);
  signalPids(before.filter((p) => p !== leader), opts.signal);
  // Members forked after the first signal get it too, not only the SIGKILL at the deadline.
  const signalled = new Set(before);
  let killed = false;
  const killAt = started + opts.timeoutMs;
  let nextSlow = started + slowEveryMs;
  // Known members are rechecked at every poll (cheap); a full scan, which also finds members
  // forked meanwhile, runs every FULL_SCAN_MS and always before declaring the tree gone.
  let lastFull = Date.now();
  let pollMs = 1;
  for (;;) {
    let now = Date.now();
    let alive = memory.recheck();
    if (alive.length === 0 || now - lastFull >= FULL_SCAN_MS) {
      // Declaring the tree gone takes a scan of this very moment.
      alive = memory.scan(alive.length === 0);
      lastFull = now;
    }
    if (exited && alive.length === 0) break;
    if (!killed) {
      const fresh = alive.filter((p) => !signalled.has(p));
      if (fresh.length) {
        signalPids(fresh, opts.signal);
        for (const p of fresh) signalled.add(p);
      }
    }
    now = Date.now();
    if (!killed && now >= killAt) {
      killed = true;
      signalGroup(leader, 'SIGKILL');
      signalPids(alive, 'SIGKILL');
      pollMs = 1;
    } else if (killed && alive.length > 0) {
      // Members that appeared after the first SIGKILL (a fork racing the kill) get theirs too.
      signalPids(alive, 'SIGKILL');
    }
    if (opts.onSlow && now >= nextSlow && alive.length > 0) {
      opts.onSlow(alive, now - started);
      nextSlow = now + slowEveryMs;
    }
    // Polls start fast (most trees are gone within milliseconds) and slow down to pollMs; the
    // wait never runs past the SIGKILL deadline, and the child's exit ends it early.
    let wait = pollMs;
    if (!killed) wait = Math.max(0, Math.min(wait, killAt - now));
    pollMs = Math.min(maxPollMs, pollMs * 2);
    const timer = new Promise((r) => setTimeout(r, wait));
    await (exited ? timer : Promise.race([timer, exitedNow]));
  }
  return { killed, elapsedMs: Date.now() - started };
}
