// What the benchmark reads about processes, from /proc, and how it ends them (always by PID).
//
// CPU time is the sum over the process's threads of /proc/PID/task/TID/schedstat (ns on the
// CPU), which is exact, instead of /proc/PID/stat utime+stime, which counts 10 ms ticks: an
// idle daemon's 10 s is well below one tick per second. RSS is VmRSS, the peak is VmHWM.

import { readFileSync, readdirSync } from 'node:fs';
import { isAlive as aliveInProc, listProcesses, type ProcStat } from '../../src/util/proc.ts';

export type Stat = ProcStat;

/** Exists and is not a zombie: PID 1 here reaps orphans only every ~2 s, so kill(pid, 0) lies. */
export function isAlive(pid: number): boolean {
  return aliveInProc(pid);
}

export function allProcesses(): Stat[] {
  return listProcesses();
}

/** Live descendants of `root` (not root itself), by parent links. */
export function descendants(root: number, all: Stat[] = allProcesses()): Stat[] {
  const byParent = new Map<number, Stat[]>();
  for (const p of all) {
    const list = byParent.get(p.ppid) ?? [];
    list.push(p);
    byParent.set(p.ppid, list);
  }
  const out: Stat[] = [];
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop() as number;
    for (const c of byParent.get(pid) ?? []) {
      out.push(c);
      stack.push(c.pid);
    }
  }
  return out;
}

/** Live processes whose environment holds `marker` (e.g. BKBENCH_RUN=abc): every workload child carries one. */
export function markedProcesses(marker: string): number[] {
  const out: number[] = [];
  const needle = Buffer.from(`${marker}\0`);
  for (const p of allProcesses()) {
    if (p.pid === process.pid) continue;
    try {
      const env = readFileSync(`/proc/${p.pid}/environ`);
      if (env.indexOf(needle) !== -1) out.push(p.pid);
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}

function statusField(pid: number, field: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'latin1');
  } catch {
    return undefined;
  }
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return m ? Number(m[1]) * 1024 : undefined;
}

/** Resident set size in bytes (0 when gone). */
export function rssBytes(pid: number): number {
  return statusField(pid, 'VmRSS') ?? 0;
}

/** Peak resident set size in bytes over the process's life (0 when gone). */
export function peakRssBytes(pid: number): number {
  return statusField(pid, 'VmHWM') ?? 0;
}

const TICK_NS = 1e9 / 100; // USER_HZ is 100 on Linux

/** CPU time in ns, all threads (schedstat), falling back to utime+stime ticks. */
export function cpuNs(pid: number): number {
  let total = 0;
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return 0;
  }
  let ok = true;
  for (const tid of tasks) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'latin1').split(' ')[0]);
    } catch {
      ok = false;
    }
  }
  if (ok && total > 0) return total;
  try {
    const rest = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = rest.slice(rest.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_NS;
  } catch {
    return 0;
  }
}

/** Sends `signal` to each pid; already-gone ones are fine. */
export function signalPids(pids: readonly number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // gone
    }
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every `everyMs` until it returns a value other than undefined/false, or throws at the deadline. */
export async function waitFor<T>(cond: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs: number, everyMs = 5): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Wall clock with sub-millisecond resolution, in ms since the epoch (comparable with `date +%s%N`). */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}
