// The terminal printer's output when stdout is a regular file (`bksup up > up.log`, a service
// manager's log file). process.stdout writes a file synchronously: under a noisy child the
// printer's copy of every line (as many bytes again as the log files get) was written on the
// main thread, the loop blocked in write() while the child's pipe filled up. Here the bytes
// are gathered in a buffer and written by the thread pool, one write in flight at a time (so
// in order), at the next loop turn or as soon as 256 KiB are pending: while a flood lasts,
// fewer and larger writes, and none of them on the loop.
//
// The file offset is the descriptor's own (position null): a shell's `> file 2>&1` shares it
// with stderr, which must not be overwritten. On exit paths, flushSync writes what is pending.

import * as fs from 'node:fs';

const EMPTY = Buffer.alloc(0);
const FLUSH_AT = 256 * 1024;
/**
 * Pending bytes from which a write is made at once and synchronously when none is in flight (a
 * file slower than the child: the loop waits, as it did for every write before). With one in
 * flight, bytes wait behind it: the printer must not lose lines nor write them out of order.
 */
const SYNC_AT = 16 * 1024 * 1024;
/** A buffer grown past this (a burst while a write was slow) is let go once written. */
const KEEP_MAX = 4 * 1024 * 1024;

export class FileSink {
  readonly #fd: number;
  readonly #onError: (err: unknown) => void;
  #buf: Buffer = EMPTY;
  #len = 0;
  /** The buffer of the write in flight, reused once it completed. */
  #spare: Buffer = EMPTY;
  #inFlight = false;
  /** A write is due at the next loop turn. */
  #turnDue = false;
  #failed = false;
  /** Callers of flush() waiting for everything to be written. */
  #idleWaiters: (() => void)[] = [];

  /** `onError` is called once, for the first failed write; nothing is written after it. */
  constructor(fd: number, onError: (err: unknown) => void) {
    this.#fd = fd;
    this.#onError = onError;
  }

  /** Whether `fd` is a regular file (then a FileSink is worth having). */
  static suits(fd: number): boolean {
    try {
      return fs.fstatSync(fd).isFile();
    } catch {
      return false;
    }
  }

  /** Takes a copy of `bytes`: the caller may reuse its buffer at once. */
  write(bytes: Uint8Array | string): void {
    const b = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
    this.writeWith(b.length, (out, at) => {
      out.set(b, at);
      return at + b.length;
    });
  }

  /**
   * Lets `fill` write at most `size` bytes straight into the pending buffer, from `at`; it
   * returns the end of what it wrote.
   */
  writeWith(size: number, fill: (out: Buffer, at: number) => number): void {
    if (this.#failed) return;
    if (this.#buf.length < this.#len + size) this.#grow(this.#len + size);
    this.#len = fill(this.#buf, this.#len);
    if (this.#inFlight) return;
    if (this.#len >= SYNC_AT) this.flushSync();
    else if (this.#len >= FLUSH_AT) this.#start();
    else this.#atNextTurn();
  }

  /** Resolves once everything written so far is in the file (or writing failed). */
  flush(): Promise<void> {
    if (!this.#inFlight) this.#start();
    if (!this.#inFlight) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Writes what is pending now, synchronously (exit paths). A write already handed to the
   * thread pool is not waited for: should it still be pending, these bytes may land first.
   */
  flushSync(): void {
    if (this.#failed || this.#len === 0) return;
    const out = this.#buf.subarray(0, this.#len);
    this.#len = 0;
    try {
      for (let off = 0; off < out.length; ) off += fs.writeSync(this.#fd, out, off, out.length - off);
    } catch (err) {
      this.#fail(err);
    }
  }

  #atNextTurn(): void {
    if (this.#turnDue) return;
    this.#turnDue = true;
    setImmediate(() => {
      this.#turnDue = false;
      if (!this.#inFlight) this.#start();
    });
  }

  /** Hands everything pending to one write; the two buffers swap, so new bytes go to the other. */
  #start(): void {
    if (this.#len === 0 || this.#failed) return;
    const full = this.#buf;
    const len = this.#len;
    this.#buf = this.#spare;
    this.#spare = full;
    this.#len = 0;
    this.#inFlight = true;
    this.#writeFrom(full, 0, len);
  }

  #writeFrom(buf: Buffer, off: number, end: number): void {
    fs.write(this.#fd, buf, off, end - off, null, (err, n) => {
      if (err) {
        this.#inFlight = false;
        this.#fail(err);
        this.#wake();
        return;
      }
      if (off + n < end) {
        this.#writeFrom(buf, off + n, end);
        return;
      }
      this.#inFlight = false;
      if (this.#spare.length > KEEP_MAX) this.#spare = EMPTY;
      if (this.#len >= FLUSH_AT || (this.#len > 0 && this.#idleWaiters.length > 0)) this.#start();
      else if (this.#len > 0) this.#atNextTurn();
      if (!this.#inFlight) this.#wake();
    });
  }

  #wake(): void {
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  #grow(need: number): void {
    const grown = Buffer.allocUnsafeSlow(Math.max(need, this.#buf.length * 2, 64 * 1024));
    this.#buf.copy(grown, 0, 0, this.#len);
    this.#buf = grown;
  }

  #fail(err: unknown): void {
    this.#failed = true;
    this.#len = 0;
    this.#onError(err);
  }
}
