// WebSocket `/api/events`: a snapshot of every unit on connect, then every state change and
// verify result as it happens. Events are few and small, but a client that stops reading must
// not make the daemon buffer without bound: past the high-water mark it is disconnected with
// 1013, and on reconnect it gets a fresh snapshot, which is all a missed state event could tell.

import type { WebSocket } from 'ws';
import type { EventBus, ReloadEvent, VerifyEvent } from '../events.ts';
import type { SupervisorHandle } from '../units/types.ts';
import { CLOSE, type EventsServerFrame } from './protocol.ts';
import type { ControlLogger } from './server.ts';

export interface EventStreamHubOptions {
  bus: EventBus;
  handle: SupervisorHandle;
  instance: string;
  highWaterBytes?: number;
  logger?: ControlLogger | undefined;
}

export class EventStreamHub {
  readonly #opts: EventStreamHubOptions;
  readonly #clients = new Set<WebSocket>();
  readonly #unsubscribe: () => void;
  readonly #highWater: number;
  /** A page opened after the verify run still shows its result. */
  #lastVerify: VerifyEvent | undefined;
  /** Likewise the last refused reload: the stack runs the previous config until it is fixed. */
  #lastReload: ReloadEvent | undefined;

  constructor(opts: EventStreamHubOptions) {
    this.#opts = opts;
    this.#highWater = opts.highWaterBytes ?? 1024 * 1024;
    this.#unsubscribe = opts.bus.onEvent((event) => {
      if (event.type === 'verify') this.#lastVerify = event;
      if (event.type === 'reload') this.#lastReload = event.ok ? undefined : event;
      if (this.#clients.size === 0) return;
      const text = JSON.stringify(event satisfies EventsServerFrame);
      for (const ws of this.#clients) this.#send(ws, text);
    });
  }

  get size(): number {
    return this.#clients.size;
  }

  attach(ws: WebSocket): void {
    let frame: EventsServerFrame;
    try {
      frame = { type: 'snapshot', instance: this.#opts.instance, units: this.#opts.handle.snapshot(), ...(this.#lastVerify ? { verify: this.#lastVerify } : {}), ...(this.#lastReload ? { reload: this.#lastReload } : {}) };
    } catch (err) {
      this.#opts.logger?.error({ err: String(err) }, 'control: snapshot for /api/events failed');
      ws.close(1011, 'internal error');
      return;
    }
    this.#clients.add(ws);
    const drop = (): void => {
      this.#clients.delete(ws);
    };
    ws.on('close', drop);
    ws.on('error', drop);
    ws.on('message', () => {
      if (ws.bufferedAmount <= this.#highWater) ws.send(JSON.stringify({ type: 'error', error: 'this socket only sends; messages are ignored' } satisfies EventsServerFrame));
    });
    this.#send(ws, JSON.stringify(frame));
  }

  #send(ws: WebSocket, text: string): void {
    if (ws.readyState !== ws.OPEN) return;
    if (ws.bufferedAmount > this.#highWater) {
      this.#clients.delete(ws);
      ws.close(CLOSE.tryAgain, 'client too slow: reconnect for a fresh snapshot');
      // A client that does not read will not read the close frame either.
      setTimeout(() => ws.terminate(), 5000).unref();
      return;
    }
    ws.send(text);
  }

  close(): void {
    this.#unsubscribe();
    this.#clients.clear();
  }
}
