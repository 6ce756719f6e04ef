// The dashboard's HTTP side: the page and its static files (src/dashboard/static/, plain browser
// JavaScript and CSS served as they are: no build step), and the login exchange of
// src/control/sessions.ts. The control server decides who may see what; this file only answers.
//
//   GET  /             the page (authenticated)            GET /assets/<file>  static, public
//   GET  /login        the login page (public): drops ?t= from the URL, POSTs it back
//   POST /login        {token} → session cookie, 204; 401 when the token is unknown/used/expired
//   POST /logout       ends the session, clears the cookie

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join } from 'node:path';
import { readBody, sendBodyError, sendJson } from '../control/http.ts';
import { clearedSessionCookie, readCookie, sessionCookie, type SessionStore } from '../control/sessions.ts';

export const STATIC_DIR = join(import.meta.dirname, 'static');

/** Files anyone may fetch: they are the package's own code, nothing of the stack is in them. */
const PUBLIC_ASSETS: ReadonlySet<string> = new Set(['app.js', 'app.css', 'login.js', 'favicon.svg']);
const PAGES = { index: 'index.html', login: 'login.html', unauthorized: 'unauthorized.html' } as const;
export type PageName = keyof typeof PAGES;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * No inline script or style, nothing from elsewhere: a log line that somehow became markup could
 * not run. `connect-src 'self'` covers the page's own WebSockets.
 */
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
} as const;

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

const cache = new Map<string, Asset>();

function load(file: string): Asset {
  let a = cache.get(file);
  if (!a) {
    const body = readFileSync(join(STATIC_DIR, file));
    a = { body, type: TYPES[extname(file)] ?? 'application/octet-stream', etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
    cache.set(file, a);
  }
  return a;
}

export function pathOf(rawUrl: string): string {
  const q = rawUrl.indexOf('?');
  return q >= 0 ? rawUrl.slice(0, q) : rawUrl;
}

/** Paths served without authentication. */
export function isPublicPath(path: string): boolean {
  return path === '/login' || path === '/logout' || (path.startsWith('/assets/') && PUBLIC_ASSETS.has(path.slice('/assets/'.length)));
}

export function isPagePath(path: string): boolean {
  return path === '/' || path === '/index.html';
}

function send(res: ServerResponse, status: number, asset: Asset, headers: Record<string, string>, head: boolean): void {
  res.writeHead(status, { 'content-type': asset.type, 'content-length': asset.body.length, ...headers });
  res.end(head ? undefined : asset.body);
}

function missing(res: ServerResponse, file: string, err: unknown): void {
  // A broken installation, not a request problem: say which file.
  sendJson(res, 500, { error: `dashboard file ${file} cannot be read: ${err instanceof Error ? err.message : String(err)}` });
}

export function sendPage(req: IncomingMessage, res: ServerResponse, page: PageName, status = 200): void {
  const file = PAGES[page];
  let asset: Asset;
  try {
    asset = load(file);
  } catch (err) {
    return missing(res, file, err);
  }
  send(res, status, asset, { ...PAGE_HEADERS }, req.method === 'HEAD');
}

/** 401 for a browser (the page that says how to log in) or for a program (JSON). */
export function sendUnauthorized(req: IncomingMessage, res: ServerResponse, jsonError: string): void {
  const accept = req.headers.accept ?? '';
  if (req.method === 'GET' && accept.includes('text/html')) return sendPage(req, res, 'unauthorized', 401);
  sendJson(res, 401, { error: jsonError }, { 'www-authenticate': 'Bearer' });
}

export interface PublicContext {
  sessions: SessionStore;
  cookieName: string;
}

/** Answers a path for which isPublicPath() is true. */
export async function handlePublic(req: IncomingMessage, res: ServerResponse, path: string, ctx: PublicContext): Promise<void> {
  const method = req.method ?? 'GET';
  if (path.startsWith('/assets/')) {
    if (method !== 'GET' && method !== 'HEAD') return sendJson(res, 405, { error: `method ${method} not allowed here: use GET` }, { allow: 'GET, HEAD' });
    const file = path.slice('/assets/'.length);
    let asset: Asset;
    try {
      asset = load(file);
    } catch (err) {
      return missing(res, file, err);
    }
    // Revalidated every time (cheap: 304), so an upgraded package never runs a stale script.
    const headers = { etag: asset.etag, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' };
    if (req.headers['if-none-match'] === asset.etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    return send(res, 200, asset, headers, method === 'HEAD');
  }
  if (path === '/login') {
    if (method === 'GET' || method === 'HEAD') {
      req.resume();
      return sendPage(req, res, 'login');
    }
    if (method !== 'POST') return sendJson(res, 405, { error: `method ${method} not allowed here: use GET or POST` }, { allow: 'GET, HEAD, POST' });
    const body = await readBody(req);
    if (!body.ok) return sendBodyError(req, res, body);
    const token = body.value?.token;
    if (typeof token !== 'string' || token === '' || token.length > 256) return sendJson(res, 400, { error: 'expected {"token": "<the t= of the login link>"}' });
    const r = ctx.sessions.redeem(token);
    if (!r.ok) return sendJson(res, 401, { error: `${r.reason}: run npx bksup dashboard for a new link` });
    res.writeHead(204, { 'set-cookie': sessionCookie(ctx.cookieName, r.session, ctx.sessions.sessionTtlMs), 'cache-control': 'no-store' });
    res.end();
    return;
  }
  // /logout
  if (method !== 'POST') return sendJson(res, 405, { error: `method ${method} not allowed here: use POST` }, { allow: 'POST' });
  req.resume();
  const session = readCookie(req, ctx.cookieName);
  if (session !== undefined) ctx.sessions.revoke(session);
  res.writeHead(204, { 'set-cookie': clearedSessionCookie(ctx.cookieName), 'cache-control': 'no-store' });
  res.end();
}
