// WebSocket `/api/logs?units=a,b&tail=N&follow=1&since=SEQ`: history from the ring (and the log
// files when the ring no longer reaches back far enough), then live lines.
//
// Setting up a stream, without losing or repeating a line at the handover:
//
//   connect ──► register with the hub (live batches now queue up for this client)
//           ──► cut[u] = history.lastSeq(u)        same tick: nothing published in between
//           ──► ring reads (lines ≤ cut), hello {lastSeq: cut}
//           ──► file reads for what the ring lost (async; live lines keep queueing, bounded)
//           ──► history sent with backpressure (awaits the socket, never drops)
//           ──► live: queue flushed on setImmediate, lines ≤ cut skipped
//
// Live lines never wait for a slow client: the bus listener only appends to the client's
// bounded LiveQueue. A flush sends packed frames while the socket's buffer is under the high-water
// mark and resumes from the send callback once it drained. A client that cannot keep up loses
// its oldest queued lines and is told so with a `gap` frame; nobody else notices.

import type { WebSocket } from 'ws';
import type { EventBus, LogBatch } from '../events.ts';
import type { LogLine, SupervisorHandle } from '../units/types.ts';
import type { HistoryQuery, LogHistory } from './history.ts';
import { LiveQueue, batchBytes, linesOf, rangeLines, type BatchRange, type LiveQueueLimits } from './live-queue.ts';
import { CLOSE, PROTOCOL_VERSION, isValidUnitName, type GapFrame, type HelloFrame, type LogsServerFrame, type WireLogLine } from './protocol.ts';
import type { ControlLogger } from './server.ts';

export interface LogStreamLimits extends LiveQueueLimits {
  /** Stop sending to a client while its socket buffers more than this many bytes. */
  highWaterBytes: number;
  /** Packing bounds of one frame. */
  frameLines: number;
  frameBytes: number;
  /** Most history lines one request may ask for per unit (tail= or since= from the files). */
  maxHistoryLines: number;
}

export const DEFAULT_LOG_STREAM_LIMITS: LogStreamLimits = {
  maxLines: 5000,
  maxBytes: 4 * 1024 * 1024,
  highWaterBytes: 1024 * 1024,
  frameLines: 1000,
  frameBytes: 256 * 1024,
  maxHistoryLines: 100_000,
};

export interface LogsRequest {
  units: string[];
  follow: boolean;
  tail: number | undefined;
  /** One number for every unit, or per unit (`since=a:10,b:7`). */
  since: number | Map<string, number> | undefined;
  /** The daemon instance the `since` seqs belong to; another instance means "from its start". */
  instance: string | undefined;
}

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

// ------------------------------------------------------------------ history assembly

type HistoryItem = { kind: 'line'; line: LogLine } | { kind: 'gap'; gap: GapFrame; ts: number };

/**
 * Lines of one unit in seq order, with a gap item wherever seqs are missing between `from` (the
 * first seq the client should get) and `cut` (the last one history covers).
 */
function withGaps(unit: string, lines: LogLine[], from: number, cut: number): HistoryItem[] {
  const out: HistoryItem[] = [];
  let expected = from;
  for (const line of lines) {
    if (line.seq < expected) continue; // duplicate (file and ring overlap)
    if (line.seq > expected) out.push({ kind: 'gap', gap: { type: 'gap', unit, dropped: line.seq - expected, fromSeq: expected, toSeq: line.seq - 1 }, ts: line.ts });
    out.push({ kind: 'line', line });
    expected = line.seq + 1;
  }
  if (expected <= cut) {
    out.push({ kind: 'gap', gap: { type: 'gap', unit, dropped: cut - expected + 1, fromSeq: expected, toSeq: cut }, ts: Number.POSITIVE_INFINITY });
  }
  return out;
}

/** The lines after the last place where seqs fall (a restart of the daemon), in case a reader did not stop there. */
function newestRun(lines: LogLine[]): LogLine[] {
  for (let i = lines.length - 1; i > 0; i--) {
    if ((lines[i] as LogLine).seq <= (lines[i - 1] as LogLine).seq) return lines.slice(i);
  }
  return lines;
}

function itemTs(item: HistoryItem): number {
  return item.kind === 'line' ? item.line.ts : item.ts;
}

/** Interleaves the units' histories by time while keeping each unit's own order. */
function mergeByTime(perUnit: HistoryItem[][]): HistoryItem[] {
  const lists = perUnit.filter((l) => l.length > 0);
  if (lists.length === 1) return lists[0] as HistoryItem[];
  const idx = lists.map(() => 0);
  const out: HistoryItem[] = [];
  for (;;) {
    let best = -1;
    let bestTs = Number.POSITIVE_INFINITY;
    for (let k = 0; k < lists.length; k++) {
      const item = (lists[k] as HistoryItem[])[idx[k] as number];
      if (item === undefined) continue;
      const ts = itemTs(item);
      if (best === -1 || ts < bestTs) {
        best = k;
        bestTs = ts;
      }
    }
    if (best === -1) return out;
    out.push((lists[best] as HistoryItem[])[idx[best] as number] as HistoryItem);
    idx[best] = (idx[best] as number) + 1;
  }
}

// ------------------------------------------------------------------ the hub and its clients

/**
 * Live frames, serialised once for every client that sends the same lines: followers keeping up
 * take the same ranges of the same batches in the same tick, and each used to JSON-encode its own
 * copy (10 followers of a 500k-line burst: ~3.7 CPU-s of the daemon). Entries live until the
 * next turn of the event loop; a client that takes other ranges (its own backlog, a gap, lines
 * it had from history) simply misses and serialises its own frame.
 */
class FrameCache {
  readonly #ids = new WeakMap<LogBatch, number>();
  #nextId = 1;
  #frames = new Map<string, string>();
  #bytes = 0;
  #clearScheduled = false;
  static readonly MAX_CHARS = 2 * 1024 * 1024;

  frame(ranges: readonly BatchRange[]): string {
    let key = '';
    for (const r of ranges) {
      let id = this.#ids.get(r.batch);
      if (id === undefined) {
        id = this.#nextId++;
        this.#ids.set(r.batch, id);
      }
      key += `${id}:${r.start}:${r.end};`;
    }
    const hit = this.#frames.get(key);
    if (hit) return hit;
    const lines = linesOf(ranges);
    const frame: LogsServerFrame = rangeLines(ranges) === 1 ? { type: 'log', ...(lines[0] as WireLogLine) } : { type: 'logs', lines };
    // A string, not a Buffer: ws hands strings to the socket as they are, while small Buffers
    // would be slices of 8 KiB pool slabs that a stuck client's socket buffer would pin.
    const text = JSON.stringify(frame);
    if (this.#bytes + text.length <= FrameCache.MAX_CHARS) {
      this.#frames.set(key, text);
      this.#bytes += text.length;
      if (!this.#clearScheduled) {
        this.#clearScheduled = true;
        setImmediate(() => {
          this.#clearScheduled = false;
          this.#frames = new Map();
          this.#bytes = 0;
        });
      }
    }
    return text;
  }
}

/** What the ring gave for one unit, and what the request covers (`from`..cut). */
interface RingPart {
  lines: LogLine[];
  complete: boolean;
  query: HistoryQuery;
  from: number;
}

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

export interface LogClientStats {
  units: string[];
  phase: 'history' | 'live' | 'closed';
  queuedLines: number;
  queuedBytes: number;
  bufferedAmount: number;
  droppedTotal: number;
}

export class LogStreamHub {
  readonly #opts: LogStreamHubOptions;
  readonly limits: LogStreamLimits;
  readonly #clients = new Set<LogStreamClient>();
  readonly #frames = new FrameCache();
  readonly #unsubscribe: () => void;
  /** Lines dropped for clients that are gone (the metrics counter must never go down). */
  #droppedByClosed = 0;

  constructor(opts: LogStreamHubOptions) {
    this.#opts = opts;
    this.limits = { ...DEFAULT_LOG_STREAM_LIMITS, ...opts.limits };
    // One bus listener for all clients: the batch's size is computed once, and each client only
    // appends a reference to its queue.
    this.#unsubscribe = opts.bus.onLogs((batch) => {
      if (this.#clients.size === 0 || batch.lines.length === 0) return;
      let bytes = -1;
      for (const c of this.#clients) {
        if (!c.wants(batch.unit)) continue;
        if (bytes < 0) bytes = batchBytes(batch);
        c.offer(batch, bytes);
      }
    });
  }

  /** Takes over a freshly upgraded socket. */
  attach(ws: WebSocket, params: URLSearchParams): void {
    const known = this.#opts.handle.unitNames();
    const parsed = parseLogsQuery(params, known);
    if (!parsed.ok) {
      sendErrorAndClose(ws, parsed.error);
      return;
    }
    const client = new LogStreamClient(ws, parsed.value, this.#opts, this.limits, this.#frames, () => {
      if (this.#clients.delete(client)) this.#droppedByClosed += client.droppedTotal;
    });
    if (parsed.value.follow) this.#clients.add(client);
    client.start();
  }

  stats(): LogClientStats[] {
    return [...this.#clients].map((c) => c.stats());
  }

  kick(): void {
    for (const c of this.#clients) c.kick();
  }

  /** Every line any client lost to its bounded queue since the hub started. */
  droppedTotal(): number {
    let n = this.#droppedByClosed;
    for (const c of this.#clients) n += c.droppedTotal;
    return n;
  }

  close(): void {
    this.#unsubscribe();
    this.#clients.clear();
  }
}

export function sendErrorAndClose(ws: WebSocket, error: string): void {
  ws.send(JSON.stringify({ type: 'error', error } satisfies LogsServerFrame));
  // A close reason is limited to 123 bytes; the error frame carries the whole message anyway.
  ws.close(CLOSE.policy, Buffer.byteLength(error) > 120 ? 'bad request' : error);
}

class LogStreamClient {
  readonly #ws: WebSocket;
  readonly #req: LogsRequest;
  readonly #opts: LogStreamHubOptions;
  readonly #limits: LogStreamLimits;
  readonly #units: ReadonlySet<string>;
  readonly #queue: LiveQueue;
  readonly #onGone: () => void;
  readonly #frames: FrameCache;
  /** Per unit, the highest seq already delivered (or deliberately skipped). */
  readonly #delivered = new Map<string, number>();
  #phase: 'history' | 'live' | 'closed' = 'history';
  #flushScheduled = false;
  #waitingForDrain = false;
  readonly #onSent = (err?: Error): void => {
    if (err || !this.#waitingForDrain) return;
    this.#waitingForDrain = false;
    this.#scheduleFlush();
  };

  constructor(ws: WebSocket, req: LogsRequest, opts: LogStreamHubOptions, limits: LogStreamLimits, frames: FrameCache, onGone: () => void) {
    this.#ws = ws;
    this.#frames = frames;
    this.#req = req;
    this.#opts = opts;
    this.#limits = limits;
    this.#units = new Set(req.units);
    this.#queue = new LiveQueue(limits);
    this.#onGone = onGone;
    ws.on('close', () => this.#close());
    ws.on('error', () => this.#close());
    ws.on('message', (_data, isBinary) => {
      // This socket is server → client only. Answer (once the socket has room) so a confused
      // client learns why nothing happens; malformed input never reaches anyone else.
      if (this.#phase === 'closed' || ws.bufferedAmount > this.#limits.highWaterBytes) return;
      const frame: LogsServerFrame = { type: 'error', error: isBinary ? 'binary frames are not accepted here' : 'this socket only sends; messages are ignored' };
      ws.send(JSON.stringify(frame), this.#onSent);
    });
  }

  get droppedTotal(): number {
    return this.#queue.droppedTotal;
  }

  wants(unit: string): boolean {
    return this.#phase !== 'closed' && this.#units.has(unit);
  }

  offer(batch: LogBatch, bytes: number): void {
    this.#queue.push(batch, bytes);
    if (this.#phase === 'live') this.#scheduleFlush();
  }

  /** Safety net (called on every heartbeat): resume a flush whose drain callback never came. */
  kick(): void {
    if (this.#waitingForDrain && this.#ws.bufferedAmount <= this.#limits.highWaterBytes) {
      this.#waitingForDrain = false;
      this.#scheduleFlush();
    }
  }

  stats(): LogClientStats {
    return {
      units: [...this.#units],
      phase: this.#phase,
      queuedLines: this.#queue.lines,
      queuedBytes: this.#queue.bytes,
      bufferedAmount: this.#ws.bufferedAmount,
      droppedTotal: this.#queue.droppedTotal,
    };
  }

  start(): void {
    const { history, baseSeq, instance } = this.#opts;
    const req = this.#req;
    const cut = new Map<string, number>();
    const from = new Map<string, number>();
    const fromRing = new Map<string, RingPart>();
    const sinceFor = (unit: string): number | undefined => {
      if (req.instance !== undefined && req.instance !== instance && req.since !== undefined) return baseSeq.get(unit) ?? 0;
      return typeof req.since === 'number' ? req.since : req.since?.get(unit);
    };
    // Synchronous from here to the hello: no batch can be published in between, so `cut` is
    // exactly the boundary between what history covers and what the live queue holds.
    for (const unit of req.units) {
      const last = safeLastSeq(history, unit);
      cut.set(unit, last);
      const since = sinceFor(unit);
      // A client that claims more than exists gets nothing up to its claim (the protocol's
      // "seq > since"); the instance check above is what catches a restarted daemon.
      this.#delivered.set(unit, Math.max(last, since ?? 0));
      from.set(unit, since ?? last);
      let query: HistoryQuery | undefined;
      if (since !== undefined) query = since < last ? { sinceSeq: since, tail: this.#limits.maxHistoryLines } : undefined;
      else if (req.tail !== undefined && req.tail > 0) query = { tail: Math.min(req.tail, this.#limits.maxHistoryLines) };
      if (!query) continue;
      let res: { lines: LogLine[]; complete: boolean };
      try {
        res = history.read(unit, query.sinceSeq !== undefined ? { sinceSeq: query.sinceSeq } : query);
      } catch (err) {
        this.#opts.logger?.warn({ err: String(err), unit }, 'control: reading the log ring failed');
        res = { lines: [], complete: false };
      }
      // The first seq this request covers: lines missing from there on are reported as a gap.
      const first = since !== undefined ? since + 1 : Math.max(1, last - (query.tail ?? 0) + 1);
      fromRing.set(unit, { lines: res.lines.filter((l) => l.seq <= last && l.seq >= first), complete: res.complete, query, from: first });
    }
    const hello: HelloFrame = {
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      instance,
      pid: process.pid,
      startedAt: this.#opts.startedAt,
      units: req.units,
      lastSeq: Object.fromEntries(cut),
      from: Object.fromEntries(from),
    };
    this.#ws.send(JSON.stringify(hello));
    void this.#sendHistory(fromRing, cut).then(
      () => this.#goLive(),
      (err: unknown) => {
        this.#opts.logger?.error({ err: String(err) }, 'control: sending log history failed');
        this.#ws.close(1011, 'internal error');
      },
    );
  }

  async #sendHistory(fromRing: Map<string, RingPart>, cut: Map<string, number>): Promise<void> {
    if (fromRing.size === 0) return;
    const perUnit = await Promise.all(
      [...fromRing].map(async ([unit, r]): Promise<HistoryItem[]> => {
        let lines = r.lines;
        const last = cut.get(unit) ?? 0;
        if (!r.complete) {
          let fileLines: LogLine[] = [];
          try {
            // Always with sinceSeq: it also keeps a reader to this daemon run (seqs restart with
            // each run, so older runs' lines would otherwise pass for these seqs).
            fileLines = newestRun(await this.#opts.history.readFile(unit, { sinceSeq: r.from - 1, tail: r.query.tail ?? this.#limits.maxHistoryLines }));
          } catch (err) {
            this.#opts.logger?.warn({ err: String(err), unit }, 'control: reading the log file failed');
          }
          // The file covers what the ring lost; the ring covers what the file may not have yet.
          const ringFirst = lines[0]?.seq ?? last + 1;
          const older = fileLines.filter((l) => l.seq < ringFirst && l.seq >= r.from);
          lines = older.length > 0 ? older.concat(lines) : lines;
          // Also bounds a file reader that ignores `tail`.
          if (r.query.tail !== undefined && lines.length > r.query.tail) lines = lines.slice(lines.length - r.query.tail);
        }
        return withGaps(unit, lines, r.from, last);
      }),
    );
    if (this.#phase === 'closed') return;
    const items = mergeByTime(perUnit);
    const { frameLines, frameBytes } = this.#limits;
    let batch: WireLogLine[] = [];
    let bytes = 0;
    const sendBatch = async (): Promise<void> => {
      if (batch.length === 0) return;
      const frame: LogsServerFrame = batch.length === 1 ? { type: 'log', ...(batch[0] as WireLogLine) } : { type: 'logs', lines: batch };
      batch = [];
      bytes = 0;
      await this.#sendWithBackpressure(JSON.stringify(frame));
    };
    for (const item of items) {
      if (this.#closed()) return;
      if (item.kind === 'gap') {
        await sendBatch();
        await this.#sendWithBackpressure(JSON.stringify(item.gap));
        continue;
      }
      const l = item.line;
      batch.push({ unit: l.unit, stream: l.stream, seq: l.seq, ts: l.ts, line: l.line });
      bytes += l.line.length + 64;
      if (batch.length >= frameLines || bytes >= frameBytes) await sendBatch();
    }
    await sendBatch();
  }

  /** History is pulled from storage, so it waits for the client instead of dropping. */
  #sendWithBackpressure(text: string): Promise<void> {
    if (this.#phase === 'closed') return Promise.resolve();
    return new Promise((resolve) => {
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        resolve();
      };
      // The callback runs once this frame reached the kernel (or the socket failed).
      this.#ws.send(text, finish);
      if (this.#ws.bufferedAmount <= this.#limits.highWaterBytes) finish();
    });
  }

  #goLive(): void {
    if (this.#phase === 'closed') return;
    if (!this.#req.follow) {
      this.#ws.close(CLOSE.normal, 'end of history');
      this.#close();
      return;
    }
    this.#phase = 'live';
    this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#waitingForDrain || this.#phase !== 'live') return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    const ws = this.#ws;
    const { highWaterBytes, frameLines, frameBytes } = this.#limits;
    while (this.#phase === 'live' && ws.readyState === ws.OPEN) {
      if (ws.bufferedAmount > highWaterBytes) {
        // The next send callback (this frame reaching the kernel) resumes the flush.
        this.#waitingForDrain = true;
        return;
      }
      if (this.#queue.hasGaps) {
        for (const gap of this.#queue.takeGaps()) {
          this.#delivered.set(gap.unit, Math.max(this.#delivered.get(gap.unit) ?? 0, gap.toSeq));
          ws.send(JSON.stringify(gap), this.#onSent);
        }
        continue;
      }
      const ranges = this.#queue.takeRanges(frameLines, frameBytes, this.#delivered);
      if (ranges.length === 0) return;
      for (const r of ranges) this.#delivered.set(r.batch.unit, r.batch.firstSeq + r.end - 1);
      ws.send(this.#frames.frame(ranges), this.#onSent);
    }
  }

  /** A method, not a field test: the phase changes across the awaits of the history loop. */
  #closed(): boolean {
    return this.#phase === 'closed';
  }

  #close(): void {
    if (this.#phase === 'closed') return;
    this.#phase = 'closed';
    this.#queue.clear();
    this.#onGone();
  }
}

function safeLastSeq(history: LogHistory, unit: string): number {
  try {
    return history.lastSeq(unit);
  } catch {
    return 0;
  }
}
