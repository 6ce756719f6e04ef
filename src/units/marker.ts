// The mark every process of a unit carries in its environment: BKSUP_UNIT=<run>:<unit>:<start>.
//
// Why: a process that detaches (setsid, a double fork, a new process group) and whose parent
// then exits is re-parented to PID 1 and leaves no trace in the unit's session, group or ppid
// chain. Its environment, inherited through every fork and exec, still names the unit: /proc/PID/environ
// finds it (see src/util/proc.ts markOf). Only a process that exec()s with a cleared or
// rebuilt environment drops the mark.
//
// - <run>: random per daemon process, kept in state.json, so the next `up` after a SIGKILLed
//   daemon finds that run's processes, and never another project's;
// - <start>: a counter per child spawned (or spare prepared), so one run of a unit is told from
//   the next (the restart after a crash starts before the old run's escapees are swept) and from
//   a spare waiting for that next start.

import { randomBytes } from 'node:crypto';
import { MARK_VAR } from '../util/proc.ts';

/** This daemon's run id: hex, so it never contains the ':' that separates the fields. */
export const RUN_ID = randomBytes(6).toString('hex');

let starts = 0;

/** A fresh mark for one child of `unit` in this run. */
export function nextMarker(unit: string): string {
  return `${RUN_ID}:${unit}:${++starts}`;
}


/** The unit a mark of run `run` belongs to (what lies between the run and the last ':'), or undefined. */
export function unitOfMarker(marker: string, run: string): string | undefined {
  if (!marker.startsWith(`${run}:`)) return undefined;
  const end = marker.lastIndexOf(':');
  return end > run.length ? marker.slice(run.length + 1, end) : undefined;
}

/** `env` with the mark added (a copy: the unit's resolved env is frozen and shared). */
export function withMarker(env: Readonly<Record<string, string>>, marker: string): Record<string, string> {
  return { ...env, [MARK_VAR]: marker };
}
