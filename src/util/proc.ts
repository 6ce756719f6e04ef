// Facts about processes read from /proc. Liveness is judged by /proc/PID/stat, never by
// kill(pid, 0): PID 1 here reaps orphaned zombies only every ~2 s, and a zombie still answers
// kill(pid, 0). Start times (in clock ticks since boot) tell a reused PID from the original.

import { readFileSync, readdirSync } from 'node:fs';

/** The environment variable that marks a unit's processes (src/units/marker.ts). */
export const MARK_VAR = 'BKSUP_UNIT';

export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  pgid: number;
  sid: number;
  /** Clock ticks after boot; with the pid, identifies one process across PID reuse. */
  startTime: number;
}

/** Parses /proc/PID/stat; undefined when the process does not exist. */
export function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  return parseStat(text);
}

export function parseStat(text: string): ProcStat | undefined {
  // comm is in parentheses and may itself contain spaces and ')': split at the LAST ')'.
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < 0) return undefined;
  const rest = text.slice(close + 2).split(' ');
  const num = (i: number): number => Number(rest[i]);
  return {
    pid: Number(text.slice(0, open).trim()),
    comm: text.slice(open + 1, close),
    state: rest[0] ?? '?',
    ppid: num(1),
    pgid: num(2),
    sid: num(3),
    startTime: num(19),
  };
}

/** Alive = exists and is not a zombie (Z) or dead (X). */
export function isAlive(pid: number, startTime?: number): boolean {
  const st = readStat(pid);
  if (!st || st.state === 'Z' || st.state === 'X') return false;
  return startTime === undefined || st.startTime === startTime;
}

/** Every live (non-zombie) process on the machine. */
export function listProcesses(): ProcStat[] {
  const out: ProcStat[] = [];
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const name of names) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const st = readStat(Number(name));
    if (st && st.state !== 'Z' && st.state !== 'X') out.push(st);
  }
  return out;
}

/**
 * Live processes that belong to a child's tree: same session or process group as `leader`
 * (a detached child is the leader of its own session, so grandchildren that were re-parented
 * to PID 1 or moved to another process group are still found), those whose environment carries
 * a mark that `marked` accepts (found however they detached: see markOf), plus any descendants
 * by ppid (which catches those that called setsid, even with a cleared environment, while
 * their parent lives). Without a leader, only marked processes and their descendants.
 */
export function treeMembers(leader: number | undefined, all: ProcStat[] = listProcesses(), marked?: (mark: string) => boolean): ProcStat[] {
  const members = new Map<number, ProcStat>();
  for (const p of all) {
    if (leader !== undefined && (p.sid === leader || p.pgid === leader || p.pid === leader)) members.set(p.pid, p);
    else if (marked && p.pid !== process.pid) {
      const mark = markOf(p);
      if (mark !== undefined && marked(mark)) members.set(p.pid, p);
    }
  }
  let grew = true;
  while (grew) {
    grew = false;
    for (const p of all) {
      if (!members.has(p.pid) && members.has(p.ppid)) {
        members.set(p.pid, p);
        grew = true;
      }
    }
  }
  return [...members.values()];
}

/**
 * Marks read so far, by pid, with the start time they belong to: the environment of a process
 * is read once in its life (~16 us each; a scan of 100 processes reads only the new ones). A
 * process keeps the mark it was first seen with, so one that later exec()s with a cleared
 * environment is still known. Not cached: the daemon's own children, which between fork and
 * exec still show the daemon's environment.
 */
const marks = new Map<number, { startTime: number; mark: string | undefined }>();
const MARK_BYTES = Buffer.from(`${MARK_VAR}=`);

/** The value of BKSUP_UNIT in the process's environment, or undefined (none, or unreadable). */
export function markOf(p: ProcStat): string | undefined {
  const known = marks.get(p.pid);
  if (known && known.startTime === p.startTime) return known.mark;
  const mark = readMark(p.pid);
  if (mark === UNKNOWN) return undefined;
  if (p.ppid !== process.pid) {
    // A map of the machine's pids is pruned of the dead ones whenever it doubled.
    if (marks.size > pruneAt) {
      pruneMarks();
      pruneAt = Math.max(PRUNE_MIN, marks.size * 2);
    }
    marks.set(p.pid, { startTime: p.startTime, mark });
  }
  return mark;
}

const PRUNE_MIN = 4096;
let pruneAt = PRUNE_MIN;

/**
 * An environment that reads empty: a process inside execve (the kernel has installed the new
 * program's memory but not yet its environment; ~5% of reads of a process that keeps exec'ing,
 * test/proc-marks.test.ts), or a zombie (listProcesses leaves those out). Not remembered: the
 * next scan reads it again. Remembering it hid a unit's detached process for its whole life
 * (its pid and start time do not change across exec).
 */
const UNKNOWN = Symbol('unknown');

function readMark(pid: number): string | undefined | typeof UNKNOWN {
  let env: Buffer;
  try {
    env = readFileSync(`/proc/${pid}/environ`);
  } catch {
    return undefined; // gone, or another user's process
  }
  if (env.length === 0) return UNKNOWN;
  let at = env.indexOf(MARK_BYTES);
  while (at > 0 && env[at - 1] !== 0) at = env.indexOf(MARK_BYTES, at + 1);
  if (at < 0) return undefined;
  const start = at + MARK_BYTES.length;
  const end = env.indexOf(0, start);
  return env.toString('utf8', start, end < 0 ? env.length : end);
}

function pruneMarks(): void {
  for (const [pid, m] of marks) if (!isAlive(pid, m.startTime)) marks.delete(pid);
}
