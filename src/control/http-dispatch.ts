// The HTTP request path drawn in server.ts: the dashboard's public part (its own Host and origin
// only), then token or session cookie, origin, and on to /metrics, the page, or http.ts's routes.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SupervisorHandle } from '../units/types.ts';
import { handlePublic, isPagePath, isPublicPath, pathOf, sendPage, sendUnauthorized } from '../dashboard/serve.ts';
import { isLoopbackHost } from './auth.ts';
import type { ConnectionGuard } from './connection-guard.ts';
import { type ReloadControl, handleApiRequest, sendJson } from './http.ts';
import type { LoginTokenResponse } from './protocol.ts';
import { type RequestGate, type ServerNames, hostName } from './request-gate.ts';
import type { SessionStore } from './sessions.ts';
import type { ControlLogger, ControlServerStats, MetricsEndpoint } from './server.ts';

export interface RequestContext {
  gate: RequestGate;
  guard: ConnectionGuard;
  names: ServerNames;
  sessions: SessionStore;
  handle: SupervisorHandle;
  logger: ControlLogger | undefined;
  redact: (text: string) => string;
  requestShutdown: (reason: string) => void;
  issueLoginToken: () => LoginTokenResponse;
  stats: () => ControlServerStats;
  /** Serve the dashboard. */
  dashboard: boolean;
  metrics: MetricsEndpoint | undefined;
  metricsPublic: boolean;
  reload: ReloadControl | undefined;
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

function refuse(req: IncomingMessage, res: ServerResponse, status: number, error: string): void {
  discardBody(req, res);
  sendJson(res, status, { error });
}

export function handleRequest(ctx: RequestContext, req: IncomingMessage, res: ServerResponse): void {
  const { gate } = ctx;
  try {
    const path = pathOf(req.url ?? '/');
    if (ctx.dashboard && isPublicPath(path)) return servePublic(ctx, req, res, path);
    const auth = gate.authenticate(req, false);
    const publicMetrics = path === '/metrics' && ctx.metricsPublic && isLoopbackHost(req.socket.remoteAddress ?? '') && isLoopbackHost(hostName(req.headers.host ?? ''));
    // A scraper's keep-alive socket (metrics.public) is as welcome as an authenticated one.
    if (auth !== undefined || publicMetrics) ctx.guard.trust(req.socket);
    if (auth === undefined && !publicMetrics) {
      discardBody(req, res);
      return sendUnauthorized(req, res, 'missing or wrong token: send Authorization: Bearer <token from .supervisor/control.json>');
    }
    if (!gate.originOk(req) || (auth === 'cookie' && !gate.cookieOriginOk(req))) return refuse(req, res, 403, 'cross-origin requests are refused');
    const method = req.method ?? 'GET';
    if (auth === 'cookie' && method !== 'GET' && method !== 'HEAD' && req.headers.origin === undefined) {
      return refuse(req, res, 403, 'a browser request that changes something must carry an Origin header');
    }
    if (path === '/metrics') return serveMetrics(ctx, req, res, method);
    if (ctx.dashboard && isPagePath(path)) {
      req.resume();
      if (method !== 'GET' && method !== 'HEAD') return sendJson(res, 405, { error: `method ${method} not allowed here: use GET` }, { allow: 'GET, HEAD' });
      return sendPage(req, res, 'index');
    }
    if (auth === undefined) return refuse(req, res, 401, 'missing or wrong token');
    const { handle, logger, redact, requestShutdown, reload } = ctx;
    void handleApiRequest(req, res, { handle, logger, redact, requestShutdown, auth, ...(reload ? { reload } : {}), ...(ctx.dashboard ? { issueLoginToken: () => ctx.issueLoginToken() } : {}) });
  } catch (err) {
    ctx.logger?.error({ err: ctx.redact(String(err)) }, 'control: request failed');
    res.destroy();
  }
}

/** `/login`, `/logout`, `/assets/*`: only under the dashboard's own Host and origin. */
function servePublic(ctx: RequestContext, req: IncomingMessage, res: ServerResponse, path: string): void {
  const { gate } = ctx;
  if (gate.redirectToDashboard(req, res, path)) return;
  if (!gate.dashHostOk(req)) return refuse(req, res, 403, 'the dashboard answers only under its own address: open the link that npx bksup dashboard prints');
  if (!gate.cookieOriginOk(req)) return refuse(req, res, 403, 'cross-origin requests are refused');
  void handlePublic(req, res, path, { sessions: ctx.sessions, cookieName: ctx.names.cookieName }).catch((err: unknown) => {
    ctx.logger?.error({ err: ctx.redact(String(err)) }, 'control: dashboard request failed');
    if (!res.headersSent) sendJson(res, 500, { error: 'internal error in the supervisor (see logs/supervisor.log)' });
    else res.destroy();
  });
}

function serveMetrics(ctx: RequestContext, req: IncomingMessage, res: ServerResponse, method: string): void {
  req.resume();
  if (method !== 'GET' && method !== 'HEAD') return sendJson(res, 405, { error: `method ${method} not allowed here: use GET` }, { allow: 'GET, HEAD' });
  const m = ctx.metrics;
  if (!m) return sendJson(res, 404, { error: 'metrics are not enabled in this server' });
  void m.render(ctx.stats()).then(
    (text) => {
      res.writeHead(200, { 'content-type': m.contentType, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
      res.end(method === 'HEAD' ? undefined : text);
    },
    (err: unknown) => {
      ctx.logger?.error({ err: ctx.redact(String(err)) }, 'control: rendering metrics failed');
      sendJson(res, 500, { error: 'rendering the metrics failed (see logs/supervisor.log)' });
    },
  );
}
