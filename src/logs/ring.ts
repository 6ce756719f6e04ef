// The last N log lines of every unit, in memory, for `tail=` and `since=` of WebSocket
// clients and `bksup logs`.
//
// Kept as one segment per published batch: its lines UTF-8 encoded and joined by '\n',
// written into the unit's circular byte arena (grown on demand up to maxBytes). So the ring
// holds no object per line, and its content lives outside the JS heap in memory it reuses:
// nothing for every young-generation GC to copy and promote (holding the batches' strings
// cost the hot path more in GC than everything else the ring does), and no allocation per
// batch. Per batch: one copy of the pipe's bytes (a raw batch), else one join and one encode. LogLine objects are only made
// when someone reads.

import { type EventBus, type LogBatch, type LogStream, lineCount } from '../events.ts';
import type { LogLine } from '../units/types.ts';
import { asciiOr } from './encoding.ts';
import type { RawLines } from './line-splitter.ts';

export const DEFAULT_RING_SIZE = 10_000;
export const DEFAULT_RING_MAX_BYTES = 4 * 1024 * 1024;

export interface LogRingOptions {
  /**
   * Bytes held per unit, whatever the line count: a unit printing huge lines must not make
   * the ring hold `capacity` of them. Enforced by whole batches (the newest always stays).
   * Default 4 MiB.
   */
  maxBytes?: number;
}

export interface RingReadOptions {
  /** At most this many lines: the newest ones. */
  tail?: number;
  /** Only lines with seq > sinceSeq. */
  sinceSeq?: number;
  /** At most this many lines: the OLDEST of the selection (a follower's next frame). */
  limit?: number;
}

export interface RingReadResult {
  lines: LogLine[];
  /**
   * False when lines the caller asked for are older than what the ring holds (evicted, or
   * published before the ring was attached); the caller then reads them from the log file.
   */
  complete: boolean;
}

interface Segment {
  firstSeq: number;
  ts: number;
  stream: LogStream;
  count: number;
  /** Where the lines (joined by '\n', UTF-8) are in the arena. */
  start: number;
  length: number;
  /** Times the arena had wrapped around when this was placed (zero-length segments make positions alone ambiguous). */
  lap: number;
  /** Only for a batch larger than the whole arena: its own bytes. */
  own: Buffer | undefined;
  /** Only for lines that contain '\n' themselves (possible on the system stream): as given. */
  lines: string[] | undefined;
}

const EMPTY = Buffer.alloc(0);
const MIN_ARENA = 64 * 1024;

class UnitRing {
  /** segments[head …] are live, oldest first; slots before head are evicted and cleared. */
  segments: (Segment | undefined)[] = [];
  head = 0;
  /** Lines of segments[head] that are already evicted. */
  headSkip = 0;
  /** Lines held. */
  size = 0;
  lastSeq = 0;
  /** Circular store of the segments' bytes (see #place). */
  arena: Buffer = EMPTY;
  lap = 0;
  /** Set by #place: the lap of the position it returned. */
  #placeLap = 0;

  constructor(readonly maxBytes: number) {}

  oldestSeq(): number {
    const s = this.segments[this.head];
    return s === undefined ? this.lastSeq + 1 : s.firstSeq + this.headSkip;
  }

  bytesOf(s: Segment): Buffer {
    return s.own ?? this.arena.subarray(s.start, s.start + s.length);
  }

  /** Evicts the oldest `k` lines, at most those of the oldest segment. */
  dropFromHead(k: number): void {
    const s = this.segments[this.head] as Segment;
    const held = s.count - this.headSkip;
    if (k < held) {
      this.headSkip += k;
      this.size -= k;
      return;
    }
    this.size -= held;
    this.segments[this.head] = undefined; // let it be collected
    this.head++;
    this.headSkip = 0;
  }

  /** Stores `text` encoded; evicts (or grows the arena) to make room. */
  store(seg: Segment, text: string): void {
    const length = Buffer.byteLength(text);
    const at = this.#reserve(seg, length);
    if (at < 0) seg.own = Buffer.from(text);
    else if (length > 0) this.arena.write(text, at, asciiOr(text, length));
  }

  /**
   * Stores a raw batch's bytes as they are (no decoding, one copy). They end with the last
   * line's '\n', unlike a joined text: the empty piece after it is past `count` and never read.
   */
  storeRaw(seg: Segment, raw: RawLines): void {
    const at = this.#reserve(seg, raw.length);
    if (at < 0) seg.own = Buffer.concat([raw.head, raw.body]);
    else raw.copyTo(this.arena, at);
  }

  /**
   * Appends `seg` with room for `length` bytes in the arena, evicting or growing it as needed:
   * returns where to write them, or -1 when the segment is larger than the whole ring and must
   * hold its own bytes (it is then the only one kept).
   */
  #reserve(seg: Segment, length: number): number {
    seg.length = length;
    // A segment with its own bytes is over maxBytes alone: it goes as soon as anything follows.
    while (this.head < this.segments.length && (this.segments[this.head] as Segment).own !== undefined) this.dropFromHead(Infinity);
    if (length > this.maxBytes) {
      while (this.head < this.segments.length) this.dropFromHead(Infinity);
      this.segments.push(seg);
      return -1;
    }
    let at = this.#place(length);
    while (at < 0) {
      if (this.arena.length < this.maxBytes) this.#grow(length);
      else this.dropFromHead(Infinity);
      at = this.#place(length);
    }
    seg.start = at;
    seg.lap = this.#placeLap;
    this.lap = this.#placeLap;
    this.segments.push(seg);
    return at;
  }

  /**
   * Where `length` bytes fit without touching live bytes, or -1. Live bytes run from the
   * oldest arena segment to the end of the newest, wrapping around the end at most once
   * (the two are on different laps then).
   */
  #place(length: number): number {
    const oldest = this.#arenaSegment(1);
    const newest = this.#arenaSegment(-1);
    this.#placeLap = this.lap;
    if (oldest === undefined || newest === undefined) return length <= this.arena.length ? 0 : -1;
    const end = newest.start + newest.length;
    if (oldest.lap === newest.lap) {
      if (this.arena.length - end >= length) return end;
      if (oldest.start < length) return -1;
      this.#placeLap = this.lap + 1; // wrap around
      return 0;
    }
    return oldest.start - end >= length ? end : -1;
  }

  /** The oldest (dir 1) or newest (dir -1) live segment stored in the arena. */
  #arenaSegment(dir: 1 | -1): Segment | undefined {
    const from = dir === 1 ? this.head : this.segments.length - 1;
    for (let i = from; i >= this.head && i < this.segments.length; i += dir) {
      const s = this.segments[i] as Segment;
      if (s.own === undefined) return s;
    }
    return undefined;
  }

  /** A bigger arena with the live segments copied in order to its start. */
  #grow(need: number): void {
    let live = 0;
    for (let i = this.head; i < this.segments.length; i++) {
      const s = this.segments[i] as Segment;
      if (s.own === undefined) live += s.length;
    }
    const size = Math.min(this.maxBytes, Math.max(this.arena.length * 2, MIN_ARENA, live + need));
    const next = Buffer.allocUnsafe(size);
    let pos = 0;
    for (let i = this.head; i < this.segments.length; i++) {
      const s = this.segments[i] as Segment;
      if (s.own !== undefined) continue;
      this.arena.copy(next, pos, s.start, s.start + s.length);
      s.start = pos;
      s.lap = this.lap;
      pos += s.length;
    }
    this.arena = next;
  }
}

export class LogRing {
  readonly #capacity: number;
  readonly #maxBytes: number;
  readonly #units = new Map<string, UnitRing>();

  constructor(capacity: number = DEFAULT_RING_SIZE, opts: LogRingOptions = {}) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`LogRing: capacity must be an integer ≥ 1, got ${capacity}`);
    this.#capacity = capacity;
    this.#maxBytes = opts.maxBytes ?? DEFAULT_RING_MAX_BYTES;
  }

  get capacity(): number {
    return this.#capacity;
  }

  /** Subscribes to the bus's log batches; returns the unsubscribe function. */
  attach(bus: EventBus): () => void {
    return bus.onLogs((batch) => this.push(batch));
  }

  push(batch: LogBatch): void {
    const raw = batch.raw;
    const n = lineCount(batch);
    if (n === 0) return;
    let r = this.#units.get(batch.unit);
    if (r === undefined) {
      r = new UnitRing(this.#maxBytes);
      this.#units.set(batch.unit, r);
    }
    // LineSplitter output never contains '\n'; only supervisor lines might.
    const keepLines = batch.stream === 'system' && batch.lines.some((l) => l.includes('\n'));
    const seg: Segment = {
      firstSeq: batch.firstSeq,
      ts: batch.ts,
      stream: batch.stream,
      count: n,
      start: 0,
      length: 0,
      lap: 0,
      own: undefined,
      lines: keepLines ? batch.lines.slice() : undefined,
    };
    if (raw !== undefined) r.storeRaw(seg, raw);
    else if (n === 1) r.store(seg, batch.lines[0] as string);
    else r.store(seg, batch.lines.join('\n'));
    r.size += n;
    r.lastSeq = batch.firstSeq + n - 1;
    while (r.size > this.#capacity) r.dropFromHead(r.size - this.#capacity);
    // Compact now and then so evicted slots do not accumulate (amortised O(1)).
    if (r.head > 64 && r.head * 2 > r.segments.length) {
      r.segments = r.segments.slice(r.head);
      r.head = 0;
    }
  }

  /** The seq of the unit's newest line, 0 if it has none. */
  lastSeq(unit: string): number {
    return this.#units.get(unit)?.lastSeq ?? 0;
  }

  /** The seq of the unit's oldest line still held (lastSeq + 1 when it holds none). */
  oldestSeq(unit: string): number {
    const r = this.#units.get(unit);
    return r === undefined ? 1 : r.oldestSeq();
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
    const from = Math.max(want, oldest);
    if (opts.limit !== undefined) return { lines: readForward(r, unit, from, Math.max(0, Math.floor(opts.limit))), complete };
    // Newest segment first, so a small tail decodes only the segments it needs.
    const picked: LogLine[][] = [];
    for (let i = r.segments.length - 1; i >= r.head; i--) {
      const s = r.segments[i] as Segment;
      const last = s.firstSeq + s.count - 1;
      if (last < from) break;
      picked.push(segmentLines(r, s, unit, from, s.firstSeq + s.count));
    }
    const lines: LogLine[] = [];
    for (let c = picked.length - 1; c >= 0; c--) for (const l of picked[c] as LogLine[]) lines.push(l);
    return { lines, complete };
  }
}

/** Lines `from` … `end - 1` of one segment (clamped to it). */
function segmentLines(r: UnitRing, s: Segment, unit: string, from: number, end: number): LogLine[] {
  const texts = s.lines ?? r.bytesOf(s).toString('utf8').split('\n');
  const out: LogLine[] = [];
  const stop = Math.min(s.count, end - s.firstSeq);
  for (let j = Math.max(0, from - s.firstSeq); j < stop; j++) {
    out.push({ unit, stream: s.stream, seq: s.firstSeq + j, ts: s.ts, line: texts[j] as string });
  }
  return out;
}

/** Up to `limit` lines from seq `from` on, oldest first: binary search for the segment, then forward. */
function readForward(r: UnitRing, unit: string, from: number, limit: number): LogLine[] {
  let lo = r.head;
  let hi = r.segments.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const s = r.segments[mid] as Segment;
    if (s.firstSeq + s.count - 1 < from) lo = mid + 1;
    else hi = mid;
  }
  const out: LogLine[] = [];
  for (let i = lo; i < r.segments.length && out.length < limit; i++) {
    const s = r.segments[i] as Segment;
    for (const l of segmentLines(r, s, unit, Math.max(from, s.firstSeq), Math.max(from, s.firstSeq) + limit - out.length)) out.push(l);
  }
  return out;
}
