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
//
// The default bound follows the daemon's descriptor limit (a sixteenth of it, 64 to 1024): on a
// laptop's 1024 that is 64, while a machine with room lets 500 clients that connect at once (a
// script restarting units in parallel) all be served, instead of most of them being evicted.

import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';

export interface ConnectionGuardOptions {
  /** A number, or a function asked on each admit (the descriptor limit may change: prlimit). */
  maxPending: number | (() => number);
  timeoutMs: number;
  now?: () => number;
}

export class ConnectionGuard {
  readonly #maxPending: () => number;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  /** socket → when it connected; Map order is connection order. */
  readonly #pending = new Map<Socket, number>();
  #sweep: NodeJS.Timeout | undefined;
  #evicted = 0;

  constructor(opts: ConnectionGuardOptions) {
    const max = opts.maxPending;
    this.#maxPending = typeof max === 'number' ? () => max : max;
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
    const maxPending = this.#maxPending();
    while (this.#pending.size > maxPending) {
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

const LIMIT_TTL_MS = 5000;
let limitCache: { at: number; value: number } | undefined;

/** A sixteenth of the soft descriptor limit, 64 to 1024; read at most every 5 s. */
export function pendingBudget(now: number = Date.now()): number {
  if (limitCache === undefined || now - limitCache.at > LIMIT_TTL_MS) limitCache = { at: now, value: budgetFor(softFileLimit()) };
  return limitCache.value;
}

export function budgetFor(softLimit: number | undefined): number {
  if (softLimit === undefined || !Number.isFinite(softLimit)) return 1024;
  return Math.max(64, Math.min(1024, Math.floor(softLimit / 16)));
}

/** The soft RLIMIT_NOFILE of this process (Node has no API for it); undefined for unlimited. */
function softFileLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    return soft === undefined || soft === 'unlimited' ? undefined : Number(soft);
  } catch {
    return 1024; // not Linux: assume the common laptop limit
  }
}
