// Browser sessions for the dashboard. The long-lived token (control.json) never reaches a browser:
//
//   bksup dashboard ──POST /api/login-tokens (Bearer)──► one-time login token (short-lived)
//   browser: /login?t=… ── page drops ?t from the URL (history.replaceState), POSTs it ──►
//            redeem: token consumed ──► session id in an HttpOnly, SameSite=Strict cookie
//   every later request: cookie → session id → known and not expired? → authenticated
//
// Only hashes of login tokens and session ids are held, so a lookup compares digests of
// attacker-chosen input, not secrets. Everything lives in memory: a daemon restart logs every
// browser out (the page then says how to get a new link).

import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { newToken } from './auth.ts';

export interface SessionStoreOptions {
  now?: () => number;
  /** Random secrets (default: 32 random bytes, hex). */
  random?: () => string;
  /** How long a session lasts after the login (default 7 days). */
  sessionTtlMs?: number;
  /** Most sessions / outstanding login tokens at once; the oldest go first (default 64 / 32). */
  maxSessions?: number;
  maxLoginTokens?: number;
}

export interface LoginToken {
  token: string;
  /** ms since epoch. */
  expiresAt: number;
}

export type RedeemResult = { ok: true; session: string; expiresAt: number } | { ok: false; reason: string };

/** How long a login link works when nobody says otherwise (`bksup dashboard`). */
export const LOGIN_TOKEN_TTL_MS = 2 * 60_000;
const MAX_TTL_MS = 24 * 60 * 60_000;

function digest(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export class SessionStore {
  readonly #now: () => number;
  readonly #random: () => string;
  readonly #sessionTtlMs: number;
  readonly #maxSessions: number;
  readonly #maxLoginTokens: number;
  /** digest → expiry; Maps keep insertion order, so the first key is the oldest. */
  readonly #loginTokens = new Map<string, number>();
  readonly #sessions = new Map<string, number>();

  constructor(opts: SessionStoreOptions = {}) {
    this.#now = opts.now ?? Date.now;
    this.#random = opts.random ?? newToken;
    this.#sessionTtlMs = opts.sessionTtlMs ?? 7 * 24 * 60 * 60_000;
    this.#maxSessions = opts.maxSessions ?? 64;
    this.#maxLoginTokens = opts.maxLoginTokens ?? 32;
  }

  get sessionTtlMs(): number {
    return this.#sessionTtlMs;
  }

  /** A single-use token that can be exchanged for a session until `ttlMs` from now. */
  issueLoginToken(ttlMs = LOGIN_TOKEN_TTL_MS): LoginToken {
    this.#prune();
    const token = this.#random();
    const expiresAt = this.#now() + Math.min(Math.max(1, ttlMs), MAX_TTL_MS);
    this.#loginTokens.set(digest(token), expiresAt);
    evictOldest(this.#loginTokens, this.#maxLoginTokens);
    return { token, expiresAt };
  }

  /** The login token is known and unexpired (not consumed: the redirect to the dashboard's host checks it). */
  isLoginToken(token: string): boolean {
    const expiresAt = this.#loginTokens.get(digest(token));
    return expiresAt !== undefined && expiresAt > this.#now();
  }

  /** Consumes the login token (whatever the outcome, it cannot be used again) and opens a session. */
  redeem(token: string): RedeemResult {
    const key = digest(token);
    const expiresAt = this.#loginTokens.get(key);
    this.#loginTokens.delete(key);
    if (expiresAt === undefined) return { ok: false, reason: 'this login link is unknown or was already used' };
    if (expiresAt <= this.#now()) return { ok: false, reason: 'this login link has expired' };
    this.#prune();
    const session = this.#random();
    const sessionExpires = this.#now() + this.#sessionTtlMs;
    this.#sessions.set(digest(session), sessionExpires);
    evictOldest(this.#sessions, this.#maxSessions);
    return { ok: true, session, expiresAt: sessionExpires };
  }

  isSession(id: string): boolean {
    const key = digest(id);
    const expiresAt = this.#sessions.get(key);
    if (expiresAt === undefined) return false;
    if (expiresAt <= this.#now()) {
      this.#sessions.delete(key);
      return false;
    }
    return true;
  }

  /** Ends a session (logout). */
  revoke(id: string): void {
    this.#sessions.delete(digest(id));
  }

  #prune(): void {
    const now = this.#now();
    for (const map of [this.#loginTokens, this.#sessions]) {
      for (const [k, exp] of map) if (exp <= now) map.delete(k);
    }
  }
}

function evictOldest(map: Map<string, number>, max: number): void {
  while (map.size > max) {
    const first = map.keys().next();
    if (first.done) return;
    map.delete(first.value);
  }
}

/**
 * The cookie's name carries the port: cookies are shared by every port of a host, and two
 * daemons (two projects) on 127.0.0.1 must not log each other's browsers out.
 */
export function sessionCookieName(port: number): string {
  return `bksup_session_${port}`;
}

/** The value of one cookie of the request, or undefined. */
export function readCookie(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (typeof header !== 'string' || header.length > 16 * 1024) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    const value = part.slice(eq + 1).trim();
    return value === '' ? undefined : value;
  }
  return undefined;
}

export function sessionCookie(name: string, value: string, maxAgeMs: number): string {
  return `${name}=${value}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${Math.floor(maxAgeMs / 1000)}`;
}

export function clearedSessionCookie(name: string): string {
  return `${name}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`;
}
