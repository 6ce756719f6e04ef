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
//
// Who does what: request-gate.ts holds the Host/Origin/token/cookie checks both paths share,
// http-dispatch.ts the request path, ws-upgrade.ts the upgrade path, ws-pool.ts the lazily loaded
// ws server and its heartbeat; this file the socket level (guard, caps, timeouts) and the
// lifecycle (listen, control.json, close).

import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { SupervisorHandle } from '../units/types.ts';
import { redactText } from '../util/redact.ts';
import { hostPort, isLoopbackHost, newToken } from './auth.ts';
import { removeControlFile, writeControlFile } from './control-file.ts';
import type { LogHistory } from './history.ts';
import type { ReloadControl } from './http.ts';
import { type RequestContext, handleRequest } from './http-dispatch.ts';
import { ConnectionGuard, pendingBudget } from './connection-guard.ts';
import { CLOSE, type ControlFile, type LoginTokenResponse } from './protocol.ts';
import { type ServerNames, createGate, nameServer, unnamed } from './request-gate.ts';
import { LOGIN_TOKEN_TTL_MS, SessionStore } from './sessions.ts';
import { AttachHub } from './ws-attach.ts';
import { EventStreamHub } from './ws-events.ts';
import { LogStreamHub, type LogClientStats, type LogStreamLimits } from './ws-logs.ts';
import { WsPool } from './ws-pool.ts';
import { type UpgradeContext, handleUpgrade } from './ws-upgrade.ts';

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

/** What the lifecycle (listen, control.json, close) works on. */
interface Parts {
  opts: ControlServerOptions;
  token: string;
  server: Server;
  guard: ConnectionGuard;
  sockets: Set<Socket>;
  pool: WsPool;
  logHub: LogStreamHub;
  eventHub: EventStreamHub;
  attachHub: AttachHub;
  heartbeat: NodeJS.Timeout;
}

/** The socket level: slow-loris bounds, the socket cap, pending sockets, malformed requests. */
function createHttpServer(opts: ControlServerOptions, maxClients: number): { server: Server; guard: ConnectionGuard; sockets: Set<Socket> } {
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
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    setTimeout(() => socket.destroy(), 2000).unref();
  });
  return { server, guard, sockets };
}

/** Per unit, the last seq before this run: given, or each unit's last seq now. */
function initialBaseSeq(opts: ControlServerOptions): Map<string, number> {
  const baseSeq = new Map<string, number>(opts.baseSeq ?? []);
  if (opts.baseSeq === undefined) {
    for (const unit of opts.handle.unitNames()) {
      try {
        baseSeq.set(unit, opts.history.lastSeq(unit));
      } catch {
        baseSeq.set(unit, 0);
      }
    }
  }
  return baseSeq;
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

/** Listens, names the server and writes control.json; on failure undoes what it started. */
async function goLive(p: Parts, names: ServerNames, dashboardName: string, startedAt: number): Promise<{ addr: AddressInfo; controlFile: string }> {
  const { opts } = p;
  let addr: AddressInfo;
  try {
    addr = await listen(p.server, opts.host, opts.port);
  } catch (err) {
    clearInterval(p.heartbeat);
    p.logHub.close();
    p.eventHub.close();
    throw err;
  }
  nameServer(names, opts.host, addr, dashboardName);
  const info: ControlFile = { host: addr.address, port: addr.port, pid: process.pid, token: p.token, startedAt };
  let controlFile: string;
  try {
    controlFile = await writeControlFile(opts.stateDir, info);
  } catch (err) {
    clearInterval(p.heartbeat);
    p.logHub.close();
    p.eventHub.close();
    await new Promise<void>((resolve) => p.server.close(() => resolve()));
    throw new Error(`cannot write ${opts.stateDir}/control.json: ${String(err)}`);
  }
  opts.logger?.info({ host: addr.address, port: addr.port }, 'control: listening');
  return { addr, controlFile };
}

async function closeAll(p: Parts): Promise<void> {
  const { server, pool } = p;
  clearInterval(p.heartbeat);
  p.guard.close();
  // First, so a reconnecting client does not find a server that is going away.
  await removeControlFile(p.opts.stateDir, p.token).catch((err: unknown) => p.opts.logger?.warn({ err: String(err) }, 'control: removing control.json failed'));
  p.logHub.close();
  p.eventHub.close();
  p.attachHub.close();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  for (const ws of pool.clients()) ws.close(CLOSE.goingAway, 'supervisor shutting down');
  server.closeIdleConnections();
  // Give clients a moment to answer the close frame; one that does not read is cut off.
  const goodbyes = [...pool.clients()].map((ws) => new Promise<void>((resolve) => ws.once('close', () => resolve())));
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(goodbyes), new Promise<void>((resolve) => (timer = setTimeout(resolve, 2000)))]);
  clearTimeout(timer);
  for (const ws of pool.clients()) ws.terminate();
  server.closeAllConnections();
  for (const s of p.sockets) s.destroy();
  await closed;
  await pool.close();
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

  const logHub = new LogStreamHub({ bus: handle.bus, handle, history, instance, startedAt, baseSeq: initialBaseSeq(opts), limits: opts.limits, logger });
  const eventHub = new EventStreamHub({ bus: handle.bus, handle, instance, logger });
  const attachHub = new AttachHub({ bus: handle.bus, handle, logger });
  const pool = new WsPool(opts.maxPayload ?? 64 * 1024);
  const { server, guard, sockets } = createHttpServer(opts, maxClients);

  let shutdownRequested = false;
  const requestShutdown = (reason: string): void => {
    if (shutdownRequested) return;
    shutdownRequested = true;
    logger?.info({ reason }, 'control: shutdown requested');
    handle.shutdown(reason).catch((err: unknown) => logger?.error({ err: redact(String(err)) }, 'control: shutdown failed'));
  };

  const names = unnamed();
  const sessions = opts.sessions ?? new SessionStore();
  const dashboardName = (opts.dashboardHost ?? `bksup-${randomBytes(8).toString('hex')}.localhost`).toLowerCase();
  const issueLoginToken = (ttlMs = LOGIN_TOKEN_TTL_MS): LoginTokenResponse => {
    const t = sessions.issueLoginToken(ttlMs);
    const path = `/login?t=${t.token}`;
    return { token: t.token, expiresAt: t.expiresAt, path, url: `${names.dashOrigin}${path}` };
  };
  const gate = createGate(token, sessions, names);
  const stats = (): ControlServerStats => ({ logClients: logHub.stats(), eventClients: eventHub.size, sockets: sockets.size, pendingSockets: guard.pending, evictedSockets: guard.evicted, droppedLinesTotal: logHub.droppedTotal() });
  let closing: Promise<void> | undefined;

  const requests: RequestContext = { gate, guard, names, sessions, handle, logger, redact, requestShutdown, issueLoginToken: () => issueLoginToken(), stats, dashboard: opts.dashboard !== false, metrics: opts.metrics, metricsPublic: opts.metricsPublic === true, reload: opts.reload };
  server.on('request', (req: IncomingMessage, res: ServerResponse) => handleRequest(requests, req, res));
  const upgrades: UpgradeContext = { gate, guard, pool, maxClients, logHub, eventHub, attachHub, logger, redact, closing: () => closing !== undefined };
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => handleUpgrade(upgrades, req, socket, head));

  const heartbeat = setInterval(() => {
    pool.beat();
    logHub.kick();
  }, opts.heartbeatMs ?? 30_000);
  heartbeat.unref();

  const parts: Parts = { opts, token, server, guard, sockets, pool, logHub, eventHub, attachHub, heartbeat };
  const { addr, controlFile } = await goLive(parts, names, dashboardName, startedAt);
  return {
    host: addr.address,
    port: addr.port,
    token,
    instance,
    url: `http://${hostPort(addr.address, addr.port)}`,
    dashboardUrl: names.dashOrigin,
    controlFile,
    stats,
    loginUrl: (ttlMs?: number) => issueLoginToken(ttlMs).url ?? '',
    close: () => (closing ??= closeAll(parts)),
  };
}
