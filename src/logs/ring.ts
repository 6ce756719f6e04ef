// The last N log lines of every unit, in memory, for `tail=` and `since=` of WebSocket
// clients and `bksup logs`. No object per line: the ring stores the published LogBatch
// objects themselves (the bus hands the same immutable batch to every subscriber) and
// counts lines and characters; evicting trims the oldest batch by an offset. Per line it
// only adds up lengths (for the byte bound). LogLine objects are made when someone reads.

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
  /** Characters held of each batch (parallel to `batches`). */
  batchChars: number[] = [];
  head = 0;
  /** Lines of batches[head] that are already evicted. */
  headSkip = 0;
  /** Lines held. */
  size = 0;
  /** Characters held. */
  chars = 0;
  lastSeq = 0;

  oldestSeq(): number {
    const b = this.batches[this.head];
    return b === undefined ? this.lastSeq + 1 : b.firstSeq + this.headSkip;
  }

  /** Evicts the oldest `k` lines, at most those of the oldest batch. */
  dropFromHead(k: number): void {
    const b = this.batches[this.head] as LogBatch;
    const held = b.lines.length - this.headSkip;
    if (k >= held) {
      this.chars -= this.batchChars[this.head] as number;
      this.size -= held;
      this.batches[this.head] = undefined as unknown as LogBatch; // let it be collected
      this.head++;
      this.headSkip = 0;
      return;
    }
    let c = 0;
    for (let i = this.headSkip; i < this.headSkip + k; i++) c += (b.lines[i] as string).length;
    this.headSkip += k;
    this.size -= k;
    this.chars -= c;
    this.batchChars[this.head] = (this.batchChars[this.head] as number) - c;
  }
}

export interface LogRingOptions {
  /**
   * Characters held per unit (≈ bytes), whatever the line count: a unit printing huge lines
   * must not make the ring hold `capacity` of them. Default 4 MiB. The newest line always stays.
   */
  maxBytes?: number;
}

export const DEFAULT_RING_MAX_BYTES = 4 * 1024 * 1024;

export class LogRing {
  readonly #capacity: number;
  readonly #maxChars: number;
  readonly #units = new Map<string, UnitRing>();

  constructor(capacity: number = DEFAULT_RING_SIZE, opts: LogRingOptions = {}) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`LogRing: capacity must be an integer ≥ 1, got ${capacity}`);
    this.#capacity = capacity;
    this.#maxChars = opts.maxBytes ?? DEFAULT_RING_MAX_BYTES;
  }

  get capacity(): number {
    return this.#capacity;
  }

  /** Subscribes to the bus's log batches; returns the unsubscribe function. */
  attach(bus: EventBus): () => void {
    return bus.onLogs((batch) => this.push(batch));
  }

  push(batch: LogBatch): void {
    const lines = batch.lines;
    const n = lines.length;
    if (n === 0) return;
    let r = this.#units.get(batch.unit);
    if (r === undefined) {
      r = new UnitRing();
      this.#units.set(batch.unit, r);
    }
    let chars = 0;
    for (let i = 0; i < n; i++) chars += (lines[i] as string).length;
    r.batches.push(batch);
    r.batchChars.push(chars);
    r.size += n;
    r.chars += chars;
    r.lastSeq = batch.firstSeq + n - 1;
    while (r.size > this.#capacity) r.dropFromHead(r.size - this.#capacity);
    while (r.chars > this.#maxChars && r.size > 1) {
      // Whole batches while that still leaves too much, then line by line.
      const whole = r.head < r.batches.length - 1 && r.chars - (r.batchChars[r.head] as number) > this.#maxChars;
      r.dropFromHead(whole ? Infinity : 1);
    }
    // Compact now and then so evicted slots do not accumulate (amortised O(1)).
    if (r.head > 64 && r.head * 2 > r.batches.length) {
      r.batches = r.batches.slice(r.head);
      r.batchChars = r.batchChars.slice(r.head);
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
