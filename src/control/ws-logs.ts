// WebSocket `/api/logs?units=a,b&tail=N&follow=1&since=SEQ`: the request's parameters, and the
// hub that owns every connection's LogFollower (src/control/log-follower.ts: a cursor per unit,
// served from the ring, the log files, or this turn's batches, with backpressure).
//
// The hub listens to the bus once for all clients. It only remembers the batches published
// since it last pumped the followers (shared, no copy), and pumps them at the end of the turn,
// or as soon as a frame's worth is waiting: followers that keep up send those batches' ranges,
// serialised once for all of them; a follower that is behind reads what it needs itself.
// Nothing is queued per client, so nothing is ever dropped.

import type { WebSocket } from 'ws';
import { type EventBus, lineCount } from '../events.ts';
import type { SupervisorHandle } from '../units/types.ts';
import type { LogHistory } from './history.ts';
import { DEFAULT_LOG_STREAM_LIMITS, LogFollower, type LogClientStats, type LogsRequest, type LogStreamLimits, type RecentBatches } from './log-follower.ts';
import { FrameCache, LINE_OVERHEAD_BYTES } from './log-frames.ts';
import { CLOSE, isValidUnitName, type LogsServerFrame } from './protocol.ts';
import type { ControlLogger } from './server.ts';

export { DEFAULT_LOG_STREAM_LIMITS, type LogClientStats, type LogsRequest, type LogStreamLimits } from './log-follower.ts';

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: string };

export function unknownUnitError(name: string, known: readonly string[]): string {
  return `unknown unit ${JSON.stringify(name)} (known: ${known.join(', ') || 'none'})`;
}

function shown(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

function parseCount(name: string, text: string): ParseResult<number> {
  if (!/^\d{1,15}$/.test(text)) return { ok: false, error: `${name} must be a non-negative integer, got ${shown(text)}` };
  return { ok: true, value: Number(text) };
}

export function parseLogsQuery(params: URLSearchParams, known: readonly string[]): ParseResult<LogsRequest> {
  const knownSet = new Set(known);
  let units: string[] = [...known];
  const unitsParam = params.get('units');
  if (unitsParam !== null && unitsParam.trim() !== '') {
    const wanted = [...new Set(unitsParam.split(',').map((u) => u.trim()).filter((u) => u !== ''))];
    for (const u of wanted) {
      if (!isValidUnitName(u)) return { ok: false, error: `invalid unit name ${shown(u)}` };
      if (!knownSet.has(u)) return { ok: false, error: unknownUnitError(u, known) };
    }
    units = wanted;
  }

  let follow = false;
  const followParam = params.get('follow');
  if (followParam !== null) {
    if (/^(|1|true|yes)$/i.test(followParam)) follow = true;
    else if (!/^(0|false|no)$/i.test(followParam)) return { ok: false, error: `follow must be 1 or 0, got ${shown(followParam)}` };
  }

  let tail: number | undefined;
  const tailParam = params.get('tail');
  if (tailParam !== null) {
    const r = parseCount('tail', tailParam);
    if (!r.ok) return r;
    tail = r.value;
  }

  let since: LogsRequest['since'];
  const sinceParam = params.get('since');
  if (sinceParam !== null && sinceParam !== '') {
    if (/^\d+$/.test(sinceParam)) {
      const r = parseCount('since', sinceParam);
      if (!r.ok) return r;
      since = r.value;
    } else {
      const map = new Map<string, number>();
      for (const part of sinceParam.split(',')) {
        const colon = part.lastIndexOf(':');
        const unit = part.slice(0, colon);
        if (colon <= 0 || !isValidUnitName(unit)) return { ok: false, error: `since must be SEQ or unit:SEQ,unit:SEQ, got ${shown(sinceParam)}` };
        const r = parseCount(`since for ${unit}`, part.slice(colon + 1));
        if (!r.ok) return r;
        // Resume cursors of a unit this daemon does not have (a config change between runs)
        // are moot, not an error: the selection (`units=`) is what is checked.
        if (knownSet.has(unit)) map.set(unit, r.value);
      }
      since = map;
    }
  }

  const instance = params.get('instance') ?? undefined;
  return { ok: true, value: { units, follow, tail, since, instance } };
}

// ------------------------------------------------------------------ the hub

export interface LogStreamHubOptions {
  bus: EventBus;
  handle: SupervisorHandle;
  history: LogHistory;
  instance: string;
  startedAt: number;
  /** Per unit, the last seq before this daemon instance started (where "from the start" begins). */
  baseSeq: ReadonlyMap<string, number>;
  limits?: Partial<LogStreamLimits>;
  logger?: ControlLogger | undefined;
}

export class LogStreamHub {
  readonly #opts: LogStreamHubOptions;
  readonly limits: LogStreamLimits;
  readonly #followers = new Set<LogFollower>();
  readonly #frames = new FrameCache();
  readonly #recent: RecentBatches = { batches: [], first: new Map() };
  readonly #unsubscribe: () => void;
  #flushScheduled = false;
  #flushQueued = false;
  /** What `#recent` holds, in the bytes a frame is packed by. */
  #held = 0;
  /** Gap lines of clients that are gone (the metrics counter must never go down). */
  #gapLinesOfClosed = 0;

  constructor(opts: LogStreamHubOptions) {
    this.#opts = opts;
    this.limits = { ...DEFAULT_LOG_STREAM_LIMITS, ...opts.limits };
    this.#unsubscribe = opts.bus.onLogs((batch) => {
      if (this.#followers.size === 0 || lineCount(batch) === 0) return;
      let wanted = false;
      for (const f of this.#followers) {
        if (f.wants(batch.unit)) {
          wanted = true;
          break;
        }
      }
      if (!wanted) return;
      const recent = this.#recent;
      recent.batches.push(batch);
      if (!recent.first.has(batch.unit)) recent.first.set(batch.unit, batch.firstSeq);
      // Measured as frames are packed (text plus LINE_OVERHEAD_BYTES a line); the text is
      // estimated when the batch has no raw bytes (system lines, masked secrets: rare).
      const n = lineCount(batch);
      this.#held += (batch.raw === undefined ? n * 80 : batch.raw.length) + n * LINE_OVERHEAD_BYTES;
      if (this.#held >= this.limits.frameBytes) {
        // A frame's worth is waiting: send it as soon as this batch's fan-out is over (the
        // ring and the files have it then). Waiting for the turn's end would pin every chunk of
        // the turn (libuv reads a flooding pipe up to 32 × 64 KiB per turn) across young-
        // generation GCs, which promote them to the old generation: under a 1M-line flood
        // that garbage, not any follower, made the daemon's RSS peak (bench/NOTES.md).
        if (!this.#flushQueued) {
          this.#flushQueued = true;
          queueMicrotask(this.#flush);
        }
      } else if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(this.#flushAtTurnEnd);
      }
    });
  }

  readonly #flushAtTurnEnd = (): void => {
    this.#flushScheduled = false;
    this.#flush();
  };

  /** Every follower sends what it can, then the batches are let go (once per turn, or per frame's worth). */
  readonly #flush = (): void => {
    this.#flushQueued = false;
    if (this.#recent.batches.length === 0) return;
    for (const f of this.#followers) f.pump();
    this.#frames.clearBatchFrames();
    this.#recent.batches = [];
    this.#recent.first.clear();
    this.#held = 0;
  };

  /** Takes over a freshly upgraded socket. */
  attach(ws: WebSocket, params: URLSearchParams): void {
    const known = this.#opts.handle.unitNames();
    const parsed = parseLogsQuery(params, known);
    if (!parsed.ok) {
      sendErrorAndClose(ws, parsed.error);
      return;
    }
    const { history, instance, startedAt, baseSeq, logger } = this.#opts;
    const ctx = { history, instance, startedAt, baseSeq, logger, limits: this.limits, frames: this.#frames, recent: this.#recent };
    const follower = new LogFollower(ws, parsed.value, ctx, () => {
      if (this.#followers.delete(follower)) this.#gapLinesOfClosed += follower.gapLines;
    });
    if (parsed.value.follow) this.#followers.add(follower);
    follower.start();
  }

  stats(): LogClientStats[] {
    return [...this.#followers].map((f) => f.stats());
  }

  kick(): void {
    for (const f of this.#followers) f.kick();
  }

  /** Every line any follower was told (with `gap`) no longer exists, since the hub started. */
  droppedTotal(): number {
    let n = this.#gapLinesOfClosed;
    for (const f of this.#followers) n += f.gapLines;
    return n;
  }

  close(): void {
    this.#unsubscribe();
    this.#followers.clear();
  }
}

export function sendErrorAndClose(ws: WebSocket, error: string): void {
  ws.send(JSON.stringify({ type: 'error', error } satisfies LogsServerFrame));
  // A close reason is limited to 123 bytes; the error frame carries the whole message anyway.
  ws.close(CLOSE.policy, Buffer.byteLength(error) > 120 ? 'bad request' : error);
}
