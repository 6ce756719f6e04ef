// Packing log lines into `/api/logs` frames: lines of published batches referenced as ranges
// (no copy, no object per line until a frame is serialised), and a cache that serialises a
// frame once for every follower that sends the same ranges in the same turn.

import type { LogBatch } from '../events.ts';
import type { LogLine } from '../units/types.ts';
import type { LogsServerFrame, WireLogLine } from './protocol.ts';

/** Rough cost of one line beyond its text (the object and its JSON fields on the wire). */
export const LINE_OVERHEAD_BYTES = 64;

/** Lines start … end-1 of one batch. */
export interface BatchRange {
  batch: LogBatch;
  start: number;
  end: number;
}

export function rangeLines(ranges: readonly BatchRange[]): number {
  let n = 0;
  for (const r of ranges) n += r.end - r.start;
  return n;
}

export function linesOf(ranges: readonly BatchRange[]): WireLogLine[] {
  const out: WireLogLine[] = [];
  for (const { batch, start, end } of ranges) {
    const { unit, stream, ts, firstSeq, lines } = batch;
    for (let i = start; i < end; i++) out.push({ unit, stream, seq: firstSeq + i, ts, line: lines[i] as string });
  }
  return out;
}

/**
 * A text frame. A string, not a Buffer: ws hands strings to the socket as they are, small
 * Buffers would be slices of 8 KiB pool slabs that a stuck client's socket buffer would pin,
 * and Buffers for large frames measured no better on this machine (RSS of a paused follower's
 * daemon 114 vs 93 MiB in one round each; too noisy to decide more).
 */
export type FrameText = string;

/**
 * One `log` frame for a single line, one packed `logs` frame for several. The lines go out as
 * they are: LogLine is the wire shape (no copy per line; the ring and the file reader make
 * nothing else).
 */
export function linesFrame(lines: readonly LogLine[]): FrameText {
  const frame: LogsServerFrame = lines.length === 1 ? { type: 'log', ...(lines[0] as WireLogLine) } : { type: 'logs', lines: lines as WireLogLine[] };
  return JSON.stringify(frame);
}

/**
 * Frames serialised once for every client that sends the same lines (live ranges of this
 * turn's batches, and frames read from the ring at the same seq): followers keeping up
 * take the same ranges of the same batches in the same tick, and each used to JSON-encode its own
 * copy (10 followers of a 500k-line burst: ~3.7 CPU-s of the daemon). Entries live until the
 * next turn of the event loop; a client that takes other ranges simply misses and serialises its
 * own frame.
 */
export class FrameCache {
  readonly #ids = new WeakMap<LogBatch, number>();
  #nextId = 1;
  #frames = new Map<string, FrameText>();
  #ringFrames = new Map<string, { frame: FrameText; next: number }>();
  #bytes = 0;
  #clearScheduled = false;
  static readonly MAX_CHARS = 2 * 1024 * 1024;

  frame(ranges: readonly BatchRange[]): FrameText {
    let key = '';
    for (const r of ranges) {
      let id = this.#ids.get(r.batch);
      if (id === undefined) {
        id = this.#nextId++;
        this.#ids.set(r.batch, id);
      }
      key += `${id}:${r.start}:${r.end};`;
    }
    const hit = this.#frames.get(key);
    if (hit) return hit;
    const lines = linesOf(ranges);
    const frame: LogsServerFrame = rangeLines(ranges) === 1 ? { type: 'log', ...(lines[0] as WireLogLine) } : { type: 'logs', lines };
    const text = JSON.stringify(frame);
    if (this.#bytes + text.length <= FrameCache.MAX_CHARS) {
      this.#frames.set(key, text);
      this.#bytes += text.length;
      this.#scheduleClear();
    }
    return text;
  }

  /** A frame read from the ring by a follower this turn, by `unit:fromSeq:end`, and the seq after it. */
  ringFrame(key: string): { frame: FrameText; next: number } | undefined {
    return this.#ringFrames.get(key);
  }

  setRingFrame(key: string, entry: { frame: FrameText; next: number }): void {
    if (this.#bytes + entry.frame.length > FrameCache.MAX_CHARS) return;
    this.#ringFrames.set(key, entry);
    this.#bytes += entry.frame.length;
    this.#scheduleClear();
  }

  /**
   * Lets the frames of batch ranges go: the hub calls this once every follower had its turn at
   * them (a frame's worth of lines, under a flood). Kept until the turn's end, up to MAX_CHARS,
   * they lived through young-generation GCs and were promoted (60 MiB of old-generation garbage
   * in a 1M-line flood). Frames read from the ring stay until the turn's end: followers that
   * fell behind together take them from send callbacks, at other moments of the turn.
   */
  clearBatchFrames(): void {
    if (this.#frames.size === 0) return;
    for (const text of this.#frames.values()) this.#bytes -= text.length;
    this.#frames = new Map();
  }

  #scheduleClear(): void {
    if (this.#clearScheduled) return;
    this.#clearScheduled = true;
    setImmediate(() => {
      this.#clearScheduled = false;
      this.#frames = new Map();
      this.#ringFrames = new Map();
      this.#bytes = 0;
    });
  }
}
