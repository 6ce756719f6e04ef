// After a daemon died without stopping its children (SIGKILL, OOM, power of the terminal),
// state.json still lists them. Before starting anything, find those that still run — same pid
// AND same kernel start time, so a reused pid is never touched — and end their whole trees.
// Never two `server`s or two `nats_listener`s.

import { stopTree } from './units/child.ts';
import { isAlive, listProcesses, treeMembers } from './util/proc.ts';
import type { StateStore } from './state-store.ts';

export interface LeftoverReport {
  unit: string;
  pid: number;
  killed: boolean;
}

export async function stopLeftovers(
  store: StateStore,
  stopOf: (unit: string) => { signal: NodeJS.Signals; timeoutMs: number } = () => ({ signal: 'SIGTERM', timeoutMs: 5000 }),
): Promise<LeftoverReport[]> {
  const all = listProcesses();
  // A leader that died may have left its session behind; members must have started after it,
  // which tells them from processes of a later owner of a reused pid.
  const found = store.children().filter(
    (c) => isAlive(c.pid, c.startTime) || treeMembers(c.pid, all).some((p) => p.pid !== c.pid && p.startTime >= c.startTime),
  );
  const reports = await Promise.all(
    found.map(async (c) => {
      // The leader may be gone while its session lives on; stopTree handles both, and `exited`
      // resolves when the leader itself is no longer alive.
      const { signal, timeoutMs } = stopOf(c.unit);
      const exited = waitGone(c.pid, c.startTime, timeoutMs + 2000);
      const res = await stopTree(c.pid, { signal, timeoutMs, exited });
      return { unit: c.unit, pid: c.pid, killed: res.killed };
    }),
  );
  store.clearChildren();
  return reports;
}

async function waitGone(pid: number, startTime: number, maxMs: number): Promise<void> {
  const deadline = Date.now() + maxMs;
  while (isAlive(pid, startTime) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}
