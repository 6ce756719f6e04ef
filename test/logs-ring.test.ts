import { describe, expect, it } from 'vitest';

import { EventBus, type LogBatch, RawBatch } from '../src/events.ts';
import { RawLines } from '../src/logs/line-splitter.ts';
import { LogRing } from '../src/logs/ring.ts';

/** Publishes lines `from..to` of `unit` in batches of `size`; line text is `<unit> <seq>`. */
function publish(bus: EventBus, unit: string, from: number, to: number, size: number, stream: LogBatch['stream'] = 'stdout'): void {
  for (let s = from; s <= to; s += size) {
    const lines: string[] = [];
    for (let q = s; q <= Math.min(to, s + size - 1); q++) lines.push(`${unit} ${q}`);
    bus.publishLogs({ unit, stream, firstSeq: s, ts: 1000 + s, lines });
  }
}

const seqs = (r: { lines: { seq: number }[] }): number[] => r.lines.map((l) => l.seq);
const range = (a: number, b: number): number[] => Array.from({ length: b - a + 1 }, (_, i) => a + i);

describe('LogRing', () => {
  it('stores raw batches (the bytes of a pipe) and every kind of text byte-exact', () => {
    const ring = new LogRing(100);
    const samples = ['plain ascii', 'café über', '日本語', 'emoji 😀', 'lone \ud800 x', ''];
    ring.push({ unit: 'u', stream: 'stdout', firstSeq: 1, ts: 5, lines: samples });
    // As a unit's pipe hands them over: the bytes of whole lines, each followed by '\n'.
    const lines = ['tail+first é', 'second 😀', '', 'third'];
    ring.push(new RawBatch('u', 'stdout', 7, 6, RawLines.of(Buffer.from(lines[0] + '\n'), Buffer.from(lines.slice(1).join('\n') + '\n'))));
    const utf8 = (l: string): string => Buffer.from(l).toString();
    expect(ring.read('u', {}).lines.map((l) => [l.seq, l.line])).toEqual([...samples, ...lines].map((l, i) => [i + 1, utf8(l)]));
  });

  it('returns LogLines with unit, stream, seq, ts and text', () => {
    const bus = new EventBus();
    const ring = new LogRing(10);
    ring.attach(bus);
    bus.publishLogs({ unit: 'web', stream: 'stderr', firstSeq: 1, ts: 5, lines: ['a', 'b'] });
    bus.publishLogs({ unit: 'web', stream: 'system', firstSeq: 3, ts: 6, lines: ['c'] });
    expect(ring.read('web')).toEqual({
      lines: [
        { unit: 'web', stream: 'stderr', seq: 1, ts: 5, line: 'a' },
        { unit: 'web', stream: 'stderr', seq: 2, ts: 5, line: 'b' },
        { unit: 'web', stream: 'system', seq: 3, ts: 6, line: 'c' },
      ],
      complete: true,
    });
    expect(ring.lastSeq('web')).toBe(3);
    expect(ring.lastSeq('nobody')).toBe(0);
    expect(ring.read('nobody')).toEqual({ lines: [], complete: true });
    expect(ring.units()).toEqual(['web']);
  });

  it('keeps exactly the newest `capacity` lines when it wraps, also inside a batch', () => {
    const bus = new EventBus();
    const ring = new LogRing(100);
    ring.attach(bus);
    publish(bus, 'u', 1, 1037, 7);
    const all = ring.read('u');
    expect(seqs(all)).toEqual(range(938, 1037));
    expect(all.lines[0]!.line).toBe('u 938');
    expect(all.complete).toBe(false); // lines 1..937 are gone
    // One batch bigger than the ring.
    publish(bus, 'u', 1038, 1300, 263);
    expect(seqs(ring.read('u'))).toEqual(range(1201, 1300));
  });

  it('tail gives the newest N lines; complete says whether the ring had them all', () => {
    const bus = new EventBus();
    const ring = new LogRing(100);
    ring.attach(bus);
    publish(bus, 'u', 1, 50, 3);
    expect(ring.read('u', { tail: 5 })).toMatchObject({ complete: true });
    expect(seqs(ring.read('u', { tail: 5 }))).toEqual(range(46, 50));
    expect(seqs(ring.read('u', { tail: 500 }))).toEqual(range(1, 50));
    expect(ring.read('u', { tail: 500 }).complete).toBe(true); // nothing was ever evicted
    expect(ring.read('u', { tail: 0 })).toEqual({ lines: [], complete: true });

    publish(bus, 'u', 51, 250, 9); // ring now holds 151..250
    expect(seqs(ring.read('u', { tail: 100 }))).toEqual(range(151, 250));
    expect(ring.read('u', { tail: 100 }).complete).toBe(true);
    expect(ring.read('u', { tail: 101 }).complete).toBe(false);
    expect(seqs(ring.read('u', { tail: 101 }))).toEqual(range(151, 250));
  });

  it('sinceSeq gives the lines after it; complete=false when it is older than the ring', () => {
    const bus = new EventBus();
    const ring = new LogRing(100);
    ring.attach(bus);
    publish(bus, 'u', 1, 250, 9); // holds 151..250
    expect(seqs(ring.read('u', { sinceSeq: 240 }))).toEqual(range(241, 250));
    expect(ring.read('u', { sinceSeq: 240 }).complete).toBe(true);
    expect(ring.read('u', { sinceSeq: 150 })).toMatchObject({ complete: true });
    expect(seqs(ring.read('u', { sinceSeq: 150 }))).toEqual(range(151, 250));
    expect(ring.read('u', { sinceSeq: 149 }).complete).toBe(false);
    expect(seqs(ring.read('u', { sinceSeq: 149 }))).toEqual(range(151, 250));
    expect(ring.read('u', { sinceSeq: 250 })).toEqual({ lines: [], complete: true });
    expect(ring.read('u', { sinceSeq: 9999 })).toEqual({ lines: [], complete: true });
    // Both: the newest N of the lines after sinceSeq.
    expect(seqs(ring.read('u', { sinceSeq: 200, tail: 3 }))).toEqual([248, 249, 250]);
    expect(seqs(ring.read('u', { sinceSeq: 247, tail: 30 }))).toEqual([248, 249, 250]);
    expect(ring.read('u', { sinceSeq: 10, tail: 30 }).complete).toBe(true); // the newest 30 are all here
  });

  it("limit gives the OLDEST lines after sinceSeq (a follower's next frame), from any segment; oldestSeq says where the ring begins", () => {
    const bus = new EventBus();
    const ring = new LogRing(100);
    ring.attach(bus);
    expect(ring.oldestSeq('u')).toBe(1);
    publish(bus, 'u', 1, 250, 9); // holds 151..250, the head segment partly evicted
    expect(ring.oldestSeq('u')).toBe(151);
    for (let since = 140; since <= 250; since++) {
      for (const limit of [1, 7, 9, 10, 1000]) {
        const r = ring.read('u', { sinceSeq: since, limit });
        const from = Math.max(since + 1, 151);
        expect(seqs(r)).toEqual(range(from, Math.min(250, from + limit - 1)));
        expect(r.complete).toBe(since >= 150);
      }
    }
    expect(ring.read('u', { sinceSeq: 200, limit: 2 }).lines.map((l) => l.line)).toEqual(['u 201', 'u 202']);
    expect(ring.read('u', { sinceSeq: 200, limit: 0 }).lines).toEqual([]);
  });

  it('a ring attached late knows it lacks the earlier lines', () => {
    const bus = new EventBus();
    publish(bus, 'u', 1, 40, 10);
    const ring = new LogRing(100);
    ring.attach(bus);
    publish(bus, 'u', 41, 60, 10);
    expect(ring.read('u').complete).toBe(false);
    expect(ring.read('u', { sinceSeq: 40 }).complete).toBe(true);
    expect(ring.read('u', { sinceSeq: 39 }).complete).toBe(false);
    expect(ring.read('u', { tail: 20 }).complete).toBe(true);
  });

  it('keeps units apart and survives long runs (compaction)', () => {
    const bus = new EventBus();
    const ring = new LogRing(50);
    ring.attach(bus);
    for (let s = 1; s <= 20_000; s++) {
      bus.publishLogs({ unit: 'a', stream: 'stdout', firstSeq: s, ts: s, lines: [`a ${s}`] });
      if (s % 2 === 0) bus.publishLogs({ unit: 'b', stream: 'stderr', firstSeq: s / 2, ts: s, lines: [`b ${s / 2}`] });
    }
    expect(seqs(ring.read('a'))).toEqual(range(19_951, 20_000));
    expect(ring.read('b').lines.map((l) => l.line)).toEqual(range(9_951, 10_000).map((q) => `b ${q}`));
  });

  it('also bounds the bytes held (by whole batches): huge lines do not make it hold `capacity` of them', () => {
    const bus = new EventBus();
    const ring = new LogRing(10_000, { maxBytes: 1000 });
    ring.attach(bus);
    for (let s = 1; s <= 50; s++) bus.publishLogs({ unit: 'u', stream: 'stdout', firstSeq: s, ts: 0, lines: ['x'.repeat(300)] });
    expect(seqs(ring.read('u'))).toEqual([48, 49, 50]); // 900 bytes ≤ 1000 < 1200
    expect(ring.read('u', { sinceSeq: 46 }).complete).toBe(false);
    // A batch over the bound alone stays whole (the newest batch always stays).
    bus.publishLogs({ unit: 'u', stream: 'stdout', firstSeq: 51, ts: 0, lines: Array.from({ length: 300 }, () => 'abcdefghij') });
    expect(seqs(ring.read('u'))).toEqual(range(51, 350));
    bus.publishLogs({ unit: 'u', stream: 'stdout', firstSeq: 351, ts: 0, lines: ['y'.repeat(5000)] });
    expect(seqs(ring.read('u'))).toEqual([351]);
    bus.publishLogs({ unit: 'u', stream: 'stdout', firstSeq: 352, ts: 0, lines: ['z'] });
    expect(seqs(ring.read('u'))).toEqual([352]);
  });

  it('gives back exactly the text published: UTF-8, empty lines, \r, and system lines with line breaks', () => {
    const bus = new EventBus();
    const ring = new LogRing(100);
    ring.attach(bus);
    const texts = ['héllo € 😀', '', 'a\rb', '  spaced  ', ''];
    bus.publishLogs({ unit: 'u', stream: 'stdout', firstSeq: 1, ts: 1, lines: texts });
    bus.publishLogs({ unit: 'u', stream: 'system', firstSeq: 6, ts: 2, lines: ['failed:\n  at x', 'next'] });
    bus.publishLogs({ unit: 'u', stream: 'stderr', firstSeq: 8, ts: 3, lines: [''] });
    expect(ring.read('u').lines.map((l) => [l.seq, l.stream, l.line])).toEqual([
      [1, 'stdout', 'héllo € 😀'],
      [2, 'stdout', ''],
      [3, 'stdout', 'a\rb'],
      [4, 'stdout', '  spaced  '],
      [5, 'stdout', ''],
      [6, 'system', 'failed:\n  at x'],
      [7, 'system', 'next'],
      [8, 'stderr', ''],
    ]);
  });

  it('random batches: always a contiguous, exact suffix of what was published, within both bounds', () => {
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const words = ['', 'a', 'héllo', '€€€', '😀', 'x'.repeat(50), 'y'.repeat(700), 'ok ok'];
    for (const [capacity, maxBytes] of [
      [50, 2000],
      [1000, 5000],
      [30, 1_000_000],
      [5000, 300],
    ] as const) {
      const bus = new EventBus();
      const ring = new LogRing(capacity, { maxBytes });
      ring.attach(bus);
      const all: { line: string; stream: string; ts: number }[] = [];
      for (let b = 0; b < 400; b++) {
        const n = 1 + rand(b % 7 === 0 ? 40 : 4);
        const lines = Array.from({ length: n }, () => words[rand(words.length)]! + (rand(3) === 0 ? ` ${b}` : ''));
        const stream = (['stdout', 'stderr', 'system'] as const)[rand(3)]!;
        bus.publishLogs({ unit: 'u', stream, firstSeq: all.length + 1, ts: b, lines });
        for (const line of lines) all.push({ line, stream, ts: b });

        const got = ring.read('u');
        const first = got.lines[0]!.seq;
        expect(got.lines.length).toBeLessThanOrEqual(capacity);
        expect(got.lines[got.lines.length - 1]!.seq).toBe(all.length);
        expect(got.complete).toBe(first === 1);
        got.lines.forEach((l, i) => {
          const want = all[first - 1 + i]!;
          if (l.seq !== first + i || l.line !== want.line || l.stream !== want.stream || l.ts !== want.ts) {
            expect({ seq: l.seq, line: l.line, stream: l.stream, ts: l.ts }).toEqual({ seq: first + i, ...want });
          }
        });
        if (maxBytes >= 1_000_000) expect(got.lines.length).toBe(Math.min(capacity, all.length));
        // tail and since agree with the full read.
        const t = 1 + rand(60);
        expect(ring.read('u', { tail: t }).lines.map((l) => l.seq)).toEqual(got.lines.slice(-t).map((l) => l.seq));
        const since = all.length - rand(80);
        expect(ring.read('u', { sinceSeq: since }).lines.map((l) => l.seq)).toEqual(got.lines.filter((l) => l.seq > since).map((l) => l.seq));
      }
    }
  });

  it('rejects a capacity below 1', () => {
    expect(() => new LogRing(0)).toThrow(/capacity/);
  });
});
