import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { EventBus } from '../src/events.ts';
import { LogFiles } from '../src/logs/files.ts';
import { listLogFiles, readLogLines, readLogLinesFrom, type FilePosition } from '../src/logs/read-file.ts';
import { publishOutput, syntheticLine, syntheticOutput } from './fixtures/logs/publish.ts';

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bksup-logs-read-'));
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const RUN = 1_700_000_000_000;
const range = (a: number, b: number): number[] => Array.from({ length: b - a + 1 }, (_, i) => a + i);

async function writeRotated(count: number, maxSize: number, keep: number, first = 0): Promise<number> {
  const bus = new EventBus();
  const errors: unknown[] = [];
  const files = new LogFiles({ dir: tmp, maxSizeBytes: maxSize, keep, onError: (_u, e) => errors.push(e) });
  files.attach(bus);
  const last = await publishOutput(bus, 'server', syntheticOutput(count, first), { chunkSize: 8 * 1024, ts: () => RUN, files, firstSeq: first + 1 });
  await files.close();
  expect(errors).toEqual([]);
  return last;
}

describe('readLogLines', () => {
  it('lists the live and rotated files oldest first', async () => {
    await writeRotated(5000, 50 * 1024, 100);
    const files = await listLogFiles(tmp, 'server');
    expect(files.length).toBeGreaterThan(5);
    expect(files[files.length - 1]).toBe(path.join(tmp, 'server.log'));
    expect(files[files.length - 2]).toBe(path.join(tmp, 'server.log.1'));
    expect(files[0]).toBe(path.join(tmp, `server.log.${files.length - 1}`));
  });

  it('reads every line back across rotated files, oldest first', async () => {
    const last = await writeRotated(5000, 50 * 1024, 100);
    const lines = await readLogLines(tmp, 'server');
    expect(lines.map((l) => l.seq)).toEqual(range(1, last));
    lines.forEach((l, i) => {
      if (l.line !== syntheticLine(i)) expect(l.line).toBe(syntheticLine(i));
    });
    expect(lines[0]).toEqual({ unit: 'server', stream: 'stdout', seq: 1, ts: 1_700_000_000_000, line: syntheticLine(0) });
  });

  it('tail and sinceSeq reach into older files when needed', async () => {
    const last = await writeRotated(5000, 50 * 1024, 100);
    expect((await readLogLines(tmp, 'server', { tail: 3 })).map((l) => l.seq)).toEqual(range(last - 2, last));
    expect((await readLogLines(tmp, 'server', { tail: 3000 })).map((l) => l.seq)).toEqual(range(last - 2999, last));
    expect((await readLogLines(tmp, 'server', { sinceSeq: 1234 })).map((l) => l.seq)).toEqual(range(1235, last));
    expect((await readLogLines(tmp, 'server', { sinceSeq: 10, tail: 5 })).map((l) => l.seq)).toEqual(range(last - 4, last));
    expect(await readLogLines(tmp, 'server', { sinceSeq: last })).toEqual([]);
    expect(await readLogLines(tmp, 'server', { tail: 0 })).toEqual([]);
    expect((await readLogLines(tmp, 'server', { tail: 99_999 })).length).toBe(last);
  });

  it('after a supervisor restart (seq back to 1), since= means the newest run after that seq', async () => {
    fs.writeFileSync(
      path.join(tmp, 'web.log.1'),
      ['2026-01-01T00:00:00.000Z stdout 1 old a', '2026-01-01T00:00:00.000Z stdout 2 old b', '2026-01-01T00:00:00.000Z stdout 3 old c', ''].join('\n'),
    );
    fs.writeFileSync(
      path.join(tmp, 'web.log'),
      ['2026-01-02T00:00:00.000Z system 1 ● starting', '2026-01-02T00:00:00.000Z stdout 2 new b', ''].join('\n'),
    );
    expect((await readLogLines(tmp, 'web', { sinceSeq: 0 })).map((l) => l.line)).toEqual(['● starting', 'new b']);
    expect((await readLogLines(tmp, 'web', { sinceSeq: 1 })).map((l) => l.line)).toEqual(['new b']);
    expect((await readLogLines(tmp, 'web', { tail: 4 })).map((l) => l.line)).toEqual(['old b', 'old c', '● starting', 'new b']);
  });

  it('joins text lines that are not records to the record before, and ignores an unfinished last line', async () => {
    fs.writeFileSync(
      path.join(tmp, 'x.log'),
      '2026-01-01T00:00:00.000Z stdout 1 first\nstray continuation\n2026-01-01T00:00:00.000Z stderr 2 second\n2026-01-01T00:00:00.000Z stdout 3 half-writ',
    );
    const lines = await readLogLines(tmp, 'x');
    expect(lines.map((l) => [l.seq, l.stream, l.line])).toEqual([
      [1, 'stdout', 'first\nstray continuation'],
      [2, 'stderr', 'second'],
    ]);
  });

  it('gives nothing for a unit without files or a missing dir, and refuses path tricks', async () => {
    expect(await readLogLines(tmp, 'nobody')).toEqual([]);
    expect(await readLogLines(path.join(tmp, 'missing'), 'nobody')).toEqual([]);
    await expect(readLogLines(tmp, '../etc/passwd')).rejects.toThrow(/path separator/);
    await expect(readLogLines(tmp, '..')).rejects.toThrow(/'\.\.'/);
  });
});

describe('readLogLinesFrom (a follower reading forward at a seq)', () => {
  /** Pages of at most `maxLines` from `from`, each read continuing where the previous stopped. */
  async function readAll(from: number, maxLines: number, runStart = RUN, useCursor = true): Promise<{ seqs: number[]; lines: string[]; reads: number }> {
    const seqs: number[] = [];
    const lines: string[] = [];
    let at: FilePosition | undefined;
    let next = from;
    let reads = 0;
    for (;;) {
      const r = await readLogLinesFrom(tmp, 'server', next, { maxLines, maxBytes: 1 << 20, runStart, at: useCursor ? at : undefined });
      reads++;
      if (r.lines.length === 0) return { seqs, lines, reads };
      for (const l of r.lines) {
        seqs.push(l.seq);
        lines.push(l.line);
      }
      next = (r.lines.at(-1)?.seq ?? 0) + 1;
      at = r.next;
    }
  }

  it('reads every line from any seq on, in pages, across rotated files, with or without the cursor', async () => {
    const last = await writeRotated(5000, 50 * 1024, 100);
    expect((await listLogFiles(tmp, 'server')).length).toBeGreaterThan(5);
    for (const from of [1, 2, 777, 2500, 4999, last]) {
      const withCursor = await readAll(from, 300);
      expect(withCursor.seqs).toEqual(range(from, last));
      expect(withCursor.lines).toEqual(range(from, last).map((s) => syntheticLine(s - 1)));
      expect((await readAll(from, 1000, RUN, false)).seqs).toEqual(range(from, last));
    }
    expect((await readLogLinesFrom(tmp, 'server', last + 1, { maxLines: 10, maxBytes: 1 << 20, runStart: RUN })).lines).toEqual([]);
  });

  it('stops at maxBytes (at least one line)', async () => {
    await writeRotated(2000, 0, 0);
    const r = await readLogLinesFrom(tmp, 'server', 100, { maxLines: 10_000, maxBytes: 1000, runStart: RUN });
    expect(r.lines[0]?.seq).toBe(100);
    const bytes = r.lines.reduce((n, l) => n + l.line.length, 0);
    expect(bytes).toBeGreaterThanOrEqual(1000);
    expect(bytes - (r.lines.at(-1)?.line.length ?? 0)).toBeLessThan(1000);
    const one = await readLogLinesFrom(tmp, 'server', 8, { maxLines: 10, maxBytes: 1, runStart: RUN });
    expect(one.lines.map((l) => l.seq)).toEqual([8]);
  });

  it('lines rotated away (past keep) are simply not there: the first line returned is the oldest kept', async () => {
    const last = await writeRotated(5000, 50 * 1024, 2);
    const oldestKept = (await readLogLines(tmp, 'server', {}))[0]!.seq;
    expect(oldestKept).toBeGreaterThan(1);
    const r = await readAll(1, 500);
    expect(r.seqs).toEqual(range(oldestKept, last));
  });

  it('a cursor survives rotations between reads (the file it points into was renamed)', async () => {
    await writeRotated(1000, 50 * 1024, 100);
    const first = await readLogLinesFrom(tmp, 'server', 1, { maxLines: 400, maxBytes: 1 << 20, runStart: RUN });
    expect(first.lines.map((l) => l.seq)).toEqual(range(1, 400));
    // More output rotates every file one name further.
    const last = await writeRotated(3000, 50 * 1024, 100, 1000);
    let next = 401;
    let at = first.next;
    const seqs: number[] = [];
    for (;;) {
      const r = await readLogLinesFrom(tmp, 'server', next, { maxLines: 400, maxBytes: 1 << 20, runStart: RUN, at });
      if (r.lines.length === 0) break;
      for (const l of r.lines) seqs.push(l.seq);
      next = r.lines.at(-1)!.seq + 1;
      at = r.next;
    }
    expect(seqs).toEqual(range(401, last));
  });

  it("never returns an earlier daemon run's lines, whose seqs overlap this run's (told apart by time)", async () => {
    const old = (seq: number): string => `2023-01-01T00:00:00.000Z stdout ${seq} old ${seq}\n`;
    const now = (seq: number): string => `${new Date(RUN + seq).toISOString()} stdout ${seq} new ${seq}\n`;
    // an older run in a rotated file and at the start of the live one, then this run
    fs.writeFileSync(path.join(tmp, 'server.log.1'), range(1, 3000).map(old).join(''));
    fs.writeFileSync(path.join(tmp, 'server.log'), range(3001, 3050).map(old).join('') + range(1, 4000).map(now).join(''));
    const r = await readAll(1, 700);
    expect(r.seqs).toEqual(range(1, 4000));
    expect(r.lines.every((l) => l.startsWith('new '))).toBe(true);
    expect((await readAll(3020, 100)).lines[0]).toBe('new 3020');
  });

  it('an unfinished last row (a write in progress) is left for the next read', async () => {
    const file = path.join(tmp, 'server.log');
    fs.writeFileSync(file, `${new Date(RUN).toISOString()} stdout 1 one\n${new Date(RUN).toISOString()} stdout 2 tw`);
    const r = await readLogLinesFrom(tmp, 'server', 1, { maxLines: 10, maxBytes: 1 << 20, runStart: RUN });
    expect(r.lines.map((l) => l.line)).toEqual(['one']);
    fs.appendFileSync(file, 'o\n');
    const again = await readLogLinesFrom(tmp, 'server', 2, { maxLines: 10, maxBytes: 1 << 20, runStart: RUN, at: r.next });
    expect(again.lines.map((l) => l.line)).toEqual(['two']);
  });

  it('nothing for a unit without files', async () => {
    expect(await readLogLinesFrom(tmp, 'nobody', 1, { maxLines: 10, maxBytes: 100, runStart: RUN })).toEqual({ lines: [], next: undefined });
  });
});
