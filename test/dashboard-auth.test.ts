// Who gets the dashboard, over real loopback HTTP and WebSockets against the real control server:
// nothing without the token or a session cookie; a one-time login token becomes an HttpOnly,
// SameSite=Strict cookie exactly once; a cookie alone never changes anything without our own
// Origin; cross-origin WebSockets and foreign Host names are refused; metrics.public opens
// /metrics to this machine only.

import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startControlServer, type ControlServer } from '../src/control/server.ts';
import { SessionStore, readCookie, sessionCookieName } from '../src/control/sessions.ts';
import type { LoginTokenResponse } from '../src/control/protocol.ts';
import { SupervisorMetrics } from '../src/metrics.ts';
import { dashboardCommand } from '../src/client/dashboard.ts';
import { PassThrough } from 'node:stream';
import { FakeSupervisor, TestHistory } from './fixtures/control/harness.ts';

let dir: string;
let server: ControlServer | undefined;
let metrics: SupervisorMetrics | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bksup-dash-auth-'));
});

afterEach(async () => {
  await server?.close();
  server = undefined;
  metrics?.close();
  metrics = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function setup(opts: { metricsPublic?: boolean; sessions?: SessionStore } = {}) {
  const sup = new FakeSupervisor([{ name: 'postgres', kind: 'compose' }, { name: 'server' }]);
  metrics = new SupervisorMetrics({ handle: sup, processMetrics: false });
  server = await startControlServer({
    host: '127.0.0.1',
    port: 0,
    allowRemote: false,
    stateDir: join(dir, '.supervisor'),
    handle: sup,
    history: new TestHistory(sup.bus, 100),
    metrics,
    ...(opts.metricsPublic !== undefined ? { metricsPublic: opts.metricsPublic } : {}),
    ...(opts.sessions ? { sessions: opts.sessions } : {}),
  });
  // The dashboard's own name (bksup-<random>.localhost:PORT): browsers resolve it to loopback;
  // node:http connects to 127.0.0.1 and sends it as Host.
  const host = new URL(server.dashboardUrl).host;
  return { sup, s: server, origin: server.dashboardUrl, host, h: { host } };
}

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** node:http, because fetch will not send a Host or Cookie header of our choosing. */
function http(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function wsHandshake(url: string, headers: Record<string, string>): Promise<{ status: number | 'open'; first?: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.on('message', (m) => {
      resolve({ status: 'open', first: m.toString() });
      ws.close();
    });
    ws.on('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0 });
      res.resume();
    });
    ws.on('error', (err) => {
      if (!/Unexpected server response/.test(err.message)) reject(err);
    });
  });
}

async function loginToken(s: ControlServer): Promise<LoginTokenResponse> {
  const res = await http(s.port, 'POST', '/api/login-tokens', { authorization: `Bearer ${s.token}` });
  expect(res.status).toBe(200);
  return JSON.parse(res.body) as LoginTokenResponse;
}

/** Logs in like the login page does; returns the `name=value` to send as Cookie. */
async function login(s: ControlServer, origin: string): Promise<string> {
  const t = await loginToken(s);
  const res = await http(s.port, 'POST', '/login', { origin, host: new URL(origin).host }, JSON.stringify({ token: t.token }));
  expect(res.status).toBe(204);
  const setCookie = String(res.headers['set-cookie']);
  return setCookie.split(';')[0] as string;
}

describe('without the token or a session cookie', () => {
  it('the page, /metrics and the API answer 401; the page says how to log in', async () => {
    const { s } = await setup();
    const page = await http(s.port, 'GET', '/', { accept: 'text/html,application/xhtml+xml' });
    expect(page.status).toBe(401);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toContain('npx bksup dashboard');
    expect((await http(s.port, 'GET', '/')).status).toBe(401);
    expect((await http(s.port, 'GET', '/metrics')).status).toBe(401);
    expect((await http(s.port, 'GET', '/api/units')).status).toBe(401);
    expect((await http(s.port, 'GET', '/api/graph')).status).toBe(401);
    expect((await http(s.port, 'POST', '/api/login-tokens')).status).toBe(401);
    expect((await wsHandshake(`ws://127.0.0.1:${s.port}/api/events`, { origin: `http://127.0.0.1:${s.port}` })).status).toBe(401);
    // Only the named static files are public; anything else under /assets is not even looked up.
    expect((await http(s.port, 'GET', '/assets/nope.js')).status).toBe(401);
    expect((await http(s.port, 'GET', '/assets/..%2F..%2Fpackage.json')).status).toBe(401);
  });

  it('the login page and the static files are public, with a strict CSP and no framing', async () => {
    const { s, h } = await setup();
    const page = await http(s.port, 'GET', '/login?t=whatever', h);
    expect(page.status).toBe(200);
    expect(page.headers['content-security-policy']).toMatch(/default-src 'none'; script-src 'self'/);
    expect(page.headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    expect(page.body).toContain('/assets/login.js');
    const js = await http(s.port, 'GET', '/assets/app.js', h);
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toMatch(/^text\/javascript/);
    const again = await http(s.port, 'GET', '/assets/app.js', { ...h, 'if-none-match': String(js.headers.etag) });
    expect(again.status).toBe(304);
  });
});

describe('login', () => {
  it('a one-time token becomes an HttpOnly SameSite=Strict session cookie, once', async () => {
    const { s, origin, h } = await setup();
    const t = await loginToken(s);
    expect(t.path).toBe(`/login?t=${t.token}`);
    expect(t.url).toBe(`${origin}/login?t=${t.token}`);
    expect(t.token).not.toBe(s.token);
    expect(t.expiresAt).toBeGreaterThan(Date.now());

    const res = await http(s.port, 'POST', '/login', { origin, ...h }, JSON.stringify({ token: t.token }));
    expect(res.status).toBe(204);
    const setCookie = String(res.headers['set-cookie']);
    expect(setCookie).toMatch(new RegExp(`^${sessionCookieName(s.port)}=[0-9a-f]{64}; HttpOnly; SameSite=Strict; Path=/; Max-Age=\\d+$`));
    expect(setCookie).not.toContain(s.token);
    expect(setCookie).not.toContain(t.token);

    const again = await http(s.port, 'POST', '/login', { origin, ...h }, JSON.stringify({ token: t.token }));
    expect(again.status).toBe(401);
    expect(JSON.parse(again.body).error).toMatch(/unknown or was already used.*npx bksup dashboard/);
    expect((await http(s.port, 'POST', '/login', { origin, ...h }, JSON.stringify({ token: s.token }))).status).toBe(401);
    expect((await http(s.port, 'POST', '/login', { origin, ...h }, '{}')).status).toBe(400);
  });

  it('the cookie opens the page, the API and both WebSockets', async () => {
    const { s, origin, h } = await setup();
    const cookie = await login(s, origin);
    const page = await http(s.port, 'GET', '/', { cookie, ...h });
    expect(page.status).toBe(200);
    expect(page.body).toContain('/assets/app.js');
    expect(page.headers['content-security-policy']).toContain("connect-src 'self'");
    const units = await http(s.port, 'GET', '/api/units', { cookie, ...h });
    expect(JSON.parse(units.body).map((u: { name: string }) => u.name)).toEqual(['postgres', 'server']);
    const graph = await http(s.port, 'GET', '/api/graph', { cookie, ...h });
    expect(JSON.parse(graph.body)).toEqual({ levels: [['postgres', 'server']], edges: [] });
    expect((await http(s.port, 'GET', '/metrics', { cookie, ...h })).status).toBe(200);
    const ev = await wsHandshake(`ws://127.0.0.1:${s.port}/api/events`, { cookie, origin, ...h });
    expect(ev.status).toBe('open');
    expect(JSON.parse(ev.first as string)).toMatchObject({ type: 'snapshot' });
    const logs = await wsHandshake(`ws://127.0.0.1:${s.port}/api/logs?units=server&follow=1`, { cookie, origin, ...h });
    expect(logs.status).toBe('open');
  });

  it('a cookie alone never acts: unsafe methods need our Origin; a session cannot mint logins', async () => {
    const { s, origin, sup, h } = await setup();
    const cookie = await login(s, origin);
    const post = (headers: Record<string, string>) => http(s.port, 'POST', '/api/units/server/restart', { cookie, ...h, ...headers });
    expect((await post({})).status).toBe(403);
    expect((await post({ origin: 'http://127.0.0.1:3011' })).status).toBe(403);
    // The address the daemon listens on is not the dashboard's origin either.
    expect((await post({ origin: `http://127.0.0.1:${s.port}` })).status).toBe(403);
    expect((await post({ origin: 'http://evil.example' })).status).toBe(403);
    expect(sup.calls).toEqual([]);
    expect((await post({ origin })).status).toBe(200);
    expect(sup.calls).toEqual(['restart server']);
    const mint = await http(s.port, 'POST', '/api/login-tokens', { cookie, origin, ...h });
    expect(mint.status).toBe(403);
    expect(JSON.parse(mint.body).error).toMatch(/holders of the control token/);
  });

  it('cross-origin WebSockets are refused, with the cookie or not', async () => {
    const { s, origin, h } = await setup();
    const cookie = await login(s, origin);
    const url = `ws://127.0.0.1:${s.port}/api/events`;
    expect((await wsHandshake(url, { cookie, ...h, origin: 'http://127.0.0.1:3011' })).status).toBe(403);
    expect((await wsHandshake(url, { cookie, ...h, origin: `http://127.0.0.1:${s.port}` })).status).toBe(403);
    expect((await wsHandshake(url, { cookie, ...h, origin: 'http://evil.example' })).status).toBe(403);
    expect((await wsHandshake(`ws://127.0.0.1:${s.port}/api/logs`, { cookie, ...h, origin: 'null' })).status).toBe(403);
    // A cookie without any Origin is not a browser on our page either.
    expect((await wsHandshake(url, { cookie, ...h })).status).toBe(403);
  });

  it('the cookie is host-only and counts only under the dashboard\'s own name (not 127.0.0.1, not localhost, not a rebinding name)', async () => {
    const { s, origin, h, host } = await setup();
    expect(host).toMatch(new RegExp(`^bksup-[0-9a-f]{16}\\.localhost:${s.port}$`));
    const t = await loginToken(s);
    const res = await http(s.port, 'POST', '/login', { origin, ...h }, JSON.stringify({ token: t.token }));
    expect(String(res.headers['set-cookie'])).not.toMatch(/domain=/i); // host-only: never sent to another name
    const cookie = String(res.headers['set-cookie']).split(';')[0] as string;
    for (const other of [`127.0.0.1:${s.port}`, `localhost:${s.port}`, `[::1]:${s.port}`, `evil.example:${s.port}`, `bksup-0000000000000000.localhost:${s.port}`]) {
      expect((await http(s.port, 'GET', '/api/units', { cookie, host: other })).status, other).toBe(401);
      expect((await http(s.port, 'GET', '/login', { host: other })).status, other).toBe(403);
    }
    expect((await http(s.port, 'GET', '/api/units', { cookie, ...h })).status).toBe(200);
    // Two daemons never share a name.
    const second = await startControlServer({ host: '127.0.0.1', port: 0, allowRemote: false, stateDir: join(dir, 'second'), handle: new FakeSupervisor([{ name: 'a' }]), history: new TestHistory(new FakeSupervisor([{ name: 'a' }]).bus, 10) });
    expect(new URL(second.dashboardUrl).hostname).not.toBe(new URL(origin).hostname);
    await second.close();
    // Another daemon's cookie (another port) or a made-up one is nobody.
    const value = cookie.split('=')[1] as string;
    expect((await http(s.port, 'GET', '/api/units', { ...h, cookie: `${sessionCookieName(s.port + 1)}=${value}` })).status).toBe(401);
    expect((await http(s.port, 'GET', '/api/units', { ...h, cookie: `${sessionCookieName(s.port)}=${'0'.repeat(64)}` })).status).toBe(401);
  });

  it('a login link under 127.0.0.1 is sent on to the dashboard\'s name only while its token is valid (and not used up by that)', async () => {
    const { s, origin, h } = await setup();
    const t = await loginToken(s);
    const redirect = await http(s.port, 'GET', t.path);
    expect(redirect.status).toBe(307);
    expect(redirect.headers.location).toBe(`${origin}${t.path}`);
    expect((await http(s.port, 'GET', '/login?t=' + '0'.repeat(64))).status).toBe(403);
    expect((await http(s.port, 'GET', '/login')).status).toBe(403);
    expect((await http(s.port, 'POST', '/login', { origin: `http://127.0.0.1:${s.port}` }, JSON.stringify({ token: t.token }))).status).toBe(403);
    expect((await http(s.port, 'POST', '/login', { origin, ...h }, JSON.stringify({ token: t.token }))).status).toBe(204);
    expect((await http(s.port, 'GET', t.path)).status).toBe(403);
  });

  it('log out ends the session and clears the cookie', async () => {
    const { s, origin, h } = await setup();
    const cookie = await login(s, origin);
    expect((await http(s.port, 'GET', '/api/units', { cookie, ...h })).status).toBe(200);
    const out = await http(s.port, 'POST', '/logout', { cookie, origin, ...h });
    expect(out.status).toBe(204);
    expect(String(out.headers['set-cookie'])).toMatch(/Max-Age=0/);
    expect((await http(s.port, 'GET', '/api/units', { cookie, ...h })).status).toBe(401);
  });

  it('login tokens and sessions expire', async () => {
    let now = 1_000_000;
    const sessions = new SessionStore({ now: () => now, sessionTtlMs: 60_000 });
    const { s, origin, h } = await setup({ sessions });
    const stale = await loginToken(s);
    now += 2 * 60_000 + 1;
    const late = await http(s.port, 'POST', '/login', { origin, ...h }, JSON.stringify({ token: stale.token }));
    expect(late.status).toBe(401);
    expect(JSON.parse(late.body).error).toMatch(/expired/);
    const cookie = await login(s, origin);
    expect((await http(s.port, 'GET', '/api/units', { cookie, ...h })).status).toBe(200);
    now += 60_000;
    expect((await http(s.port, 'GET', '/api/units', { cookie, ...h })).status).toBe(401);
  });

  it('loginUrl is a working one-time link on this server', async () => {
    const { s, origin, h } = await setup();
    const url = new URL(s.loginUrl());
    expect(url.origin).toBe(origin);
    expect(url.pathname).toBe('/login');
    const res = await http(s.port, 'POST', '/login', { origin, ...h }, JSON.stringify({ token: url.searchParams.get('t') }));
    expect(res.status).toBe(204);
  });
});

describe('metrics.public', () => {
  it('opens /metrics to loopback scrapers under a loopback Host, and nothing else', async () => {
    const { s } = await setup({ metricsPublic: true });
    const m = await http(s.port, 'GET', '/metrics');
    expect(m.status).toBe(200);
    expect(m.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(m.body).toContain('bksup_unit_state{unit="server",state="running"} 1');
    expect((await http(s.port, 'GET', '/metrics', { host: `localhost:${s.port}` })).status).toBe(200);
    expect((await http(s.port, 'GET', '/metrics', { host: `evil.example:${s.port}` })).status).toBe(401);
    expect((await http(s.port, 'GET', '/api/units')).status).toBe(401);
    expect((await http(s.port, 'GET', '/')).status).toBe(401);
  });

  it('is off by default', async () => {
    const { s } = await setup();
    expect((await http(s.port, 'GET', '/metrics')).status).toBe(401);
    expect((await http(s.port, 'GET', '/metrics', { authorization: `Bearer ${s.token}` })).status).toBe(200);
  });
});

describe('bksup dashboard', () => {
  it('prints a working one-time link of the running daemon', async () => {
    const { s, origin, h } = await setup();
    const out = new PassThrough();
    const err = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    expect(await dashboardCommand(dir, { out, err })).toBe(0);
    const url = new URL(text.trim());
    expect(url.origin).toBe(origin);
    const res = await http(s.port, 'POST', '/login', { origin, ...h }, JSON.stringify({ token: url.searchParams.get('t') }));
    expect(res.status).toBe(204);
  });

  it('says so when no daemon runs', async () => {
    const out = new PassThrough();
    const err = new PassThrough();
    let text = '';
    err.on('data', (d: Buffer) => (text += d.toString()));
    expect(await dashboardCommand(dir, { out, err })).toBe(1);
    expect(text).toMatch(/no supervisor is running in .*: start one with bksup up \(npm run supervise in the bk-supervisor checkout\)/);
  });
});

describe('SessionStore', () => {
  it('keeps at most maxSessions, dropping the oldest; revoke ends one', () => {
    let n = 0;
    const store = new SessionStore({ random: () => `secret-${++n}`, maxSessions: 2 });
    const open = (): string => {
      const t = store.issueLoginToken();
      const r = store.redeem(t.token);
      if (!r.ok) throw new Error(r.reason);
      return r.session;
    };
    const a = open();
    const b = open();
    const c = open();
    expect([a, b, c].map((x) => store.isSession(x))).toEqual([false, true, true]);
    store.revoke(b);
    expect(store.isSession(b)).toBe(false);
    expect(store.isSession('secret-999')).toBe(false);
  });

  it('readCookie finds one cookie among several', () => {
    const req = { headers: { cookie: 'a=1; bksup_session_80=abc; b=2' } } as unknown as import('node:http').IncomingMessage;
    expect(readCookie(req, 'bksup_session_80')).toBe('abc');
    expect(readCookie(req, 'bksup_session_81')).toBeUndefined();
    expect(readCookie({ headers: {} } as unknown as import('node:http').IncomingMessage, 'a')).toBeUndefined();
  });
});
