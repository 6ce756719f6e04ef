// /api/logs under load, over real loopback sockets: 200,000 lines in realistic batches to ten
// following clients and two clients that stop reading (really paused sockets). The ten get every
// line in order; a stuck one costs the daemon only its socket buffer (nothing is queued for it),
// and, once it reads again, gets every line that still exists — here, without log files, the
// ring's — after one `gap` per unit with the exact number that exists nowhere.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startControlServer, type ControlServer } from '../src/control/server.ts';
import { DEFAULT_LOG_STREAM_LIMITS } from '../src/control/ws-logs.ts';
import { FakeSupervisor, LinePublisher, LogsClient, TestHistory } from './fixtures/control/harness.ts';
import { waitFor } from './helpers/wait.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let dir: string;
let server: ControlServer | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bksup-control-load-'));
});

afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

/** Deterministic pseudo-random numbers (mulberry32), so a failure can be replayed. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Live heap plus Buffer memory after a full GC. V8 frees ArrayBuffer backing stores on a
 * background thread after the GC returns, so a single reading can still count the frames the
 * ten readers just received; on a loaded machine that lag is several MiB. Read until two
 * readings agree (each after a GC and a trip through the event loop), so both sides of a
 * difference are taken at rest.
 */
async function heapAndBuffers(): Promise<number> {
  const read = (): number => {
    gc();
    const m = process.memoryUsage();
    return m.heapUsed + m.external + m.arrayBuffers;
  };
  let last = read();
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 5));
    const now = read();
    if (Math.abs(now - last) < 256 * 1024) return Math.min(now, last);
    last = now;
  }
  return last;
}

const MiB = 1024 * 1024;

it('10 following clients get all 200,000 lines in order; a client that stops reading costs only its socket buffer, then gets exact gaps and the rest', async () => {
  const units = ['server', 'web', 'nats_listener'];
  const sup = new FakeSupervisor(units.map((name) => ({ name })));
  const history = new TestHistory(sup.bus, 10_000);
  const pub = new LinePublisher(sup.bus);
  server = await startControlServer({ host: '127.0.0.1', port: 0, allowRemote: false, stateDir: join(dir, '.supervisor'), handle: sup, history });
  const url = `ws://127.0.0.1:${server.port}/api/logs?follow=1`;

  const good = Array.from({ length: 10 }, () => new LogsClient(url, { token: server!.token, keepLines: false }));
  // Two clients that stop reading: one is resumed at the end (gap accounting), the other is
  // dropped to measure what keeping it cost.
  const stuck = new LogsClient(url, { token: server.token, keepLines: false });
  const stuck2 = new LogsClient(url, { token: server.token, keepLines: false });
  const all = [...good, stuck, stuck2];
  await Promise.all(all.map((c) => c.opened));
  await waitFor(() => all.every((c) => c.hello), { message: 'hello on every client' });
  // A stuck client's process stops reading its socket: the kernel buffers fill, then the
  // server's socket buffer up to the high-water mark; then the server stops sending to it.
  const socketOf = (c: LogsClient): Socket => (c.ws as unknown as { _socket: Socket })._socket;
  socketOf(stuck).pause();
  socketOf(stuck2).pause();

  const baseline = await heapAndBuffers();
  const baselineRss = process.memoryUsage().rss;
  let peakRss = baselineRss;

  const TOTAL = 200_000;
  const LINE_WIDTH = 200;
  // What the ten readers may have outstanding before the publisher waits. Children produce at a
  // finite rate; this stands in for that rate. This test double has no log files, so a reader
  // that fell further behind than the ring (10,000 lines a unit) would be told of a gap; the
  // real daemon serves it from the files (test/logs-follow.test.ts).
  const WINDOW = 3000;
  const random = rng(42);
  let published = 0;
  let batches = 0;
  const received = (c: LogsClient): number => units.reduce((n, u) => n + (c.count.get(u) ?? 0), 0);
  while (published < TOTAL) {
    // Realistic chunks: mostly a few lines per read, sometimes a burst (a stack trace, a compile).
    const r = random();
    const size = Math.min(TOTAL - published, r < 0.8 ? 1 + Math.floor(random() * 10) : r < 0.97 ? 20 + Math.floor(random() * 80) : 200 + Math.floor(random() * 600));
    const unit = units[Math.floor(random() * units.length)] as string;
    pub.publishN(unit, size, LINE_WIDTH);
    published += size;
    batches++;
    if (batches % 4 === 0) await new Promise((r) => setImmediate(r));
    if (published - Math.min(...good.map(received)) > WINDOW) {
      await waitFor(() => published - Math.min(...good.map(received)) <= WINDOW / 2, { interval: 1, timeout: 30_000, message: 'readers catching up' });
    }
    if (batches % 200 === 0) peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }

  for (const c of good) for (const u of units) await c.waitForSeq(u, pub.lastSeq(u), 60_000);
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  for (const c of good) {
    expect(c.problems).toEqual([]);
    expect(c.gaps).toEqual([]);
    for (const u of units) expect(c.count.get(u)).toBe(pub.lastSeq(u)); // seqs 1..last, strictly increasing: contiguous
  }

  // The stuck clients: behind, nothing queued for them, their socket buffers at the high-water mark.
  const stuckStats = server.stats().logClients.filter((st) => st.behindLines > 0);
  expect(stuckStats).toHaveLength(2);
  for (const st of stuckStats) {
    expect(st.phase).toBe('catching-up');
    expect(st.gapLines).toBe(0);
    expect(st.bufferedAmount).toBeLessThanOrEqual(DEFAULT_LOG_STREAM_LIMITS.highWaterBytes + DEFAULT_LOG_STREAM_LIMITS.frameBytes + 64 * 1024);
  }

  // Memory. Unbounded buffering would hold, per stuck client, the ~52 MB of JSON it has not read
  // (200,000 lines × ~260 bytes) in this process. The daemon holds for one only its socket
  // buffer (≤ 1 MiB high-water + one 256 KiB frame) and a cursor. So:
  // - what dropping one stuck client frees (live heap + buffers at rest) is about that socket
  //   buffer, ~1.5 MiB: < 8 MiB;
  const withBoth = await heapAndBuffers();
  const clientsBefore = server.stats().logClients.length;
  stuck2.close();
  await waitFor(() => server!.stats().logClients.length === clientsBefore - 1, { message: 'server noticed the client left' });
  const freed = withBoth - (await heapAndBuffers());
  expect(freed).toBeLessThan(8 * MiB);
  // - everything retained since the baseline — the test double's ring (30,000 LogLine objects of
  //   ~300 bytes ≈ 9 MB) plus both stuck clients — stays < 28 MiB, about half of ONE unbounded client;
  const retained = withBoth - baseline;
  expect(retained).toBeLessThan(28 * MiB);
  // - RSS also counts garbage the GC has not returned yet and the ten readers parsing ~520 MB of
  //   JSON in this same process, so its ceiling is generous (256 MiB); it catches gross leaks such
  //   as every frame kept around (> 500 MB), while the two checks above are the sharp ones.
  expect(peakRss - baselineRss).toBeLessThan(256 * MiB);

  // Reading again: it gets everything that still exists. Without log files that is the ring:
  // one gap per unit for exactly the lines neither the ring nor a file holds, in order, then
  // the ring's lines — the whole ring, 10,000 a unit.
  socketOf(stuck).resume();
  for (const u of units) await stuck.waitForSeq(u, pub.lastSeq(u), 60_000);
  expect(stuck.problems).toEqual([]);
  expect(stuck.gaps.map((g) => g.unit).sort()).toEqual([...units].sort());
  for (const u of units) {
    expect((stuck.count.get(u) ?? 0) + stuck.dropped(u)).toBe(pub.lastSeq(u));
    const gap = stuck.gaps.find((g) => g.unit === u)!;
    expect(gap.toSeq).toBe(pub.lastSeq(u) - 10_000);
    expect(stuck.count.get(u)).toBeGreaterThanOrEqual(10_000);
  }

  for (const c of [...good, stuck]) c.close();
  console.log(
    `load: ${published} lines in ${batches} batches; retained ${(retained / MiB).toFixed(1)} MiB, one stuck client ${(freed / MiB).toFixed(1)} MiB; ` +
      `peak RSS +${((peakRss - baselineRss) / MiB).toFixed(1)} MiB; stuck client told of ${stuck.gaps.reduce((n, g) => n + g.dropped, 0)} lines gone from the ring, gaps ${stuck.gaps.length}`,
  );
}, 180_000);
