// Appends every unit's log lines to `<dir>/<unit>.log`, with size rotation.
//
// Per batch (hot path): format the batch into one string and append it to the unit's
// pending list. Per flush (once per event-loop turn via setImmediate, or at once when
// 256 KiB are pending): ONE write of everything pending, through an fd opened once per
// file. Only one write per fd is ever in flight, so lines stay in order.
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

import type { EventBus, LogBatch } from '../events.ts';
import { formatBatch } from './format.ts';

export interface LogFilesOptions {
  dir: string;
  /** Rotate before unit.log would grow past this; 0 or Infinity turns rotation off. */
  maxSizeBytes: number;
  /** Rotated files kept besides the live one (unit.log.1 … unit.log.<keep>); 0 = none. */
  keep: number;
  /** Called once per unit and error code (not per line) until writing succeeds again. */
  onError: (unit: string, err: LogWriteError) => void;
  /** Start a write at once (not at the next event-loop turn) when this much text is pending. Default 256 KiB. */
  flushThresholdBytes?: number;
  /** Unwritten text kept per unit while writes fail or lag; oldest lines are dropped beyond. Default 8 MiB. */
  maxBacklogBytes?: number;
  /** Delay between attempts after a failed write. Default 1000 ms. */
  retryMs?: number;
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
  /** Text formatted but not yet written (characters; ≈ bytes). */
  pendingBytes: number;
  /** Lines lost because the backlog bound was reached. */
  droppedLines: number;
  /** Size of the live file as this writer knows it. */
  fileBytes: number;
  /** The last write failed and a retry is scheduled. */
  failing: boolean;
}

const NEWLINE = 10;
const MAX_SCRATCH = 1024 * 1024;
const EMPTY = Buffer.alloc(0);

class UnitLog {
  readonly file: string;
  /** Formatted batches (strings), or the unwritten rest of a failed write (a Buffer) at the front. */
  pending: (string | Buffer)[] = [];
  /** Line count of each pending entry, to count what a drop loses. */
  pendingLines: number[] = [];
  /** Index of the first live entry in `pending` (dropping from the front without O(n) shifts). */
  head = 0;
  pendingSize = 0;
  fd = -1;
  size = 0;
  draining: Promise<void> | undefined;
  failing = false;
  retryTimer: NodeJS.Timeout | undefined;
  /** Error codes already reported for writing, and (separately) for rotating. */
  readonly reported = new Set<string>();
  readonly reportedRotate = new Set<string>();
  dropped = 0;
  /** After a failed rotation: the file size at which to try again. */
  rotateRetryAt = 0;
  /** Reused encode buffer: grown to what the unit needs, at most MAX_SCRATCH. */
  scratch: Buffer = EMPTY;

  constructor(
    readonly unit: string,
    dir: string,
  ) {
    this.file = path.join(dir, `${unit}.log`);
  }

  hasPending(): boolean {
    return this.head < this.pending.length;
  }

  /**
   * Everything pending as one buffer, and the pending list emptied. With `reuse`, small
   * enough text is encoded into this unit's scratch buffer instead of a new allocation:
   * only valid while no other write of that buffer is in flight (the drain loop's case).
   */
  takePending(reuse: boolean): Buffer {
    const entries = this.head === 0 ? this.pending : this.pending.slice(this.head);
    const size = this.pendingSize;
    this.pending = [];
    this.pendingLines = [];
    this.head = 0;
    this.pendingSize = 0;
    const first = entries[0];
    if (entries.length === 1 && typeof first !== 'string') return first as Buffer;
    if (typeof first !== 'string') {
      // Only after a failure: a Buffer remainder first, then strings.
      return Buffer.concat(entries.map((e) => (typeof e === 'string' ? Buffer.from(e) : e)));
    }
    // A UTF-16 code unit never takes more than 3 UTF-8 bytes.
    const worst = size * 3;
    if (!reuse || worst > MAX_SCRATCH) return Buffer.from(entries.length === 1 ? first : (entries as string[]).join(''));
    if (this.scratch.length < worst) this.scratch = Buffer.allocUnsafe(Math.max(4096, 2 ** Math.ceil(Math.log2(worst))));
    let n = 0;
    for (const e of entries as string[]) n += this.scratch.write(e, n);
    return this.scratch.subarray(0, n);
  }

  /** Puts the unwritten rest of a failed write back in front of whatever arrived meanwhile. */
  restore(view: Buffer): void {
    if (view.length === 0) return;
    // A copy: the view may point into the scratch buffer, which the next write reuses.
    const rest = Buffer.from(view);
    const live = this.pending.slice(this.head);
    const liveLines = this.pendingLines.slice(this.head);
    this.pending = [rest, ...live];
    this.pendingLines = [countNewlines(rest), ...liveLines];
    this.head = 0;
    this.pendingSize += rest.length;
  }
}

export class LogFiles {
  readonly #dir: string;
  readonly #maxSize: number;
  readonly #keep: number;
  readonly #onError: LogFilesOptions['onError'];
  readonly #flushThreshold: number;
  readonly #maxBacklog: number;
  readonly #retryMs: number;
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
    this.#flushThreshold = opts.flushThresholdBytes ?? 256 * 1024;
    this.#maxBacklog = opts.maxBacklogBytes ?? 8 * 1024 * 1024;
    this.#retryMs = opts.retryMs ?? 1000;
  }

  get dir(): string {
    return this.#dir;
  }

  /** Subscribes to the bus's log batches; returns the unsubscribe function. */
  attach(bus: EventBus): () => void {
    const off = bus.onLogs((batch) => this.write(batch));
    const prev = this.#detach;
    this.#detach = () => {
      prev?.();
      off();
    };
    return off;
  }

  /** Takes one batch (what `attach` does for every bus batch). Never throws. */
  write(batch: LogBatch): void {
    if (this.#closed || batch.lines.length === 0) return;
    try {
      const u = this.#unit(batch.unit);
      if (u === undefined) return;
      const text = formatBatch(batch);
      u.pending.push(text);
      u.pendingLines.push(batch.lines.length);
      u.pendingSize += text.length;
      if (u.pendingSize > this.#maxBacklog) this.#trim(u);
      if (u.failing) return; // the retry timer takes it from here
      if (u.pendingSize >= this.#flushThreshold) {
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
      // Not the scratch buffer: an async write of it may still be in flight.
      const chunk = u.takePending(false);
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
    }
  }

  stats(unit: string): UnitLogStats | undefined {
    const u = this.#units.get(unit);
    if (u === undefined) return undefined;
    return { pendingBytes: u.pendingSize, droppedLines: u.dropped, fileBytes: u.size, failing: u.failing };
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
      const chunk = u.takePending(true);
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
      if (u.reported.size > 0) u.reported.clear(); // a new failure later is news again
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
    fs.mkdirSync(this.#dir, { recursive: true });
    const fd = fs.openSync(u.file, 'a', 0o644);
    try {
      u.size = fs.fstatSync(fd).size;
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    u.fd = fd;
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
    this.#report(u.unit, errCode(err), u.file, err);
    this.#scheduleRetry(u);
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

  /** Drops whole oldest entries until the backlog fits (the newest entry always stays). */
  #trim(u: UnitLog): void {
    let lost = 0;
    while (u.pendingSize > this.#maxBacklog && u.pending.length - u.head > 1) {
      const e = u.pending[u.head] as string | Buffer;
      u.pendingSize -= e.length;
      lost += u.pendingLines[u.head] as number;
      u.pending[u.head] = '';
      u.head++;
    }
    if (u.head > 1024 && u.head * 2 > u.pending.length) {
      u.pending = u.pending.slice(u.head);
      u.pendingLines = u.pendingLines.slice(u.head);
      u.head = 0;
    }
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
