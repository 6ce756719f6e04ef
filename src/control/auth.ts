// Who may talk to the control API: holders of the token (from the 0600 control.json), from this
// machine unless the user opted in to remote access, and never a web page from another origin
// (a browser would attach no token, but DNS rebinding and CSRF-style tricks must fail even so).

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { hostPort } from '../util/host-port.ts';

export function newToken(): string {
  return randomBytes(32).toString('hex');
}

/**
 * Constant-time comparison that does not leak the length either: both sides are hashed to the
 * same size first, so timingSafeEqual never throws on a length mismatch.
 */
export function tokenMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/**
 * The token a request carries: `Authorization: Bearer <token>`, or for WebSocket upgrades only
 * `?token=` (browsers cannot set headers on a WebSocket).
 */
export function requestToken(req: IncomingMessage, allowQuery: boolean): string | undefined {
  const header = req.headers.authorization;
  if (typeof header === 'string') {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    if (m) return m[1];
  }
  if (allowQuery && req.url !== undefined) {
    const q = req.url.indexOf('?');
    if (q >= 0) {
      const token = new URLSearchParams(req.url.slice(q + 1)).get('token');
      if (token !== null) return token;
    }
  }
  return undefined;
}

export function isAuthorized(req: IncomingMessage, token: string, allowQuery: boolean): boolean {
  const given = requestToken(req, allowQuery);
  return given !== undefined && tokenMatches(given, token);
}

export function isLoopbackHost(host: string): boolean {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (h === 'localhost') return true;
  switch (isIP(h)) {
    case 4:
      return h.startsWith('127.');
    case 6:
      return h === '::1' || /^::ffff:127\./i.test(h) || /^0*:0*:0*:0*:0*:0*:0*:0*1$/.test(h);
    default:
      return false;
  }
}

/** `host:port` as it appears in a URL (IPv6 in brackets). */
export { hostPort };

/**
 * Origins that are this server itself: what it listens on, plus the loopback spellings that reach
 * it when it listens on loopback or on every interface.
 */
export function allowedOrigins(host: string, port: number): Set<string> {
  const out = new Set<string>([`http://${hostPort(host, port)}`]);
  if (isLoopbackHost(host) || host === '0.0.0.0' || host === '::') {
    for (const h of ['localhost', '127.0.0.1', '[::1]']) out.add(`http://${h}:${port}`);
  }
  return out;
}

/** No Origin header (CLIs, scripts) is fine; a browser's must be one of ours. */
export function originAllowed(req: IncomingMessage, allowed: ReadonlySet<string>): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  return allowed.has(origin.toLowerCase());
}
