// `bksup logs [units…] [-f] [-n N] [--json]`: prints the daemon's log stream as `unit | line`
// (coloured on a TTY) or one JSON object per line.
//
// Following survives the daemon going away: the client keeps, per unit, the seq up to which it
// has everything (hello `from`, lines, gaps) and reconnects — re-reading control.json each time,
// with backoff — asking for `since=unit:seq,…&instance=<id>`. The same daemon resumes exactly
// there (nothing lost, nothing repeated); a different daemon instance (its seqs start over)
// is followed from the start of its run instead.
//
//   connect ─► hello ─► frames … ─► close 1000 (no follow): done, exit 0
//                                 ─► close 1008 / error frame: exit 1
//                                 ─► lost (daemon gone, 1001, network): follow? reconnect : exit 1

import type { Writable } from 'node:stream';
import type { WebSocket } from 'ws';
import { CLOSE, parseLogsFrame, type GapFrame, type HelloFrame, type WireLogLine } from '../control/protocol.ts';
import { findDaemon, type Daemon, type DaemonDir } from './daemon.ts';
import { STYLE, errStream, painter, unitColor, useColor, type ClientIO, type Paint } from './format.ts';

export const DEFAULT_TAIL = 100;

export interface LogsOptions {
  /** Keep streaming new lines (and reconnect when the daemon goes away). */
  follow?: boolean;
  /** History lines per unit before following (default 100). */
  n?: number;
  /** One JSON object per line: `{type:'log',unit,stream,seq,ts,line}` or `{type:'gap',…}`. */
  json?: boolean;
}

export interface LogsIO extends ClientIO {
  /** Ends a follow (Ctrl-C); the command then resolves with 0. */
  signal?: AbortSignal;
  /** Reconnect backoff (default 100 ms doubling up to 2 s). */
  reconnect?: { initialMs?: number; maxMs?: number };
}

interface FollowState {
  instance: string | undefined;
  /** Per unit: everything up to this seq was printed or reported as a gap (the resume point). */
  cursor: Map<string, number>;
  /** Per unit: the highest seq printed (guards against printing a line twice). */
  printed: Map<string, number>;
}

type SessionEnd =
  | { kind: 'ended' }
  | { kind: 'refused'; error: string }
  | { kind: 'lost'; helloSeen: boolean; why: string }
  | { kind: 'aborted' };

class Printer {
  readonly #out: Writable;
  readonly #json: boolean;
  readonly #paint: Paint;
  #width = 0;

  constructor(out: Writable, json: boolean, color: boolean) {
    this.#out = out;
    this.#json = json;
    this.#paint = painter(color);
  }

  setUnits(units: readonly string[]): void {
    this.#width = Math.max(this.#width, ...units.map((u) => u.length));
  }

  #prefix(unit: string): string {
    return `${this.#paint(unitColor(unit), unit.padEnd(this.#width))} | `;
  }

  lines(lines: readonly WireLogLine[]): string {
    let text = '';
    for (const l of lines) {
      if (this.#json) text += `${JSON.stringify({ type: 'log', unit: l.unit, stream: l.stream, seq: l.seq, ts: l.ts, line: l.line })}\n`;
      else if (l.stream === 'system') text += `${this.#prefix(l.unit)}${this.#paint(STYLE.dim, l.line)}\n`;
      else text += `${this.#prefix(l.unit)}${l.line}\n`;
    }
    return text;
  }

  gap(gap: GapFrame): string {
    if (this.#json) return `${JSON.stringify(gap)}\n`;
    const what = `… ${gap.dropped} line${gap.dropped === 1 ? '' : 's'} not shown (seq ${gap.fromSeq}–${gap.toSeq}): no longer stored (rotated away or deleted)`;
    return `${this.#prefix(gap.unit)}${this.#paint(STYLE.yellow, what)}\n`;
  }

  /** Writes, and pauses the socket until `out` drained: a slow terminal slows only this client. */
  write(text: string, ws: WebSocket): void {
    if (text === '') return;
    if (!this.#out.write(text) && !ws.isPaused) {
      ws.pause();
      this.#out.once('drain', () => ws.resume());
    }
  }
}

function buildQuery(units: readonly string[], opts: LogsOptions, state: FollowState, resuming: boolean): string {
  const params = new URLSearchParams();
  if (units.length > 0) params.set('units', units.join(','));
  if (opts.follow) params.set('follow', '1');
  if (resuming && state.instance !== undefined) {
    params.set('since', [...state.cursor].map(([u, s]) => `${u}:${s}`).join(','));
    params.set('instance', state.instance);
  } else {
    params.set('tail', String(opts.n ?? DEFAULT_TAIL));
  }
  return params.toString();
}

async function runSession(daemon: Daemon, query: string, printer: Printer, state: FollowState, note: (text: string) => void, signal: AbortSignal | undefined): Promise<SessionEnd> {
  // Imported here, not at the top: the daemon shares this bundle and loads ws only for its first client.
  const { WebSocket } = await import('ws');
  return new Promise((resolve) => {
    let helloSeen = false;
    let errorFrame: string | undefined;
    let lastError: string | undefined;
    let settled = false;
    const ws = new WebSocket(`${daemon.wsUrl}/api/logs?${query}`, {
      headers: { authorization: `Bearer ${daemon.info.token}` },
      handshakeTimeout: 10_000,
      perMessageDeflate: false,
    });
    const finish = (end: SessionEnd): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      resolve(end);
    };
    const onAbort = (): void => {
      ws.terminate();
      finish({ kind: 'aborted' });
    };
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });

    const onHello = (h: HelloFrame): void => {
      helloSeen = true;
      if (state.instance !== undefined && state.instance !== h.instance) {
        note('the supervisor was restarted: following its new run from the start');
        state.cursor.clear();
        state.printed.clear();
      }
      state.instance = h.instance;
      for (const u of h.units) state.cursor.set(u, Math.max(state.cursor.get(u) ?? 0, h.from[u] ?? 0));
      printer.setUnits(h.units);
    };

    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const frame = parseLogsFrame(data.toString());
      if (!frame) return;
      switch (frame.type) {
        case 'hello':
          onHello(frame);
          return;
        case 'error':
          errorFrame = frame.error;
          return;
        case 'gap': {
          state.cursor.set(frame.unit, Math.max(state.cursor.get(frame.unit) ?? 0, frame.toSeq));
          state.printed.set(frame.unit, Math.max(state.printed.get(frame.unit) ?? 0, frame.toSeq));
          printer.write(printer.gap(frame), ws);
          return;
        }
        case 'log':
        case 'logs': {
          printer.write(printer.lines(freshLines(frame.type === 'log' ? [frame] : frame.lines, state)), ws);
          return;
        }
      }
    });
    ws.on('error', (err) => {
      lastError = (err as NodeJS.ErrnoException).code ?? err.message;
    });
    ws.on('close', (code, reason) => {
      if (errorFrame !== undefined || code === CLOSE.policy) return finish({ kind: 'refused', error: errorFrame ?? (reason.toString() || 'the supervisor refused the request') });
      if (code === CLOSE.normal && helloSeen) return finish({ kind: 'ended' });
      const why = lastError ?? (code === CLOSE.goingAway ? 'the supervisor is shutting down' : `connection closed (${code}${reason.length ? `: ${reason.toString()}` : ''})`);
      finish({ kind: 'lost', helloSeen, why });
    });
  });
}

/** The lines not printed yet (a resumed session may repeat some), advancing the cursors. */
function freshLines(all: readonly WireLogLine[], state: FollowState): WireLogLine[] {
  const fresh: WireLogLine[] = [];
  for (const l of all) {
    if (l.seq <= (state.printed.get(l.unit) ?? 0)) continue;
    state.printed.set(l.unit, l.seq);
    if (l.seq > (state.cursor.get(l.unit) ?? 0)) state.cursor.set(l.unit, l.seq);
    fresh.push(l);
  }
  return fresh;
}

function delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Exit code: 0 when the history was printed (or a follow was ended by `io.signal`), else 1. */
export async function logsCommand(dir: DaemonDir, units: readonly string[], opts: LogsOptions, io: LogsIO): Promise<number> {
  const err = errStream(io);
  if (opts.n !== undefined && !(Number.isInteger(opts.n) && opts.n >= 0)) {
    err.write(`logs: -n must be a whole number of lines (0 or more), got ${String(opts.n)}\n`);
    return 1;
  }
  const paint = painter(useColor({ ...io, out: err }));
  const note = (text: string): void => {
    err.write(`${paint(STYLE.dim, `bksup: ${text}`)}\n`);
  };
  const printer = new Printer(io.out, opts.json === true, useColor(io));
  const state: FollowState = { instance: undefined, cursor: new Map(), printed: new Map() };
  const initialMs = io.reconnect?.initialMs ?? 100;
  const maxMs = io.reconnect?.maxMs ?? 2000;
  let backoff = initialMs;
  let connectedOnce = false;
  let waitingNoted = false;

  for (;;) {
    if (io.signal?.aborted) return 0;
    const found = await findDaemon(dir);
    if (!found.ok) {
      if (!connectedOnce) {
        err.write(`${found.error}\n`);
        return 1;
      }
      if (!waitingNoted) note('waiting for the supervisor to come back…');
      waitingNoted = true;
      await delay(backoff, io.signal);
      backoff = Math.min(maxMs, backoff * 2);
      continue;
    }
    const end = await runSession(found.daemon, buildQuery(units, opts, state, connectedOnce), printer, state, note, io.signal);
    switch (end.kind) {
      case 'ended':
      case 'aborted':
        return 0;
      case 'refused':
        err.write(`logs: ${end.error}\n`);
        return 1;
      case 'lost':
        if (end.helloSeen) {
          connectedOnce = true;
          backoff = initialMs;
        }
        if (!opts.follow || !connectedOnce) {
          err.write(`logs: lost the connection to the supervisor: ${end.why}\n`);
          return 1;
        }
        if (end.helloSeen) {
          note(`connection lost (${end.why}); reconnecting…`);
          waitingNoted = false;
        }
        await delay(backoff, io.signal);
        backoff = Math.min(maxMs, backoff * 2);
    }
  }
}
