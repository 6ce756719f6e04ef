// The wire format of the control plane, shared by the daemon (src/control/) and the CLI client
// (src/client/): the frames of both WebSockets, the HTTP bodies, and `.supervisor/control.json`.
// Changing a shape here changes it on both ends at once.

import type { LogStream, ReloadEvent, StateEvent, VerifyEvent } from '../events.ts';
import type { LogLine, UnitSnapshot } from '../units/types.ts';
import { parseJsonObject } from '../util/json-object.ts';

export const PROTOCOL_VERSION = 1;

/** What a unit name must look like wherever it comes from outside (paths, query strings). */
export const UNIT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
export const MAX_UNIT_NAME = 128;

export function isValidUnitName(name: string): boolean {
  return name.length <= MAX_UNIT_NAME && UNIT_NAME.test(name);
}

// ------------------------------------------------------------------ control.json

/** `.supervisor/control.json`: how a CLI finds the running daemon. Mode 0600: it holds the token. */
export interface ControlFile {
  host: string;
  port: number;
  pid: number;
  token: string;
  /** ms since epoch. */
  startedAt: number;
}

export const CONTROL_FILE = 'control.json';

/** Validates the parsed content of control.json; undefined when it is not one. */
export function asControlFile(value: unknown): ControlFile | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.host !== 'string' || v.host === '') return undefined;
  if (!Number.isInteger(v.port) || (v.port as number) <= 0 || (v.port as number) > 65535) return undefined;
  if (!Number.isInteger(v.pid) || (v.pid as number) <= 0) return undefined;
  if (typeof v.token !== 'string' || v.token.length < 16) return undefined;
  if (typeof v.startedAt !== 'number') return undefined;
  return { host: v.host, port: v.port as number, pid: v.pid as number, token: v.token, startedAt: v.startedAt };
}

// ------------------------------------------------------------------ HTTP

/** `GET /api/units`. */
export type UnitsResponse = UnitSnapshot[];
/** `POST /api/units/:name/:action` → 200. */
export interface ActionResponse { ok: true; unit: string; action: UnitAction }
/** `POST /api/shutdown` → 202. */
export interface ShutdownResponse { ok: true; message: string }
/** Every non-2xx answer. */
export interface ErrorResponse { error: string }
/** `POST /api/login-tokens` (Bearer only) → 200: a one-time dashboard login, see src/control/sessions.ts. */
export interface LoginTokenResponse {
  token: string;
  /** ms since epoch. */
  expiresAt: number;
  /** Path and query to open on this server: `/login?t=<token>`. */
  path: string;
  /**
   * The whole link, under the dashboard's own host name (`http://bksup-<random>.localhost:PORT/…`,
   * see src/control/server.ts); absent from older daemons.
   */
  url?: string;
}
/** `GET /api/graph`: units by dependency level (src/graph.ts), and every dependency edge. */
export interface GraphResponse {
  levels: string[][];
  edges: { from: string; to: string; condition: string }[];
}

export type UnitAction = 'start' | 'stop' | 'restart';
export const UNIT_ACTIONS: readonly UnitAction[] = ['start', 'stop', 'restart'];

// ------------------------------------------------------------------ WebSocket frames (server → client)

/** One log line on the wire (the element of a packed `logs` frame). */
export type WireLogLine = LogLine;

/**
 * First frame on `/api/logs`. `instance` identifies the daemon run: per-unit seqs only mean
 * something within one instance. `lastSeq` is, per selected unit, the last seq that existed when
 * the stream was set up: everything after it will be delivered live (or reported by a `gap`).
 */
export interface HelloFrame {
  type: 'hello';
  protocol: number;
  instance: string;
  pid: number;
  startedAt: number;
  units: string[];
  lastSeq: Record<string, number>;
  /**
   * Per selected unit, the seq after which this connection delivers every line (history or
   * live) or reports it in a `gap`: the `since` it honoured, else `lastSeq`. A client that
   * keeps max(from, highest seq seen, gap toSeq) can always resume with `since=` that value.
   */
  from: Record<string, number>;
}

export interface LogFrame extends LogLine { type: 'log' }

/** Several lines in one frame, in delivery order (per unit in seq order). */
export interface LogsFrame { type: 'logs'; lines: WireLogLine[] }

/**
 * Lines `fromSeq..toSeq` of `unit` will never arrive on this connection: they exist nowhere any
 * more (not in the ring, not in the log files: rotated past `logs.keep`, or deleted). A client
 * that falls behind is not sent more until it reads, so it never causes a gap by itself.
 */
export interface GapFrame { type: 'gap'; unit: string; dropped: number; fromSeq: number; toSeq: number }

/** A request this connection made was refused; usually followed by a close (1008). */
export interface ErrorFrame { type: 'error'; error: string }

/** First frame on `/api/events`; `verify` is the last verify result of this daemon run, if any. */
export interface SnapshotFrame { type: 'snapshot'; instance: string; units: UnitSnapshot[]; verify?: VerifyEvent; reload?: ReloadEvent }

export type StateFrame = StateEvent;
export type VerifyFrame = VerifyEvent;

export type LogsServerFrame = HelloFrame | LogFrame | LogsFrame | GapFrame | ErrorFrame;
export type EventsServerFrame = SnapshotFrame | StateFrame | VerifyFrame | ReloadEvent | ErrorFrame;
export type ServerFrame = LogsServerFrame | EventsServerFrame;

/** Close codes the server uses and what a client should make of them. */
export const CLOSE = {
  /** `follow` was off and the history has been sent. */
  normal: 1000,
  /** The daemon is shutting down: reconnect later. */
  goingAway: 1001,
  /** Bad request on this socket (unknown unit, bad parameter): do not retry as is. */
  policy: 1008,
  /** A client frame was over the size limit. */
  tooBig: 1009,
  /** The server is at its client limit or this client is too slow for a lossless stream. */
  tryAgain: 1013,
} as const;

const STREAMS: ReadonlySet<string> = new Set<LogStream>(['stdout', 'stderr', 'system']);

function isWireLine(v: unknown): v is WireLogLine {
  if (typeof v !== 'object' || v === null) return false;
  const l = v as Record<string, unknown>;
  return typeof l.unit === 'string' && typeof l.seq === 'number' && typeof l.ts === 'number' && typeof l.line === 'string' && typeof l.stream === 'string' && STREAMS.has(l.stream);
}

function isSeqMap(v: unknown): v is Record<string, number> {
  return typeof v === 'object' && v !== null && Object.values(v).every((n) => typeof n === 'number');
}

/**
 * Parses a frame received on `/api/logs`. Unknown frame types are returned as undefined (a newer
 * server may send more; old clients skip them), malformed known ones too.
 */
export function parseLogsFrame(text: string): LogsServerFrame | undefined {
  const f = parseJsonObject(text);
  if (f === undefined) return undefined;
  switch (f.type) {
    case 'log':
      return isWireLine(f) ? (f as unknown as LogFrame) : undefined;
    case 'logs':
      return Array.isArray(f.lines) && f.lines.every(isWireLine) ? (f as unknown as LogsFrame) : undefined;
    case 'gap':
      return typeof f.unit === 'string' && typeof f.dropped === 'number' && typeof f.fromSeq === 'number' && typeof f.toSeq === 'number' ? (f as unknown as GapFrame) : undefined;
    case 'hello':
      return typeof f.instance === 'string' && Array.isArray(f.units) && isSeqMap(f.lastSeq) && isSeqMap(f.from) ? (f as unknown as HelloFrame) : undefined;
    case 'error':
      return typeof f.error === 'string' ? (f as unknown as ErrorFrame) : undefined;
    default:
      return undefined;
  }
}
