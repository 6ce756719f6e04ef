// The HTTP routes of the control API (requests arrive here already authenticated):
//
//   GET  /api/units                          → 200 UnitSnapshot[]
//   POST /api/units/:name/(start|stop|restart) → 200 {ok} | 404 unknown unit | 409 not possible now
//   POST /api/shutdown                       → 202, then the supervisor shuts down
//   GET  /api/graph                          → 200 {levels, edges} (the dashboard's layout)
//   POST /api/login-tokens                   → 200 one-time dashboard login (Bearer only, not a cookie)
//   POST /api/reload                         → 200 {ok, summary, plan} | 422 {ok:false, errors}: load the config again
//   GET  /api/reload                         → 200 the last reload's event, or {} before the first
//   /api/logs, /api/events, /api/attach      → 426: WebSocket endpoints
//
// Every answer is JSON. Nothing a client sends can throw out of here: bad paths, names, methods
// and bodies get 4xx, a bug gets 500, and the daemon keeps running either way.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { dependencyLevels } from '../graph.ts';
import type { ReloadEvent } from '../events.ts';
import type { SupervisorHandle, UnitSnapshot } from '../units/types.ts';
import { UNIT_ACTIONS, isValidUnitName, type ActionResponse, type ErrorResponse, type GraphResponse, type LoginTokenResponse, type ShutdownResponse, type UnitAction } from './protocol.ts';
import type { ControlLogger } from './server.ts';
import { unknownUnitError } from './ws-logs.ts';

export const MAX_BODY_BYTES = 64 * 1024;

export interface HttpContext {
  handle: SupervisorHandle;
  logger?: ControlLogger | undefined;
  /** Masks the token (and other secrets) in anything logged. */
  redact: (text: string) => string;
  /** Called once, after the 202 of the first shutdown request went out. */
  requestShutdown: (reason: string) => void;
  /** How the request proved itself: the control token, or a dashboard session cookie. */
  auth?: 'token' | 'cookie';
  /** Mints a one-time dashboard login; absent when the server has no dashboard. */
  issueLoginToken?: () => LoginTokenResponse;
  reload?: ReloadControl;
}

/** The daemon's reloader as the control API sees it (src/reload.ts). */
export interface ReloadControl {
  run(trigger: string): Promise<{ ok: true; summary: string; plan: object; warnings: string[] } | { ok: false; errors: string[] }>;
  last(): ReloadEvent | undefined;
}

const JSON_HEADERS = {
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
} as const;

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.writableEnded) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { ...JSON_HEADERS, 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sendError(res: ServerResponse, status: number, error: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { error } satisfies ErrorResponse, headers);
}

/**
 * A body that could not be read: answered, then the socket is closed. A client still sending
 * an oversized (or endless chunked) body must not keep the connection, and its bytes, going.
 */
export function sendBodyError(req: IncomingMessage, res: ServerResponse, body: Extract<Body, { ok: false }>): void {
  res.once('finish', () => req.socket.destroySoon());
  sendJson(res, body.status, { error: body.error } satisfies ErrorResponse, { connection: 'close' });
}

function shown(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

type Route =
  | { kind: 'units' }
  | { kind: 'action'; unit: string; action: UnitAction }
  | { kind: 'shutdown' }
  | { kind: 'graph' }
  | { kind: 'login-tokens' }
  | { kind: 'reload' }
  | { kind: 'websocket'; path: string }
  | { kind: 'bad'; status: 400 | 404; error: string };

/** Matches the raw path (before decoding, so `%2F` can never become a separator). */
export function route(rawUrl: string): Route {
  const q = rawUrl.indexOf('?');
  const path = q >= 0 ? rawUrl.slice(0, q) : rawUrl;
  const parts = path.split('/');
  if (parts[0] !== '' || parts[1] !== 'api') return { kind: 'bad', status: 404, error: `no such endpoint: ${shown(path)}` };
  const [, , resource, rawName, action, ...rest] = parts;
  if (resource === 'units' && parts.length === 3) return { kind: 'units' };
  if (resource === 'shutdown' && parts.length === 3) return { kind: 'shutdown' };
  if (resource === 'graph' && parts.length === 3) return { kind: 'graph' };
  if (resource === 'login-tokens' && parts.length === 3) return { kind: 'login-tokens' };
  if (resource === 'reload' && parts.length === 3) return { kind: 'reload' };
  if ((resource === 'logs' || resource === 'events' || resource === 'attach') && parts.length === 3) return { kind: 'websocket', path };
  if (resource === 'units' && rawName !== undefined && action !== undefined && rest.length === 0) {
    if (!(UNIT_ACTIONS as readonly string[]).includes(action)) {
      return { kind: 'bad', status: 404, error: `no such action ${shown(action)}: use ${UNIT_ACTIONS.join(', ')}` };
    }
    let name: string;
    try {
      name = decodeURIComponent(rawName);
    } catch {
      return { kind: 'bad', status: 400, error: `malformed percent-encoding in unit name ${shown(rawName)}` };
    }
    if (!isValidUnitName(name)) {
      return { kind: 'bad', status: 400, error: `invalid unit name ${shown(name)}: letters, digits, '_', '.', '-', not starting with a symbol` };
    }
    return { kind: 'action', unit: name, action: action as UnitAction };
  }
  return { kind: 'bad', status: 404, error: `no such endpoint: ${shown(path)}` };
}

export type Body = { ok: true; value: Record<string, unknown> | undefined } | { ok: false; status: 400 | 413; error: string };

/** Reads at most MAX_BODY_BYTES; an empty body is fine, otherwise it must be a JSON object. */
export function readBody(req: IncomingMessage): Promise<Body> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > MAX_BODY_BYTES) {
    return Promise.resolve({ ok: false, status: 413, error: `request body over ${MAX_BODY_BYTES} bytes` });
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (b: Body): void => {
      if (settled) return;
      settled = true;
      resolve(b);
    };
    req.on('data', (chunk: Buffer) => {
      if (settled) return;
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        settle({ ok: false, status: 413, error: `request body over ${MAX_BODY_BYTES} bytes` });
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', () => settle({ ok: false, status: 400, error: 'request body could not be read' }));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8').trim();
      if (text === '') return settle({ ok: true, value: undefined });
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        return settle({ ok: false, status: 400, error: 'request body is not valid JSON' });
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        return settle({ ok: false, status: 400, error: 'request body must be a JSON object (or empty)' });
      }
      settle({ ok: true, value: value as Record<string, unknown> });
    });
  });
}

function methodNotAllowed(res: ServerResponse, method: string, allow: string): void {
  sendError(res, 405, `method ${method} not allowed here: use ${allow}`, { allow });
}

export async function handleApiRequest(req: IncomingMessage, res: ServerResponse, ctx: HttpContext): Promise<void> {
  const method = req.method ?? 'GET';
  try {
    const r = route(req.url ?? '/');
    switch (r.kind) {
      case 'bad':
        return sendError(res, r.status, r.error);
      case 'websocket':
        if (method !== 'GET') return methodNotAllowed(res, method, 'GET');
        return sendError(res, 426, `${r.path} is a WebSocket endpoint: connect with a WebSocket client`, { upgrade: 'websocket', connection: 'Upgrade' });
      case 'units':
        if (method !== 'GET' && method !== 'HEAD') return methodNotAllowed(res, method, 'GET, HEAD');
        return sendJson(res, 200, ctx.handle.snapshot({ processes: true }));
      case 'action': {
        if (method !== 'POST') return methodNotAllowed(res, method, 'POST');
        const body = await readBody(req);
        if (!body.ok) return sendBodyError(req, res, body);
        const known = ctx.handle.unitNames();
        if (!known.includes(r.unit)) return sendError(res, 404, unknownUnitError(r.unit, known));
        const result = ctx.handle[r.action](r.unit);
        if (result.ok) return sendJson(res, 200, { ok: true, unit: r.unit, action: r.action } satisfies ActionResponse);
        return sendError(res, result.status, result.error);
      }
      case 'graph':
        if (method !== 'GET' && method !== 'HEAD') return methodNotAllowed(res, method, 'GET, HEAD');
        return sendJson(res, 200, graphOf(ctx.handle.snapshot()));
      case 'login-tokens': {
        if (method !== 'POST') return methodNotAllowed(res, method, 'POST');
        const body = await readBody(req);
        if (!body.ok) return sendBodyError(req, res, body);
        if (!ctx.issueLoginToken) return sendError(res, 404, 'this server has no dashboard');
        // A browser session must not mint logins for other browsers: only the token holder may.
        if (ctx.auth !== 'token') return sendError(res, 403, 'login tokens are issued to holders of the control token only (bksup dashboard)');
        return sendJson(res, 200, ctx.issueLoginToken());
      }
      case 'reload': {
        if (!ctx.reload) return sendError(res, 404, 'this server cannot reload a config');
        if (method === 'GET' || method === 'HEAD') return sendJson(res, 200, ctx.reload.last() ?? {});
        if (method !== 'POST') return methodNotAllowed(res, method, 'GET, POST');
        const body = await readBody(req);
        if (!body.ok) return sendError(res, body.status, body.error, body.status === 413 ? { connection: 'close' } : {});
        const outcome = await ctx.reload.run('bksup reload');
        return sendJson(res, outcome.ok ? 200 : 422, outcome);
      }
      case 'shutdown': {
        if (method !== 'POST') return methodNotAllowed(res, method, 'POST');
        const body = await readBody(req);
        if (!body.ok) return sendBodyError(req, res, body);
        const reason = 'shutdown requested over the control API';
        res.once('finish', () => ctx.requestShutdown(reason));
        return sendJson(res, 202, { ok: true, message: 'shutting down' } satisfies ShutdownResponse);
      }
    }
  } catch (err) {
    const text = ctx.redact(err instanceof Error ? (err.stack ?? err.message) : String(err));
    ctx.logger?.error({ err: text, method, url: ctx.redact(req.url ?? '') }, 'control: request handler failed');
    if (!res.headersSent) sendError(res, 500, 'internal error in the supervisor (see logs/supervisor.log)');
    else res.destroy();
  }
}

/** Levels from the dependency graph (disabled units included: they are drawn, greyed). */
export function graphOf(units: readonly UnitSnapshot[]): GraphResponse {
  const graph = Object.fromEntries(units.map((u) => [u.name, { dependsOn: u.dependsOn }]));
  const edges = units.flatMap((u) => Object.entries(u.dependsOn).filter(([dep]) => Object.hasOwn(graph, dep)).map(([dep, condition]) => ({ from: dep, to: u.name, condition })));
  return { levels: dependencyLevels(graph), edges };
}
