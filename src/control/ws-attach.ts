// WebSocket `/api/attach`: connects one client to a `tty: true` unit's terminal
// (src/units/terminal.ts). Wire format in src/control/attach-protocol.ts.
//
//   upgrade ──► check(): unit known? tty? nobody attached? ─no─► HTTP 404/409 with the reason
//      │ handshake
//      ▼
//   attached ── binary in ──► keystrokes to the unit     output bytes ──► binary out
//      │        text in ────► resize                      state events ──► `state` frames
//      └─ close (the client detached, the daemon stops, the client is too slow) ──► detached;
//         the unit runs on either way.

import type { WebSocket, RawData } from 'ws';
import type { EventBus } from '../events.ts';
import type { SupervisorHandle } from '../units/types.ts';
import type { TerminalSession, UnitTerminal } from '../units/terminal.ts';
import { parseAttachClientFrame, parseTerminalSize, type AttachServerFrame, type TerminalSizeWire } from './attach-protocol.ts';
import { CLOSE, isValidUnitName } from './protocol.ts';
import type { ControlLogger } from './server.ts';

export interface AttachHubOptions {
  bus: EventBus;
  handle: SupervisorHandle;
  logger?: ControlLogger | undefined;
  /** Output a client has not taken yet above which it is disconnected (default 4 MiB). */
  highWaterBytes?: number;
}

export type AttachCheck =
  | { ok: true; unit: string; terminal: UnitTerminal; size: TerminalSizeWire | undefined }
  | { ok: false; status: 400 | 404 | 409; error: string };

export class AttachHub {
  readonly #opts: AttachHubOptions;
  readonly #highWater: number;
  /** Each attached socket and what ends its attachment. */
  readonly #clients = new Map<WebSocket, () => void>();

  constructor(opts: AttachHubOptions) {
    this.#opts = opts;
    this.#highWater = opts.highWaterBytes ?? 4 * 1024 * 1024;
  }

  get size(): number {
    return this.#clients.size;
  }

  /** Judges the request before the handshake, so a refusal is an HTTP answer with its reason. */
  check(params: URLSearchParams): AttachCheck {
    const unit = params.get('unit') ?? '';
    if (!isValidUnitName(unit)) return { ok: false, status: 400, error: 'name the unit to attach to: /api/attach?unit=NAME' };
    const found = this.#opts.handle.terminal?.(unit) ?? { ok: false, status: 409, error: 'this supervisor has no terminals to attach to' };
    if (!found.ok) return found;
    const busy = found.terminal.busyReason();
    if (busy !== undefined) return { ok: false, status: 409, error: busy };
    const size = params.has('cols') || params.has('rows') ? parseTerminalSize(params.get('cols'), params.get('rows')) : undefined;
    if ((params.has('cols') || params.has('rows')) && !size) return { ok: false, status: 400, error: 'cols and rows must be whole numbers from 1 to 10000' };
    return { ok: true, unit, terminal: found.terminal, size };
  }

  attach(ws: WebSocket, checked: AttachCheck & { ok: true }): void {
    const { unit, terminal } = checked;
    const send = (frame: AttachServerFrame): void => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(frame));
    };
    // Before the replayed output, so the client prints its banner above it.
    const snap = this.#opts.handle.snapshot().find((u) => u.name === unit);
    send({ type: 'attached', unit, state: snap?.state ?? 'stopped', pid: snap?.pid ?? null });
    // Set once the attach stands; `end` may run before (during the replay of kept output).
    const held: { session?: TerminalSession } = {};
    let unsubscribe = (): void => {};
    const end = (error?: string): void => {
      if (!this.#clients.delete(ws)) return;
      unsubscribe();
      held.session?.detach();
      this.#opts.logger?.info({ unit }, 'control: terminal detached');
      if (error !== undefined && ws.readyState === ws.OPEN) {
        send({ type: 'error', error });
        ws.close(CLOSE.tryAgain, 'attachment ended');
        setTimeout(() => ws.terminate(), 5000).unref();
      }
    };
    this.#clients.set(ws, () => end());
    const res = terminal.attach(
      {
        output: (data) => {
          if (ws.readyState !== ws.OPEN) return;
          // A terminal that does not read must not make the daemon buffer the unit's output
          // without bound; the log keeps every line.
          if (ws.bufferedAmount > this.#highWater) end('your terminal did not keep up with the output (all of it is in bksup logs); attach again');
          else ws.send(data, { binary: true });
        },
      },
      checked.size,
    );
    if (!res.ok) {
      // Another client attached between check() and the handshake.
      this.#clients.delete(ws);
      send({ type: 'error', error: res.error });
      ws.close(CLOSE.policy, 'already attached');
      return;
    }
    const live = (held.session = res.session);
    // Ended while the kept output was replayed: nothing else will detach it.
    if (!this.#clients.has(ws)) return live.detach();
    ws.on('close', () => end());
    ws.on('error', () => end());
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (isBinary) {
        live.input(toBuffer(data));
        return;
      }
      const frame = parseAttachClientFrame(toBuffer(data).toString('utf8'));
      if (frame) live.resize({ cols: frame.cols, rows: frame.rows });
    });
    unsubscribe = this.#opts.bus.onEvent((e) => {
      if (e.type === 'state' && e.unit === unit) send({ type: 'state', unit, state: e.state, pid: e.pid ?? null, reason: e.reason ?? null });
    });
    this.#opts.logger?.info({ unit }, 'control: terminal attached');
  }

  /** Ends every attachment (the daemon stops); the units' terminals are free again. */
  close(): void {
    for (const end of [...this.#clients.values()]) end();
  }
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
