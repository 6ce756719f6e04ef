// The wire format of WebSocket `/api/attach?unit=NAME&cols=C&rows=R`, shared by the daemon
// (src/control/ws-attach.ts) and `bksup attach` (src/client/attach.ts).
//
// Binary frames carry terminal bytes both ways: the unit's output to the client, keystrokes to
// the unit. Text frames are the JSON control messages below. The detach key never crosses the
// wire: the client handles it and closes with 1000.
//
// Refusals happen before the handshake, as an HTTP answer with a JSON `{error}` body: 404 unknown
// unit, 409 not a `tty: true` unit or already attached, 403 not the control token (a dashboard
// session cannot type into a unit).

import type { UnitStateName } from '../events.ts';
import { parseJsonObject } from '../util/json-object.ts';

export const ATTACH_PATH = '/api/attach';

/** Ctrl-] — the key `telnet` and `docker attach` users know; nothing in a Python REPL needs it. */
export const DETACH_KEY = 0x1d;
export const DETACH_KEY_NAME = 'Ctrl-]';

/** Largest keystroke frame a client sends (pastes are cut into frames of this size). */
export const MAX_INPUT_FRAME = 16 * 1024;

export interface TerminalSizeWire {
  cols: number;
  rows: number;
}

/** First text frame: the attachment stands; `state`/`pid` say whether a run is there to type into. */
export interface AttachedFrame { type: 'attached'; unit: string; state: UnitStateName; pid: number | null }
/** The unit changed state while attached (it exited, restarts, was stopped…); the session goes on. */
export interface AttachStateFrame { type: 'state'; unit: string; state: UnitStateName; pid: number | null; reason: string | null }
/** The attachment ends for a reason other than the client's detach; a close follows. */
export interface AttachErrorFrame { type: 'error'; error: string }

export type AttachServerFrame = AttachedFrame | AttachStateFrame | AttachErrorFrame;
export type AttachClientFrame = { type: 'resize' } & TerminalSizeWire;

/** A window size from outside (query string or frame), clamped to what a terminal can be. */
export function parseTerminalSize(cols: unknown, rows: unknown): TerminalSizeWire | undefined {
  const c = typeof cols === 'string' ? Number(cols) : cols;
  const r = typeof rows === 'string' ? Number(rows) : rows;
  if (typeof c !== 'number' || typeof r !== 'number' || !Number.isInteger(c) || !Number.isInteger(r)) return undefined;
  if (c < 1 || r < 1 || c > 10_000 || r > 10_000) return undefined;
  return { cols: c, rows: r };
}

export function parseAttachServerFrame(text: string): AttachServerFrame | undefined {
  const f = parseJsonObject(text);
  if (f === undefined) return undefined;
  if (f.type === 'attached' && typeof f.unit === 'string' && typeof f.state === 'string') return f as unknown as AttachedFrame;
  if (f.type === 'state' && typeof f.unit === 'string' && typeof f.state === 'string') return f as unknown as AttachStateFrame;
  if (f.type === 'error' && typeof f.error === 'string') return f as unknown as AttachErrorFrame;
  return undefined;
}

export function parseAttachClientFrame(text: string): AttachClientFrame | undefined {
  const f = parseJsonObject(text);
  if (f?.type !== 'resize') return undefined;
  const size = parseTerminalSize(f.cols, f.rows);
  return size ? { type: 'resize', ...size } : undefined;
}
