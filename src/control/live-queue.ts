// One WebSocket client's queue of live log lines, bounded in lines and bytes. When the client
// falls behind, the OLDEST lines go first (the newest are what a person watching wants) and the
// loss is remembered per unit as one contiguous seq range, reported to the client as a `gap`
// before any later line of that unit.
//
// The queue holds slices of the bus's LogBatch objects, which are shared by every client and
// every other subscriber: queuing costs no copy, and clients stuck at the same point retain the
// same memory once.

import type { LogBatch } from '../events.ts';
import type { GapFrame, WireLogLine } from './protocol.ts';

/** Rough cost of one line beyond its text (the object and its JSON fields on the wire). */
export const LINE_OVERHEAD_BYTES = 64;

export function batchBytes(batch: LogBatch): number {
  let n = batch.lines.length * LINE_OVERHEAD_BYTES;
  for (const line of batch.lines) n += line.length;
  return n;
}

interface Segment {
  batch: LogBatch;
  /** Index of the next line still queued. */
  start: number;
  bytes: number;
}

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

export interface LiveQueueLimits {
  maxLines: number;
  maxBytes: number;
}

export class LiveQueue {
  readonly #limits: LiveQueueLimits;
  #segs: (Segment | undefined)[] = [];
  #head = 0;
  #lines = 0;
  #bytes = 0;
  #droppedTotal = 0;
  readonly #gaps = new Map<string, GapFrame>();

  constructor(limits: LiveQueueLimits) {
    this.#limits = limits;
  }

  get lines(): number {
    return this.#lines;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get droppedTotal(): number {
    return this.#droppedTotal;
  }

  get hasGaps(): boolean {
    return this.#gaps.size > 0;
  }

  /** `bytes` is batchBytes(batch), computed once by the caller for all clients. */
  push(batch: LogBatch, bytes: number): void {
    if (batch.lines.length === 0) return;
    this.#segs.push({ batch, start: 0, bytes });
    this.#lines += batch.lines.length;
    this.#bytes += bytes;
    if (this.#lines > this.#limits.maxLines || this.#bytes > this.#limits.maxBytes) this.#dropOldest();
  }

  /** Pending gap records, oldest loss first per unit; clears them. */
  takeGaps(): GapFrame[] {
    const out = [...this.#gaps.values()];
    this.#gaps.clear();
    return out;
  }

  /**
   * Up to `maxLines` lines / about `maxBytes` (at least one line) for one frame, in queue order.
   * Lines of a unit at or below `after.get(unit)` were already delivered (history) and are skipped.
   */
  take(maxLines: number, maxBytes: number, after: ReadonlyMap<string, number>): WireLogLine[] {
    return linesOf(this.takeRanges(maxLines, maxBytes, after));
  }

  /**
   * The same lines as take(), as ranges of the queued batches: clients at the same place in the
   * same batches get equal ranges, so their frame can be serialised once for all of them
   * (see frameKey), and no line object is made unless a frame is serialised.
   */
  takeRanges(maxLines: number, maxBytes: number, after: ReadonlyMap<string, number>): BatchRange[] {
    const out: BatchRange[] = [];
    let count = 0;
    let bytes = 0;
    while (this.#head < this.#segs.length && count < maxLines && (count === 0 || bytes < maxBytes)) {
      const seg = this.#segs[this.#head] as Segment;
      const { unit, firstSeq, lines } = seg.batch;
      const skipUpTo = after.get(unit) ?? 0;
      let range: BatchRange | undefined;
      while (seg.start < lines.length && count < maxLines && (count === 0 || bytes < maxBytes)) {
        const i = seg.start++;
        const cost = (lines[i] as string).length + LINE_OVERHEAD_BYTES;
        seg.bytes -= cost;
        this.#bytes -= cost;
        this.#lines--;
        if (firstSeq + i <= skipUpTo) continue;
        if (range) range.end = i + 1;
        else out.push((range = { batch: seg.batch, start: i, end: i + 1 }));
        count++;
        bytes += cost;
      }
      if (seg.start >= lines.length) this.#shift();
    }
    return out;
  }

  clear(): void {
    this.#segs = [];
    this.#head = 0;
    this.#lines = 0;
    this.#bytes = 0;
    this.#gaps.clear();
  }

  #dropOldest(): void {
    const { maxLines, maxBytes } = this.#limits;
    while (this.#lines > maxLines || this.#bytes > maxBytes) {
      const seg = this.#segs[this.#head];
      if (!seg) break;
      const { unit, firstSeq, lines } = seg.batch;
      // Whole lines of the head segment go until both bounds hold again.
      let dropped = 0;
      while (seg.start < lines.length && (this.#lines > maxLines || this.#bytes > maxBytes)) {
        const cost = (lines[seg.start] as string).length + LINE_OVERHEAD_BYTES;
        seg.start++;
        seg.bytes -= cost;
        this.#bytes -= cost;
        this.#lines--;
        dropped++;
      }
      if (dropped > 0) {
        const toSeq = firstSeq + seg.start - 1;
        const gap = this.#gaps.get(unit);
        if (gap) {
          gap.dropped += dropped;
          gap.toSeq = toSeq;
        } else {
          this.#gaps.set(unit, { type: 'gap', unit, dropped, fromSeq: toSeq - dropped + 1, toSeq });
        }
        this.#droppedTotal += dropped;
      }
      if (seg.start >= lines.length) this.#shift();
    }
  }

  #shift(): void {
    this.#segs[this.#head] = undefined;
    this.#head++;
    if (this.#head === this.#segs.length) {
      this.#segs = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#segs.length) {
      this.#segs = this.#segs.slice(this.#head);
      this.#head = 0;
    }
  }
}
