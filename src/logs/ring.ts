// The last N log lines of every unit, in memory, for `tail=` and `since=` of WebSocket
// clients and `bksup logs`. Hot path cost is O(1) per batch, nothing per line: the ring
// stores the published LogBatch objects themselves (the bus hands the same immutable batch
// to every subscriber) and counts lines; evicting trims the oldest batch by an offset.
// LogLine objects are only made when someone reads.

import type { EventBus, LogBatch } from '../events.ts';
import type { LogLine } from '../units/types.ts';

export const DEFAULT_RING_SIZE = 10_000;

export interface RingReadOptions {
  /** At most this many lines: the newest ones. */
  tail?: number;
  /** Only lines with seq > sinceSeq. */
  sinceSeq?: number;
}

export interface RingReadResult {
  lines: LogLine[];
  /**
   * False when lines the caller asked for are older than what the ring holds (evicted, or
   * published before the ring was attached); the caller then reads them from the log file.
   */
  complete: boolean;
}

class UnitRing {
  /** batches[head …] are live; batches before head are evicted and cleared. */
  batches: LogBatch[] = [];
  head = 0;
  /** Lines of batches[head] that are already evicted. */
  headSkip = 0;
  /** Lines held. */
  size = 0;
  lastSeq = 0;

  oldestSeq(): number {
    const b = this.batches[this.head];
    return b === undefined ? this.lastSeq + 1 : b.firstSeq + this.headSkip;
  }
}

export class LogRing {
  readonly #capacity: number;
  readonly #units = new Map<string, UnitRing>();

  constructor(capacity: number = DEFAULT_RING_SIZE) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`LogRing: capacity must be an integer ≥ 1, got ${capacity}`);
    this.#capacity = capacity;
  }

  get capacity(): number {
    return this.#capacity;
  }

  /** Subscribes to the bus's log batches; returns the unsubscribe function. */
  attach(bus: EventBus): () => void {
    return bus.onLogs((batch) => this.push(batch));
  }

  push(batch: LogBatch): void {
    const n = batch.lines.length;
    if (n === 0) return;
    let r = this.#units.get(batch.unit);
    if (r === undefined) {
      r = new UnitRing();
      this.#units.set(batch.unit, r);
    }
    r.batches.push(batch);
    r.size += n;
    r.lastSeq = batch.firstSeq + n - 1;
    const cap = this.#capacity;
    while (r.size > cap) {
      const oldest = r.batches[r.head] as LogBatch;
      const held = oldest.lines.length - r.headSkip;
      const excess = r.size - cap;
      if (excess >= held) {
        r.batches[r.head] = undefined as unknown as LogBatch; // let it be collected
        r.head++;
        r.headSkip = 0;
        r.size -= held;
      } else {
        r.headSkip += excess;
        r.size -= excess;
      }
    }
    // Compact now and then so evicted slots do not accumulate (amortised O(1)).
    if (r.head > 64 && r.head * 2 > r.batches.length) {
      r.batches = r.batches.slice(r.head);
      r.head = 0;
    }
  }

  /** The seq of the unit's newest line, 0 if it has none. */
  lastSeq(unit: string): number {
    return this.#units.get(unit)?.lastSeq ?? 0;
  }

  /** Units that have published at least one line. */
  units(): string[] {
    return [...this.#units.keys()];
  }

  read(unit: string, opts: RingReadOptions = {}): RingReadResult {
    const r = this.#units.get(unit);
    const since = opts.sinceSeq;
    const tail = opts.tail;
    if (r === undefined || r.size === 0) return { lines: [], complete: true };
    const oldest = r.oldestSeq();
    // Lines the caller wants start at `want`; everything from `oldest` on is here.
    let want = since === undefined ? 1 : Math.max(1, Math.floor(since) + 1);
    if (tail !== undefined) want = Math.max(want, r.lastSeq - Math.max(0, Math.floor(tail)) + 1);
    const complete = want >= oldest;
    // Collect newest-first per batch so a small tail never walks the whole ring.
    const chunks: LogLine[][] = [];
    let count = 0;
    const limit = tail === undefined ? Infinity : Math.max(0, Math.floor(tail));
    for (let i = r.batches.length - 1; i >= r.head && count < limit; i--) {
      const b = r.batches[i] as LogBatch;
      const skip = i === r.head ? r.headSkip : 0;
      const out: LogLine[] = [];
      for (let j = b.lines.length - 1; j >= skip && count < limit; j--) {
        const seq = b.firstSeq + j;
        if (since !== undefined && seq <= since) break;
        out.push({ unit, stream: b.stream, seq, ts: b.ts, line: b.lines[j] as string });
        count++;
      }
      chunks.push(out);
      if (since !== undefined && b.firstSeq + skip <= since) break;
    }
    const lines: LogLine[] = [];
    for (let c = chunks.length - 1; c >= 0; c--) {
      const out = chunks[c] as LogLine[];
      for (let k = out.length - 1; k >= 0; k--) lines.push(out[k] as LogLine);
    }
    return { lines, complete };
  }
}
