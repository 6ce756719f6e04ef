// One `/api/logs` connection: per selected unit a cursor, the next seq to send. History
// (`tail=`, `since=`) and live lines take the same path; where a line comes from depends only on
// how far behind the cursor is:
//
//   pump() ── while the socket buffers ≤ highWaterBytes ──────────────────────────────────┐
//     │                                                                                  │
//     ├─ a gap queued?                          → send it                                 │
//     ├─ every behind unit's next line among    → frame of batch ranges, serialised once  │
//     │  this turn's published batches?           for all followers at the same place    │
//     ├─ the ring still holds next[u]?          → frame of ring lines (merged by time)    │
//     └─ else: read the log files at next[u]    → async; the pump resumes afterwards ─────┘
//          (rotated files included; lines not found there nor in the ring: flush the
//           writer and read again; still not there = they exist nowhere → one `gap`)
//
//   socket over the high-water mark: stop. The send callback of a frame (its bytes reached the
//   kernel) resumes the pump. Nothing is queued per client: what a slow client has not
//   received is still in the ring or the files, so it costs memory only for the frame in
//   flight and its socket buffer, never lines, and never anyone else's time.

import type { WebSocket } from 'ws';
import type { LogBatch } from '../events.ts';
import type { LogLine } from '../units/types.ts';
import type { FileCursor, LogHistory } from './history.ts';
import { LINE_OVERHEAD_BYTES, linesFrame, type BatchRange, type FrameCache, type FrameText } from './log-frames.ts';
import { CLOSE, PROTOCOL_VERSION, type GapFrame, type HelloFrame, type LogsServerFrame } from './protocol.ts';
import type { ControlLogger } from './server.ts';

export interface LogStreamLimits {
  /** Stop sending to a client while its socket buffers more than this many bytes. */
  highWaterBytes: number;
  /** Packing bounds of one frame (also of one read from the ring or the files). */
  frameLines: number;
  frameBytes: number;
}

/** Frames' worth of lines read from the files at once by a client that is behind the ring. */
const FILE_READ_FRAMES = 8;

export const DEFAULT_LOG_STREAM_LIMITS: LogStreamLimits = {
  highWaterBytes: 256 * 1024,
  frameLines: 1000,
  frameBytes: 64 * 1024,
};

export interface LogsRequest {
  units: string[];
  follow: boolean;
  tail: number | undefined;
  /** One number for every unit, or per unit (`since=a:10,b:7`). */
  since: number | Map<string, number> | undefined;
  /** The daemon instance the `since` seqs belong to; another instance means "from its start". */
  instance: string | undefined;
}

/** Batches published since the hub last pumped the followers (at most a turn, or a frame's worth), shared by all of them. */
export interface RecentBatches {
  batches: LogBatch[];
  /** Per unit, the firstSeq of its first batch in `batches`. */
  first: Map<string, number>;
}

export interface FollowerContext {
  history: LogHistory;
  instance: string;
  startedAt: number;
  /** Per unit, the last seq before this daemon instance started (where "from the start" begins). */
  baseSeq: ReadonlyMap<string, number>;
  limits: LogStreamLimits;
  frames: FrameCache;
  recent: RecentBatches;
  logger?: ControlLogger | undefined;
}

export interface LogClientStats {
  units: string[];
  phase: 'catching-up' | 'live' | 'closed';
  /** Lines published that this client has not been sent yet. */
  behindLines: number;
  bufferedAmount: number;
  /** Lines this client was told (with `gap`) no longer exist. */
  gapLines: number;
}

interface UnitCursor {
  next: number;
  /** Last seq to send: the cut for history only, Infinity when following. */
  end: number;
  /** Lines read ahead (seq next, next + 1, …) that did not fit the frame; window[pos] is next. */
  window: LogLine[];
  pos: number;
  /** The window was read from the files (not the ring). */
  fromFile: boolean;
  /** Where the last file read stopped. */
  file: FileCursor;
  /** The writer was flushed after a file read missed: a second miss means the lines are gone. */
  flushedForMiss: boolean;
}

export class LogFollower {
  readonly #ws: WebSocket;
  readonly #req: LogsRequest;
  readonly #ctx: FollowerContext;
  readonly #units = new Map<string, UnitCursor>();
  readonly #gaps: GapFrame[] = [];
  readonly #onGone: () => void;
  #closed = false;
  /** A file read is in flight; the pump resumes when it settles. */
  #busy = false;
  #waitingForDrain = false;
  #gapLines = 0;
  readonly #onSent = (err?: Error): void => {
    if (err || !this.#waitingForDrain) return;
    this.#waitingForDrain = false;
    this.pump();
  };

  constructor(ws: WebSocket, req: LogsRequest, ctx: FollowerContext, onGone: () => void) {
    this.#ws = ws;
    this.#req = req;
    this.#ctx = ctx;
    this.#onGone = onGone;
    ws.on('close', () => this.#close());
    ws.on('error', () => this.#close());
    ws.on('message', (_data, isBinary) => {
      // This socket is server → client only. Answer (once the socket has room) so a confused
      // client learns why nothing happens; malformed input never reaches anyone else.
      if (this.#closed || ws.bufferedAmount > ctx.limits.highWaterBytes) return;
      const frame: LogsServerFrame = { type: 'error', error: isBinary ? 'binary frames are not accepted here' : 'this socket only sends; messages are ignored' };
      ws.send(JSON.stringify(frame), this.#onSent);
    });
  }

  get gapLines(): number {
    return this.#gapLines;
  }

  wants(unit: string): boolean {
    return !this.#closed && this.#units.has(unit);
  }

  /** Sets the cursors and sends the hello; synchronous, so no batch is published in between. */
  start(): void {
    const { history, baseSeq, instance } = this.#ctx;
    const req = this.#req;
    const lastSeq: Record<string, number> = {};
    const from: Record<string, number> = {};
    for (const unit of req.units) {
      const last = safeLastSeq(history, unit);
      let since = typeof req.since === 'number' ? req.since : req.since?.get(unit);
      // Seqs of another daemon run mean nothing here: such a client resumes from this run's start.
      if (req.instance !== undefined && req.instance !== instance && req.since !== undefined) since = baseSeq.get(unit) ?? 0;
      // A client that claims more than exists gets nothing up to its claim (the protocol's "seq > since").
      let next = last + 1;
      if (since !== undefined) next = since + 1;
      else if (req.tail !== undefined && req.tail > 0) next = Math.max(1, last - req.tail + 1);
      this.#units.set(unit, { next, end: req.follow ? Infinity : last, window: [], pos: 0, fromFile: false, file: undefined, flushedForMiss: false });
      lastSeq[unit] = last;
      from[unit] = since ?? last;
    }
    const hello: HelloFrame = { type: 'hello', protocol: PROTOCOL_VERSION, instance, pid: process.pid, startedAt: this.#ctx.startedAt, units: req.units, lastSeq, from };
    this.#ws.send(JSON.stringify(hello), this.#onSent);
    this.pump();
  }

  /** Sends while the socket has room and this client is behind; called on new lines and on drain. */
  pump(): void {
    if (this.#closed || this.#busy || this.#waitingForDrain) return;
    const ws = this.#ws;
    while (!this.#closed && ws.readyState === ws.OPEN) {
      if (ws.bufferedAmount > this.#ctx.limits.highWaterBytes) {
        // The next send callback (a frame reaching the kernel) resumes the pump. Lines read
        // ahead from the ring are let go meanwhile (read again cheaply; held across turns they
        // would be copied by every young-generation GC until promoted); those read from the
        // files are kept, where the file cursor continues.
        this.#waitingForDrain = true;
        for (const c of this.#units.values()) {
          if (c.fromFile) continue;
          c.window = [];
          c.pos = 0;
        }
        return;
      }
      const gap = this.#gaps.shift();
      if (gap !== undefined) {
        ws.send(JSON.stringify(gap), this.#onSent);
        continue;
      }
      const step = this.#step();
      if (step === undefined) {
        if (!this.#req.follow) this.#finish();
        return;
      }
      if (!(step instanceof Promise)) {
        ws.send(step, this.#onSent);
        continue;
      }
      this.#busy = true;
      step.then(
        () => {
          this.#busy = false;
          this.pump();
        },
        (err: unknown) => {
          this.#ctx.logger?.error({ err: String(err) }, 'control: sending log lines failed');
          ws.close(1011, 'internal error');
          this.#close();
        },
      );
      return;
    }
  }

  /** Safety net (called on every heartbeat): resume a pump whose send callback never came. */
  kick(): void {
    if (this.#waitingForDrain && this.#ws.bufferedAmount <= this.#ctx.limits.highWaterBytes) {
      this.#waitingForDrain = false;
      this.pump();
    }
  }

  stats(): LogClientStats {
    let behind = 0;
    for (const [unit, c] of this.#units) behind += Math.max(0, Math.min(c.end, safeLastSeq(this.#ctx.history, unit)) - c.next + 1);
    return {
      units: [...this.#units.keys()],
      phase: this.#closed ? 'closed' : behind > 0 ? 'catching-up' : 'live',
      behindLines: behind,
      bufferedAmount: this.#ws.bufferedAmount,
      gapLines: this.#gapLines,
    };
  }

  /** The next frame's text, a read to wait for, or undefined when every cursor is at its end. */
  #step(): FrameText | Promise<void> | undefined {
    const pending: [string, UnitCursor][] = [];
    for (const [unit, c] of this.#units) {
      if (c.next <= c.end && (c.pos < c.window.length || c.next <= safeLastSeq(this.#ctx.history, unit))) pending.push([unit, c]);
    }
    if (pending.length === 0) return undefined;
    const recentFirst = this.#ctx.recent.first;
    if (this.#req.follow && pending.every(([unit, c]) => c.pos >= c.window.length && c.next >= (recentFirst.get(unit) ?? Infinity))) {
      const ranges = this.#takeRecent();
      if (ranges.length > 0) return this.#ctx.frames.frame(ranges);
    }
    // One unit, nothing read ahead: a frame from the ring is the same for every follower at
    // this seq in this turn (followers that fell behind together catch up together).
    const only = pending.length === 1 ? pending[0] : undefined;
    if (only !== undefined && only[1].pos >= only[1].window.length) {
      const [unit, c] = only;
      const key = `${unit}:${c.next}:${c.end}`;
      const hit = this.#ctx.frames.ringFrame(key);
      if (hit !== undefined) {
        c.next = hit.next;
        return hit.frame;
      }
      const ring = this.#readRing(unit, c.next, Math.min(this.#ctx.limits.frameLines, c.end - c.next + 1));
      if (ring.complete) {
        this.#fill(c, ring.lines);
        const frame = this.#merge(pending);
        // Shared only when the frame took the whole read (a follower that hits it has nothing read ahead).
        if (frame !== undefined && c.pos >= c.window.length) this.#ctx.frames.setRingFrame(key, { frame, next: c.next });
        return frame;
      }
    }
    const perUnit = Math.max(1, Math.floor(this.#ctx.limits.frameLines / pending.length));
    for (const [unit, c] of pending) {
      if (c.pos < c.window.length) continue;
      const ring = this.#readRing(unit, c.next, Math.min(perUnit, c.end - c.next + 1));
      if (ring.complete) {
        this.#fill(c, ring.lines);
        continue;
      }
      // Far behind: read several frames' worth at a time (one open, search and close of the
      // file per read), still a bounded number of bytes per client.
      return this.#readFiles(unit, c, perUnit * FILE_READ_FRAMES, Math.floor((this.#ctx.limits.frameBytes * FILE_READ_FRAMES) / pending.length));
    }
    return this.#merge(pending);
  }

  /** Ranges of this turn's batches from every cursor on, in publish order, one frame's worth. */
  #takeRecent(): BatchRange[] {
    const { frameLines, frameBytes } = this.#ctx.limits;
    const out: BatchRange[] = [];
    let count = 0;
    let bytes = 0;
    for (const batch of this.#ctx.recent.batches) {
      const c = this.#units.get(batch.unit);
      if (c === undefined) continue;
      const lines = batch.lines;
      if (batch.firstSeq + lines.length <= c.next) continue;
      if (batch.firstSeq > c.next) break; // cannot happen (a unit's seqs are contiguous); the ring path takes over
      const start = c.next - batch.firstSeq;
      let i = start;
      while (i < lines.length && count < frameLines && (count === 0 || bytes < frameBytes)) {
        bytes += (lines[i] as string).length + LINE_OVERHEAD_BYTES;
        i++;
        count++;
      }
      out.push({ batch, start, end: i });
      c.next = batch.firstSeq + i;
      if (count >= frameLines || bytes >= frameBytes) break;
    }
    return out;
  }

  /** One frame from the windows, merged by time; stops when a window runs dry (it is refilled first). */
  #merge(pending: [string, UnitCursor][]): FrameText | undefined {
    const { frameLines, frameBytes } = this.#ctx.limits;
    const out: LogLine[] = [];
    let bytes = 0;
    while (out.length < frameLines && (out.length === 0 || bytes < frameBytes)) {
      let best: UnitCursor | undefined;
      let bestTs = Infinity;
      for (const [, c] of pending) {
        const head = c.window[c.pos];
        if (head !== undefined && (best === undefined || head.ts < bestTs)) {
          best = c;
          bestTs = head.ts;
        }
      }
      if (best === undefined) break;
      const line = best.window[best.pos++] as LogLine;
      out.push(line);
      bytes += line.line.length + LINE_OVERHEAD_BYTES;
      best.next = line.seq + 1;
      if (best.pos >= best.window.length) {
        best.window = [];
        best.pos = 0;
        if (best.next <= best.end) break;
      }
    }
    return out.length > 0 ? linesFrame(out) : undefined;
  }

  #fill(c: UnitCursor, lines: LogLine[], fromFile = false): void {
    c.window = lines.filter((l) => l.seq >= c.next && l.seq <= c.end);
    c.pos = 0;
    c.fromFile = fromFile;
  }

  #readRing(unit: string, next: number, limit: number): { lines: LogLine[]; complete: boolean } {
    try {
      return this.#ctx.history.read(unit, { sinceSeq: next - 1, limit });
    } catch (err) {
      this.#ctx.logger?.warn({ err: String(err), unit }, 'control: reading the log ring failed');
      return { lines: [], complete: false };
    }
  }

  async #readFiles(unit: string, c: UnitCursor, maxLines: number, maxBytes: number): Promise<void> {
    const { history } = this.#ctx;
    let lines: LogLine[] = [];
    try {
      const r = await history.readFile(unit, c.next, { maxLines, maxBytes }, c.file);
      c.file = r.cursor;
      lines = r.lines;
    } catch (err) {
      this.#ctx.logger?.warn({ err: String(err), unit }, 'control: reading the log file failed');
      c.file = undefined;
    }
    if (this.#closed) return;
    const first = lines.find((l) => l.seq >= c.next);
    if (first !== undefined && first.seq <= c.end) {
      if (first.seq > c.next && !c.flushedForMiss) {
        // Lines before `first` seem gone: read once more (a fresh listing) before saying so.
        c.flushedForMiss = true;
        c.file = undefined;
        return;
      }
      // Lines before `first` are neither in the ring (it said so) nor in the files.
      this.#gap(unit, c, first.seq - 1);
      this.#fill(c, contiguous(lines, first.seq), true);
      c.flushedForMiss = false;
      return;
    }
    // The files hold nothing from c.next on: not written yet, or gone.
    if (!c.flushedForMiss) {
      c.flushedForMiss = true;
      await history.flushed(unit).catch(() => undefined);
      return;
    }
    c.flushedForMiss = false;
    const oldest = this.#readRing(unit, c.next, 1).lines[0]?.seq ?? safeLastSeq(history, unit) + 1;
    this.#gap(unit, c, Math.min(oldest - 1, c.end));
  }

  /** Lines c.next … toSeq exist nowhere: tell the client once, exactly, and move on. */
  #gap(unit: string, c: UnitCursor, toSeq: number): void {
    if (toSeq < c.next) return;
    const dropped = toSeq - c.next + 1;
    this.#gaps.push({ type: 'gap', unit, dropped, fromSeq: c.next, toSeq });
    this.#gapLines += dropped;
    c.next = toSeq + 1;
  }

  #finish(): void {
    this.#ws.close(CLOSE.normal, 'end of history');
    this.#close();
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of this.#units.values()) c.window = [];
    this.#onGone();
  }
}

/**
 * The run of lines from seq `from` on without a hole: a hole inside one read is not taken for
 * lost here (the next read, from the hole, decides), so a gap is only ever reported at its start.
 */
function contiguous(lines: LogLine[], from: number): LogLine[] {
  const start = lines.findIndex((l) => l.seq === from);
  if (start < 0) return [];
  let end = start + 1;
  while (end < lines.length && (lines[end] as LogLine).seq === (lines[end - 1] as LogLine).seq + 1) end++;
  return start === 0 && end === lines.length ? lines : lines.slice(start, end);
}

function safeLastSeq(history: LogHistory, unit: string): number {
  try {
    return history.lastSeq(unit);
  } catch {
    return 0;
  }
}
