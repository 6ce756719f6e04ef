// `bksup attach <unit>`: this terminal becomes the terminal of a `tty: true` unit, over WebSocket
// `/api/attach` (src/control/attach-protocol.ts). Raw mode: every key goes to the unit (Ctrl-C
// too, as in any terminal), except the detach key Ctrl-], which ends the attachment and leaves
// the unit running. The window size follows this terminal's. State changes of the unit (it
// exited, restarts) are printed as `[bksup] …` lines and the attachment goes on.
//
//   connect ─► refused (HTTP 404/409/403): print the reason, exit 1
//           ─► `attached` frame ─► raw mode ─► Ctrl-] ─► close 1000, exit 0
//                                           ─► closed by the daemon (stopping, too slow): exit 1

import type { Writable } from 'node:stream';
import type { WebSocket } from 'ws';
import { ATTACH_PATH, DETACH_KEY, DETACH_KEY_NAME, MAX_INPUT_FRAME, parseAttachServerFrame, type AttachClientFrame } from '../control/attach-protocol.ts';
import { CLOSE } from '../control/protocol.ts';
import { findDaemon, type DaemonDir } from './daemon.ts';
import { STYLE, painter } from './format.ts';

/** The user's terminal: process.stdin/stdout in the CLI. */
export interface AttachIO {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  out: Writable & { isTTY?: boolean; columns?: number; rows?: number; on(event: 'resize' | 'drain', fn: () => void): unknown };
  err: Writable;
  /** Ends the attachment as the detach key does (the CLI wires SIGHUP and SIGTERM to it). */
  signal?: AbortSignal;
}

export async function attachCommand(dir: DaemonDir, unit: string, io: AttachIO): Promise<number> {
  if (!io.stdin.isTTY || !io.stdin.setRawMode) {
    io.err.write(`attach: stdin is not a terminal: run bksup attach ${unit} in a terminal (it passes every key, Ctrl-C too, to the unit)\n`);
    return 1;
  }
  const found = await findDaemon(dir);
  if (!found.ok) {
    io.err.write(`attach: ${found.error}\n`);
    return 1;
  }
  const { daemon } = found;
  const query = new URLSearchParams({ unit });
  if (io.out.columns && io.out.rows) {
    query.set('cols', String(io.out.columns));
    query.set('rows', String(io.out.rows));
  }
  // Imported here: the daemon shares this bundle and loads ws only for its first client.
  const { WebSocket } = await import('ws');
  const ws = new WebSocket(`${daemon.wsUrl}${ATTACH_PATH}?${query}`, {
    headers: { authorization: `Bearer ${daemon.info.token}` },
    handshakeTimeout: 10_000,
    perMessageDeflate: false,
  });
  return new AttachSession(ws, unit, io).done;
}

/** One attachment, from the handshake to the exit code. */
class AttachSession {
  readonly done: Promise<number>;
  readonly #ws: WebSocket;
  readonly #unit: string;
  readonly #io: AttachIO;
  readonly #dim: (text: string) => string;
  #raw = false;
  #detached = false;
  #error: string | undefined;
  #ended = false;
  #finish!: (code: number) => void;

  constructor(ws: WebSocket, unit: string, io: AttachIO) {
    this.#ws = ws;
    this.#unit = unit;
    this.#io = io;
    const paint = painter(io.out.isTTY === true && !process.env.NO_COLOR);
    this.#dim = (text) => paint(STYLE.dim, text);
    this.done = new Promise((resolve) => (this.#finish = resolve));
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => this.#end(1, `attach: ${errorOf(body) ?? `HTTP ${res.statusCode}`}\n`));
      res.on('error', () => this.#end(1, `attach: HTTP ${res.statusCode}\n`));
    });
    ws.on('error', (err) => {
      if (!this.#detached) this.#error ??= err.message;
      if (ws.readyState === ws.CLOSED) this.#closed(undefined);
    });
    ws.on('message', (data, isBinary) => this.#message(data as Buffer, isBinary));
    ws.on('close', (code) => this.#closed(code));
    io.signal?.addEventListener('abort', () => this.#detach(), { once: true });
  }

  #message(data: Buffer, isBinary: boolean): void {
    if (isBinary) {
      // The daemon's output waits while this terminal is behind (its own buffer is bounded).
      if (!this.#io.out.write(data)) {
        this.#ws.pause();
        this.#io.out.once('drain', () => this.#ws.resume());
      }
      return;
    }
    const frame = parseAttachServerFrame(data.toString('utf8'));
    if (!frame) return;
    switch (frame.type) {
      case 'attached': {
        const run = frame.pid !== null ? `${frame.state}, pid ${frame.pid}` : `${frame.state}: keys are dropped until it runs`;
        this.#io.err.write(this.#dim(`[bksup] attached to ${frame.unit} (${run}). ${DETACH_KEY_NAME} detaches; the unit keeps running.`) + '\r\n');
        this.#startRaw();
        return;
      }
      case 'state':
        this.#io.err.write(`\r\n${this.#dim(`[bksup] ${frame.unit}: ${frame.state}${frame.pid !== null && frame.state === 'running' ? ` (pid ${frame.pid})` : ''}${frame.reason ? `: ${frame.reason.split('\n')[0]}` : ''}`)}\r\n`);
        return;
      case 'error':
        this.#error = frame.error;
        return;
    }
  }

  #startRaw(): void {
    if (this.#raw || this.#detached) return;
    this.#raw = true;
    this.#io.stdin.setRawMode!(true);
    this.#io.stdin.on('data', this.#onKeys);
    this.#io.stdin.resume();
    this.#io.out.on('resize', this.#onResize);
  }

  #onKeys = (chunk: Buffer | string): void => {
    const keys = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    const at = keys.indexOf(DETACH_KEY);
    this.#send(at >= 0 ? keys.subarray(0, at) : keys);
    if (at >= 0) this.#detach();
  };

  #send(keys: Buffer): void {
    if (this.#ws.readyState !== this.#ws.OPEN) return;
    for (let i = 0; i < keys.length; i += MAX_INPUT_FRAME) this.#ws.send(keys.subarray(i, i + MAX_INPUT_FRAME), { binary: true });
  }

  #onResize = (): void => {
    const { columns, rows } = this.#io.out;
    if (!columns || !rows || this.#ws.readyState !== this.#ws.OPEN) return;
    this.#ws.send(JSON.stringify({ type: 'resize', cols: columns, rows } satisfies AttachClientFrame));
  };

  #detach(): void {
    if (this.#detached) return;
    this.#detached = true;
    if (this.#ws.readyState === this.#ws.OPEN || this.#ws.readyState === this.#ws.CONNECTING) this.#ws.close(CLOSE.normal, 'detached');
    this.#restore();
    this.#io.err.write(`\r\n${this.#dim(`[bksup] detached from ${this.#unit}; it keeps running (bksup attach ${this.#unit} to come back)`)}\n`);
    // Do not wait for a daemon that does not answer the close.
    const timer = setTimeout(() => this.#ws.terminate(), 2000);
    timer.unref();
    this.#ws.once('close', () => clearTimeout(timer));
  }

  #closed(code: number | undefined): void {
    if (this.#detached) return this.#end(0);
    const why =
      this.#error ??
      (code === CLOSE.goingAway ? 'the supervisor is shutting down' : code === undefined ? 'could not connect to the supervisor' : `the connection to the supervisor was closed (${code})`);
    this.#end(1, `\r\n[bksup] attachment to ${this.#unit} ended: ${why}\n`);
  }

  #restore(): void {
    if (!this.#raw) return;
    this.#raw = false;
    this.#io.stdin.off('data', this.#onKeys);
    this.#io.stdin.pause();
    this.#io.stdin.setRawMode!(false);
    this.#io.out.off('resize', this.#onResize);
  }

  #end(code: number, message?: string): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#restore();
    if (message) this.#io.err.write(message);
    this.#finish(code);
  }
}

function errorOf(body: string): string | undefined {
  try {
    const v = JSON.parse(body) as { error?: unknown };
    return typeof v.error === 'string' ? v.error : undefined;
  } catch {
    return undefined;
  }
}
