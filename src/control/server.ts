// The control server: one node http server for the JSON API and both WebSockets. Authentication
// happens on the raw request, before any route runs and before a WebSocket upgrade is accepted
// (the `ws` server runs with noServer and only sees sockets that passed), so an unauthenticated
// peer never gets further than a 401.
//
//   connection ──► ConnectionGuard: pending until an authenticated request (bounded, oldest closed)
//   request ──► GET /login?t=<valid> under 127.0.0.1 ─307─► the same under the dashboard's name
//           ──► /login, /logout, /assets/*: dashboard's Host? ─403─► origin? ─403─► its public part
//           ──► token, or session cookie (dashboard's Host only)? ─401─► origin? ─403─►
//               cookie + unsafe method without Origin? ─403─► / (the page), /metrics, http.ts routes
//           (/metrics without either: allowed when metricsPublic, from loopback, to a loopback Host)
//   upgrade ──► token (header or ?token=) or session cookie (own Host, own Origin)? ─401─►
//               origin? ─403─► path? ─404─► client limit? ─503─►
//               ws handshake ──► /api/logs: LogStreamHub   /api/events: EventStreamHub
//               /api/attach: token only ─403─► unit tty and free? ─404/409─► AttachHub
//
// Browsers authenticate with the session cookie of src/control/sessions.ts, never the token.
// Cookies are not isolated by port: one set by 127.0.0.1:PORT would reach every server on
// 127.0.0.1 (BK-Lite's web, Django, any dev server, and their request logs). So on loopback the
// dashboard lives under a host name of this daemon's own, `bksup-<16 random hex>.localhost`
// (browsers resolve *.localhost to loopback themselves): the cookie is host-only for that name,
// and it counts only when the Host header is that name and our port. Under 127.0.0.1 the
// dashboard's parts answer 403, except that a login link with a valid token is redirected to
// the named host (so the name is only told to holders of a login token). A cookie alone is still
// never enough to act: unsafe methods need an Origin header that is the dashboard's.
//
// On listen it writes `.supervisor/control.json` (0600; it holds the token); close() removes it.

import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import type { SupervisorHandle } from '../units/types.ts';
import { redactText } from '../util/redact.ts';
import { handlePublic, isPagePath, isPublicPath, pathOf, sendPage, sendUnauthorized } from '../dashboard/serve.ts';
import { allowedOrigins, hostPort, isAuthorized, isLoopbackHost, newToken, originAllowed } from './auth.ts';
import { removeControlFile, writeControlFile } from './control-file.ts';
import type { LogHistory } from './history.ts';
import { type ReloadControl, handleApiRequest, route, sendJson } from './http.ts';
import { ConnectionGuard, pendingBudget } from './connection-guard.ts';
import { CLOSE, type ControlFile, type LoginTokenResponse } from './protocol.ts';
import { LOGIN_TOKEN_TTL_MS, SessionStore, readCookie, sessionCookieName } from './sessions.ts';
import { ATTACH_PATH } from './attach-protocol.ts';
import { AttachHub, type AttachCheck } from './ws-attach.ts';
import { EventStreamHub } from './ws-events.ts';
import { LogStreamHub, type LogClientStats, type LogStreamLimits } from './ws-logs.ts';

/** The slice of a pino logger the control plane uses. */
export interface ControlLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface ControlServerOptions {
  host: string;
  /** 0 = any free port. */
  port: number;
  /** Listen on a non-loopback address (the token is then the only protection). */
  allowRemote: boolean;
  /** `.supervisor/`: control.json goes here. */
  stateDir: string;
  handle: SupervisorHandle;
  history: LogHistory;
  /**
   * Per unit, the last seq before this daemon run began: a client resuming with the seqs of an
   * earlier run starts after it. Default: each unit's last seq when the server starts. The daemon
   * starts its units before this server, so it passes an empty map (every run's seqs start at 1).
   */
  baseSeq?: ReadonlyMap<string, number>;
  logger?: ControlLogger;
  /** Identifies this daemon run to log clients (seqs restart with a new daemon). Default: random. */
  instance?: string;
  /** Default: now. */
  startedAt?: number;
  limits?: Partial<LogStreamLimits>;
  /** Most WebSocket clients at once (default 500). */
  maxClients?: number;
  /** Ping interval; a client that missed a whole interval is dropped (default 30 s). */
  heartbeatMs?: number;
  /** WebSocket frames from clients above this are refused with 1009 (default 64 KiB). */
  maxPayload?: number;
  /** `/metrics`; without it the endpoint answers 404. */
  metrics?: MetricsEndpoint;
  /** `metrics.public`: `/metrics` without a token, for scrapers on this machine only. */
  metricsPublic?: boolean;
  /** Serve the dashboard (`/`, `/login`, `/assets/*`; default true). */
  dashboard?: boolean;
  /** Dashboard sessions (default: a fresh store; tests inject one with a clock). */
  sessions?: SessionStore;
  /** The dashboard's host name on loopback (default `bksup-<random>.localhost`). */
  dashboardHost?: string;
  /** Sockets without an authenticated request yet: most at once (default: a sixteenth of the descriptor limit, 64–1024; the oldest go first). */
  maxPendingConnections?: number;
  /** …and how long one may stay so (default 10 s). */
  pendingTimeoutMs?: number;
  /** Every socket at once (default maxClients + maxPendingConnections + 128); beyond, new ones are closed at once. */
  maxConnections?: number;
  /** `POST /api/reload` and `GET /api/reload`; without it they answer 404. */
  reload?: ReloadControl;
}

/** What serves `/metrics` (src/metrics.ts); it gets the WebSocket numbers from here. */
export interface MetricsEndpoint {
  readonly contentType: string;
  render(ws: ControlServerStats): Promise<string>;
}

export interface ControlServerStats {
  logClients: LogClientStats[];
  eventClients: number;
  sockets: number;
  /** Sockets that have not sent an authenticated request yet (bounded). */
  pendingSockets: number;
  /** Pending sockets closed for idling or crowding (never goes down). */
  evictedSockets: number;
  /** Lines log clients were ever told (gap) no longer exist (never goes down). */
  droppedLinesTotal: number;
}

export interface ControlServer {
  /** The address actually listened on. */
  host: string;
  port: number;
  token: string;
  instance: string;
  /** `http://host:port`. */
  url: string;
  /** Where browsers open the dashboard: `http://bksup-<random>.localhost:port` on loopback. */
  dashboardUrl: string;
  controlFile: string;
  stats(): ControlServerStats;
  /**
   * A one-time dashboard login link, `http://host:port/login?t=…` (loopback spelled out when the
   * server listens on every interface).
   */
  loginUrl(ttlMs?: number): string;
  /** Closes every client (1001), stops listening and removes control.json. Idempotent. */
  close(): Promise<void>;
}

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 409: 'Conflict', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 500: 'Internal Server Error', 503: 'Service Unavailable' };

/** Refuses an upgrade with a plain HTTP answer on the raw socket. */
function refuseUpgrade(socket: Duplex, status: number, error: string, headers: Record<string, string> = {}): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({ error });
  const head = [
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}`,
    'Connection: close',
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
  // Do not wait for a peer that never reads.
  setTimeout(() => socket.destroy(), 2000).unref();
}

function listen(server: Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      const why = err.code === 'EADDRINUSE' ? `port ${port} is in use: pick another control.port (0 = any free port)` : err.code === 'EADDRNOTAVAIL' ? `${host} is not an address of this machine` : err.message;
      reject(new Error(`control server cannot listen on ${hostPort(host, port)}: ${why}`));
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ host, port, exclusive: true });
  });
}

/**
 * Drops a refused request's body; a body still not over a second after the answer went out (a
 * client that keeps sending) costs its socket, rather than being read for nothing forever.
 */
function discardBody(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  res.once('finish', () => {
    if (req.complete) return;
    const timer = setTimeout(() => req.socket.destroy(), 1000);
    timer.unref();
    req.once('end', () => clearTimeout(timer));
    req.socket.once('close', () => clearTimeout(timer));
  });
}

/** The host name of a Host header (`127.0.0.1:8080` → `127.0.0.1`, `[::1]:80` → `[::1]`). */
function hostName(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end < 0 ? host : host.slice(0, end + 1);
  }
  const colon = host.indexOf(':');
  return colon < 0 ? host : host.slice(0, colon);
}

export async function startControlServer(opts: ControlServerOptions): Promise<ControlServer> {
  if (!opts.allowRemote && !isLoopbackHost(opts.host)) {
    throw new Error(
      `control.host ${JSON.stringify(opts.host)} is not a loopback address: the control API can stop and start everything, ` +
        'so it only listens on 127.0.0.1/::1/localhost unless you set control.allowRemote: true (the token is then the only protection)',
    );
  }
  const token = newToken();
  const instance = opts.instance ?? randomUUID();
  const startedAt = opts.startedAt ?? Date.now();
  const { handle, history, logger } = opts;
  const maxClients = opts.maxClients ?? 500;
  const redact = (text: string): string => redactText(text, [token]);

  const baseSeq = new Map<string, number>(opts.baseSeq ?? []);
  if (opts.baseSeq === undefined) {
    for (const unit of handle.unitNames()) {
      try {
        baseSeq.set(unit, history.lastSeq(unit));
      } catch {
        baseSeq.set(unit, 0);
      }
    }
  }

  const logHub = new LogStreamHub({ bus: handle.bus, handle, history, instance, startedAt, baseSeq, limits: opts.limits, logger });
  const eventHub = new EventStreamHub({ bus: handle.bus, handle, instance, logger });
  const attachHub = new AttachHub({ bus: handle.bus, handle, logger });
  // ws is loaded with the first WebSocket client: a daemon nobody watches (most of them) is
  // ~5 MiB smaller without it, as with prom-client and the first scrape.
  let wss: WebSocketServer | undefined;
  let wssLoading: Promise<WebSocketServer> | undefined;
  const loadWss = (): Promise<WebSocketServer> =>
    (wssLoading ??= import('ws').then(({ WebSocketServer }) => (wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxPayload ?? 64 * 1024, perMessageDeflate: false, clientTracking: true }))));
  const wsClients = (): Set<WebSocket> => wss?.clients ?? new Set();
  let upgrading = 0;
  const server = createServer();
  // Slow-loris bounds; WebSocket connections are exempt once upgraded.
  server.headersTimeout = 15_000;
  server.requestTimeout = 30_000;
  const maxPending = opts.maxPendingConnections ?? pendingBudget;
  server.maxConnections = opts.maxConnections ?? maxClients + (typeof maxPending === 'number' ? maxPending : 1024) + 128;
  const guard = new ConnectionGuard({ maxPending, timeoutMs: opts.pendingTimeoutMs ?? 10_000 });
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    guard.admit(socket);
  });

  let shutdownRequested = false;
  const requestShutdown = (reason: string): void => {
    if (shutdownRequested) return;
    shutdownRequested = true;
    logger?.info({ reason }, 'control: shutdown requested');
    handle.shutdown(reason).catch((err: unknown) => logger?.error({ err: redact(String(err)) }, 'control: shutdown failed'));
  };

  let origins = new Set<string>();
  /** `host:port` spellings of this server (the origins without the scheme). */
  let hosts = new Set<string>();
  let cookieName = '';
  const sessions = opts.sessions ?? new SessionStore();
  const dashboardName = (opts.dashboardHost ?? `bksup-${randomBytes(8).toString('hex')}.localhost`).toLowerCase();
  /** `host:port` under which the dashboard (its cookie above all) answers, and its origin. */
  let dashHosts = new Set<string>();
  let dashOrigin = '';
  const issueLoginToken = (ttlMs = LOGIN_TOKEN_TTL_MS): LoginTokenResponse => {
    const t = sessions.issueLoginToken(ttlMs);
    const path = `/login?t=${t.token}`;
    return { token: t.token, expiresAt: t.expiresAt, path, url: `${dashOrigin}${path}` };
  };

  /**
   * The Host header names this server. A DNS-rebinding page reaches 127.0.0.1 under its own host
   * name: it must get neither the public dashboard parts nor public metrics.
   */
  const hostOk = (req: IncomingMessage): boolean => typeof req.headers.host === 'string' && hosts.has(req.headers.host.toLowerCase());
  const dashHostOk = (req: IncomingMessage): boolean => typeof req.headers.host === 'string' && dashHosts.has(req.headers.host.toLowerCase());
  const authenticate = (req: IncomingMessage, allowQuery: boolean): 'token' | 'cookie' | undefined => {
    if (isAuthorized(req, token, allowQuery)) return 'token';
    const session = cookieName === '' ? undefined : readCookie(req, cookieName);
    // A browser that sent it under any other name (127.0.0.1:OURPORT included) got it from
    // somewhere it should not have.
    if (session !== undefined && dashHostOk(req) && sessions.isSession(session)) return 'cookie';
    return undefined;
  };
  /** A cookie-authenticated request from a page must come from the dashboard's own origin. */
  const cookieOriginOk = (req: IncomingMessage): boolean => req.headers.origin === undefined || req.headers.origin.toLowerCase() === dashOrigin;
  /** GET /login?t=<valid token> under 127.0.0.1 (an older link, a typed address): on to the named host. */
  const redirectToDashboard = (req: IncomingMessage, res: ServerResponse, path: string): boolean => {
    const method = req.method ?? 'GET';
    if (path !== '/login' || (method !== 'GET' && method !== 'HEAD') || !hostOk(req) || dashHostOk(req)) return false;
    const q = (req.url ?? '').indexOf('?');
    const t = q < 0 ? null : new URLSearchParams((req.url ?? '').slice(q + 1)).get('t');
    if (t === null || t.length > 256 || !sessions.isLoginToken(t)) return false;
    req.resume();
    res.writeHead(307, { location: `${dashOrigin}${req.url ?? '/'}`, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' });
    res.end();
    return true;
  };
  const refuse = (req: IncomingMessage, res: ServerResponse, status: number, error: string): void => {
    discardBody(req, res);
    sendJson(res, status, { error });
  };

  server.on('request', (req, res) => {
    try {
      const path = pathOf(req.url ?? '/');
      if (opts.dashboard !== false && isPublicPath(path)) {
        if (redirectToDashboard(req, res, path)) return;
        if (!dashHostOk(req)) return refuse(req, res, 403, 'the dashboard answers only under its own address: open the link that npx bksup dashboard prints');
        if (!cookieOriginOk(req)) return refuse(req, res, 403, 'cross-origin requests are refused');
        void handlePublic(req, res, path, { sessions, cookieName }).catch((err: unknown) => {
          logger?.error({ err: redact(String(err)) }, 'control: dashboard request failed');
          if (!res.headersSent) sendJson(res, 500, { error: 'internal error in the supervisor (see logs/supervisor.log)' });
          else res.destroy();
        });
        return;
      }
      const auth = authenticate(req, false);
      const publicMetrics = path === '/metrics' && opts.metricsPublic === true && isLoopbackHost(req.socket.remoteAddress ?? '') && isLoopbackHost(hostName(req.headers.host ?? ''));
      // A scraper's keep-alive socket (metrics.public) is as welcome as an authenticated one.
      if (auth !== undefined || publicMetrics) guard.trust(req.socket);
      if (auth === undefined && !publicMetrics) {
        discardBody(req, res);
        return sendUnauthorized(req, res, 'missing or wrong token: send Authorization: Bearer <token from .supervisor/control.json>');
      }
      if (!originAllowed(req, origins) || (auth === 'cookie' && !cookieOriginOk(req))) return refuse(req, res, 403, 'cross-origin requests are refused');
      const method = req.method ?? 'GET';
      if (auth === 'cookie' && method !== 'GET' && method !== 'HEAD' && req.headers.origin === undefined) {
        return refuse(req, res, 403, 'a browser request that changes something must carry an Origin header');
      }
      if (path === '/metrics') {
        req.resume();
        if (method !== 'GET' && method !== 'HEAD') return sendJson(res, 405, { error: `method ${method} not allowed here: use GET` }, { allow: 'GET, HEAD' });
        if (!opts.metrics) return sendJson(res, 404, { error: 'metrics are not enabled in this server' });
        const m = opts.metrics;
        void m.render(stats()).then(
          (text) => {
            res.writeHead(200, { 'content-type': m.contentType, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
            res.end(method === 'HEAD' ? undefined : text);
          },
          (err: unknown) => {
            logger?.error({ err: redact(String(err)) }, 'control: rendering metrics failed');
            sendJson(res, 500, { error: 'rendering the metrics failed (see logs/supervisor.log)' });
          },
        );
        return;
      }
      if (opts.dashboard !== false && isPagePath(path)) {
        req.resume();
        if (method !== 'GET' && method !== 'HEAD') return sendJson(res, 405, { error: `method ${method} not allowed here: use GET` }, { allow: 'GET, HEAD' });
        return sendPage(req, res, 'index');
      }
      if (auth === undefined) return refuse(req, res, 401, 'missing or wrong token');
      void handleApiRequest(req, res, { handle, logger, redact, requestShutdown, auth, ...(opts.reload ? { reload: opts.reload } : {}), ...(opts.dashboard !== false ? { issueLoginToken: () => issueLoginToken() } : {}) });
    } catch (err) {
      logger?.error({ err: redact(String(err)) }, 'control: request failed');
      res.destroy();
    }
  });

  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    setTimeout(() => socket.destroy(), 2000).unref();
  });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    try {
      const auth = authenticate(req, true);
      if (auth === undefined) return refuseUpgrade(socket, 401, 'missing or wrong token', { 'WWW-Authenticate': 'Bearer' });
      guard.trust(req.socket);
      if (!originAllowed(req, origins) || (auth === 'cookie' && (req.headers.origin === undefined || !cookieOriginOk(req)))) return refuseUpgrade(socket, 403, 'cross-origin WebSocket refused');
      const r = route(req.url ?? '/');
      if (r.kind !== 'websocket') return refuseUpgrade(socket, 404, r.kind === 'bad' ? r.error : 'not a WebSocket endpoint');
      if (wsClients().size + upgrading >= maxClients) return refuseUpgrade(socket, 503, `too many clients (${maxClients})`);
      const url = req.url ?? '';
      const q = url.indexOf('?');
      const params = new URLSearchParams(q >= 0 ? url.slice(q + 1) : '');
      let attach: (AttachCheck & { ok: true }) | undefined;
      if (r.path === ATTACH_PATH) {
        // Typing into a unit is for the CLI: a browser session (a cookie any page of this site
        // carries along) never gets a keyboard.
        if (auth !== 'token') return refuseUpgrade(socket, 403, 'attaching needs the control token: use bksup attach');
        const checked = attachHub.check(params);
        if (!checked.ok) return refuseUpgrade(socket, checked.status, checked.error);
        attach = checked;
      }
      const attachOk = attach;
      upgrading++;
      void loadWss()
        .then((wsServer) => {
          upgrading--;
          if (closing !== undefined || socket.destroyed) return void socket.destroy();
          wsServer.handleUpgrade(req, socket, head, (ws: WebSocket) => {
            alive.set(ws, true);
            ws.on('pong', () => alive.set(ws, true));
            ws.on('error', (err) => logger?.warn({ err: redact(String(err)) }, 'control: WebSocket client error'));
            try {
              if (r.path === '/api/logs') logHub.attach(ws, params);
              else if (attachOk) attachHub.attach(ws, attachOk);
              else eventHub.attach(ws);
            } catch (err) {
              logger?.error({ err: redact(err instanceof Error ? (err.stack ?? err.message) : String(err)) }, 'control: WebSocket setup failed');
              ws.close(1011, 'internal error');
            }
          });
        })
        .catch((err: unknown) => {
          upgrading--;
          logger?.error({ err: redact(String(err)) }, 'control: cannot load the WebSocket server');
          refuseUpgrade(socket, 500, 'internal error');
        });
    } catch (err) {
      logger?.error({ err: redact(String(err)) }, 'control: upgrade failed');
      refuseUpgrade(socket, 500, 'internal error');
    }
  });

  function stats(): ControlServerStats {
    return { logClients: logHub.stats(), eventClients: eventHub.size, sockets: sockets.size, pendingSockets: guard.pending, evictedSockets: guard.evicted, droppedLinesTotal: logHub.droppedTotal() };
  }

  const alive = new WeakMap<WebSocket, boolean>();
  const heartbeat = setInterval(() => {
    for (const ws of wsClients()) {
      if (alive.get(ws) === false) {
        ws.terminate();
        continue;
      }
      alive.set(ws, false);
      ws.ping();
    }
    logHub.kick();
  }, opts.heartbeatMs ?? 30_000);
  heartbeat.unref();

  let addr: AddressInfo;
  try {
    addr = await listen(server, opts.host, opts.port);
  } catch (err) {
    clearInterval(heartbeat);
    logHub.close();
    eventHub.close();
    throw err;
  }
  origins = new Set([...allowedOrigins(opts.host, addr.port), ...allowedOrigins(addr.address, addr.port)]);
  hosts = new Set([...origins].map((o) => o.slice('http://'.length)));
  cookieName = sessionCookieName(addr.port);
  const publicUrl = `http://${hostPort(addr.address === '0.0.0.0' ? '127.0.0.1' : addr.address === '::' ? '::1' : addr.address, addr.port)}`;
  if (isLoopbackHost(addr.address)) {
    dashOrigin = `http://${dashboardName}:${addr.port}`;
    dashHosts = new Set([`${dashboardName}:${addr.port}`]);
    origins.add(dashOrigin);
  } else {
    // Listening for other machines (allowRemote): their browsers' *.localhost is themselves, so
    // the dashboard stays under the address it listens on.
    dashOrigin = publicUrl;
    dashHosts = new Set(hosts);
  }

  const info: ControlFile = { host: addr.address, port: addr.port, pid: process.pid, token, startedAt };
  let controlFile: string;
  try {
    controlFile = await writeControlFile(opts.stateDir, info);
  } catch (err) {
    clearInterval(heartbeat);
    logHub.close();
    eventHub.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    throw new Error(`cannot write ${opts.stateDir}/control.json: ${String(err)}`);
  }
  logger?.info({ host: addr.address, port: addr.port }, 'control: listening');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      clearInterval(heartbeat);
      guard.close();
      // First, so a reconnecting client does not find a server that is going away.
      await removeControlFile(opts.stateDir, token).catch((err: unknown) => logger?.warn({ err: String(err) }, 'control: removing control.json failed'));
      logHub.close();
      eventHub.close();
      attachHub.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const ws of wsClients()) ws.close(CLOSE.goingAway, 'supervisor shutting down');
      server.closeIdleConnections();
      // Give clients a moment to answer the close frame; one that does not read is cut off.
      const goodbyes = [...wsClients()].map((ws) => new Promise<void>((resolve) => ws.once('close', () => resolve())));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(goodbyes), new Promise<void>((resolve) => (timer = setTimeout(resolve, 2000)))]);
      clearTimeout(timer);
      for (const ws of wsClients()) ws.terminate();
      server.closeAllConnections();
      for (const s of sockets) s.destroy();
      await closed;
      const wsServer = await wssLoading?.catch(() => undefined);
      if (wsServer) await new Promise<void>((resolve) => wsServer.close(() => resolve()));
    })();
    return closing;
  };

  return {
    host: addr.address,
    port: addr.port,
    token,
    instance,
    url: `http://${hostPort(addr.address, addr.port)}`,
    dashboardUrl: dashOrigin,
    controlFile,
    stats,
    loginUrl: (ttlMs?: number) => issueLoginToken(ttlMs).url ?? '',
    close,
  };
}
