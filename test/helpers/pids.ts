// "Is that process still alive?" asked later in a test must not be fooled by its pid being
// reused: pid_max is 32768 on these machines and the suite starts thousands of processes, so a
// pid can belong to someone else a few seconds after its owner died. Record each pid with its
// kernel start time when the test learns it, and ask about that process only.

import { isAlive, readStat } from '../../src/util/proc.ts';

export interface KnownProcess {
  pid: number;
  /** undefined: already gone when it was recorded. */
  startTime: number | undefined;
}

export function identify(pids: Iterable<number>): KnownProcess[] {
  return [...pids].map((pid) => ({ pid, startTime: isAlive(pid) ? readStat(pid)?.startTime : undefined }));
}

/** The recorded processes that still run (same pid and start time, not a zombie). */
export function stillAlive(known: Iterable<KnownProcess>): number[] {
  return [...known].filter((k) => k.startTime !== undefined && isAlive(k.pid, k.startTime)).map((k) => k.pid);
}
