// After a daemon died without stopping its children (SIGKILL, OOM, power of the terminal),
// state.json still lists them, and the run ids whose marks they carry. Before starting anything,
// find those that still run — a recorded leader by the same pid AND the same kernel start time,
// so a reused pid is never touched; a detached process by its BKSUP_UNIT mark of one of those runs
// (src/units/marker.ts) — and end them with their unit's stop settings.
// Never two `server`s or two `nats_listener`s, and no daemonized grandchild of the last run.

import { stopTree } from './units/child.ts';
import { RUN_ID, unitOfMarker } from './units/marker.ts';
import { isAlive, listProcesses, markOf, treeMembers, type ProcStat } from './util/proc.ts';
import type { StateStore } from './state-store.ts';

export interface LeftoverReport {
  unit: string;
  /** The recorded leader, or (found only by its mark) the first process of the unit. */
  pid: number;
  killed: boolean;
}

type StopOf = (unit: string) => { signal: NodeJS.Signals; timeoutMs: number };

export async function stopLeftovers(
  store: StateStore,
  stopOf: StopOf = () => ({ signal: 'SIGTERM', timeoutMs: 5000 }),
): Promise<LeftoverReport[]> {
  const all = listProcesses();
  const runs = store.runs();
  const unitOf = (mark: string): string | undefined => {
    for (const run of runs) {
      const unit = unitOfMarker(mark, run);
      if (unit !== undefined) return unit;
    }
    return undefined;
  };
  const marksOf = (unit: string) => (mark: string) => unitOf(mark) === unit;
  // A leader that died may have left its session behind; members must have started after it,
  // which tells them from processes of a later owner of a reused pid.
  const found = store.children().filter(
    (c) => isAlive(c.pid, c.startTime) || treeMembers(c.pid, all).some((p) => p.pid !== c.pid && p.startTime >= c.startTime),
  );
  const stops = found.map((c) => stopOne(c.unit, c.pid, stopOf, marksOf(c.unit), waitGone(c.pid, c.startTime)));
  // Marked processes of units with no live recorded leader (a task, or a unit whose leader exited
  // and left a daemonized child): stopped by their mark alone.
  const covered = new Set(found.map((c) => c.unit));
  // A mark of those runs is only on processes started after their daemon.
  const since = store.runsSince();
  for (const [unit, pid] of runs.length ? markedUnits(since ? all.filter((p) => p.startTime >= since) : all, unitOf) : []) {
    if (!covered.has(unit)) stops.push(stopOne(unit, undefined, stopOf, marksOf(unit), () => Promise.resolve(), pid));
  }
  const reports = await Promise.all(stops);
  store.beginRun(RUN_ID, all.find((p) => p.pid === process.pid)?.startTime);
  return reports;
}

async function stopOne(
  unit: string,
  leader: number | undefined,
  stopOf: StopOf,
  marked: (mark: string) => boolean,
  // Resolves when the leader itself is no longer alive (it may be gone while its session lives on).
  exited: (maxMs: number) => Promise<void>,
  shownPid = leader,
): Promise<LeftoverReport> {
  const { signal, timeoutMs } = stopOf(unit);
  const res = await stopTree(leader, { signal, timeoutMs, exited: exited(timeoutMs + 2000), marked });
  return { unit, pid: shownPid ?? 0, killed: res.killed };
}

/** Each unit with a process carrying a mark of the recorded runs, and its first such pid. */
function markedUnits(all: ProcStat[], unitOf: (mark: string) => string | undefined): Map<string, number> {
  const units = new Map<string, number>();
  for (const p of all) {
    if (p.pid === process.pid) continue;
    const mark = markOf(p);
    const unit = mark === undefined ? undefined : unitOf(mark);
    if (unit !== undefined && !units.has(unit)) units.set(unit, p.pid);
  }
  return units;
}

function waitGone(pid: number, startTime: number): (maxMs: number) => Promise<void> {
  return async (maxMs) => {
    const deadline = Date.now() + maxMs;
    while (isAlive(pid, startTime) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  };
}
