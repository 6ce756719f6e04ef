// Where the log WebSocket reads a follower's lines from: the in-memory ring for recent lines and
// the log files (rotated ones included) for older ones. Kept as a small interface so the control
// plane does not depend on how src/logs/ stores them.

import type { LogLine } from '../units/types.ts';

export interface RingQuery {
  /** Lines with seq > sinceSeq. */
  sinceSeq: number;
  /** At most this many: the oldest of them. */
  limit: number;
}

/** Where a file read stopped, so the next one need not search again (opaque to the caller). */
export type FileCursor = unknown;

export interface FileReadResult {
  /**
   * This daemon run's lines with seq ≥ the seq asked for, oldest first; the first may be
   * later than asked when older lines no longer exist (rotated away, deleted). Empty when the
   * files hold nothing from there on (not written yet, or gone).
   */
  lines: LogLine[];
  cursor: FileCursor;
}

export interface LogHistory {
  /**
   * Lines from memory, synchronously, in seq order. Must reflect every batch published on the
   * bus before the call (the ring subscribes to the bus before any client can connect).
   * `complete` is false when the ring no longer holds line sinceSeq + 1.
   */
  read(unit: string, query: RingQuery): { lines: LogLine[]; complete: boolean };
  /** seq of the unit's last line (0 when it has none). */
  lastSeq(unit: string): number;
  /**
   * Lines from seq `fromSeq` on from the unit's log files, at most maxLines / about maxBytes.
   * `cursor` is what the previous read of this reader returned (or undefined).
   */
  readFile(unit: string, fromSeq: number, limits: { maxLines: number; maxBytes: number }, cursor: FileCursor): Promise<FileReadResult>;
  /** Resolves once every line published so far has been handed to the files (or writing failed). */
  flushed(unit: string): Promise<void>;
}

export interface RingSource {
  read(unit: string, opts: { sinceSeq?: number; limit?: number }): { lines: LogLine[]; complete: boolean };
  lastSeq(unit: string): number;
}

export interface FileSource {
  readFrom(unit: string, fromSeq: number, limits: { maxLines: number; maxBytes: number }, cursor: FileCursor): Promise<FileReadResult>;
  flush(): Promise<void>;
}

/** Joins a ring (src/logs' LogRing) with the log files' reader and writer. */
export function logHistory(ring: RingSource, files: FileSource): LogHistory {
  return {
    read: (unit, q) => ring.read(unit, { sinceSeq: q.sinceSeq, limit: q.limit }),
    lastSeq: (unit) => ring.lastSeq(unit),
    readFile: (unit, fromSeq, limits, cursor) => files.readFrom(unit, fromSeq, limits, cursor),
    flushed: () => files.flush(),
  };
}
