// Micro benchmark of the log hot path: LineSplitter → LogBatch → EventBus → LogFiles,
// 500,000 lines of 100 bytes from one child, delivered as 64 KiB pipe chunks (through the
// splitter's pushRaw, as a unit's pipe), one chunk per event-loop turn as 'data' events would,
// pausing on bus.logBackpressure as a unit does. Not a test: prints wall and CPU time, the
// main thread's CPU time, GC time and peak RSS, then checks (untimed) that the files hold every
// line once, in order.
//
//   node --import tsx bench/logs-path.ts [lines] [--ring] [--terminal | --terminal-file]
//
// --ring adds a LogRing, --terminal a TerminalPrinter writing synchronously to /dev/null (as
// process.stdout does on a file). The input is 25 distinct chunks (lcm of 64 KiB and 100
// bytes) used round-robin, so the input itself does not weigh on the RSS figure. Note that
// `--import tsx` alone adds ~30 MiB of RSS (its loader thread): see rssBeforeMiB.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { Writable } from 'node:stream';

import { EventBus, RawBatch } from '../src/events.ts';
import { LogFiles } from '../src/logs/files.ts';
import { LineSplitter, RawLines } from '../src/logs/line-splitter.ts';
import { LogRing } from '../src/logs/ring.ts';
import { TerminalPrinter } from '../src/logs/terminal.ts';

const args = process.argv.slice(2);
const totalLines = Number(args.find((a) => /^\d+$/.test(a)) ?? 500_000);
const withRing = args.includes('--ring');
const terminalFile = args.includes('--terminal-file');
const withTerminal = args.includes('--terminal') || terminalFile;

const LINE = 100;
const CHUNK = 64 * 1024;
const PERIOD_LINES = 16_384; // 16,384 × 100 = 25 × 65,536
const source = Buffer.alloc(PERIOD_LINES * LINE);
for (let i = 0; i < PERIOD_LINES; i++) {
  const head = `INFO 2026-11-26 06:14:30,123 [worker-${i % 7}] request ${i} handled in ${i % 997} ms path=/api/v1/x `;
  source.write(head.padEnd(LINE - 1, 'x').slice(0, LINE - 1) + '\n', i * LINE, 'latin1');
}
const chunks: Buffer[] = [];
for (let off = 0; off < source.length; off += CHUNK) chunks.push(source.subarray(off, off + CHUNK));

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bksup-bench-logs-'));
const bus = new EventBus();
const errors: string[] = [];
const files = new LogFiles({ dir, maxSizeBytes: 10 * 1024 * 1024, keep: 10, onError: (u, e) => errors.push(`${u}: ${e.message}`) });
files.attach(bus);
if (withRing) new LogRing(10_000).attach(bus);
if (withTerminal) {
  // Like `bksup up > file`: process.stdout on a file writes synchronously (--terminal-file: a
  // real file in the temp dir, so the page cache and its writeback are paid as a user would).
  const fd = fs.openSync(terminalFile ? path.join(dir, 'terminal.out') : '/dev/null', 'w');
  // With its `fd`, as process.stdout has (the printer reuses its buffer for such a stream).
  const out = Object.assign(
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        fs.writeSync(fd, chunk);
        cb();
      },
    }),
    { fd },
  );
  new TerminalPrinter(out, { color: true, unitNames: ['bench', 'server', 'nats_listener'] }).attach(bus);
}

const splitter = new LineSplitter();
const totalBytes = totalLines * LINE;
let seq = 1;
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

let gcMs = 0;
const gcObserver = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcMs += e.duration;
});
gcObserver.observe({ entryTypes: ['gc'] });

const rssBefore = process.memoryUsage().rss;
let maxHeapTotal = 0;
let maxExternal = 0;
const cpu0 = process.cpuUsage();
const t0 = performance.now();
// The main thread's own CPU time (what a pipe reader waits for; the thread pool's writes are not in it).
const main0 = mainThreadCpuMs();
let sent = 0;
let c = 0;
let congestedPauses = 0;
while (sent < totalBytes) {
  let chunk = chunks[c++ % chunks.length] as Buffer;
  if (totalBytes - sent < chunk.length) chunk = chunk.subarray(0, totalBytes - sent);
  sent += chunk.length;
  // As a unit's pipe does (UnitBase.pipeStream): the lines as bytes when they need no change.
  const got = splitter.pushRaw(chunk);
  if (got instanceof RawLines) {
    bus.publishLogs(new RawBatch('bench', 'stdout', seq, Date.now(), got));
    seq += got.count;
  } else if (got.length > 0) {
    bus.publishLogs({ unit: 'bench', stream: 'stdout', firstSeq: seq, ts: Date.now(), lines: got });
    seq += got.length;
  }
  // What a unit does with its pipe: pause while the disk lags (the child waits), resume after.
  const wait = bus.logBackpressure?.('bench');
  if (wait) {
    congestedPauses++;
    await wait;
  }
  if ((c & 63) === 0) {
    const m = process.memoryUsage();
    if (m.heapTotal > maxHeapTotal) maxHeapTotal = m.heapTotal;
    if (m.external > maxExternal) maxExternal = m.external;
  }
  await turn();
}
const rest = splitter.end();
if (rest.length > 0) bus.publishLogs({ unit: 'bench', stream: 'stdout', firstSeq: seq, ts: Date.now(), lines: rest });
await files.flush();
const ms = performance.now() - t0;
const mainCpuMs = mainThreadCpuMs() - main0;
const cpu = process.cpuUsage(cpu0);
await new Promise((r) => setImmediate(r)); // let the gc observer report
gcObserver.disconnect();

await files.close();
const peakRssMiB = process.resourceUsage().maxRSS / 1024;

if (errors.length > 0) console.error(`log errors: ${errors.join('; ')}`);
// Outside the timing: every line is in the files, once, in order (keep is large enough).
let written = 0;
let fileCount = 0;
try {
  const files = listOldestFirst(dir);
  fileCount = files.length;
  written = verify(files);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
console.log(
  JSON.stringify({
    lines: seq - 1,
    chunks: c,
    ms: Math.round(ms),
    cpuMs: Math.round((cpu.user + cpu.system) / 1000),
    mainCpuMs: Math.round(mainCpuMs),
    gcMs: Math.round(gcMs),
    linesPerSec: Math.round(((seq - 1) / ms) * 1000),
    bytesWritten: written,
    files: fileCount,
    rssBeforeMiB: Math.round(rssBefore / 1048576),
    peakRssMiB: Math.round(peakRssMiB),
    maxHeapTotalMiB: Math.round(maxHeapTotal / 1048576),
    maxExternalMiB: Math.round(maxExternal / 1048576),
    congestedPauses,
    ring: withRing,
    terminal: withTerminal,
    errors,
  }),
);

/** Every seq from 1 to totalLines exactly once, in order; returns the bytes read. */
function verify(paths: string[]): number {
  let bytes = 0;
  let expectSeq = 1;
  for (const f of paths) {
    const text = fs.readFileSync(f, 'latin1');
    bytes += text.length;
    for (let at = 0; at < text.length; ) {
      const nl = text.indexOf('\n', at);
      // `<24-char ts> <6-char stream> <seq> …`: the seq starts at column 32.
      const got = Number(text.slice(at + 32, text.indexOf(' ', at + 32)));
      if (got !== expectSeq) throw new Error(`${f}: expected seq ${expectSeq}, found ${got}`);
      expectSeq++;
      at = nl + 1;
    }
  }
  if (expectSeq - 1 !== totalLines) throw new Error(`files hold ${expectSeq - 1} lines, expected ${totalLines}`);
  return bytes;
}

function listOldestFirst(d: string): string[] {
  const rotated = fs
    .readdirSync(d)
    .filter((f) => /^bench\.log\.\d+$/.test(f))
    .sort((a, b) => Number(b.split('.').pop()) - Number(a.split('.').pop()));
  return [...rotated, 'bench.log'].map((f) => path.join(d, f));
}

/** CPU time of this process's main thread (the event loop), from the scheduler's nanoseconds. */
function mainThreadCpuMs(): number {
  return Number(fs.readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
}
