// The on-disk line format of `logs/<unit>.log`, and reading it back:
//
//   2026-11-26T06:14:30.123Z stdout 42 hello
//   └─ ISO-8601 UTC, ms ─────┘ └stream┘ └seq┘ └─ the line as the child wrote it
//
// Stream names are padded to 6 characters (all three are 6 long today), so the columns line
// up. A batch shares one timestamp, so the ISO string is built once per batch (and cached
// across batches of the same millisecond), never once per line.

import type { LogBatch, LogStream } from '../events.ts';
import type { RawLines } from './line-splitter.ts';
import type { LogLine } from '../units/types.ts';

export type ParsedLogLine = Omit<LogLine, 'unit'>;

const STREAM_FIELD: Record<LogStream, string> = {
  stdout: 'stdout',
  stderr: 'stderr',
  system: 'system',
};

let cachedMs = Number.NaN;
let cachedIso = '';

/** `new Date(ms).toISOString()`, remembered for the last millisecond asked. */
export function isoTime(ms: number): string {
  if (ms !== cachedMs) {
    cachedMs = ms;
    cachedIso = new Date(ms).toISOString();
  }
  return cachedIso;
}

/**
 * The whole batch as file text: one line per element, each ending in '\n'. Lines on the
 * stdout/stderr streams come from LineSplitter and never contain '\n'; `system` lines are
 * written by the supervisor itself and may, so their line breaks are escaped as `\n` text to
 * keep one record per file line.
 */
export function formatBatch(batch: LogBatch): string {
  const lines = batch.lines;
  const n = lines.length;
  if (n === 0) return '';
  const prefix = `${isoTime(batch.ts)} ${STREAM_FIELD[batch.stream]} `;
  const between = '\n' + prefix;
  const escape = batch.stream === 'system';
  // One join of all the pieces: the result is built flat in one go, where `+=` would leave a
  // tree of small concatenation objects for the GC and a second copy when it is encoded.
  const parts = new Array<string>(n * 3 + 1);
  parts[0] = prefix;
  let seq = batch.firstSeq;
  let j = 1;
  for (let i = 0; i < n; i++) {
    parts[j++] = `${seq++} `;
    parts[j++] = escape ? escapeBreaks(lines[i] as string) : (lines[i] as string);
    parts[j++] = i === n - 1 ? '\n' : between;
  }
  return parts.join('');
}

/** Where formatBatchInto got to: the next line to write and the end of the bytes written. */
export interface FormatCursor {
  line: number;
  at: number;
}

/** Bytes a line's record takes besides its text: 32-byte time and stream prefix, ≤ 16 seq digits, ' ', '\n'. */
export const RECORD_OVERHEAD = 50;

/**
 * formatBatch's text written straight into `out` as UTF-8, byte for byte what encoding
 * formatBatch(batch) gives: prefix and seq digits stored byte by byte, each line encoded into
 * place. No string is built for the batch, so a noisy child no longer puts a copy of its output
 * on the JS heap per chunk (most of the log files' GC work). Writes lines from `cur.line` at
 * `cur.at` while each surely fits (3 bytes per UTF-16 code unit) and advances `cur`; the caller
 * grows `out` and calls again until cur.line reaches the end.
 */
export function formatBatchInto(batch: LogBatch, out: Buffer, cur: FormatCursor): void {
  const lines = batch.lines;
  const prefix = prefixBytes(batch);
  const plen = prefix.length;
  const escape = batch.stream === 'system';
  const limit = out.length - RECORD_OVERHEAD;
  let at = cur.at;
  let i = cur.line;
  for (; i < lines.length; i++) {
    const line = escape ? escapeBreaks(lines[i] as string) : (lines[i] as string);
    if (at + line.length * 3 > limit) break;
    for (let k = 0; k < plen; k++) out[at++] = prefix[k] as number;
    at = writeDigits(out, at, batch.firstSeq + i);
    out[at++] = SPACE;
    if (line.length > 0) at += out.write(line, at, 'utf8');
    out[at++] = NL;
  }
  cur.line = i;
  cur.at = at;
}

/** Bytes formatRawInto needs besides the records: room for the record head it keeps. */
export const RAW_SCRATCH = RECORD_OVERHEAD + 14;

/**
 * formatBatchInto's bytes for a batch that came as raw bytes (see LineSplitter.pushRaw), from
 * those bytes: no line is decoded or encoded. `out` must have room for
 * `at + raw.count * RECORD_OVERHEAD + raw.length + RAW_SCRATCH` bytes; returns the end of
 * what was written. The lines are first copied in one go behind the room the records take,
 * the record head (`<time> <stream> <seq> `) after them; then per line two copyWithin (the
 * head, the line) and the head's digits counted up in place: no allocation (a view of the
 * source per line, which Buffer.copy and set() need, costs more than the copy itself) and no
 * division per digit. Records never overtake the source: each takes at most RECORD_OVERHEAD
 * bytes besides its line, and the head sits behind all of the source.
 */
export function formatRawInto(batch: LogBatch, raw: RawLines, out: Buffer, at: number): number {
  const prefix = prefixBytes(batch);
  const ends = raw.ends;
  const n = ends.length;
  const base = at + n * RECORD_OVERHEAD;
  const head = raw.copyTo(out, base);
  out.set(prefix, head);
  const digits = head + prefix.length;
  let headEnd = writeDigits(out, digits, batch.firstSeq);
  out[headEnd++] = SPACE;
  let src = base;
  for (let i = 0; i < n; i++) {
    const end = base + (ends[i] as number);
    out.copyWithin(at, head, headEnd);
    at += headEnd - head;
    out.copyWithin(at, src, end);
    at += end - src;
    src = end;
    // seq + 1, in the head's decimal digits: trailing 9s become 0s, then one digit goes up
    // (or a '1' goes in front when they were all 9s).
    let k = headEnd - 2;
    while (k >= digits && out[k] === NINE) out[k--] = ZERO;
    if (k >= digits) {
      out[k] = (out[k] as number) + 1;
    } else {
      out.copyWithin(digits + 1, digits, headEnd);
      out[digits] = ONE;
      headEnd++;
    }
  }
  return at;
}

const ZERO = 48;
const ONE = 49;
const NINE = 57;

const NL = 10;
const SPACE = 32;
const digitScratch = new Uint8Array(20);

function writeDigits(out: Buffer, at: number, n: number): number {
  let d = 0;
  do {
    const q = Math.floor(n / 10);
    digitScratch[d++] = 48 + (n - q * 10); // not (48 + n) - …: near 2 ** 53 that sum rounds
    n = q;
  } while (n > 0);
  while (d > 0) out[at++] = digitScratch[--d] as number;
  return at;
}

let cachedPrefixMs = Number.NaN;
let cachedPrefixStream: LogStream | undefined;
let cachedPrefix: Buffer = Buffer.alloc(0);

/** `<ISO time> <stream> ` as bytes, remembered for the last millisecond and stream asked. */
function prefixBytes(batch: LogBatch): Buffer {
  if (batch.ts !== cachedPrefixMs || batch.stream !== cachedPrefixStream) {
    cachedPrefixMs = batch.ts;
    cachedPrefixStream = batch.stream;
    cachedPrefix = Buffer.from(`${isoTime(batch.ts)} ${STREAM_FIELD[batch.stream]} `, 'latin1');
  }
  return cachedPrefix;
}

function escapeBreaks(line: string): string {
  return line.indexOf('\n') === -1 && line.indexOf('\r') === -1 ? line : line.replace(/\r?\n|\r/g, '\\n');
}

// 2026-11-26T06:14:30.123Z = 24 characters.
const TS_LEN = 24;
const TS_SHAPE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

let lastTsText = '';
let lastTsMs = 0;

/** One file line (without its '\n') back into its fields; undefined if it is not in the format. */
export function parseLine(text: string): ParsedLogLine | undefined {
  // ts + ' ' + 6-char stream + ' ' + at least one seq digit + ' '
  if (text.length < TS_LEN + 10 || text.charCodeAt(TS_LEN) !== 32 || text.charCodeAt(TS_LEN + 7) !== 32) return undefined;
  const tsText = text.slice(0, TS_LEN);
  let ts: number;
  if (tsText === lastTsText) {
    ts = lastTsMs;
  } else {
    if (!TS_SHAPE.test(tsText)) return undefined;
    ts = Date.parse(tsText);
    if (Number.isNaN(ts)) return undefined;
    lastTsText = tsText;
    lastTsMs = ts;
  }
  const streamText = text.slice(TS_LEN + 1, TS_LEN + 7).trimEnd();
  if (streamText !== 'stdout' && streamText !== 'stderr' && streamText !== 'system') return undefined;
  const seqStart = TS_LEN + 8;
  const seqEnd = text.indexOf(' ', seqStart);
  if (seqEnd <= seqStart) return undefined;
  let seq = 0;
  for (let i = seqStart; i < seqEnd; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return undefined;
    seq = seq * 10 + d;
  }
  return { stream: streamText, seq, ts, line: text.slice(seqEnd + 1) };
}
