// Facts about processes read from /proc. Liveness is judged by /proc/PID/stat, never by
// kill(pid, 0): PID 1 here reaps orphaned zombies only every ~2 s, and a zombie still answers
// kill(pid, 0). Start times (in clock ticks since boot) tell a reused PID from the original.

import { readFileSync, readdirSync } from 'node:fs';

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
 * to PID 1 or moved to another process group are still found), plus any descendants by ppid
 * (which catches those that called setsid themselves).
 */
export function treeMembers(leader: number, all: ProcStat[] = listProcesses()): ProcStat[] {
  const members = new Map<number, ProcStat>();
  for (const p of all) if (p.sid === leader || p.pgid === leader || p.pid === leader) members.set(p.pid, p);
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
