// Reads a unit's lines back from `<dir>/<unit>.log` and its rotated files (unit.log.<N> is
// older the larger N is). Used when the ring no longer holds what a client asks for
// (WebSocket `since=`) and by `bksup logs` without a running daemon. Not a hot path, but it
// reads newest file first and stops as soon as the request is satisfied.
//
// Seqs restart at 1 when the supervisor restarts, so "lines after sinceSeq" means: walking
// back from the newest line, the lines with seq > sinceSeq until the seqs stop falling (the
// previous run). `tail` alone spans runs: it is the newest N lines of the files.

import * as fs from 'node:fs/promises';
import * as path from 'node:path';

import type { LogLine } from '../units/types.ts';
import { unsafeUnitName } from './files.ts';
import { parseLine, type ParsedLogLine } from './format.ts';

export interface ReadLogOptions {
  /** Only the lines after this seq (see the file comment for restarts). */
  sinceSeq?: number;
  /** At most this many lines: the newest ones. */
  tail?: number;
}

/** The log files of a unit, oldest first (unit.log.<keep> … unit.log.1, unit.log). */
export async function listLogFiles(dir: string, unit: string): Promise<string[]> {
  checkUnit(unit);
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const base = `${unit}.log`;
  const rotated: { n: number; name: string }[] = [];
  let live = false;
  for (const name of names) {
    if (name === base) live = true;
    else if (name.startsWith(base + '.')) {
      const rest = name.slice(base.length + 1);
      if (/^\d+$/.test(rest)) rotated.push({ n: Number(rest), name });
    }
  }
  rotated.sort((a, b) => b.n - a.n);
  const files = rotated.map((r) => path.join(dir, r.name));
  if (live) files.push(path.join(dir, base));
  return files;
}

export async function readLogLines(dir: string, unit: string, opts: ReadLogOptions = {}): Promise<LogLine[]> {
  const files = await listLogFiles(dir, unit);
  const since = opts.sinceSeq;
  const limit = opts.tail === undefined ? Infinity : Math.max(0, Math.floor(opts.tail));
  // Collected newest-first as whole files' selections, reversed at the end.
  const picked: ParsedLogLine[][] = [];
  let count = 0;
  let done = limit === 0;
  // A rotation while we read renames the file we just read to the next name we will read.
  const seen = new Set<number>();
  // Walking back, seqs fall; one that does not is the end of the previous supervisor run.
  let after = Infinity;
  for (let f = files.length - 1; f >= 0 && !done; f--) {
    const parsed = await readFileLines(files[f] as string, seen);
    let start = parsed.length;
    while (start > 0 && count < limit) {
      const seq = (parsed[start - 1] as ParsedLogLine).seq;
      if (since !== undefined && (seq <= since || seq >= after)) {
        done = true;
        break;
      }
      after = seq;
      start--;
      count++;
    }
    if (count >= limit) done = true;
    picked.push(parsed.slice(start));
  }
  const out: LogLine[] = [];
  for (let i = picked.length - 1; i >= 0; i--) {
    for (const p of picked[i] as ParsedLogLine[]) out.push({ unit, stream: p.stream, seq: p.seq, ts: p.ts, line: p.line });
  }
  return out;
}

/** One file's records in order; a text line not in the format continues the record before it. */
async function readFileLines(file: string, seenInodes: Set<number>): Promise<ParsedLogLine[]> {
  let text: string;
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, 'r');
  } catch (err) {
    // Rotated away between listing and reading: its lines are in the next file now.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  try {
    const { ino } = await fh.stat();
    if (seenInodes.has(ino)) return [];
    seenInodes.add(ino);
    text = await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
  const rows = text.split('\n');
  // A file written by LogFiles ends with '\n'; anything after the last one is a write in progress.
  rows.pop();
  const out: ParsedLogLine[] = [];
  for (const row of rows) {
    const p = parseLine(row);
    if (p !== undefined) out.push(p);
    else if (out.length > 0) (out[out.length - 1] as ParsedLogLine).line += '\n' + row;
  }
  return out;
}

function checkUnit(unit: string): void {
  const why = unsafeUnitName(unit);
  // supervisor.log is JSON, not this format; every other refusal is a path safety matter.
  if (why !== undefined) throw new Error(`cannot read logs of unit ${JSON.stringify(unit)}: ${why}`);
}

// ------------------------------------------------------------------ reading forward at a seq

/** Where a forward read stopped: the line with `seq` starts at `offset` of the file with inode `ino`. */
export interface FilePosition {
  ino: number;
  offset: number;
  seq: number;
}

export interface ReadFromOptions {
  /** At most this many lines. */
  maxLines: number;
  /** About this many bytes of line text (at least one line). */
  maxBytes: number;
  /**
   * ms since epoch when this daemon run began: older lines belong to an earlier run, whose seqs
   * overlap this run's. Wall-clock time only moves on between runs (one daemon per directory),
   * so the files sort by (run, seq) and can be searched.
   */
  runStart: number;
  /** Where the previous read stopped; used when it is where this read starts. */
  at?: FilePosition | undefined;
}

export interface ReadFromResult {
  /** This run's lines with seq ≥ fromSeq, oldest first. lines[0].seq > fromSeq: older lines are gone. */
  lines: LogLine[];
  /** Where to continue (undefined when nothing was read). */
  next: FilePosition | undefined;
}

interface OpenLog {
  fh: fs.FileHandle;
  ino: number;
  size: number;
}

const CHUNK = 64 * 1024;

/**
 * A unit's lines from seq `fromSeq` on, read forward through its files (rotated ones
 * included) without reading them whole: the start is found by a binary search over byte
 * offsets (or the position the previous read returned), then at most maxLines/maxBytes
 * are read. Lines not yet written are simply not there; the caller knows what it expects.
 *
 * The files are opened together and read through those handles, from a listing that did not
 * change while they were opened: a rotation in between would otherwise make a file be read
 * twice or, worse, skipped (its lines taken for lost).
 */
export async function readLogLinesFrom(dir: string, unit: string, fromSeq: number, opts: ReadFromOptions): Promise<ReadFromResult> {
  const logs = await openLogFiles(dir, unit);
  try {
    return await readFrom(logs, unit, fromSeq, opts);
  } finally {
    await Promise.all(logs.map((l) => l.fh.close().catch(() => undefined)));
  }
}

async function readFrom(logs: OpenLog[], unit: string, fromSeq: number, opts: ReadFromOptions): Promise<ReadFromResult> {
  const key = (p: ParsedLogLine): number => (p.ts < opts.runStart ? -1 : p.seq);
  let index = -1;
  let offset = 0;
  if (opts.at !== undefined && opts.at.seq === fromSeq) {
    const at = opts.at;
    const i = logs.findIndex((l) => l.ino === at.ino);
    // An inode number can be reused by a newer file: the position counts only if the record there is the one expected.
    const there = i >= 0 && at.offset < (logs[i] as OpenLog).size ? await readRecordAt(logs[i] as OpenLog, at.offset) : undefined;
    if (there !== undefined && there.start === at.offset && there.rec.seq === at.seq && key(there.rec) === at.seq) {
      index = i;
      offset = at.offset;
    }
  }
  if (index < 0) {
    // Newest file first: the first whose head is at or before fromSeq (or of an older run) holds the start.
    for (let i = logs.length - 1; i >= 0; i--) {
      const head = await readRecordAt(logs[i] as OpenLog, 0);
      if (head === undefined) continue;
      index = i;
      if (key(head.rec) < fromSeq) {
        offset = await searchOffset(logs[i] as OpenLog, fromSeq, key);
        break;
      }
    }
    if (index < 0) return { lines: [], next: undefined };
  }
  const out: LogLine[] = [];
  let bytes = 0;
  const full = (): boolean => out.length >= opts.maxLines || (out.length > 0 && bytes >= opts.maxBytes);
  const next = (ino: number, at: number): ReadFromResult => {
    const last = out[out.length - 1];
    return { lines: out, next: last === undefined ? undefined : { ino, offset: at, seq: last.seq + 1 } };
  };
  for (let i = index; ; i++, offset = 0) {
    const log = logs[i] as OpenLog;
    const r = await readRecords(log, offset, (p) => {
      if (key(p) < fromSeq) return true;
      if (full()) return false;
      out.push({ unit, stream: p.stream, seq: p.seq, ts: p.ts, line: p.line });
      bytes += p.line.length;
      return true;
    });
    const following = logs[i + 1];
    if (r.stopped || following === undefined) return next(log.ino, r.offset);
    if (full()) return next(following.ino, 0);
  }
}

/** The unit's files (oldest first), opened, from a listing that held still while they were opened. */
async function openLogFiles(dir: string, unit: string): Promise<OpenLog[]> {
  for (let attempt = 0; ; attempt++) {
    const files = await listLogFiles(dir, unit);
    const logs: OpenLog[] = [];
    let moved = false;
    for (const file of files) {
      let fh: fs.FileHandle;
      try {
        fh = await fs.open(file, 'r');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        moved = true;
        continue;
      }
      const st = await fh.stat();
      logs.push({ fh, ino: st.ino, size: st.size });
    }
    if (!moved) {
      // The same names with the same files now: nothing was renamed while they were opened.
      const again = await listLogFiles(dir, unit);
      const inos = await Promise.all(again.map((f) => fs.stat(f).then((st) => st.ino, () => -1)));
      moved = again.length !== logs.length || inos.some((ino, i) => ino !== (logs[i] as OpenLog).ino);
    }
    if (!moved || attempt >= 20) return logs;
    await Promise.all(logs.map((l) => l.fh.close().catch(() => undefined)));
  }
}

/** The first record that starts at or after `offset` (offset 0 or just after a '\n'), and where it starts. */
async function readRecordAt(log: OpenLog, offset: number): Promise<{ rec: ParsedLogLine; start: number } | undefined> {
  let found: { rec: ParsedLogLine; start: number } | undefined;
  await readRecords(log, offset, (p, at) => {
    found = { rec: p, start: at };
    return false;
  });
  return found;
}

/**
 * The offset of a line start at or before the first record with key ≥ fromSeq (binary search
 * down to one chunk; the forward read skips the rest).
 */
async function searchOffset(log: OpenLog, fromSeq: number, key: (p: ParsedLogLine) => number): Promise<number> {
  let lo = 0;
  let hi = log.size;
  while (hi - lo > CHUNK) {
    const mid = lo + Math.floor((hi - lo) / 2);
    const found = await readRecordAt(log, await lineStartFrom(log, mid));
    if (found === undefined || found.start >= hi) {
      hi = mid;
    } else if (key(found.rec) < fromSeq) {
      lo = found.start;
    } else {
      hi = found.start;
    }
  }
  return lo;
}

/** The first line start at or after `offset`. */
async function lineStartFrom(log: OpenLog, offset: number): Promise<number> {
  if (offset === 0) return 0;
  const buf = Buffer.allocUnsafe(4096);
  for (let pos = offset - 1; ; pos += buf.length) {
    const { bytesRead } = await log.fh.read(buf, 0, buf.length, pos);
    if (bytesRead === 0) return pos;
    const nl = buf.subarray(0, bytesRead).indexOf(10);
    if (nl >= 0) return pos + nl + 1;
  }
}

/**
 * Reads records forward from `offset` (a line start) in chunks and hands each to `take` with
 * its start offset until `take` returns false. A row not in the format continues the record
 * before it; an unfinished last row (a write in progress) is left for the next read.
 * Returns where reading stopped (the start of the record not taken, or the end of the whole rows).
 */
async function readRecords(log: OpenLog, offset: number, take: (p: ParsedLogLine, start: number) => boolean): Promise<{ offset: number; stopped: boolean }> {
  const fh = log.fh;
  let pos = offset;
  let size = CHUNK;
  let pending: { rec: ParsedLogLine; start: number } | undefined;
  for (;;) {
    const buf = Buffer.allocUnsafe(size);
    const { bytesRead } = await fh.read(buf, 0, size, pos);
    const end = buf.subarray(0, bytesRead).lastIndexOf(10);
    if (end < 0) {
      if (bytesRead < size) break; // an unfinished row at the end of the file
      size *= 2; // one row longer than the chunk
      continue;
    }
    const text = buf.toString('utf8', 0, end);
    let rowStart = pos;
    for (const row of text.split('\n')) {
      const p = parseLine(row);
      if (p !== undefined) {
        if (pending !== undefined && !take(pending.rec, pending.start)) return { offset: pending.start, stopped: true };
        pending = { rec: p, start: rowStart };
      } else if (pending !== undefined) {
        pending.rec.line += '\n' + row;
      }
      rowStart += Buffer.byteLength(row) + 1;
    }
    pos += end + 1;
    size = CHUNK;
    if (bytesRead < buf.length) break;
  }
  if (pending !== undefined && !take(pending.rec, pending.start)) return { offset: pending.start, stopped: true };
  return { offset: pos, stopped: false };
}
