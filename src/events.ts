// The one typed event stream of the daemon. Units publish; the terminal printer, the log
// files, the in-memory rings, the supervisor log and the WebSocket server subscribe.
//
// Path of one log line (the hot path; nothing here is per line except string slicing):
//
//   child stdout/stderr pipe
//     │  'data' Buffer chunk (up to 64 KiB)
//     ▼
//   LineSplitter.pushRaw (src/logs/line-splitter.ts)   one splitter per stream; keeps the
//     │  partial tail. The chunk's whole lines as the bytes they came in (RawLines: one native
//     │  search per line, one UTF-8 validation per chunk, no string), or as strings for chunks
//     │  whose lines must be altered (CRLF, over-long lines, invalid UTF-8)
//     ▼
//   Unit.#emitRaw / #emitLines → LogBatch { unit, stream, firstSeq, ts, lines, raw? }   one
//     │                 object per chunk, seq = firstSeq + index; with `raw`, `lines` is
//     │                 decoded only if a subscriber reads it
//     ▼
//   EventBus.publishLogs(batch) ── synchronous fan-out, same batch object to every subscriber:
//     ├─ LogFiles  : formats the batch straight into the unit's pending buffer as bytes (prefix
//     │              and seq digits stored, each line copied (raw) or encoded into place);
//     │              one fs write per unit per flush (setImmediate / 256 KiB), rotation
//     │              between writes
//     ├─ LogRing   : copies the raw bytes (or the joined lines) into the unit's byte arena
//     ├─ Terminal  : `unit | line` with colours, into one buffer (lines copied from the raw
//     │              bytes), one process.stdout.write per batch
//     │              (not attached at all when stdout is /dev/null)
//     ├─ Metrics   : line and byte counters, per batch
//     └─ WebSocket : the hub keeps the batches (references) until a frame's worth is waiting
//                    (then right after this fan-out, in a microtask) or the turn ends, and then
//                    pumps every follower; a follower is a cursor (unit, seq): caught up, it
//                    sends ranges of those batches (a frame JSON-serialised once for every
//                    client at the same place); behind, it reads from the ring, or from the log
//                    files (rotated ones included) once the ring has moved on; a full socket is
//                    not sent more until it drains (nothing queued per client, nothing
//                    dropped); `gap` only for lines gone from the files too
//                    (src/control/log-follower.ts)
//
// Nothing keeps a line past its batch except the ring's bytes, the files, the hub's batch list
// (a frame's worth at most, under a flood) and the unit's last few lines (its newest raw batch,
// one chunk, until they are asked for; then copies: a view would pin the whole 64 KiB chunk).
//
// State changes travel on the same bus as `StateEvent`s.

import type { UnitKind } from './config/types.ts';
import type { RawLines } from './logs/line-splitter.ts';

export type UnitStateName =
  | 'disabled'
  | 'pending'
  | 'starting'
  | 'running'
  | 'healthy'
  | 'unhealthy'
  | 'backoff'
  | 'stopping'
  | 'stopped'
  | 'completed'
  | 'skipped'
  | 'failed';

export type LogStream = 'stdout' | 'stderr' | 'system';

export interface LogBatch {
  unit: string;
  stream: LogStream;
  /** seq of lines[0]; line i has seq firstSeq + i. Per unit, contiguous, starting at 1. */
  firstSeq: number;
  /** ms since epoch, one stamp for the whole chunk (lines of one read arrived together). */
  ts: number;
  /** With `raw`, decoded from it on first access: hot-path subscribers use `raw` instead. */
  readonly lines: string[];
  /**
   * The lines exactly as read from the pipe (UTF-8, each followed by '\n'), when they needed
   * no change (see LineSplitter.pushRaw). Absent for system lines and after secrets were masked.
   */
  readonly raw?: RawLines;
  /** System lines that restate a StateEvent (for the files and log clients); the terminal,
   *  which prints the StateEvent itself, skips them. */
  stateEcho?: true;
}

export interface StateEvent {
  type: 'state';
  unit: string;
  kind: UnitKind;
  state: UnitStateName;
  prev: UnitStateName;
  ts: number;
  pid?: number;
  exitCode?: number | null;
  signal?: string | null;
  reason?: string;
}

/** Results of `verify` smoke checks, also published on the events stream. */
export interface VerifyEvent {
  type: 'verify';
  ts: number;
  ok: boolean;
  results: { name: string; ok: boolean; detail: string }[];
}

/**
 * A config reload (`bksup reload`, or an edit of the config, an import or an env file): what it
 * changed, or why the new config was refused (the errors exactly as `up` prints them; the
 * running stack untouched).
 */
export interface ReloadEvent {
  type: 'reload';
  ts: number;
  ok: boolean;
  /** What asked for it: `bksup reload`, or the file that changed. */
  trigger: string;
  /** ok: one line saying what was started, stopped, restarted, and what cannot apply live. */
  summary?: string;
  errors?: string[];
}

export type SupervisorEvent = StateEvent | VerifyEvent | ReloadEvent;

/**
 * One health-check attempt, for the metrics (src/metrics.ts). Kept off the event stream: it
 * happens every `interval` for every probed unit, and event clients only care about outcomes.
 */
export interface ProbeAttempt {
  unit: string;
  durationMs: number;
  ok: boolean;
}

/** A batch of lines read from a pipe as bytes; `lines` is decoded only if someone reads it. */
export class RawBatch implements LogBatch {
  constructor(
    readonly unit: string,
    readonly stream: LogStream,
    readonly firstSeq: number,
    readonly ts: number,
    readonly raw: RawLines,
  ) {}

  get lines(): string[] {
    return this.raw.lines;
  }
}

/** The number of lines in a batch, without decoding a raw one. */
export function lineCount(batch: LogBatch): number {
  return batch.raw === undefined ? batch.lines.length : batch.raw.count;
}

type Listener<T> = (value: T) => void;

export class EventBus {
  readonly #logListeners = new Set<Listener<LogBatch>>();
  readonly #eventListeners = new Set<Listener<SupervisorEvent>>();
  readonly #probeListeners = new Set<Listener<ProbeAttempt>>();

  /**
   * Set by LogFiles.attach: after publishing a chunk's lines, a pipe reader asks this; a
   * promise means the disk is behind — pause the pipe until it settles (the child waits
   * instead of the daemon growing or dropping lines). undefined = keep reading.
   */
  logBackpressure: ((unit: string) => Promise<void> | undefined) | undefined = undefined;

  onLogs(fn: Listener<LogBatch>): () => void {
    this.#logListeners.add(fn);
    return () => this.#logListeners.delete(fn);
  }

  onEvent(fn: Listener<SupervisorEvent>): () => void {
    this.#eventListeners.add(fn);
    return () => this.#eventListeners.delete(fn);
  }

  onProbe(fn: Listener<ProbeAttempt>): () => void {
    this.#probeListeners.add(fn);
    return () => this.#probeListeners.delete(fn);
  }

  publishLogs(batch: LogBatch): void {
    for (const fn of this.#logListeners) fn(batch);
  }

  publishEvent(event: SupervisorEvent): void {
    for (const fn of this.#eventListeners) fn(event);
  }

  publishProbe(attempt: ProbeAttempt): void {
    for (const fn of this.#probeListeners) fn(attempt);
  }
}
