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
