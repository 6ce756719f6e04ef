// The WebSocket server and its clients' liveness. ws is loaded with the first WebSocket client: a
// daemon nobody watches (most of them) is ~5 MiB smaller without it, as with prom-client and the
// first scrape.

import type { WebSocket, WebSocketServer } from 'ws';

export class WsPool {
  readonly #maxPayload: number;
  #wss: WebSocketServer | undefined;
  #loading: Promise<WebSocketServer> | undefined;
  readonly #alive = new WeakMap<WebSocket, boolean>();
  /** Upgrades waiting for ws to load; they count against the client limit. */
  upgrading = 0;

  constructor(maxPayload: number) {
    this.#maxPayload = maxPayload;
  }

  load(): Promise<WebSocketServer> {
    return (this.#loading ??= import('ws').then(({ WebSocketServer }) => (this.#wss = new WebSocketServer({ noServer: true, maxPayload: this.#maxPayload, perMessageDeflate: false, clientTracking: true }))));
  }

  clients(): Set<WebSocket> {
    return this.#wss?.clients ?? new Set();
  }

  /** A new client: alive until it misses a whole ping interval. */
  track(ws: WebSocket): void {
    this.#alive.set(ws, true);
    ws.on('pong', () => this.#alive.set(ws, true));
  }

  /** One heartbeat: a client that did not answer the previous ping is dropped, the rest pinged. */
  beat(): void {
    for (const ws of this.clients()) {
      if (this.#alive.get(ws) === false) {
        ws.terminate();
        continue;
      }
      this.#alive.set(ws, false);
      ws.ping();
    }
  }

  /** Closes the ws server if it was ever loaded (its clients are gone by then). */
  async close(): Promise<void> {
    const wsServer = await this.#loading?.catch(() => undefined);
    if (wsServer) await new Promise<void>((resolve) => wsServer.close(() => resolve()));
  }
}
