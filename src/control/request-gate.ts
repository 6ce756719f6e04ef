// Who may ask: the Host, Origin, token and session-cookie checks that the HTTP request path
// (http-dispatch.ts) and the WebSocket upgrade path (ws-upgrade.ts) share. Why the dashboard has
// a host name of its own and why its cookie counts only under it: see the header of server.ts.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { allowedOrigins, hostPort, isAuthorized, isLoopbackHost, originAllowed } from './auth.ts';
import { type SessionStore, readCookie, sessionCookieName } from './sessions.ts';

/** The names this server answers under: known once it listens, empty (nothing passes) before. */
export interface ServerNames {
  origins: Set<string>;
  /** `host:port` spellings of this server (the origins without the scheme). */
  hosts: Set<string>;
  cookieName: string;
  /** `host:port` under which the dashboard (its cookie above all) answers, and its origin. */
  dashHosts: Set<string>;
  dashOrigin: string;
}

export function unnamed(): ServerNames {
  return { origins: new Set(), hosts: new Set(), cookieName: '', dashHosts: new Set(), dashOrigin: '' };
}

/** Fills `names` for the address actually listened on. */
export function nameServer(names: ServerNames, listenHost: string, addr: AddressInfo, dashboardName: string): void {
  names.origins = new Set([...allowedOrigins(listenHost, addr.port), ...allowedOrigins(addr.address, addr.port)]);
  names.hosts = new Set([...names.origins].map((o) => o.slice('http://'.length)));
  names.cookieName = sessionCookieName(addr.port);
  const publicUrl = `http://${hostPort(addr.address === '0.0.0.0' ? '127.0.0.1' : addr.address === '::' ? '::1' : addr.address, addr.port)}`;
  if (isLoopbackHost(addr.address)) {
    names.dashOrigin = `http://${dashboardName}:${addr.port}`;
    names.dashHosts = new Set([`${dashboardName}:${addr.port}`]);
    names.origins.add(names.dashOrigin);
  } else {
    // Listening for other machines (allowRemote): their browsers' *.localhost is themselves, so
    // the dashboard stays under the address it listens on.
    names.dashOrigin = publicUrl;
    names.dashHosts = new Set(names.hosts);
  }
}

export interface RequestGate {
  /** The Host header is the dashboard's name and our port. */
  dashHostOk(req: IncomingMessage): boolean;
  /** The control token, or (under the dashboard's Host only) a live session cookie. */
  authenticate(req: IncomingMessage, allowQuery: boolean): 'token' | 'cookie' | undefined;
  /** No Origin header, or one of this server's. */
  originOk(req: IncomingMessage): boolean;
  /** A cookie-authenticated request from a page must come from the dashboard's own origin. */
  cookieOriginOk(req: IncomingMessage): boolean;
  /** GET /login?t=<valid token> under 127.0.0.1 (an older link, a typed address): on to the named host. */
  redirectToDashboard(req: IncomingMessage, res: ServerResponse, path: string): boolean;
}

export function createGate(token: string, sessions: SessionStore, names: ServerNames): RequestGate {
  /**
   * The Host header names this server. A DNS-rebinding page reaches 127.0.0.1 under its own host
   * name: it must get neither the public dashboard parts nor public metrics.
   */
  const hostOk = (req: IncomingMessage): boolean => typeof req.headers.host === 'string' && names.hosts.has(req.headers.host.toLowerCase());
  const dashHostOk = (req: IncomingMessage): boolean => typeof req.headers.host === 'string' && names.dashHosts.has(req.headers.host.toLowerCase());
  return {
    dashHostOk,
    authenticate(req, allowQuery) {
      if (isAuthorized(req, token, allowQuery)) return 'token';
      const session = names.cookieName === '' ? undefined : readCookie(req, names.cookieName);
      // A browser that sent it under any other name (127.0.0.1:OURPORT included) got it from
      // somewhere it should not have.
      if (session !== undefined && dashHostOk(req) && sessions.isSession(session)) return 'cookie';
      return undefined;
    },
    originOk: (req) => originAllowed(req, names.origins),
    cookieOriginOk: (req) => req.headers.origin === undefined || req.headers.origin.toLowerCase() === names.dashOrigin,
    redirectToDashboard(req, res, path) {
      const method = req.method ?? 'GET';
      if (path !== '/login' || (method !== 'GET' && method !== 'HEAD') || !hostOk(req) || dashHostOk(req)) return false;
      const q = (req.url ?? '').indexOf('?');
      const t = q < 0 ? null : new URLSearchParams((req.url ?? '').slice(q + 1)).get('t');
      if (t === null || t.length > 256 || !sessions.isLoginToken(t)) return false;
      req.resume();
      res.writeHead(307, { location: `${names.dashOrigin}${req.url ?? '/'}`, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' });
      res.end();
      return true;
    },
  };
}

/** The host name of a Host header (`127.0.0.1:8080` → `127.0.0.1`, `[::1]:80` → `[::1]`). */
export function hostName(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end < 0 ? host : host.slice(0, end + 1);
  }
  const colon = host.indexOf(':');
  return colon < 0 ? host : host.slice(0, colon);
}
