import { describe, expect, it } from 'vitest';

import { type LogBatch, RawBatch } from '../src/events.ts';
import { formatBatch, formatBatchInto, type FormatCursor, formatRawInto, isoTime, parseLine, RAW_SCRATCH, RECORD_OVERHEAD } from '../src/logs/format.ts';
import { DEFAULT_MAX_LINE_LENGTH, LineSplitter, RawLines } from '../src/logs/line-splitter.ts';

/** The lines of `chunks` through push(); pushRaw() on the same chunks must give the same. */
function splitAll(chunks: (string | Buffer)[], max?: number): string[] {
  const bufs = chunks.map((c) => (typeof c === 'string' ? Buffer.from(c) : c));
  const s = new LineSplitter(max);
  const out: string[] = [];
  for (const c of bufs) out.push(...s.push(c));
  out.push(...s.end());
  expect(splitAllRaw(bufs, max).lines).toEqual(out);
  return out;
}

/** The lines through pushRaw(), checking every RawLines against its own lines. */
function splitAllRaw(chunks: Buffer[], max?: number): { lines: string[]; raw: number } {
  const s = new LineSplitter(max);
  const lines: string[] = [];
  let raw = 0;
  for (const c of chunks) {
    const got = s.pushRaw(c);
    if (got instanceof RawLines) {
      raw++;
      expect(got.count).toBe(got.lines.length);
      let end = 0;
      expect([...got.ends]).toEqual(got.lines.map((l) => (end += Buffer.byteLength(l) + 1)));
      expect(Buffer.concat([got.head, got.body]).equals(Buffer.from(got.lines.map((l) => l + '\n').join('')))).toBe(true);
      lines.push(...got.lines);
    } else {
      lines.push(...got);
    }
  }
  lines.push(...s.end());
  return { lines, raw };
}

describe('LineSplitter', () => {
  it('splits on newlines and keeps empty lines', () => {
    const s = new LineSplitter();
    expect(s.push(Buffer.from('a\nb\n\nc\n'))).toEqual(['a', 'b', '', 'c']);
    expect(s.end()).toEqual([]);
  });

  it('keeps a partial line across many chunks', () => {
    const s = new LineSplitter();
    expect(s.push(Buffer.from('hel'))).toEqual([]);
    expect(s.push(Buffer.from('lo'))).toEqual([]);
    expect(s.push(Buffer.from(' wor'))).toEqual([]);
    expect(s.push(Buffer.from('ld\nnext'))).toEqual(['hello world']);
    expect(s.push(Buffer.from('\n'))).toEqual(['next']);
  });

  it('keeps a final line without newline', () => {
    const s = new LineSplitter();
    expect(s.push(Buffer.from('x\ny'))).toEqual(['x']);
    expect(s.end()).toEqual(['y']);
    expect(s.end()).toEqual([]);
  });

  it('strips the \\r of CRLF, also when \\r and \\n arrive in different chunks', () => {
    expect(splitAll(['a\r\nb\r\n'])).toEqual(['a', 'b']);
    expect(splitAll(['a\r', '\nb\r', '\n'])).toEqual(['a', 'b']);
    expect(splitAll(['last\r'])).toEqual(['last']);
  });

  it('leaves a carriage return inside a line alone (progress bars)', () => {
    expect(splitAll(['50%\r60%\r70%\n'])).toEqual(['50%\r60%\r70%']);
  });

  it('decodes multi-byte UTF-8 split across chunks at every byte position', () => {
    const text = 'héllo € 😀 ✓\nzweite Zeile ü\n';
    const bytes = Buffer.from(text);
    for (let cut = 0; cut <= bytes.length; cut++) {
      expect(splitAll([bytes.subarray(0, cut), bytes.subarray(cut)])).toEqual(['héllo € 😀 ✓', 'zweite Zeile ü']);
    }
    // One byte at a time.
    const single = [...bytes].map((b) => Buffer.from([b]));
    expect(splitAll(single)).toEqual(['héllo € 😀 ✓', 'zweite Zeile ü']);
  });

  it('turns a truncated character at the end into U+FFFD instead of losing the line', () => {
    const euro = Buffer.from('€');
    expect(splitAll([Buffer.concat([Buffer.from('price 5'), euro.subarray(0, 2)])])).toEqual(['price 5\uFFFD']);
  });

  it('cuts a line longer than the maximum into pieces of the maximum', () => {
    expect(splitAll(['a'.repeat(35) + '\nok\n'], 10)).toEqual(['a'.repeat(10), 'a'.repeat(10), 'a'.repeat(10), 'a'.repeat(5), 'ok']);
  });

  it('bounds memory for output that never has a newline', () => {
    const s = new LineSplitter(1000);
    let pieces = 0;
    for (let i = 0; i < 100; i++) {
      for (const p of s.push(Buffer.alloc(777, 'z'))) {
        expect(p.length).toBe(1000);
        pieces++;
      }
    }
    expect(pieces).toBe(77); // 77,700 bytes = 77 full pieces + 700 held back
    expect(s.end()).toEqual(['z'.repeat(700)]);
  });

  it('cuts with the default maximum of 64 KiB', () => {
    const out = splitAll([Buffer.alloc(DEFAULT_MAX_LINE_LENGTH * 2 + 5, 'q'), '\n']);
    expect(out.map((l) => l.length)).toEqual([DEFAULT_MAX_LINE_LENGTH, DEFAULT_MAX_LINE_LENGTH, 5]);
  });

  it('never cuts between the two halves of a surrogate pair', () => {
    const line = 'a' + '😀'.repeat(10); // 21 UTF-16 units
    const out = splitAll([line + '\n'], 4);
    expect(out.join('')).toBe(line);
    for (const piece of out) expect(piece).not.toMatch(/[\uD800-\uDBFF]$|^[\uDC00-\uDFFF]/);
  });

  it('pushRaw gives the lines as the bytes they came in, whatever the chunking', () => {
    const text = Array.from({ length: 300 }, (_, i) => (i % 7 === 0 ? '' : `line ${i} ` + 'é€😀'.repeat(i % 5))).join('\n') + '\nlast';
    const bytes = Buffer.from(text);
    let seed = 7;
    const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let round = 0; round < 50; round++) {
      const chunks: Buffer[] = [];
      for (let at = 0; at < bytes.length; ) {
        const next = Math.min(bytes.length, at + 1 + Math.floor(random() * 200));
        chunks.push(bytes.subarray(at, next));
        at = next;
      }
      const { lines, raw } = splitAllRaw(chunks);
      expect(lines).toEqual(text.split('\n'));
      expect(raw).toBeGreaterThan(0);
    }
  });

  it('pushRaw falls back to strings where the lines must change, and gives the same lines as push', () => {
    const cases: { chunks: (string | Buffer)[]; max?: number }[] = [
      { chunks: ['a\r\nb\n', 'ok\n'] },
      { chunks: ['x'.repeat(12) + '\n', 'ok\n', 'y'.repeat(25), 'z\nw\n'], max: 10 },
      { chunks: [Buffer.from([0x61, 0xff, 0x0a, 0x62, 0x0a]), 'ok\n'] },
      { chunks: [Buffer.from([0x61, 0xe2, 0x82]), Buffer.from([0x0a, 0x62, 0x0a])] },
      { chunks: ['half', ' line\r', '\nnext\n'] },
      { chunks: ['ab', 'cdefghijkl', 'mn\nop\n'], max: 10 },
    ];
    for (const c of cases) splitAll(c.chunks, c.max);
    // After a fallback, plain chunks come as bytes again.
    const s = new LineSplitter(10);
    expect(s.pushRaw(Buffer.from('a\r\n'))).toEqual(['a']);
    const next = s.pushRaw(Buffer.from('b\nc\n'));
    expect(next).toBeInstanceOf(RawLines);
    expect((next as RawLines).lines).toEqual(['b', 'c']);
  });

  it('RawLines.lastLines decodes only the newest lines', () => {
    const raw = RawLines.of(Buffer.alloc(0), Buffer.from('one\ntwo é\n\nfour\n'));
    expect(raw.lastLines(2)).toEqual(['', 'four']);
    expect(raw.lastLines(3)).toEqual(['two é', '', 'four']);
    expect(raw.lastLines(9)).toEqual(['one', 'two é', '', 'four']);
    const withHead = RawLines.of(Buffer.from('zero\n'), Buffer.from('one\ntwo\n'));
    expect(withHead.lines).toEqual(['zero', 'one', 'two']);
    expect(withHead.lastLines(1)).toEqual(['two']);
    expect(withHead.lastLines(2)).toEqual(['one', 'two']);
    expect(withHead.lastLines(3)).toEqual(['zero', 'one', 'two']);
    expect(withHead.includes('zero')).toBe(true);
    expect(withHead.includes('two')).toBe(true);
    expect(withHead.includes('ero\none')).toBe(false);
  });

  it('rejects a silly maximum', () => {
    expect(() => new LineSplitter(1)).toThrow(/maxLineLength/);
  });
});

describe('log line format', () => {
  const ts = Date.UTC(2026, 10, 26, 6, 14, 30, 123);

  it('formats a batch as one string, one line each, seq counting up', () => {
    const text = formatBatch({ unit: 'server', stream: 'stdout', firstSeq: 42, ts, lines: ['hello', '', 'wörld'] });
    expect(text).toBe(
      '2026-11-26T06:14:30.123Z stdout 42 hello\n' + '2026-11-26T06:14:30.123Z stdout 43 \n' + '2026-11-26T06:14:30.123Z stdout 44 wörld\n',
    );
    expect(formatBatch({ unit: 'server', stream: 'stderr', firstSeq: 1, ts, lines: [] })).toBe('');
  });

  it('escapes line breaks of system lines so one record stays one file line', () => {
    const text = formatBatch({ unit: 'x', stream: 'system', firstSeq: 7, ts, lines: ['failed:\nstack\r\nmore'] });
    expect(text).toBe('2026-11-26T06:14:30.123Z system 7 failed:\\nstack\\nmore\n');
  });

  /** formatBatchInto into a buffer of `size` bytes, grown (as LogFiles does) whenever it stops early. */
  function bytesOf(batch: LogBatch, size: number): Buffer {
    let out = Buffer.alloc(size);
    const cur: FormatCursor = { line: 0, at: 0 };
    for (let calls = 0; ; calls++) {
      formatBatchInto(batch, out, cur);
      if (cur.line >= batch.lines.length) return out.subarray(0, cur.at);
      expect(calls).toBeLessThan(100);
      const grown = Buffer.alloc(out.length * 2 + 64);
      out.copy(grown, 0, 0, cur.at);
      out = grown;
    }
  }

  it('writes the same bytes as encoding the formatted string, whatever the text and however small the buffer', () => {
    const long = 'ü€𝄞'.repeat(30_000); // 2-, 3- and 4-byte UTF-8: ~300 KB in one line
    const batches: LogBatch[] = [
      { unit: 'u', stream: 'stdout', firstSeq: 1, ts, lines: ['hello', '', 'wörld', '日本語', '🙂 emoji', 'lone \ud800 surrogate', 'tab\there \r inside'] },
      { unit: 'u', stream: 'stderr', firstSeq: 9, ts: ts + 1, lines: Array.from({ length: 3000 }, (_, i) => `line ${i} ${'x'.repeat(i % 97)}`) },
      { unit: 'u', stream: 'stdout', firstSeq: 99_999_999, ts, lines: [long, 'after the long one', long.slice(0, 7)] },
      { unit: 'u', stream: 'system', firstSeq: 7, ts, lines: ['failed:\nstack\r\nmore', 'ß'] },
      { unit: 'u', stream: 'stdout', firstSeq: 5, ts, lines: [] },
    ];
    for (const batch of batches) {
      const want = Buffer.from(formatBatch(batch));
      for (const size of [0, 60, 4096, want.length + 1024]) expect(bytesOf(batch, size).equals(want)).toBe(true);
    }
  });

  it('formats a raw batch (the pipe bytes) to the same bytes as its lines, seq digits of every width included', () => {
    const cases = [['hello', '', 'wörld', '日本語', '🙂 emoji', 'tab\there \r inside'], Array.from({ length: 3000 }, (_, i) => `line ${i} ${'x'.repeat(i % 97)}`), ['ü€𝄞'.repeat(30_000), 'after', '']];
    for (const firstSeq of [1, 9, 99_999_999, Number.MAX_SAFE_INTEGER - 3000]) {
      for (const lines of cases) {
        // The first line as the head (completed from a previous chunk), the others as the body.
        const raw = RawLines.of(Buffer.from(lines[0] + '\n'), Buffer.from(lines.slice(1).map((l) => l + '\n').join('')));
        const batch = new RawBatch('u', 'stderr', firstSeq, ts, raw);
        const want = Buffer.from(formatBatch({ unit: 'u', stream: 'stderr', firstSeq, ts, lines }));
        // Behind some bytes already pending, in a buffer of exactly the room asked for.
        const out = Buffer.alloc(7 + raw.count * RECORD_OVERHEAD + raw.length + RAW_SCRATCH);
        const end = formatRawInto(batch, raw, out, 7);
        expect(out.subarray(7, end).equals(want)).toBe(true);
      }
    }
  });

  it('writes each line of a chunked multi-byte, CRLF, unterminated stream once, intact', () => {
    // The splitter's lines, as they reach the files: characters cut across chunks, CRLF, a
    // line longer than the splitter's maximum, and a last line without '\n'.
    const text = `é🙂x\r\n${'ä'.repeat(300)}\nplain\n€€€ last`;
    const bytes = Buffer.from(text);
    const splitter = new LineSplitter(128);
    const lines: string[] = [];
    for (let i = 0; i < bytes.length; i += 5) lines.push(...splitter.push(bytes.subarray(i, i + 5)));
    lines.push(...splitter.end());
    const batch: LogBatch = { unit: 'u', stream: 'stdout', firstSeq: 1, ts, lines };
    const out = bytesOf(batch, 16).toString('utf8').split('\n').slice(0, -1);
    expect(out.map((row) => parseLine(row)?.line)).toEqual(['é🙂x', 'ä'.repeat(128), 'ä'.repeat(128), 'ä'.repeat(44), 'plain', '€€€ last']);
  });

  it('parses what it formats', () => {
    for (const stream of ['stdout', 'stderr', 'system'] as const) {
      const text = formatBatch({ unit: 'u', stream, firstSeq: 1234567, ts, lines: ['a b  c ', ''] });
      const rows = text.split('\n').slice(0, -1);
      expect(rows.map(parseLine)).toEqual([
        { stream, seq: 1234567, ts, line: 'a b  c ' },
        { stream, seq: 1234568, ts, line: '' },
      ]);
    }
  });

  it('rejects text that is not in the format', () => {
    for (const bad of [
      '',
      'hello',
      '2026-11-26T06:14:30.123Z stdout  hello',
      '2026-11-26T06:14:30.123Z stdxxx 1 hello',
      '2026-11-26T06:14:30.123Z stdout 1x hello',
      '2026-11-26 06:14:30.123Z stdout 1 hello',
      '2026-11-26T06:14:30Z stdout 1 hello',
    ]) {
      expect(parseLine(bad), bad).toBeUndefined();
    }
  });

  it('caches the ISO string but gives the right one for every ms', () => {
    expect(isoTime(ts)).toBe('2026-11-26T06:14:30.123Z');
    expect(isoTime(ts)).toBe('2026-11-26T06:14:30.123Z');
    expect(isoTime(ts + 1)).toBe('2026-11-26T06:14:30.124Z');
    expect(isoTime(ts + 877)).toBe('2026-11-26T06:14:31.000Z');
  });
});
