import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { EventBus } from '../src/events.ts';
import { LogFiles } from '../src/logs/files.ts';
import { listLogFiles, readLogLines } from '../src/logs/read-file.ts';
import { publishOutput, syntheticLine, syntheticOutput } from './fixtures/logs/publish.ts';

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bksup-logs-read-'));
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const range = (a: number, b: number): number[] => Array.from({ length: b - a + 1 }, (_, i) => a + i);

async function writeRotated(count: number, maxSize: number, keep: number): Promise<number> {
  const bus = new EventBus();
  const errors: unknown[] = [];
  const files = new LogFiles({ dir: tmp, maxSizeBytes: maxSize, keep, onError: (_u, e) => errors.push(e) });
  files.attach(bus);
  const last = await publishOutput(bus, 'server', syntheticOutput(count), { chunkSize: 8 * 1024, ts: () => 1_700_000_000_000, files });
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
