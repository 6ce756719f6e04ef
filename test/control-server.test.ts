// The control server over real loopback HTTP and WebSockets: control.json, authentication,
// origins, the JSON routes and their errors, /api/events, client limits and closing.

import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { budgetFor } from '../src/control/connection-guard.ts';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startControlServer, type ControlLogger, type ControlServer } from '../src/control/server.ts';
import { tokenMatches, isLoopbackHost } from '../src/control/auth.ts';
import type { EventsServerFrame } from '../src/control/protocol.ts';
import { FakeSupervisor, LinePublisher, LogsClient, TestHistory, range } from './fixtures/control/harness.ts';
import { waitFor } from './helpers/wait.ts';

let dir: string;
let server: ControlServer | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bksup-control-'));
});

afterEach(async () => {
  await server?.close();
  server = undefined;
  await rm(dir, { recursive: true, force: true });
});

function recordingLogger(): ControlLogger & { text: () => string } {
  const lines: string[] = [];
  const rec = (obj: object, msg?: string): void => {
    lines.push(`${msg ?? ''} ${JSON.stringify(obj)}`);
  };
  return { info: rec, warn: rec, error: rec, text: () => lines.join('\n') };
}

async function setup(opts: { maxClients?: number; sup?: FakeSupervisor; logger?: ControlLogger; pendingTimeoutMs?: number; maxPendingConnections?: number } = {}) {
  const sup = opts.sup ?? new FakeSupervisor([{ name: 'postgres', kind: 'compose' }, { name: 'server' }, { name: 'web', state: 'stopped' }]);
  const history = new TestHistory(sup.bus, 1000);
  server = await startControlServer({
    host: '127.0.0.1',
    port: 0,
    allowRemote: false,
    stateDir: join(dir, '.supervisor'),
    handle: sup,
    history,
    ...(opts.maxClients ? { maxClients: opts.maxClients } : {}),
    ...(opts.logger ? { logger: opts.logger } : {}),
    ...(opts.pendingTimeoutMs ? { pendingTimeoutMs: opts.pendingTimeoutMs } : {}),
    ...(opts.maxPendingConnections ? { maxPendingConnections: opts.maxPendingConnections } : {}),
  });
  const s = server;
  const api = (path: string, init: RequestInit & { token?: string | null } = {}): Promise<Response> => {
    const headers = new Headers(init.headers);
    if (init.token !== null) headers.set('authorization', `Bearer ${init.token ?? s.token}`);
    return fetch(`${s.url}${path}`, { ...init, headers });
  };
  return { sup, server: s, api, pub: new LinePublisher(sup.bus) };
}

/** A raw HTTP exchange, for requests fetch would normalise away. */
function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    let out = '';
    sock.on('data', (d) => (out += d.toString()));
    sock.on('end', () => resolve(out));
    sock.on('close', () => resolve(out));
    sock.on('error', reject);
    sock.write(text);
  });
}

/** Opens a WebSocket and reports how the handshake went: 'open' or the HTTP status. */
function handshake(url: string, headers: Record<string, string> = {}): Promise<{ status: number | 'open'; body: string; ws: WebSocket }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.on('open', () => resolve({ status: 'open', body: '', ws }));
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ws }));
    });
    ws.on('error', (err) => {
      if (!/Unexpected server response/.test(err.message)) reject(err);
    });
  });
}

describe('pendingBudget: the bound on unauthenticated sockets follows the descriptor limit', () => {
  it('a sixteenth of the soft limit, at least 64 and at most 1024', () => {
    expect(budgetFor(1024)).toBe(64);
    expect(budgetFor(256)).toBe(64);
    expect(budgetFor(8192)).toBe(512);
    expect(budgetFor(1_048_576)).toBe(1024);
    expect(budgetFor(undefined)).toBe(1024);
  });
});

describe('control.json', () => {
  it('is written 0600 with host, port, pid, token, startedAt, and removed on close', async () => {
    const { server: s } = await setup();
    const file = join(dir, '.supervisor', 'control.json');
    expect(s.controlFile).toBe(file);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const info = JSON.parse(await readFile(file, 'utf8'));
    expect(info).toEqual({ host: '127.0.0.1', port: s.port, pid: process.pid, token: s.token, startedAt: expect.any(Number) });
    expect(s.token).toMatch(/^[0-9a-f]{64}$/);
    expect(await readdir(join(dir, '.supervisor'))).toEqual(['control.json']); // no temp file left
    await s.close();
    await expect(stat(file)).rejects.toMatchObject({ code: 'ENOENT' });
    await s.close(); // idempotent
  });

  it('refuses a non-loopback host unless allowRemote', async () => {
    const sup = new FakeSupervisor([{ name: 'a' }]);
    for (const host of ['0.0.0.0', '::', '192.168.1.10', 'example.com']) {
      await expect(startControlServer({ host, port: 0, allowRemote: false, stateDir: join(dir, 's'), handle: sup, history: new TestHistory(sup.bus, 10) })).rejects.toThrow(/not a loopback address.*allowRemote/);
    }
    expect(['127.0.0.1', '127.1.2.3', '::1', 'localhost', '[::1]'].every(isLoopbackHost)).toBe(true);
  });

  it('a port in use is a clear error', async () => {
    const { server: s } = await setup();
    const sup = new FakeSupervisor([{ name: 'a' }]);
    await expect(startControlServer({ host: '127.0.0.1', port: s.port, allowRemote: false, stateDir: join(dir, 's2'), handle: sup, history: new TestHistory(sup.bus, 10) })).rejects.toThrow(/port \d+ is in use/);
  });
});

describe('authentication and origin', () => {
  it('HTTP without a token, with a wrong one, or with ?token= gets 401', async () => {
    const { api, server: s } = await setup();
    const none = await api('/api/units', { token: null });
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    expect(await none.json()).toEqual({ error: expect.stringMatching(/missing or wrong token/) });
    expect((await api('/api/units', { token: 'x' })).status).toBe(401);
    expect((await api('/api/units', { token: s.token.replace(/.$/, (c) => (c === '0' ? '1' : '0')) })).status).toBe(401);
    expect((await api('/api/units', { token: `${s.token}0` })).status).toBe(401);
    expect((await fetch(`${s.url}/api/units?token=${s.token}`)).status).toBe(401);
    expect((await api('/api/shutdown', { method: 'POST', token: null })).status).toBe(401);
    expect((await api('/api/units')).status).toBe(200);
    expect((await fetch(`${s.url}/api/units`, { headers: { authorization: `bearer ${s.token}` } })).status).toBe(200);
  });

  it('tokenMatches is exact and length-safe', () => {
    expect(tokenMatches('abc', 'abc')).toBe(true);
    expect(tokenMatches('abc', 'abcd')).toBe(false);
    expect(tokenMatches('', 'abc')).toBe(false);
  });

  it('WebSocket without a token or with a wrong one gets 401; ?token= works on upgrades', async () => {
    const { server: s } = await setup();
    const base = `ws://127.0.0.1:${s.port}`;
    expect((await handshake(`${base}/api/logs`)).status).toBe(401);
    expect((await handshake(`${base}/api/events`, { authorization: 'Bearer nope' })).status).toBe(401);
    expect((await handshake(`${base}/api/logs?token=nope`)).status).toBe(401);
    const ok = await handshake(`${base}/api/logs?token=${s.token}&follow=1`);
    expect(ok.status).toBe('open');
    ok.ws.terminate();
  });

  it('WebSocket from a foreign Origin gets 403; our own origins are fine', async () => {
    const { server: s } = await setup();
    const base = `ws://127.0.0.1:${s.port}`;
    const auth = { authorization: `Bearer ${s.token}` };
    for (const origin of ['http://evil.example', `http://evil.example:${s.port}`, `http://127.0.0.1:${s.port + 1}`, 'null']) {
      const r = await handshake(`${base}/api/logs`, { ...auth, origin });
      expect(r.status, origin).toBe(403);
    }
    for (const origin of [`http://127.0.0.1:${s.port}`, `http://localhost:${s.port}`]) {
      const r = await handshake(`${base}/api/events`, { ...auth, origin });
      expect(r.status, origin).toBe('open');
      r.ws.terminate();
    }
  });

  it('upgrades to unknown paths get 404, and beyond maxClients 503', async () => {
    const { server: s } = await setup({ maxClients: 2 });
    const auth = { authorization: `Bearer ${s.token}` };
    expect((await handshake(`ws://127.0.0.1:${s.port}/api/units`, auth)).status).toBe(404);
    expect((await handshake(`ws://127.0.0.1:${s.port}/nope`, auth)).status).toBe(404);
    const a = await handshake(`ws://127.0.0.1:${s.port}/api/events`, auth);
    const b = await handshake(`ws://127.0.0.1:${s.port}/api/events`, auth);
    const c = await handshake(`ws://127.0.0.1:${s.port}/api/events`, auth);
    expect([a.status, b.status, c.status]).toEqual(['open', 'open', 503]);
    a.ws.terminate();
    b.ws.terminate();
  });
});

describe('HTTP routes', () => {
  it('GET /api/units is the snapshot', async () => {
    const { api, sup } = await setup();
    const res = await api('/api/units');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual(sup.snapshot({ processes: true }));
  });

  it('POST start/stop/restart call the supervisor; 409 when not possible; 404 names the known units', async () => {
    const { api, sup } = await setup();
    const r1 = await api('/api/units/server/restart', { method: 'POST' });
    expect(r1.status).toBe(200);
    expect(await r1.json()).toEqual({ ok: true, unit: 'server', action: 'restart' });
    expect((await api('/api/units/web/start', { method: 'POST' })).status).toBe(200);
    expect((await api('/api/units/web/stop', { method: 'POST' })).status).toBe(200);
    const again = await api('/api/units/web/stop', { method: 'POST' });
    expect(again.status).toBe(409);
    expect(await again.json()).toEqual({ error: 'web is already stopped' });
    const unknown = await api('/api/units/x/restart', { method: 'POST' });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ error: 'unknown unit "x" (known: postgres, server, web)' });
    expect(sup.calls).toEqual(['restart server', 'start web', 'stop web', 'stop web']);
  });

  it('POST /api/shutdown answers 202, then shuts the supervisor down once', async () => {
    const { api, sup } = await setup();
    const res = await api('/api/shutdown', { method: 'POST' });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ ok: true, message: 'shutting down' });
    await waitFor(() => sup.shutdownReasons.length === 1);
    expect(sup.shutdownReasons).toEqual(['shutdown requested over the control API']);
    expect((await api('/api/shutdown', { method: 'POST' })).status).toBe(202);
    expect(sup.shutdownReasons).toHaveLength(1);
  });

  it.each([
    ['/api/units/..%2F..%2Fetc/restart', 'POST', 400, /invalid unit name "..\/..\/etc"/],
    ['/api/units/%E0%A4%A/restart', 'POST', 400, /malformed percent-encoding/],
    ['/api/units/.hidden/stop', 'POST', 400, /invalid unit name/],
    ['/api/units/server/explode', 'POST', 404, /no such action "explode"/],
    ['/api/units/server/restart/extra', 'POST', 404, /no such endpoint/],
    ['/api/nope', 'GET', 404, /no such endpoint/],
    ['/index.php', 'GET', 404, /no such endpoint/],
    ['/api/units/server/restart', 'GET', 405, /method GET not allowed here: use POST/],
    ['/api/units', 'DELETE', 405, /use GET, HEAD/],
    ['/api/shutdown', 'GET', 405, /use POST/],
    ['/api/logs', 'GET', 426, /WebSocket endpoint/],
  ])('%s %s → %i', async (path, method, status, error) => {
    const { api, sup } = await setup();
    const res = await api(path, { method });
    expect(res.status).toBe(status);
    expect(((await res.json()) as { error: string }).error).toMatch(error);
    if (status === 405) expect(res.headers.get('allow')).toBe(String(error).includes('GET, HEAD') ? 'GET, HEAD' : 'POST');
    expect(sup.calls).toEqual([]);
  });

  it('traversal with raw or encoded dots never reaches a unit (sent raw: fetch would normalise them)', async () => {
    const { server: s, sup } = await setup();
    const post = (path: string): Promise<string> => raw(s.port, `POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    expect(await post('/api/units/../../etc/restart')).toMatch(/^HTTP\/1.1 404/);
    expect(await post('/api/units/%2e%2e/restart')).toMatch(/^HTTP\/1.1 400[^]*invalid unit name/);
    expect(await post('/api/units/server%2F..%2F..%2Fx/restart')).toMatch(/^HTTP\/1.1 400[^]*invalid unit name/);
    expect(await post('/api/units/server%00/restart')).toMatch(/^HTTP\/1.1 400[^]*invalid unit name/);
    expect(sup.calls).toEqual([]);
  });

  it('bodies: empty or a JSON object; malformed → 400; over 64 KiB → 413', async () => {
    const { api } = await setup();
    expect((await api('/api/units/server/restart', { method: 'POST', body: '{}' })).status).toBe(200);
    const bad = await api('/api/units/server/restart', { method: 'POST', body: '{"a":' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: 'request body is not valid JSON' });
    expect((await api('/api/units/server/restart', { method: 'POST', body: '[1,2]' })).status).toBe(400);
    const big = await api('/api/units/server/restart', { method: 'POST', body: JSON.stringify({ pad: 'x'.repeat(100 * 1024) }) });
    expect(big.status).toBe(413);
  });

  it('a body over the limit without Content-Length (chunked) is cut off with 413', async () => {
    const { server: s } = await setup();
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: s.port, method: 'POST', path: '/api/units/server/restart', headers: { authorization: `Bearer ${s.token}` } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      const chunk = 'x'.repeat(16 * 1024);
      for (let i = 0; i < 6; i++) req.write(chunk);
      req.end();
    });
    expect(status).toBe(413);
  });

  it('after a 413 the socket is closed, also while the client keeps sending', async () => {
    const { server: s } = await setup();
    const dashHost = new URL(s.dashboardUrl).host;
    // A refused request (wrong Host for the dashboard) with an endless body is cut off the same way.
    for (const [path, host] of [['/api/units/server/restart', `127.0.0.1:${s.port}`], ['/login', dashHost], ['/login', `127.0.0.1:${s.port}`]] as const) {
      const sock = connect(s.port, '127.0.0.1');
      let out = '';
      sock.on('data', (d: Buffer) => (out += d.toString()));
      sock.on('error', () => {});
      const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
      sock.write(`POST ${path} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${s.token}\r\nTransfer-Encoding: chunked\r\n\r\n`);
      const chunk = 'x'.repeat(16 * 1024);
      // Keeps sending (never ends the body) until the server hangs up.
      const pump = setInterval(() => {
        if (sock.writable) sock.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
      }, 5);
      await closed;
      clearInterval(pump);
      expect(out, `${path} under ${host}`).toMatch(host === dashHost || path.startsWith('/api') ? /^HTTP\/1.1 413/ : /^HTTP\/1.1 403/);
    }
  });

  it('a flood of idle sockets is bounded (oldest closed first) and the token holder is still served', async () => {
    // The bound a laptop's 1024 descriptors give (see pendingBudget).
    const { server: s, api } = await setup({ maxPendingConnections: 64 });
    const flood: Socket[] = [];
    let closedByServer = 0;
    for (let i = 0; i < 1000; i++) {
      const sock = connect(s.port, '127.0.0.1');
      sock.on('error', () => {});
      sock.once('close', () => closedByServer++);
      flood.push(sock);
      if (i % 100 === 99) await new Promise((r) => setImmediate(r));
    }
    try {
      await waitFor(() => closedByServer >= 900, { timeout: 30_000, message: `the server closing the flood (${closedByServer} closed)` });
      expect(s.stats().sockets).toBeLessThanOrEqual(64 + 8);
      expect(s.stats().evictedSockets).toBeGreaterThanOrEqual(900);
      for (let i = 0; i < 5; i++) expect((await api('/api/units')).status).toBe(200);
      const ws = await handshake(`ws://127.0.0.1:${s.port}/api/events`, { authorization: `Bearer ${s.token}` });
      expect(ws.status).toBe('open');
      ws.ws.close();
    } finally {
      for (const sock of flood) sock.destroy();
    }
  });

  it('a socket that never authenticates is closed after pendingTimeoutMs', async () => {
    const { server: s, api } = await setup({ pendingTimeoutMs: 300 });
    const idle = connect(s.port, '127.0.0.1');
    idle.on('error', () => {});
    const slowloris = connect(s.port, '127.0.0.1');
    slowloris.on('error', () => {});
    slowloris.write('GET /api/units HTTP/1.1\r\nHost: x\r\n');
    await Promise.all([idle, slowloris].map((sock) => new Promise<void>((resolve) => sock.once('close', () => resolve()))));
    expect(s.stats().pendingSockets).toBe(0);
    expect((await api('/api/units')).status).toBe(200);
  });

  it('garbage on the socket gets 400 and the server keeps serving', async () => {
    const { server: s, api } = await setup();
    expect(await raw(s.port, 'NOT HTTP AT ALL\r\n\r\n')).toMatch(/^HTTP\/1.1 400/);
    expect(await raw(s.port, `GET /api/units HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`)).toMatch(/^HTTP\/1.1 431/);
    expect((await api('/api/units')).status).toBe(200);
  });

  it('a handler that throws gives 500, the token never reaches the log, and the server keeps serving', async () => {
    const logger = recordingLogger();
    const sup = new FakeSupervisor([{ name: 'a' }]);
    let explode = true;
    const snapshot = sup.snapshot.bind(sup);
    sup.snapshot = () => {
      if (explode) throw new Error(`boom with Bearer ${server?.token} inside`);
      return snapshot();
    };
    const { api, server: s } = await setup({ sup, logger });
    const res = await api('/api/units');
    expect(res.status).toBe(500);
    expect(((await res.json()) as { error: string }).error).toMatch(/internal error/);
    expect(logger.text()).toContain('boom');
    expect(logger.text()).not.toContain(s.token);
    explode = false;
    expect((await api('/api/units')).status).toBe(200);
  });
});

describe('WebSockets', () => {
  it('/api/events: a snapshot first, then every state and verify event', async () => {
    const { server: s, api, sup } = await setup();
    const frames: EventsServerFrame[] = [];
    const ws = new WebSocket(`ws://127.0.0.1:${s.port}/api/events`, { headers: { authorization: `Bearer ${s.token}` } });
    ws.on('message', (d) => frames.push(JSON.parse(d.toString())));
    await waitFor(() => frames.length === 1);
    expect(frames[0]).toEqual({ type: 'snapshot', instance: s.instance, units: sup.snapshot() });
    await api('/api/units/server/restart', { method: 'POST' });
    sup.bus.publishEvent({ type: 'verify', ts: 1, ok: true, results: [{ name: 'login', ok: true, detail: 'token' }] });
    await waitFor(() => frames.length === 3);
    expect(frames[1]).toMatchObject({ type: 'state', unit: 'server', state: 'running', prev: 'running', kind: 'process' });
    expect(frames[2]).toEqual({ type: 'verify', ts: 1, ok: true, results: [{ name: 'login', ok: true, detail: 'token' }] });
    ws.terminate();
  });

  it('/api/events: a client that stops reading is cut off (1013) instead of buffered; others get everything', async () => {
    const { server: s, sup } = await setup();
    const url = `ws://127.0.0.1:${s.port}/api/events`;
    const headers = { authorization: `Bearer ${s.token}` };
    const good = new WebSocket(url, { headers });
    const slow = new WebSocket(url, { headers });
    let goodCount = 0;
    let slowClose: number | undefined;
    good.on('message', () => goodCount++);
    slow.on('close', (code) => (slowClose = code));
    slow.on('error', () => undefined);
    await waitFor(() => goodCount === 1 && slow.readyState === WebSocket.OPEN && s.stats().eventClients === 2);
    (slow as unknown as { _socket: Socket })._socket.pause();
    const detail = 'x'.repeat(64 * 1024);
    // ~32 MB of events: far more than the kernel buffers and the 1 MiB high-water mark.
    const TOTAL = 500;
    for (let i = 0; i < TOTAL; i++) {
      sup.bus.publishEvent({ type: 'verify', ts: i, ok: true, results: [{ name: `check ${i}`, ok: true, detail }] });
      if (i % 10 === 0) await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => s.stats().eventClients === 1, { message: 'slow events client dropped' });
    await waitFor(() => goodCount === TOTAL + 1, { message: 'every event on the good client' });
    (slow as unknown as { _socket: Socket })._socket.resume();
    await waitFor(() => slowClose !== undefined);
    expect([1013, 1006]).toContain(slowClose);
    good.terminate();
  });

  it('100 clients at once all get their history and every live line', async () => {
    const { server: s, pub } = await setup();
    pub.publishN('server', 20);
    const clients = Array.from({ length: 100 }, (_, i) => new LogsClient(`ws://127.0.0.1:${s.port}/api/logs?units=${i % 2 ? 'server' : 'server,web'}&tail=5&follow=1`, { token: s.token }));
    await Promise.all(clients.map((c) => c.opened));
    await waitFor(() => clients.every((c) => c.hello), { message: '100 hellos' });
    for (let i = 0; i < 10; i++) pub.publishN('server', 10);
    pub.publishN('web', 3);
    for (const c of clients) await c.waitForSeq('server', 120);
    for (const [i, c] of clients.entries()) {
      expect(c.seqs('server')).toEqual(range(16, 120));
      if (i % 2 === 0) await c.waitForSeq('web', 3);
      expect(c.seqs('web')).toEqual(i % 2 ? [] : [1, 2, 3]);
      expect(c.problems).toEqual([]);
    }
    expect(s.stats().logClients).toHaveLength(100);
    for (const c of clients) c.close();
    await waitFor(() => s.stats().logClients.length === 0);
  });

  it('close() says goodbye (1001) to connected clients', async () => {
    const { server: s } = await setup();
    const c = new LogsClient(`ws://127.0.0.1:${s.port}/api/logs?follow=1`, { token: s.token });
    await waitFor(() => c.hello);
    await s.close();
    expect((await c.waitClosed()).code).toBe(1001);
  });
});
