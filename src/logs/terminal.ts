// The foreground view of `bksup up`: every unit's output interleaved, one line each,
//
//   server    | Uvicorn running on http://0.0.0.0:18001
//   web       ! warn  - Port 3011 is in use            (stderr: '!' bar, dim red with colour)
//   server    | ● healthy (pid 123)                    (state changes and supervisor lines)
//
// Names are padded to the longest configured unit name; each unit keeps one colour (by its
// position in the configured list, so it is the same every run). The per-unit prefixes are
// built once (also as bytes); a batch of output is encoded line by line into one buffer and
// written once (no string of the whole batch on the JS heap).

import { fstatSync, statSync } from 'node:fs';
import { type EventBus, type LogBatch, lineCount, type StateEvent, type SupervisorEvent, type UnitStateName } from '../events.ts';
import { FileSink } from './file-sink.ts';
import type { RawLines } from './line-splitter.ts';
import { redactText } from '../util/redact.ts';

export interface TerminalPrinterOptions {
  /** ANSI colours; see `terminalWantsColor` for the usual choice. */
  color: boolean;
  /** Known units, in a stable order (it picks the colours and the name column width). */
  unitNames: readonly string[];
}

const RESET = '\x1b[0m';
const DIM = '\x1b[2m';
// Bright and normal variants of the six non-grey colours; red is left for stderr and failures.
const UNIT_COLORS = ['\x1b[36m', '\x1b[35m', '\x1b[34m', '\x1b[33m', '\x1b[32m', '\x1b[96m', '\x1b[95m', '\x1b[94m', '\x1b[93m', '\x1b[92m'];

const STATE_COLOR: Record<UnitStateName, string> = {
  healthy: '\x1b[32m',
  running: '\x1b[32m',
  completed: '\x1b[32m',
  skipped: '\x1b[2m',
  disabled: '\x1b[2m',
  stopped: '\x1b[2m',
  pending: '\x1b[33m',
  starting: '\x1b[33m',
  stopping: '\x1b[33m',
  backoff: '\x1b[33m',
  unhealthy: '\x1b[31m',
  failed: '\x1b[31m',
};

/** Colour when the stream is a terminal and NO_COLOR is not set (https://no-color.org). */
export function terminalWantsColor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && (env.NO_COLOR === undefined || env.NO_COLOR === '');
}

interface Prefixes {
  stdout: string;
  stderr: string;
  system: string;
  /** stdout's and stderr's prefix as UTF-8 bytes, for printing a batch as bytes. */
  stdoutBytes: Buffer;
  stderrBytes: Buffer;
}

const NL = 10;
/** Slack for the last lines of a batch whose worst case (3 bytes per code unit) is checked per line. */
const SLACK = 1024;
/** A reused print buffer larger than this (a burst of long lines) is let go. */
const SCRATCH_MAX = 1024 * 1024;

export class TerminalPrinter {
  readonly #out: NodeJS.WritableStream & { writableLength?: number; fd?: unknown };
  readonly #color: boolean;
  readonly #order: Map<string, number>;
  readonly #width: number;
  readonly #prefixes = new Map<string, Prefixes>();
  #broken = false;
  /** Whether `out` writes to a descriptor (process.stdout), see printBatch. */
  readonly #syncFd: boolean;
  /** When `out` is a regular file: its writes, off the main thread (src/logs/file-sink.ts). */
  readonly #sink: FileSink | undefined;
  /** The last batch's buffer, when it may be reused. */
  #scratch: Buffer | undefined;

  constructor(out: NodeJS.WritableStream, opts: TerminalPrinterOptions) {
    this.#out = out;
    const fd = (out as { fd?: unknown }).fd;
    this.#syncFd = typeof fd === 'number';
    this.#sink =
      typeof fd === 'number' && FileSink.suits(fd)
        ? new FileSink(fd, () => {
            this.#broken = true;
          })
        : undefined;
    this.#color = opts.color;
    this.#order = new Map(opts.unitNames.map((n, i) => [n, i]));
    this.#width = opts.unitNames.reduce((w, n) => Math.max(w, n.length), 0);
    // `bksup up | head` closes the pipe: stop printing instead of dying of an unhandled EPIPE.
    out.on('error', () => {
      this.#broken = true;
    });
  }

  /** Subscribes to log batches and state events; returns one function undoing both. */
  attach(bus: EventBus): () => void {
    const offLogs = bus.onLogs((b) => this.printBatch(b));
    const offEvents = bus.onEvent((e) => this.printEvent(e));
    return () => {
      offLogs();
      offEvents();
    };
  }

  printBatch(batch: LogBatch): void {
    const n = lineCount(batch);
    if (n === 0 || this.#broken || batch.stateEcho) return;
    const p = this.#prefixesOf(batch.unit);
    const prefix = p[batch.stream];
    let text: string;
    if (batch.stream === 'system') {
      text = '';
      for (let i = 0; i < n; i++) text += prefix + this.#paint(DIM, batch.lines[i] as string) + '\n';
    } else {
      // Into one buffer line by line, copied from the pipe's bytes when the batch has them: a
      // string of the whole batch (a join, then its encoding by the stream) put ~90 KB per
      // 64 KiB chunk on the JS heap for the GC.
      const prefixBytes = batch.stream === 'stderr' ? p.stderrBytes : p.stdoutBytes;
      const raw = batch.raw;
      if (raw !== undefined && this.#sink !== undefined) {
        // Straight into the file sink's pending bytes: no buffer of our own, no copy.
        this.#sink.writeWith(rawPrintSize(prefixBytes, raw), (out, at) => rawInto(prefixBytes, raw, out, at));
        return;
      }
      const bytes = raw !== undefined ? rawAsBytes(prefixBytes, raw, this.#scratch) : linesAsBytes(prefixBytes, batch.lines, this.#scratch);
      this.#write(bytes);
      // The file sink copies; a descriptor written synchronously (process.stdout on a pipe or
      // terminal on Linux) is done with the buffer once write() returns and nothing is queued:
      // the next batch reuses it, instead of leaving a fresh ~90 KB buffer per chunk for the GC.
      const reusable = this.#sink !== undefined || (this.#syncFd && this.#out.writableLength === 0);
      this.#scratch = reusable && bytes.buffer.byteLength <= SCRATCH_MAX ? bytes : undefined;
      return;
    }
    this.#write(text);
  }

  printEvent(event: SupervisorEvent): void {
    if (this.#broken) return;
    if (event.type === 'state') {
      this.#write(this.#prefixesOf(event.unit).system + this.formatState(event) + '\n');
    } else if (event.type === 'reload') {
      // The same words and layout as a refused `up`, so the two read alike.
      const text = event.ok
        ? `bksup: config reloaded (${event.trigger}): ${event.summary ?? ''}\n`
        : `bksup: reload (${event.trigger}): the config is not valid, nothing was changed:\n${(event.errors ?? []).map((e) => `  ${e}`).join('\n')}\n`;
      this.#write(event.ok ? text : this.#paint('\x1b[31m', text));
    } else {
      const failed = event.results.filter((r) => !r.ok);
      const head = event.ok ? this.#paint('\x1b[32m', '● verify passed') : this.#paint('\x1b[31m', '● verify failed');
      let text = this.#prefixesOf('verify').system + `${head} (${event.results.length - failed.length}/${event.results.length} checks)\n`;
      for (const r of failed) text += this.#prefixesOf('verify').system + `  ✗ ${r.name}: ${redactText(r.detail)}\n`;
      this.#write(text);
    }
  }

  /** `● healthy (pid 123)`, `● backoff (exit code 1): restarting in 2s`. */
  formatState(e: StateEvent): string {
    const details: string[] = [];
    if (e.pid !== undefined) details.push(`pid ${e.pid}`);
    if (e.exitCode !== undefined && e.exitCode !== null) details.push(`exit code ${e.exitCode}`);
    if (e.signal !== undefined && e.signal !== null) details.push(`signal ${e.signal}`);
    let text = this.#paint(STATE_COLOR[e.state] ?? '', `● ${e.state}`);
    if (details.length > 0) text += ` (${details.join(', ')})`;
    if (e.reason !== undefined && e.reason !== '') text += `: ${redactText(e.reason)}`;
    return text;
  }

  #paint(code: string, text: string): string {
    return this.#color && code !== '' ? code + text + RESET : text;
  }

  #prefixesOf(unit: string): Prefixes {
    let p = this.#prefixes.get(unit);
    if (p === undefined) {
      const name = unit.padEnd(this.#width);
      if (this.#color) {
        const colored = RESET + this.#colorOf(unit) + name + RESET;
        p = withBytes({
          stdout: `${colored} ${DIM}|${RESET} `,
          stderr: `${colored} \x1b[2;31m!${RESET} `,
          system: `${colored} ${DIM}|${RESET} `,
        });
      } else {
        p = withBytes({ stdout: `${name} | `, stderr: `${name} ! `, system: `${name} | ` });
      }
      this.#prefixes.set(unit, p);
    }
    return p;
  }

  #colorOf(unit: string): string {
    let i = this.#order.get(unit);
    if (i === undefined) {
      // A unit outside the configured list still gets a stable colour: from its name.
      i = 0;
      for (let c = 0; c < unit.length; c++) i = (i * 31 + unit.charCodeAt(c)) >>> 0;
    }
    return UNIT_COLORS[i % UNIT_COLORS.length] as string;
  }

  /**
   * Other text for the same output (the daemon's own `bksup: …` lines): through here, it stays
   * in order with the lines printed before it.
   */
  write(text: string): void {
    if (!this.#broken) this.#write(text);
  }

  /** Resolves once what was printed so far is written (at once unless stdout is a file). */
  flush(): Promise<void> {
    return this.#sink?.flush() ?? Promise.resolve();
  }

  /** Writes what is still pending, synchronously: for exit paths. */
  flushSync(): void {
    this.#sink?.flushSync();
  }

  #write(text: string | Buffer): void {
    if (this.#sink !== undefined) {
      this.#sink.write(text);
      return;
    }
    try {
      this.#out.write(text);
    } catch {
      this.#broken = true;
    }
  }
}

function withBytes(p: Omit<Prefixes, 'stdoutBytes' | 'stderrBytes'>): Prefixes {
  return { ...p, stdoutBytes: Buffer.from(p.stdout), stderrBytes: Buffer.from(p.stderr) };
}

/**
 * `prefix + line + '\n'` for every line, as UTF-8 in one buffer (what writing the joined text
 * would send); into `scratch` (a buffer returned by an earlier call) when it is large enough.
 */
export function linesAsBytes(prefix: Buffer, lines: readonly string[], scratch?: Buffer): Buffer {
  const plen = prefix.length;
  let units = 0;
  for (let i = 0; i < lines.length; i++) units += (lines[i] as string).length;
  const size = units + lines.length * (plen + 1) + SLACK;
  // Never from Node's shared pool (allocUnsafeSlow): the scratch's whole allocation is ours.
  const whole = scratch === undefined ? undefined : Buffer.from(scratch.buffer, 0, scratch.buffer.byteLength);
  let out = whole !== undefined && whole.length >= size ? whole : Buffer.allocUnsafeSlow(size);
  let at = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const need = at + plen + line.length * 3 + 1;
    if (need > out.length) {
      // Not ASCII after all: room for the worst case of this line and the rest.
      const grown = Buffer.allocUnsafeSlow(Math.max(need + SLACK, out.length * 2));
      out.copy(grown, 0, 0, at);
      out = grown;
    }
    for (let k = 0; k < plen; k++) out[at++] = prefix[k] as number;
    if (line.length > 0) at += out.write(line, at, 'utf8');
    out[at++] = NL;
  }
  return out.subarray(0, at);
}

/**
 * linesAsBytes for a raw batch (see LineSplitter.pushRaw), from its bytes: they are copied in
 * one go behind the room the prefixes take, then each line is moved into place behind its
 * prefix (copyWithin: no allocation per line; see formatRawInto in format.ts).
 */
export function rawAsBytes(prefix: Buffer, raw: RawLines, scratch?: Buffer): Buffer {
  const size = rawPrintSize(prefix, raw);
  const whole = scratch === undefined ? undefined : Buffer.from(scratch.buffer, 0, scratch.buffer.byteLength);
  const out = whole !== undefined && whole.length >= size ? whole : Buffer.allocUnsafeSlow(size);
  return out.subarray(0, rawInto(prefix, raw, out, 0));
}

function rawPrintSize(prefix: Buffer, raw: RawLines): number {
  return raw.count * prefix.length + raw.length;
}

/** rawAsBytes's bytes written into `out` at `at` (room for rawPrintSize bytes); returns the end. */
function rawInto(prefix: Buffer, raw: RawLines, out: Buffer, at: number): number {
  const plen = prefix.length;
  const ends = raw.ends;
  const base = at + ends.length * plen;
  raw.copyTo(out, base);
  let src = base;
  for (let i = 0; i < ends.length; i++) {
    const end = base + (ends[i] as number);
    out.set(prefix, at);
    at += plen;
    out.copyWithin(at, src, end);
    at += end - src;
    src = end;
  }
  return at;
}

/** Whether fd is open on /dev/null (same character device), i.e. whatever is written there is discarded. */
export function isDevNull(fd: number): boolean {
  try {
    const st = fstatSync(fd);
    return st.isCharacterDevice() && st.rdev === statSync('/dev/null').rdev;
  } catch {
    return false;
  }
}
