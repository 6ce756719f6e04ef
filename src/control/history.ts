// What the log WebSocket needs to serve history (`tail=`, `since=`): the in-memory ring for
// recent lines and the log files for older ones. Kept as a small interface so the control plane
// does not depend on how src/logs/ stores them.

import type { LogLine } from '../units/types.ts';

/** Both may be given (to readFile): then the last `tail` of the lines after `sinceSeq`. */
export interface HistoryQuery {
  /** The last N lines. */
  tail?: number;
  /** Lines with seq > sinceSeq. */
  sinceSeq?: number;
}

export interface LogHistory {
  /**
   * Lines from memory, synchronously, in seq order. Must reflect every batch published on the
   * bus before the call (the ring subscribes to the bus before any client can connect).
   * `complete` says the answer is whole: for `sinceSeq`, every line after it still exists in
   * memory; for `tail`, memory held `tail` lines or everything since the unit's first line.
   */
  read(unit: string, query: HistoryQuery): { lines: LogLine[]; complete: boolean };
  /**
   * Lines from the unit's log files (older lines that the ring no longer holds). The newest
   * lines may be missing (not flushed yet); the caller fills them from `read`.
   */
  readFile(unit: string, query: HistoryQuery): Promise<LogLine[]>;
  /** seq of the unit's last line (0 when it has none). */
  lastSeq(unit: string): number;
}

/** Joins a ring (`read`, `lastSeq` — src/logs' LogRing has both) with a file reader. */
export function logHistory(ring: Pick<LogHistory, 'read' | 'lastSeq'>, readFile: LogHistory['readFile']): LogHistory {
  return {
    read: (unit, query) => ring.read(unit, query),
    lastSeq: (unit) => ring.lastSeq(unit),
    readFile,
  };
}
