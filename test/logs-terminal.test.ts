import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';

import { describe, expect, it } from 'vitest';

import { EventBus, RawBatch, type StateEvent } from '../src/events.ts';
import { RawLines } from '../src/logs/line-splitter.ts';
import { isDevNull, linesAsBytes, rawAsBytes, TerminalPrinter, terminalWantsColor } from '../src/logs/terminal.ts';

class Capture extends Writable {
  writes: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.writes.push(chunk.toString());
    cb();
  }
  get text(): string {
    return this.writes.join('');
  }
}

const ESC = String.fromCharCode(27);
const ANSI = new RegExp(`${ESC}\\[[0-9;]*m`, 'g');
const stripAnsi = (s: string): string => s.replace(ANSI, '');

function state(unit: string, s: StateEvent['state'], extra: Partial<StateEvent> = {}): StateEvent {
  return { type: 'state', unit, kind: 'process', state: s, prev: 'starting', ts: 0, ...extra };
}

function drive(color: boolean): Capture {
  const out = new Capture();
  const bus = new EventBus();
  new TerminalPrinter(out, { color, unitNames: ['postgres', 'server', 'nats_listener'] }).attach(bus);
  bus.publishLogs({ unit: 'server', stream: 'stdout', firstSeq: 1, ts: 0, lines: ['Uvicorn running', 'Application startup complete.'] });
  bus.publishLogs({ unit: 'nats_listener', stream: 'stderr', firstSeq: 1, ts: 0, lines: ['Traceback (most recent call last):'] });
  bus.publishEvent(state('server', 'healthy', { pid: 123 }));
  bus.publishEvent(state('postgres', 'backoff', { prev: 'running', exitCode: 1, reason: 'connect postgres://postgres:bklite_dev_pass@127.0.0.1:15432/bklite refused' }));
  bus.publishLogs({ unit: 'postgres', stream: 'system', firstSeq: 7, ts: 0, lines: ['starting: docker compose up -d postgres'] });
  bus.publishEvent({ type: 'verify', ts: 0, ok: false, results: [{ name: 'login', ok: false, detail: 'HTTP 500' }, { name: 'domains', ok: true, detail: 'ok' }] });
  return out;
}

const EXPECTED = [
  'server        | Uvicorn running',
  'server        | Application startup complete.',
  'nats_listener ! Traceback (most recent call last):',
  'server        | ● healthy (pid 123)',
  'postgres      | ● backoff (exit code 1): connect postgres://postgres:***@127.0.0.1:15432/bklite refused',
  'postgres      | starting: docker compose up -d postgres',
  'verify        | ● verify failed (1/2 checks)',
  'verify        |   ✗ login: HTTP 500',
  '',
].join('\n');

describe('TerminalPrinter', () => {
  it('prints `unit | line`, names padded to the longest, stderr marked, states with ●', () => {
    const out = drive(false);
    expect(out.text).toBe(EXPECTED);
    expect(out.text).not.toContain('\x1b[');
  });

  it('writes once per batch', () => {
    const out = drive(false);
    expect(out.writes.length).toBe(6); // 3 batches + 2 state events + 1 verify event
    expect(out.writes[0]).toBe('server        | Uvicorn running\nserver        | Application startup complete.\n');
  });

  it('with colour: the same text plus ANSI codes, one stable colour per unit, red stderr bar', () => {
    const out = drive(true);
    expect(stripAnsi(out.text)).toBe(EXPECTED);
    const rows = out.text.split('\n');
    const leading = new RegExp(`^${ESC}\\[0m(${ESC}\\[[0-9;]+m)`);
    const colourOf = (row: string): string => leading.exec(row)?.[1] ?? 'none';
    expect(colourOf(rows[0]!)).toBe(colourOf(rows[1]!));
    expect(colourOf(rows[0]!)).toBe(colourOf(rows[3]!));
    expect(colourOf(rows[0]!)).not.toBe(colourOf(rows[2]!));
    expect(colourOf(rows[0]!)).not.toBe('none');
    expect(rows[2]).toContain('\x1b[2;31m!');
    expect(rows[3]).toContain('\x1b[32m● healthy');
    // The same unit keeps its colour in another printer (a restart of the daemon).
    expect(colourOf(drive(true).text.split('\n')[0]!)).toBe(colourOf(rows[0]!));
  });

  it('skips system lines that only restate a StateEvent (it prints the event itself)', () => {
    const out = new Capture();
    const bus = new EventBus();
    new TerminalPrinter(out, { color: false, unitNames: ['web'] }).attach(bus);
    bus.publishLogs({ unit: 'web', stream: 'system', firstSeq: 1, ts: 0, lines: ['● healthy (pid 9)'], stateEcho: true });
    bus.publishEvent(state('web', 'healthy', { pid: 9 }));
    expect(out.text).toBe('web | ● healthy (pid 9)\n');
  });

  it('colour only on a TTY and without NO_COLOR', () => {
    expect(terminalWantsColor({ isTTY: true }, {})).toBe(true);
    expect(terminalWantsColor({ isTTY: false }, {})).toBe(false);
    expect(terminalWantsColor({}, {})).toBe(false);
    expect(terminalWantsColor({ isTTY: true }, { NO_COLOR: '1' })).toBe(false);
  });

  it('stops printing instead of crashing when the output breaks (EPIPE)', () => {
    const out = new Writable({
      write(_c, _e, cb) {
        cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      },
    });
    const bus = new EventBus();
    new TerminalPrinter(out, { color: false, unitNames: ['a'] }).attach(bus);
    bus.publishLogs({ unit: 'a', stream: 'stdout', firstSeq: 1, ts: 0, lines: ['x'] });
    return new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      expect(() => bus.publishLogs({ unit: 'a', stream: 'stdout', firstSeq: 2, ts: 0, lines: ['y'] })).not.toThrow();
    });
  });
});

describe('isDevNull', () => {
  it('is true only for an fd open on /dev/null (then `up` skips the printer: nothing would be seen)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bksup-devnull-'));
    const fds = { devNull: openSync('/dev/null', 'w'), file: openSync(join(dir, 'out.txt'), 'w'), zero: openSync('/dev/zero', 'r') };
    try {
      expect(isDevNull(fds.devNull)).toBe(true);
      expect(isDevNull(fds.file)).toBe(false);
      expect(isDevNull(fds.zero)).toBe(false); // another character device
      expect(isDevNull(987_654)).toBe(false); // not open
    } finally {
      for (const fd of Object.values(fds)) closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('linesAsBytes', () => {
  it('sends exactly the bytes of the joined text, multi-byte and very long lines included', () => {
    const long = 'ü€𝄞'.repeat(20_000);
    const cases: string[][] = [[], [''], ['hello', '', 'wörld', '日本語', '🙂', 'lone \ud800 surrogate'], [long, 'x', long], Array.from({ length: 2000 }, (_, i) => 'é'.repeat(i % 50))];
    for (const prefix of ['web | ', '\x1b[0m\x1b[36mweb\x1b[0m \x1b[2;31m!\x1b[0m ', 'wéb ! ']) {
      for (const lines of cases) {
        const want = lines.length === 0 ? '' : prefix + lines.join('\n' + prefix) + '\n';
        expect(linesAsBytes(Buffer.from(prefix), lines).equals(Buffer.from(want))).toBe(true);
        if (lines.some((l) => l.includes('\ud800'))) continue; // not what a pipe's valid UTF-8 can hold
        const raw = RawLines.of(Buffer.alloc(0), Buffer.from(lines.map((l) => l + '\n').join('')));
        expect(rawAsBytes(Buffer.from(prefix), raw).equals(Buffer.from(want))).toBe(true);
        // Into a reused buffer larger than needed, too.
        expect(rawAsBytes(Buffer.from(prefix), raw, Buffer.allocUnsafeSlow(want.length * 2 + 10)).equals(Buffer.from(want))).toBe(true);
      }
    }
  });

  it('prints every batch intact, in order, to a file descriptor (written off the main thread), reusing its buffer', async () => {
    // Like process.stdout on a file: a descriptor, written before write() returns.
    const dir = mkdtempSync(join(tmpdir(), 'bksup-term-'));
    const fd = openSync(join(dir, 'out'), 'w');
    try {
      const out = Object.assign(
        new Writable({
          write(chunk: Buffer, _enc, cb) {
            writeSync(fd, chunk);
            cb();
          },
        }),
        { fd },
      );
      const bus = new EventBus();
      const printer = new TerminalPrinter(out, { color: false, unitNames: ['web'] });
      printer.attach(bus);
      const batches = [Array.from({ length: 700 }, (_, i) => `big ${i} ${'x'.repeat(90)}`), ['small'], ['ünïcödé 🙂', ''], Array.from({ length: 300 }, (_, i) => `€${i}`), ['z'.repeat(200_000)]];
      let seq = 1;
      // As strings and as a pipe's raw bytes, alternately: both share the reused buffer.
      for (const [i, lines] of [...batches, ...batches].entries()) {
        const raw = RawLines.of(Buffer.alloc(0), Buffer.from(lines.map((l) => l + '\n').join('')));
        bus.publishLogs(i % 2 === 0 ? { unit: 'web', stream: 'stdout', firstSeq: seq, ts: 0, lines } : new RawBatch('web', 'stdout', seq, 0, raw));
        seq += lines.length;
      }
      printer.write('bksup: the daemon\'s own line, after them\n');
      await printer.flush();
      const once = batches.map((lines) => lines.map((l) => `web | ${l}\n`).join('')).join('');
      expect(readFileSync(join(dir, 'out'), 'utf8')).toBe(once + once + "bksup: the daemon's own line, after them\n");
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
