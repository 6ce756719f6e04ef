// Appends every unit's log lines to `<dir>/<unit>.log`, with size rotation.
//
// Per batch (hot path): format the batch straight into the unit's pending buffer, copying
// the lines from the pipe's bytes when the batch has them, else encoding each line into place
// (bytes outside the JS heap: nothing for the GC to copy while it waits). Per flush (once per event-loop turn via setImmediate, or at once when 256 KiB
// are pending): ONE write of everything pending, through an fd opened once per file; the
// unit's two buffers swap, so new batches fill one while the other is being written.
// Only one write per fd is ever in flight, so lines stay in order.
//
// Rotation (`keep` = number of rotated files kept BESIDES the live one, as in logrotate):
//
//   unit.log ──► unit.log.1 ──► unit.log.2 ──► … ──► unit.log.<keep> ──► deleted
//
// It happens between writes, before the write that would take unit.log past maxSizeBytes;
// a write is cut at a line boundary so that no line is ever split across two files. A file
// only exceeds maxSizeBytes when one single line is longer than that (it then sits alone).
//
// Failures (ENOSPC, EACCES, the directory missing or replaced by a file) never reach the
// bus. They are reported through `onError` once per unit and error code until a write
// succeeds again; the unwritten lines stay in a backlog bounded by `maxBacklogBytes`
// (oldest lines dropped first, counted); a timer retries every `retryMs` while — and only
// while — something is waiting to be written. An idle LogFiles has no timers. A failed
// rotation is reported once until a rotation succeeds; meanwhile unit.log keeps growing
// (no line is lost) and rotation is retried after every further maxSizeBytes.

import * as fs from 'node:fs';
import * as path from 'node:path';

import { type EventBus, type LogBatch, lineCount } from '../events.ts';
import { type FormatCursor, formatBatchInto, formatRawInto, RAW_SCRATCH, RECORD_OVERHEAD } from './format.ts';
import { ensureLogDir, logModes, openLogFile, type LogModes } from './mode.ts';

export interface LogFilesOptions {
  dir: string;
  /** Rotate before unit.log would grow past this; 0 or Infinity turns rotation off. */
  maxSizeBytes: number;
  /** Rotated files kept besides the live one (unit.log.1 … unit.log.<keep>); 0 = none. */
  keep: number;
  /** Called once per unit and error code (not per line) until writing succeeds again. */
  onError: (unit: string, err: LogWriteError) => void;
  /**
   * A write succeeded after failures: the outage is over. `lost` counts the lines dropped
   * meanwhile (the backlog is bounded), `code` is the error the outage began with.
   */
  onRecover?: (unit: string, outage: { lost: number; code: string; sinceMs: number }) => void;
  /** Start a write at once (not at the next event-loop turn) when this much text is pending. Default 256 KiB. */
  flushThresholdBytes?: number;
  /** Unwritten text kept per unit while writes fail or lag; oldest lines are dropped beyond. Default 8 MiB. */
  maxBacklogBytes?: number;
  /** Delay between attempts after a failed write. Default 1000 ms. */
  retryMs?: number;
  /** Pending bytes (with a write in flight) from which `congested(unit)` is true. Default 1 MiB. */
  highWaterBytes?: number;
  /** Mode of every log file, live and rotated (default 0o600; the directory follows, see mode.ts). */
  fileMode?: number;
}

/** What `onError` receives: the failing file and the system error code (`EDROPPED` for lost lines). */
export class LogWriteError extends Error {
  readonly code: string;
  readonly file: string;
  constructor(message: string, code: string, file: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'LogWriteError';
    this.code = code;
    this.file = file;
  }
}

export interface UnitLogStats {
  /** Bytes formatted but not yet written. */
  pendingBytes: number;
  /** Lines lost because the backlog bound was reached. */
  droppedLines: number;
  /** Size of the live file as this writer knows it. */
  fileBytes: number;
  /** The last write failed and a retry is scheduled. */
  failing: boolean;
}

const NEWLINE = 10;
const EMPTY = Buffer.alloc(0);
/**
 * A buffer grown past this (a backlog) is let go once written, not kept for reuse. Above the
 * high-water mark (1 MiB by default) plus a batch, so a disk that keeps lagging behind a noisy
 * child reuses the same two buffers instead of dropping one per cycle: the GC frees dropped
 * buffers only when it runs, and with no string of the batch on the heap it runs rarely (they
 * piled up to 50-68 MiB of external memory in bench/logs-path under a slow disk).
 */
const KEEP_BUFFER_MAX = 4 * 1024 * 1024;


class UnitLog {
  readonly file: string;
  /**
   * Pending bytes: buf[0, len). Batches are encoded as they arrive, so what waits for a
   * write is one flat buffer outside the JS heap (nothing for the GC to scan or copy).
   */
  buf: Buffer = EMPTY;
  len = 0;
  readonly #cursor: FormatCursor = { line: 0, at: 0 };
  /** The other buffer: the one handed to the write in flight, then reused (double buffering). */
  spare: Buffer = EMPTY;
  /** End offset and line count of each batch in buf, so a drop loses whole lines, counted. */
  batchEnds: number[] = [];
  batchLines: number[] = [];
  fd = -1;
  size = 0;
  draining: Promise<void> | undefined;
  failing = false;
  retryTimer: NodeJS.Timeout | undefined;
  /** Error codes already reported for writing, and (separately) for rotating. */
  readonly reported = new Set<string>();
  readonly reportedRotate = new Set<string>();
  dropped = 0;
  /** Writing has been failing since the first failure after the last success. */
  outage: { code: string; droppedBefore: number; sinceMs: number } | undefined;
  /** After a failed rotation: the file size at which to try again. */
  rotateRetryAt = 0;
  /** Callers of whenDrained() waiting for the congestion to end. */
  drainWaiters: (() => void)[] = [];
  /** Rotated files left by an earlier run were brought to the current mode. */
  modesChecked = false;

  constructor(
    readonly unit: string,
    dir: string,
  ) {
    this.file = path.join(dir, `${unit}.log`);
  }

  hasPending(): boolean {
    return this.len > 0;
  }

  /** One batch, formatted and encoded straight into buf (no string of the batch is built). */
  append(batch: LogBatch): void {
    const raw = batch.raw;
    if (raw !== undefined) {
      this.reserve(this.len + raw.count * RECORD_OVERHEAD + raw.length + RAW_SCRATCH);
      this.len = formatRawInto(batch, raw, this.buf, this.len);
      this.batchEnds.push(this.len);
      this.batchLines.push(raw.count);
      return;
    }
    const lines = batch.lines;
    let units = 0;
    for (let i = 0; i < lines.length; i++) units += (lines[i] as string).length;
    // Room for the usual case (one byte per code unit, plus some slack for the last lines'
    // worst case); formatBatchInto stops before a line that might not fit, and the loop grows
    // the buffer for the rest.
    const cur = this.#cursor;
    cur.line = 0;
    cur.at = this.len;
    this.reserve(this.len + units + lines.length * RECORD_OVERHEAD + 1024);
    for (;;) {
      formatBatchInto(batch, this.buf, cur);
      if (cur.line >= lines.length) break;
      this.len = cur.at;
      this.reserve(this.len + ((lines[cur.line] as string).length * 3 + RECORD_OVERHEAD) * 2);
    }
    this.len = cur.at;
    this.batchEnds.push(this.len);
    this.batchLines.push(batch.lines.length);
  }

  reserve(bytes: number): void {
    if (this.buf.length >= bytes) return;
    const grown = Buffer.allocUnsafe(Math.max(bytes, this.buf.length * 2, 64 * 1024));
    this.buf.copy(grown, 0, 0, this.len);
    this.buf = grown;
  }

  /**
   * Everything pending, for the drain loop's write: the buffers swap, so new batches fill
   * the other one. Valid because the drain loop starts the next take only after the
   * previous write completed.
   */
  take(): Buffer {
    const full = this.buf;
    const out = full.subarray(0, this.len);
    this.buf = this.spare;
    this.spare = full;
    this.len = 0;
    this.batchEnds = [];
    this.batchLines = [];
    return out;
  }

  /** After the write of `spare` completed: keep it for reuse unless a backlog made it huge. */
  written(): void {
    if (this.spare.length > KEEP_BUFFER_MAX) this.spare = EMPTY;
  }

  /** Puts the unwritten rest of a failed write back in front of whatever arrived meanwhile. */
  restore(rest: Buffer): void {
    if (rest.length === 0) return;
    const merged = Buffer.allocUnsafe(Math.max(rest.length + this.len, 64 * 1024));
    rest.copy(merged, 0);
    this.buf.copy(merged, rest.length, 0, this.len);
    this.buf = merged;
    this.len += rest.length;
    this.batchEnds = [rest.length, ...this.batchEnds.map((e) => e + rest.length)];
    this.batchLines = [countNewlines(rest), ...this.batchLines];
  }

  /** Drops the oldest whole batches until at most `target` bytes remain (the newest batch stays); returns the lines lost. */
  dropOldest(target: number): number {
    const ends = this.batchEnds;
    let count = 0;
    while (count < ends.length - 1 && this.len - (count === 0 ? 0 : (ends[count - 1] as number)) > target) count++;
    if (count === 0) return 0;
    const cut = ends[count - 1] as number;
    let lost = 0;
    for (let i = 0; i < count; i++) lost += this.batchLines[i] as number;
    this.buf.copyWithin(0, cut, this.len);
    this.len -= cut;
    this.batchEnds = ends.slice(count).map((e) => e - cut);
    this.batchLines = this.batchLines.slice(count);
    return lost;
  }
}

export class LogFiles {
  readonly #dir: string;
  readonly #maxSize: number;
  readonly #keep: number;
  readonly #onError: LogFilesOptions['onError'];
  readonly #onRecover: LogFilesOptions['onRecover'];
  readonly #flushThreshold: number;
  readonly #maxBacklog: number;
  readonly #retryMs: number;
  readonly #highWater: number;
  readonly #modes: LogModes;
  readonly #units = new Map<string, UnitLog>();
  readonly #refused = new Set<string>();
  readonly #dirty = new Set<UnitLog>();
  #immediate: NodeJS.Immediate | undefined;
  #detach: (() => void) | undefined;
  #closed = false;

  constructor(opts: LogFilesOptions) {
    if (!Number.isInteger(opts.keep) || opts.keep < 0) throw new Error(`LogFiles: keep must be an integer ≥ 0, got ${opts.keep}`);
    if (!(opts.maxSizeBytes >= 0)) throw new Error(`LogFiles: maxSizeBytes must be ≥ 0, got ${opts.maxSizeBytes}`);
    this.#dir = path.resolve(opts.dir);
    this.#maxSize = opts.maxSizeBytes > 0 ? opts.maxSizeBytes : Infinity;
    this.#keep = opts.keep;
    this.#onError = opts.onError;
    this.#onRecover = opts.onRecover;
    this.#flushThreshold = opts.flushThresholdBytes ?? 256 * 1024;
    this.#maxBacklog = opts.maxBacklogBytes ?? 8 * 1024 * 1024;
    this.#retryMs = opts.retryMs ?? 1000;
    this.#highWater = opts.highWaterBytes ?? 1024 * 1024;
    this.#modes = logModes(opts.fileMode);
  }

  get dir(): string {
    return this.#dir;
  }

  /**
   * Subscribes to the bus's log batches and offers backpressure through
   * `bus.logBackpressure` (see `congested`); returns the function undoing both.
   */
  attach(bus: EventBus): () => void {
    const offLogs = bus.onLogs((batch) => this.write(batch));
    const pressure = (unit: string): Promise<void> | undefined => (this.congested(unit) ? this.whenDrained(unit) : undefined);
    bus.logBackpressure = pressure;
    const off = (): void => {
      offLogs();
      if (bus.logBackpressure === pressure) bus.logBackpressure = undefined;
    };
    const prev = this.#detach;
    this.#detach = () => {
      prev?.();
      off();
    };
    return off;
  }

  /** Takes one batch (what `attach` does for every bus batch). Never throws. */
  write(batch: LogBatch): void {
    if (this.#closed || lineCount(batch) === 0) return;
    try {
      const u = this.#unit(batch.unit);
      if (u === undefined) return;
      u.append(batch);
      if (u.len > this.#maxBacklog) this.#trim(u);
      if (u.failing) return; // the retry timer takes it from here
      if (u.len >= this.#flushThreshold) {
        this.#startDrain(u);
      } else {
        this.#dirty.add(u);
        this.#immediate ??= setImmediate(this.#flushDirty);
      }
    } catch (err) {
      // A bug here must not take the child's pipe handler (and the daemon) down with it.
      this.#report(batch.unit, 'EINTERNAL', path.join(this.#dir, `${batch.unit}.log`), err);
    }
  }

  /** Writes everything pending (retrying failed units once, now) and resolves when done. */
  async flush(): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const u of this.#units.values()) {
      if (u.failing) this.#clearRetry(u);
      const p = this.#startDrain(u);
      if (p !== undefined) waits.push(p);
    }
    await Promise.all(waits);
  }

  /**
   * For exit paths ('exit' handlers, fatal errors): writes what is pending synchronously.
   * A write already handed to the thread pool is not waited for; should it still be pending
   * at this moment, its text can land after the text written here.
   */
  flushSync(): void {
    for (const u of this.#units.values()) {
      if (!u.hasPending()) continue;
      // Not take(): that would hand new batches the buffer of a write that may be in flight.
      const chunk = Buffer.from(u.buf.subarray(0, u.len));
      u.len = 0;
      u.batchEnds = [];
      u.batchLines = [];
      let off = 0;
      try {
        while (off < chunk.length) {
          const end = this.#nextPiece(u, chunk, off);
          const n = fs.writeSync(u.fd, chunk, off, end - off);
          off += n;
          u.size += n;
        }
      } catch (err) {
        u.restore(chunk.subarray(off));
        this.#report(u.unit, errCode(err), u.file, err);
      }
    }
  }

  /** Flushes, then closes every file. Batches arriving afterwards are ignored. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#detach?.();
    this.#detach = undefined;
    await this.flush();
    this.#closed = true;
    if (this.#immediate !== undefined) clearImmediate(this.#immediate);
    this.#immediate = undefined;
    for (const u of this.#units.values()) {
      this.#clearRetry(u);
      this.#closeFd(u);
      releaseWaiters(u);
    }
  }

  /**
   * Backpressure for the reader of the unit's pipes: true while more than highWaterBytes
   * wait behind a write in flight (the disk is slower than the child). Pausing the pipe
   * until `whenDrained` makes the child wait instead of this process growing or dropping
   * lines. Never true while writes fail: a broken disk must not stall the child (lines are
   * then kept up to maxBacklogBytes, and dropped beyond).
   */
  congested(unit: string): boolean {
    const u = this.#units.get(unit);
    return u !== undefined && isCongested(u, this.#highWater);
  }

  /** Resolves once `congested(unit)` is false (at once if it already is). */
  whenDrained(unit: string): Promise<void> {
    const u = this.#units.get(unit);
    if (u === undefined || !isCongested(u, this.#highWater)) return Promise.resolve();
    return new Promise((resolve) => u.drainWaiters.push(resolve));
  }

  stats(unit: string): UnitLogStats | undefined {
    const u = this.#units.get(unit);
    if (u === undefined) return undefined;
    return { pendingBytes: u.len, droppedLines: u.dropped, fileBytes: u.size, failing: u.failing };
  }

  // ------------------------------------------------------------------ internals

  #unit(name: string): UnitLog | undefined {
    const known = this.#units.get(name);
    if (known !== undefined) return known;
    if (this.#refused.has(name)) return undefined;
    const why = unsafeUnitName(name);
    if (why !== undefined) {
      this.#refused.add(name);
      this.#report(name, 'EBADNAME', this.#dir, new Error(`refusing to write a log file for unit ${JSON.stringify(name)}: ${why}`));
      return undefined;
    }
    const u = new UnitLog(name, this.#dir);
    this.#units.set(name, u);
    return u;
  }

  readonly #flushDirty = (): void => {
    this.#immediate = undefined;
    for (const u of this.#dirty) if (!u.failing) this.#startDrain(u);
    this.#dirty.clear();
  };

  #startDrain(u: UnitLog): Promise<void> | undefined {
    if (u.draining === undefined && u.hasPending() && !this.#closed) {
      u.draining = this.#drain(u).finally(() => {
        u.draining = undefined;
      });
    }
    return u.draining;
  }

  /** The only writer of a unit's fd while it runs: one write in flight at a time. */
  async #drain(u: UnitLog): Promise<void> {
    while (u.hasPending()) {
      const chunk = u.take();
      releaseWaiters(u);
      let off = 0;
      try {
        while (off < chunk.length) {
          const end = this.#nextPiece(u, chunk, off);
          const n = await writeAsync(u.fd, chunk, off, end - off);
          off += n;
          u.size += n;
        }
      } catch (err) {
        u.restore(chunk.subarray(off));
        this.#fail(u, err);
        return;
      }
      u.written();
      if (u.reported.size > 0) u.reported.clear(); // a new failure later is news again
      if (u.outage !== undefined) this.#recovered(u);
    }
  }

  /**
   * Opens the file if needed and rotates if the next bytes would not fit; returns the end
   * (exclusive) of the piece of `chunk` starting at `off` to write now. Always whole lines.
   */
  #nextPiece(u: UnitLog, chunk: Buffer, off: number): number {
    if (u.fd < 0) this.#open(u);
    const remaining = chunk.length - off;
    const room = this.#maxSize - u.size;
    if (remaining <= room) return chunk.length;
    // The last newline inside the room ends the piece. (room > 0 keeps lastIndexOf's
    // offset non-negative: a negative one would count from the end of the buffer.)
    const cut = room > 0 ? chunk.lastIndexOf(NEWLINE, off + room - 1) + 1 : 0;
    if (cut > off) return cut;
    if (u.size > 0) {
      if (u.size >= u.rotateRetryAt) {
        if (this.#rotate(u)) {
          u.rotateRetryAt = 0;
          u.reportedRotate.clear();
          return this.#nextPiece(u, chunk, off);
        }
        // Could not rotate (reported): keep appending rather than lose lines, and try
        // again only after another maxSize bytes instead of before every write.
        u.rotateRetryAt = u.size + this.#maxSize;
      }
      return chunk.length;
    }
    // An empty file and a first line longer than maxSize: it goes in alone.
    const nl = chunk.indexOf(NEWLINE, off);
    return nl < 0 ? chunk.length : nl + 1;
  }

  #open(u: UnitLog): void {
    ensureLogDir(this.#dir, this.#modes);
    const { fd, size } = openLogFile(u.file, this.#modes);
    u.size = size;
    u.fd = fd;
    if (!u.modesChecked) {
      u.modesChecked = true;
      this.#tightenRotated(u);
    }
  }

  /** Rotated files keep the live file's mode (rename); those of an older run are brought in line once. */
  #tightenRotated(u: UnitLog): void {
    const base = path.basename(u.file) + '.';
    try {
      for (const name of fs.readdirSync(this.#dir)) {
        if (!name.startsWith(base) || !/^\d+$/.test(name.slice(base.length))) continue;
        const file = path.join(this.#dir, name);
        if ((fs.statSync(file).mode & 0o777) !== this.#modes.file) fs.chmodSync(file, this.#modes.file);
      }
    } catch {
      // Not ours, or gone meanwhile: the live file, which matters most, has its mode.
    }
  }

  /** unit.log → unit.log.1 → … → unit.log.<keep>; false (reported) if the renames failed. */
  #rotate(u: UnitLog): boolean {
    this.#closeFd(u);
    try {
      if (this.#keep === 0) {
        fs.rmSync(u.file, { force: true });
      } else {
        this.#removeBeyondKeep(u);
        for (let i = this.#keep - 1; i >= 1; i--) renameIfExists(`${u.file}.${i}`, `${u.file}.${i + 1}`);
        fs.renameSync(u.file, `${u.file}.1`);
      }
    } catch (err) {
      this.#report(u.unit, errCode(err), u.file, err, 'cannot rotate');
      this.#open(u);
      return false;
    }
    this.#open(u);
    return true;
  }

  /** Files numbered beyond `keep` (left by an earlier run with a larger keep) go too. */
  #removeBeyondKeep(u: UnitLog): void {
    const base = path.basename(u.file) + '.';
    for (const name of fs.readdirSync(this.#dir)) {
      if (!name.startsWith(base)) continue;
      const rest = name.slice(base.length);
      if (/^\d+$/.test(rest) && Number(rest) > this.#keep) fs.rmSync(path.join(this.#dir, name), { force: true });
    }
  }

  #fail(u: UnitLog, err: unknown): void {
    this.#closeFd(u); // reopen on retry: the directory may have been recreated meanwhile
    u.failing = true;
    u.outage ??= { code: errCode(err), droppedBefore: u.dropped, sinceMs: Date.now() };
    releaseWaiters(u);
    this.#report(u.unit, errCode(err), u.file, err);
    this.#scheduleRetry(u);
  }

  #recovered(u: UnitLog): void {
    const outage = u.outage!;
    u.outage = undefined;
    try {
      this.#onRecover?.(u.unit, { lost: u.dropped - outage.droppedBefore, code: outage.code, sinceMs: outage.sinceMs });
    } catch {
      // As with onError: a failing sink must not break the writer.
    }
  }

  #scheduleRetry(u: UnitLog): void {
    if (u.retryTimer !== undefined || this.#closed) return;
    u.retryTimer = setTimeout(() => {
      u.retryTimer = undefined;
      u.failing = false;
      this.#startDrain(u);
    }, this.#retryMs);
    u.retryTimer.unref();
  }

  #clearRetry(u: UnitLog): void {
    if (u.retryTimer !== undefined) clearTimeout(u.retryTimer);
    u.retryTimer = undefined;
    u.failing = false;
  }

  /**
   * Drops the oldest whole batches so the backlog fits. It drops down to 3/4 of the bound,
   * so that under a sustained overflow the memmove happens once per quarter, not per batch.
   */
  #trim(u: UnitLog): void {
    const lost = u.dropOldest(Math.floor((this.#maxBacklog * 3) / 4));
    if (lost === 0) return;
    u.dropped += lost;
    this.#report(
      u.unit,
      'EDROPPED',
      u.file,
      new Error(`dropped the oldest ${lost} line(s) of ${u.unit}: more than ${this.#maxBacklog} bytes were waiting to be written`),
    );
  }

  #closeFd(u: UnitLog): void {
    if (u.fd < 0) return;
    try {
      fs.closeSync(u.fd);
    } catch {
      // Closing can only fail for a bad fd; nothing left to release then.
    }
    u.fd = -1;
  }

  #report(unit: string, code: string, file: string, err: unknown, what: 'cannot write' | 'cannot rotate' = 'cannot write'): void {
    const u = this.#units.get(unit);
    if (u !== undefined) {
      const seen = what === 'cannot rotate' ? u.reportedRotate : u.reported;
      if (seen.has(code)) return;
      seen.add(code);
    }
    const detail = err instanceof Error ? err.message : String(err);
    const message = code === 'EDROPPED' || code === 'EBADNAME' ? detail : `${what} ${file}: ${detail}`;
    try {
      this.#onError(unit, new LogWriteError(message, code, file, err));
    } catch {
      // The error sink failing must not turn a log problem into a crash.
    }
  }
}

function isCongested(u: UnitLog, highWater: number): boolean {
  return u.len > highWater && u.draining !== undefined && !u.failing;
}

function releaseWaiters(u: UnitLog): void {
  if (u.drainWaiters.length === 0) return;
  const waiters = u.drainWaiters;
  u.drainWaiters = [];
  for (const w of waiters) w();
}

/** Why a unit name cannot be a file name in the log directory, or undefined if it can. */
export function unsafeUnitName(name: string): string | undefined {
  if (name.length === 0) return 'the name is empty';
  if (name.includes('/') || name.includes('\\')) return 'the name contains a path separator';
  if (name.includes('..')) return "the name contains '..'";
  if (name.includes('\0')) return 'the name contains a NUL character';
  if (name === 'supervisor') return "logs/supervisor.log is the supervisor's own log";
  return undefined;
}

function writeAsync(fd: number, buf: Buffer, off: number, len: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.write(fd, buf, off, len, null, (err, written) => (err ? reject(err) : resolve(written)));
  });
}

function renameIfExists(from: string, to: string): void {
  try {
    fs.renameSync(from, to);
  } catch (err) {
    if (errCode(err) !== 'ENOENT') throw err;
  }
}

function errCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'EUNKNOWN';
}

function countNewlines(buf: Buffer): number {
  let n = 0;
  for (let i = buf.indexOf(NEWLINE); i !== -1; i = buf.indexOf(NEWLINE, i + 1)) n++;
  return n;
}
