// LiveQueue on its own: bounded by lines and bytes, oldest dropped first, losses reported as
// one contiguous gap per unit, frames cut by line and byte limits.

import { describe, expect, it } from 'vitest';
import type { LogBatch } from '../src/events.ts';
import { LINE_OVERHEAD_BYTES, LiveQueue, batchBytes } from '../src/control/live-queue.ts';

function batch(unit: string, firstSeq: number, n: number, width = 10): LogBatch {
  return { unit, stream: 'stdout', firstSeq, ts: 1000 + firstSeq, lines: Array.from({ length: n }, (_, i) => `${String(firstSeq + i).padStart(width, '0')}`) };
}

function push(q: LiveQueue, b: LogBatch): void {
  q.push(b, batchBytes(b));
}

const none = new Map<string, number>();

describe('LiveQueue', () => {
  it('keeps everything under the bounds and hands it out in order, in frame-sized pieces', () => {
    const q = new LiveQueue({ maxLines: 100, maxBytes: 1e6 });
    push(q, batch('a', 1, 30));
    push(q, batch('b', 1, 30));
    push(q, batch('a', 31, 30));
    expect(q.lines).toBe(90);
    const first = q.take(50, 1e6, none);
    expect(first).toHaveLength(50);
    expect(first.slice(28, 32).map((l) => `${l.unit}${l.seq}`)).toEqual(['a29', 'a30', 'b1', 'b2']);
    expect(first[0]).toEqual({ unit: 'a', stream: 'stdout', seq: 1, ts: 1001, line: '0000000001' });
    const rest = q.take(1000, 1e6, none);
    expect(rest.map((l) => `${l.unit}${l.seq}`).slice(0, 1)).toEqual(['b21']);
    expect(rest.at(-1)).toMatchObject({ unit: 'a', seq: 60 });
    expect(q.lines).toBe(0);
    expect(q.bytes).toBe(0);
    expect(q.hasGaps).toBe(false);
  });

  it('byte limit per frame: at least one line, then stops once over', () => {
    const q = new LiveQueue({ maxLines: 100, maxBytes: 1e6 });
    push(q, batch('a', 1, 10, 1000));
    const perLine = 1000 + LINE_OVERHEAD_BYTES;
    expect(q.take(100, 1, none)).toHaveLength(1);
    expect(q.take(100, perLine * 3, none)).toHaveLength(3);
  });

  it('over the line bound, the oldest lines go and one gap per unit says which', () => {
    const q = new LiveQueue({ maxLines: 50, maxBytes: 1e6 });
    push(q, batch('a', 1, 30));
    push(q, batch('b', 1, 30));
    expect(q.lines).toBe(50);
    push(q, batch('a', 31, 25)); // 85 queued → 35 oldest go: a1..a30, b1..b5
    expect(q.lines).toBe(50);
    expect(q.droppedTotal).toBe(35);
    expect(q.takeGaps()).toEqual([
      { type: 'gap', unit: 'a', dropped: 30, fromSeq: 1, toSeq: 30 },
      { type: 'gap', unit: 'b', dropped: 5, fromSeq: 1, toSeq: 5 },
    ]);
    expect(q.hasGaps).toBe(false);
    const lines = q.take(1000, 1e9, none);
    expect(lines[0]).toMatchObject({ unit: 'b', seq: 6 });
    expect(lines.at(-1)).toMatchObject({ unit: 'a', seq: 55 });
  });

  it('successive drops before a flush extend the same gap', () => {
    const q = new LiveQueue({ maxLines: 10, maxBytes: 1e6 });
    for (let s = 1; s <= 100; s += 5) push(q, batch('a', s, 5));
    expect(q.takeGaps()).toEqual([{ type: 'gap', unit: 'a', dropped: 90, fromSeq: 1, toSeq: 90 }]);
    expect(q.take(100, 1e9, none).map((l) => l.seq)).toEqual([91, 92, 93, 94, 95, 96, 97, 98, 99, 100]);
  });

  it('a single batch bigger than the bound keeps its newest lines', () => {
    const q = new LiveQueue({ maxLines: 10, maxBytes: 1e6 });
    push(q, batch('a', 1, 1000));
    expect(q.takeGaps()).toEqual([{ type: 'gap', unit: 'a', dropped: 990, fromSeq: 1, toSeq: 990 }]);
    expect(q.take(100, 1e9, none).map((l) => l.seq)[0]).toBe(991);
  });

  it('the byte bound applies too (few huge lines)', () => {
    const q = new LiveQueue({ maxLines: 1000, maxBytes: 10 * (1000 + LINE_OVERHEAD_BYTES) });
    push(q, batch('a', 1, 25, 1000));
    expect(q.lines).toBe(10);
    expect(q.bytes).toBeLessThanOrEqual(10 * (1000 + LINE_OVERHEAD_BYTES));
    expect(q.takeGaps()[0]).toMatchObject({ dropped: 15, toSeq: 15 });
  });

  it('skips lines already delivered by history', () => {
    const q = new LiveQueue({ maxLines: 100, maxBytes: 1e6 });
    push(q, batch('a', 1, 10));
    push(q, batch('b', 1, 3));
    expect(q.take(100, 1e9, new Map([['a', 7]])).map((l) => `${l.unit}${l.seq}`)).toEqual(['a8', 'a9', 'a10', 'b1', 'b2', 'b3']);
    expect(q.lines).toBe(0);
  });

  it('stays compact under a long stream of small batches', () => {
    const q = new LiveQueue({ maxLines: 100, maxBytes: 1e6 });
    for (let s = 1; s <= 100_000; s++) {
      push(q, batch('a', s, 1));
      if (s % 7 === 0) q.take(5, 1e9, none);
    }
    expect(q.lines).toBeLessThanOrEqual(100);
    expect(q.take(1000, 1e9, none).at(-1)?.seq).toBe(100_000);
  });
});
