// Bounds the sockets nobody has authenticated yet. Any local user can connect to the control
// port; without a bound, thousands of idle sockets would use up the daemon's descriptors until
// it could neither spawn children nor write logs.
//
//   connection ──► pending (oldest first) ──► authenticated request / upgrade ──► trusted
//                    │ more than maxPending: the oldest pending socket is closed
//                    └ still pending after timeoutMs: closed
//
// Evicting the oldest (rather than refusing the newest) keeps the port usable during a flood: a
// real client sends its request at once and is trusted before the flood catches up with it.
// The sweep timer runs only while something is pending.

import type { Socket } from 'node:net';

export interface ConnectionGuardOptions {
  maxPending: number;
  timeoutMs: number;
  now?: () => number;
}

export class ConnectionGuard {
  readonly #maxPending: number;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  /** socket → when it connected; Map order is connection order. */
  readonly #pending = new Map<Socket, number>();
  #sweep: NodeJS.Timeout | undefined;
  #evicted = 0;

  constructor(opts: ConnectionGuardOptions) {
    this.#maxPending = opts.maxPending;
    this.#timeoutMs = opts.timeoutMs;
    this.#now = opts.now ?? Date.now;
  }

  get pending(): number {
    return this.#pending.size;
  }

  /** Sockets closed for being idle or too many, since the start. */
  get evicted(): number {
    return this.#evicted;
  }

  admit(socket: Socket): void {
    this.#pending.set(socket, this.#now());
    socket.once('close', () => this.#forget(socket));
    while (this.#pending.size > this.#maxPending) {
      const oldest = this.#pending.keys().next();
      if (oldest.done) break;
      this.#drop(oldest.value);
    }
    this.#sweep ??= setInterval(() => this.#expire(), Math.max(100, Math.min(1000, this.#timeoutMs / 2))).unref();
  }

  /** The socket carried an authenticated request: no longer bounded here. */
  trust(socket: Socket): void {
    this.#forget(socket);
  }

  close(): void {
    clearInterval(this.#sweep);
    this.#sweep = undefined;
    this.#pending.clear();
  }

  #expire(): void {
    const limit = this.#now() - this.#timeoutMs;
    for (const [socket, since] of this.#pending) {
      if (since > limit) break; // the rest connected later
      this.#drop(socket);
    }
  }

  #drop(socket: Socket): void {
    this.#forget(socket);
    this.#evicted++;
    socket.destroy();
  }

  #forget(socket: Socket): void {
    this.#pending.delete(socket);
    if (this.#pending.size === 0 && this.#sweep !== undefined) {
      clearInterval(this.#sweep);
      this.#sweep = undefined;
    }
  }
}
