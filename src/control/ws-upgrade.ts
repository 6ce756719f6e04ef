// The WebSocket upgrade path drawn in server.ts: token or session cookie, origin, path, client
// limit, then the ws handshake and the hub of the path. Every refusal is a plain HTTP answer on
// the raw socket, before ws ever sees it.

import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { ATTACH_PATH } from './attach-protocol.ts';
import type { ConnectionGuard } from './connection-guard.ts';
import { route } from './http.ts';
import type { RequestGate } from './request-gate.ts';
import type { ControlLogger } from './server.ts';
import type { AttachCheck, AttachHub } from './ws-attach.ts';
import type { EventStreamHub } from './ws-events.ts';
import type { LogStreamHub } from './ws-logs.ts';
import type { WsPool } from './ws-pool.ts';

export interface UpgradeContext {
  gate: RequestGate;
  guard: ConnectionGuard;
  pool: WsPool;
  maxClients: number;
  logHub: LogStreamHub;
  eventHub: EventStreamHub;
  attachHub: AttachHub;
  logger: ControlLogger | undefined;
  redact: (text: string) => string;
  /** close() has begun: a socket whose ws load finishes now is dropped. */
  closing: () => boolean;
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

export function handleUpgrade(ctx: UpgradeContext, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const { gate, pool, maxClients } = ctx;
  socket.on('error', () => socket.destroy());
  try {
    const auth = gate.authenticate(req, true);
    if (auth === undefined) return refuseUpgrade(socket, 401, 'missing or wrong token', { 'WWW-Authenticate': 'Bearer' });
    ctx.guard.trust(req.socket);
    if (!gate.originOk(req) || (auth === 'cookie' && (req.headers.origin === undefined || !gate.cookieOriginOk(req)))) return refuseUpgrade(socket, 403, 'cross-origin WebSocket refused');
    const r = route(req.url ?? '/');
    if (r.kind !== 'websocket') return refuseUpgrade(socket, 404, r.kind === 'bad' ? r.error : 'not a WebSocket endpoint');
    if (pool.clients().size + pool.upgrading >= maxClients) return refuseUpgrade(socket, 503, `too many clients (${maxClients})`);
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const params = new URLSearchParams(q >= 0 ? url.slice(q + 1) : '');
    let attach: (AttachCheck & { ok: true }) | undefined;
    if (r.path === ATTACH_PATH) {
      // Typing into a unit is for the CLI: a browser session (a cookie any page of this site
      // carries along) never gets a keyboard.
      if (auth !== 'token') return refuseUpgrade(socket, 403, 'attaching needs the control token: use bksup attach');
      const checked = ctx.attachHub.check(params);
      if (!checked.ok) return refuseUpgrade(socket, checked.status, checked.error);
      attach = checked;
    }
    const attachOk = attach;
    pool.upgrading++;
    void pool
      .load()
      .then((wsServer) => {
        pool.upgrading--;
        if (ctx.closing() || socket.destroyed) return void socket.destroy();
        wsServer.handleUpgrade(req, socket, head, (ws: WebSocket) => {
          pool.track(ws);
          ws.on('error', (err) => ctx.logger?.warn({ err: ctx.redact(String(err)) }, 'control: WebSocket client error'));
          try {
            if (r.path === '/api/logs') ctx.logHub.attach(ws, params);
            else if (attachOk) ctx.attachHub.attach(ws, attachOk);
            else ctx.eventHub.attach(ws);
          } catch (err) {
            ctx.logger?.error({ err: ctx.redact(err instanceof Error ? (err.stack ?? err.message) : String(err)) }, 'control: WebSocket setup failed');
            ws.close(1011, 'internal error');
          }
        });
      })
      .catch((err: unknown) => {
        pool.upgrading--;
        ctx.logger?.error({ err: ctx.redact(String(err)) }, 'control: cannot load the WebSocket server');
        refuseUpgrade(socket, 500, 'internal error');
      });
  } catch (err) {
    ctx.logger?.error({ err: ctx.redact(String(err)) }, 'control: upgrade failed');
    refuseUpgrade(socket, 500, 'internal error');
  }
}
