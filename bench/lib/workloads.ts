// The five workloads. Each round starts a fresh supervisor in a fresh temp dir, measures,
// and ends every process it started by PID (Session.close), whatever happened.

import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, statSync, writeFileSync, writeSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { cpuNs, descendants, isAlive, markedProcesses, nowMs, peakRssBytes, rssBytes, signalPids, sleep, waitFor } from './proc.ts';
import type { Session, Tool, UnitSpec } from './tools.ts';

export interface Ctx {
  dir: string;
  marker: string;
}

async function withSession<T>(tool: Tool, ctx: Ctx, units: UnitSpec[], body: (s: Session) => Promise<T>, reload?: boolean): Promise<T> {
  const s = await tool.start({ dir: ctx.dir, units, marker: ctx.marker, ...(reload !== undefined ? { reload } : {}) });
  try {
    return await body(s);
  } finally {
    await s.close();
  }
}

export function quantile(values: number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const v = [...values].sort((a, b) => a - b);
  const pos = (v.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return (v[lo] as number) + ((v[hi] as number) - (v[lo] as number)) * (pos - lo);
}

export const median = (values: number[]): number => quantile(values, 0.5);

const cpuOf = (pids: number[]): number => pids.reduce((a, p) => a + cpuNs(p), 0) / 1e9;
const rssOf = (pids: number[]): number => pids.reduce((a, p) => a + rssBytes(p), 0);
const peakOf = (pids: number[]): number => pids.reduce((a, p) => a + peakRssBytes(p), 0);

// ------------------------------------------------------------------ 1. restart latency

export const RESTART_SLEEP_MS = 50;
export const RESTART_RUN_MS = 10_000;

export interface RestartResult {
  starts: number;
  medianMs: number;
  p95Ms: number;
  /** The supervisor's own CPU time per restart (ms): unlike latency, hardly moved by other load. */
  cpuMsPerStart: number;
}

function restartScript(stamps: string): string {
  return `date +%s%N >> ${stamps}; sleep 0.05; exit 1`;
}

function readGaps(stamps: string, windowMs: number): RestartResult {
  const ns = readFileSync(stamps, 'utf8')
    .split('\n')
    .filter((l) => /^\d+$/.test(l))
    .map((l) => BigInt(l));
  const first = ns[0];
  const gaps: number[] = [];
  for (let i = 1; i < ns.length; i++) {
    if (first !== undefined && Number((ns[i] as bigint) - first) / 1e6 > windowMs) break;
    gaps.push(Number((ns[i] as bigint) - (ns[i - 1] as bigint)) / 1e6 - RESTART_SLEEP_MS);
  }
  return { starts: gaps.length + 1, medianMs: median(gaps), p95Ms: quantile(gaps, 0.95), cpuMsPerStart: Number.NaN };
}

export async function restartLatency(tool: Tool, ctx: Ctx): Promise<RestartResult> {
  const stamps = join(ctx.dir, 'starts.txt');
  writeFileSync(stamps, '');
  return withSession(tool, ctx, [{ name: 'crasher', script: restartScript(stamps), restart: 'aggressive', stopTimeoutMs: 2000 }], async (s) => {
    await waitFor(() => readFileSync(stamps, 'utf8').length > 0, 'the first start', 30_000);
    const own = s.ownPids();
    const cpu0 = cpuOf(own);
    const n0 = readFileSync(stamps, 'utf8').split('\n').length;
    await sleep(RESTART_RUN_MS + 300);
    const cpu = cpuOf(own) - cpu0;
    const n = readFileSync(stamps, 'utf8').split('\n').length - n0;
    return { ...readGaps(stamps, RESTART_RUN_MS), cpuMsPerStart: (cpu * 1000) / Math.max(1, n) };
  });
}

/** The floor: a bare shell loop running the same script, no supervisor. */
export async function restartFloor(ctx: Ctx): Promise<RestartResult> {
  const stamps = join(ctx.dir, 'starts.txt');
  writeFileSync(stamps, '');
  const script = join(ctx.dir, 'crasher.sh');
  writeFileSync(script, restartScript(stamps) + '\n');
  const loop = spawn('/bin/sh', ['-c', `while :; do /bin/sh ${script}; done`], { stdio: 'ignore', detached: true, env: { ...process.env, BKBENCH_RUN: ctx.marker } });
  try {
    await waitFor(() => readFileSync(stamps, 'utf8').length > 0, 'the first start', 30_000);
    await sleep(RESTART_RUN_MS + 300);
  } finally {
    await killTree(loop.pid as number, ctx.marker);
  }
  return readGaps(stamps, RESTART_RUN_MS);
}

async function killTree(pid: number, marker: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const pids = [...new Set([...(isAlive(pid) ? [pid] : []), ...descendants(pid).map((p) => p.pid), ...markedProcesses(marker)])];
    if (pids.length === 0) return;
    signalPids(pids, 'SIGKILL');
    await sleep(20);
  }
}

// ------------------------------------------------------------------ 2. log throughput

export const LOG_LINES = 500_000;
// 7-digit number + ' ' + 91 characters + '\n' = 100 bytes per line.
export const PAYLOAD = 'the quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs 012345';

function writerScript(dir: string, withGo: boolean, lines = LOG_LINES): string {
  const wait = withGo ? `while [ ! -e ${dir}/go ]; do sleep 0.01; done; ` : '';
  return `${wait}date +%s%N > ${dir}/writer-started; exec awk 'BEGIN { p = "${PAYLOAD}"; for (i = 1; i <= ${lines}; i++) printf "%07d %s\\n", i, p }'`;
}

export interface LogResult {
  /** From the writer's first instruction to the last line being in the file. */
  ms: number;
  lost: number;
  mangled: number;
  cpuS: number;
  peakRssMiB: number;
  /** bk-supervisor with followers: from the writer's start to the slowest client holding every line. */
  wsSlowestMs?: number;
  /** Lines the followers were told (gap) no longer exist. */
  wsDroppedLines?: number;
  /** Lines some follower never received (missing or out of order), summed over the followers. */
  wsLostLines?: number;
}

/**
 * Polls the file's size, then its tail, until the last line is in it; returns when (epoch ms).
 * NaN when the writer is gone and the file stopped growing without it: a tool that lost the
 * last lines (checkLog then counts them).
 */
async function waitForLastLine(file: string, timeoutMs: number, writerAlive: () => boolean = () => true, lines = LOG_LINES): Promise<number> {
  const LAST_LINE = `${String(lines).padStart(7, '0')} ${PAYLOAD}\n`;
  const minSize = lines * 100;
  const buf = Buffer.alloc(8192);
  const deadline = Date.now() + timeoutMs;
  let lastSize = -1;
  let lastGrowth = Date.now();
  for (;;) {
    let size = 0;
    try {
      size = statSync(file).size;
    } catch {
      // not yet there
    }
    if (size !== lastSize) {
      lastSize = size;
      lastGrowth = Date.now();
    } else if (Date.now() - lastGrowth > 3000 && !writerAlive()) {
      return Number.NaN;
    }
    if (size >= minSize) {
      const fd = openSync(file, 'r');
      const n = readSync(fd, buf, 0, buf.length, Math.max(0, size - buf.length));
      closeSync(fd);
      if (buf.subarray(0, n).includes(LAST_LINE)) return nowMs();
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for line ${lines} in ${file}`);
    await sleep(2);
  }
}

/** Counts the writer's lines in a log file: distinct numbers seen, and lines that are not intact. */
export function checkLog(file: string, tool: string): { lost: number; mangled: number } {
  const text = readFileSync(file, 'latin1');
  const seen = new Uint8Array(LOG_LINES + 1);
  let mangled = 0;
  let start = 0;
  for (;;) {
    const end = text.indexOf('\n', start);
    if (end === -1) break;
    let line = text.slice(start, end);
    start = end + 1;
    if (tool === 'bk-supervisor') {
      // 2026-11-26T06:14:30.123Z stdout 42 <line>
      const m = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (stdout|stderr|system) \d+ /.exec(line);
      if (!m) {
        mangled++;
        continue;
      }
      if (m[1] === 'system') continue;
      line = line.slice(m[0].length);
    }
    const n = Number(line.slice(0, 7));
    if (line.length === 99 && line.charCodeAt(7) === 32 && Number.isInteger(n) && n >= 1 && n <= LOG_LINES && line.endsWith(PAYLOAD)) seen[n] = 1;
    else mangled++;
  }
  let have = 0;
  for (let i = 1; i <= LOG_LINES; i++) have += seen[i] as number;
  return { lost: LOG_LINES - have, mangled };
}

export async function logThroughput(tool: Tool, ctx: Ctx, followers = 0): Promise<LogResult> {
  return withSession(tool, ctx, [{ name: 'writer', script: writerScript(ctx.dir, true), restart: 'never', stopTimeoutMs: 2000 }], async (s) => {
    // The writer is up and waiting for `go`: the supervisor's start-up is over.
    await waitFor(() => markedProcesses(ctx.marker).length > 0, 'the writer', 30_000);
    let ws: Promise<{ clients: { doneAt: number | null; lines: number; droppedLines: number; lost: number }[] }> | undefined;
    if (followers > 0) {
      if (!s.control) throw new Error('followers need the control API');
      const proc = spawn(process.execPath, [join(import.meta.dirname, 'ws-followers.mjs'), String(s.control.port), s.control.token, 'writer', String(followers), String(LOG_LINES), '120000'], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
      await waitFor(() => out.includes('ready'), 'the WebSocket followers', 30_000);
      ws = new Promise((resolve) => proc.once('exit', () => resolve(JSON.parse(out.trim().split('\n').pop() as string))));
    }
    await sleep(300);
    const own = s.ownPids();
    const cpu0 = cpuOf(own);
    writeFileSync(join(ctx.dir, 'go'), '');
    const doneAt = await waitForLastLine(s.logFile('writer'), 60_000, () => markedProcesses(ctx.marker).length > 0);
    const cpuS = cpuOf(own) - cpu0;
    const started = Number(BigInt(readFileSync(join(ctx.dir, 'writer-started'), 'utf8').trim()) / 1000n) / 1000;
    const result: LogResult = { ms: doneAt - started, ...checkLog(s.logFile('writer'), tool.name), cpuS, peakRssMiB: peakOf(own) / 2 ** 20 };
    if (ws) {
      const r = await ws;
      const done = r.clients.map((c) => c.doneAt);
      result.wsSlowestMs = done.every((d) => d !== null) ? Math.max(...(done as number[])) - started : Number.NaN;
      result.wsDroppedLines = r.clients.reduce((a, c) => a + c.droppedLines, 0);
      result.wsLostLines = r.clients.reduce((a, c) => a + c.lost, 0);
      result.cpuS = cpuOf(own) - cpu0;
      result.peakRssMiB = peakOf(own) / 2 ** 20;
    }
    return result;
  });
}

// ------------------------------------------------------------------ 2b. a paused follower

export const PAUSED_LINES = 1_000_000;
export const PAUSE_MS = 30_000;

export interface PausedResult {
  /** The paused follower, once it reads again: lines missing or out of order, gaps, time to catch up. */
  pausedLost: number;
  pausedGaps: number;
  pausedCatchUpMs: number;
  /** The follower beside it, reading normally. */
  normalLost: number;
  normalGaps: number;
  /** The daemon's RSS, sampled every 50 ms from go until the paused follower reads again. */
  rssDuringPauseMiB: number;
  peakRssMiB: number;
}

/**
 * bk-supervisor only: two followers of a unit printing 1,000,000 lines; one stops reading its
 * socket for 30 s (from before the first line), the other reads normally (bench/lib/ws-paused.mjs).
 */
export async function pausedFollower(tool: Tool, ctx: Ctx): Promise<PausedResult> {
  return withSession(tool, ctx, [{ name: 'writer', script: writerScript(ctx.dir, true, PAUSED_LINES), restart: 'never', stopTimeoutMs: 2000 }], async (s) => {
    await waitFor(() => markedProcesses(ctx.marker).length > 0, 'the writer', 30_000);
    if (!s.control) throw new Error('followers need the control API');
    const proc = spawn(process.execPath, [join(import.meta.dirname, 'ws-paused.mjs'), String(s.control.port), s.control.token, 'writer', String(PAUSED_LINES), String(PAUSE_MS), '240000'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    await waitFor(() => out.includes('ready'), 'the WebSocket followers', 30_000);
    const own = s.ownPids();
    writeFileSync(join(ctx.dir, 'go'), '');
    let rss = rssOf(own);
    while (!out.includes('resumed') && proc.exitCode === null) {
      rss = Math.max(rss, rssOf(own));
      await sleep(50);
    }
    await exited;
    const r = JSON.parse(out.trim().split('\n').pop() as string) as {
      paused: { lost: number; gaps: number; doneAt: number | null };
      normal: { lost: number; gaps: number };
      resumedAt: number;
    };
    return {
      pausedLost: r.paused.lost,
      pausedGaps: r.paused.gaps,
      pausedCatchUpMs: r.paused.doneAt === null ? Number.NaN : r.paused.doneAt - r.resumedAt,
      normalLost: r.normal.lost,
      normalGaps: r.normal.gaps,
      rssDuringPauseMiB: rss / 2 ** 20,
      peakRssMiB: peakOf(own) / 2 ** 20,
    };
  });
}

/** The floor: the writer straight into a file, no supervisor. */
export async function logFloor(ctx: Ctx): Promise<LogResult> {
  const file = join(ctx.dir, 'floor.log');
  const fd = openSync(file, 'w');
  const child = spawn('/bin/sh', ['-c', writerScript(ctx.dir, false)], { stdio: ['ignore', fd, 'ignore'], env: { ...process.env, BKBENCH_RUN: ctx.marker } });
  closeSync(fd);
  try {
    const doneAt = await waitForLastLine(file, 60_000);
    const started = Number(BigInt(readFileSync(join(ctx.dir, 'writer-started'), 'utf8').trim()) / 1000n) / 1000;
    return { ms: doneAt - started, ...checkLog(file, 'floor'), cpuS: 0, peakRssMiB: 0 };
  } finally {
    await killTree(child.pid as number, ctx.marker);
  }
}

// ------------------------------------------------------------------ 2b. the writer not gated

/** 64,000-byte writes of the same numbered 100-byte lines (640 lines each), as a busy server's stdio flushes. */
export const UNGATED_WRITE_BYTES = 64_000;

export interface UngatedResult extends LogResult {
  /** The writer's start → its last write returned (how long the supervisor held it up). */
  writerMs: number;
}

/**
 * The writer floods as soon as it is spawned, while the supervisor is still starting up (a
 * Next.js first compile, Django migrations). The lines are prepared in a file beforehand and
 * copied to stdout by `dd` in 64,000-byte writes. Figure: the writer's first instruction → the
 * log file holding the last line (the file's mtime when the poller first sees it, so a harness
 * busy starting the tool does not inflate it). Daemon CPU: everything its own processes spent
 * since they started (start-up included: here it competes with the flood).
 */
export async function logUngated(tool: Tool, ctx: Ctx, withPrinter = false): Promise<UngatedResult> {
  const { script, started, ended, logFile } = ungatedWriter(ctx);
  // Polled from before the tool starts: the whole burst may be over before start() returns.
  const done = waitForLastLine(logFile, 120_000).then(() => statSync(logFile).mtimeMs);
  done.catch(() => undefined);
  const s = await tool.start({ dir: ctx.dir, units: [{ name: 'writer', script, restart: 'never', stopTimeoutMs: 2000 }], marker: ctx.marker, ...(withPrinter ? { stdoutFile: join(ctx.dir, 'supervisor.stdout') } : {}) });
  try {
    const doneAt = await done;
    const own = s.ownPids();
    const cpuS = cpuOf(own);
    await waitFor(() => existsSync(ended) && readFileSync(ended, 'utf8').endsWith('\n'), 'the writer to finish', 30_000);
    const stamp = (f: string): number => Number(BigInt(readFileSync(f, 'utf8').trim()) / 1000n) / 1000;
    const t0 = stamp(started);
    return { ms: doneAt - t0, writerMs: stamp(ended) - t0, ...checkLog(logFile, tool.name), cpuS, peakRssMiB: peakOf(own) / 2 ** 20 };
  } finally {
    await s.close();
  }
}

/** The numbered lines in a file, and the shell script that floods them out through `dd`. */
function ungatedWriter(ctx: Ctx): { script: string; started: string; ended: string; logFile: string } {
  const lines = join(ctx.dir, 'lines.txt');
  const fd = openSync(lines, 'w');
  const block: string[] = [];
  for (let i = 1; i <= LOG_LINES; i++) {
    block.push(`${String(i).padStart(7, '0')} ${PAYLOAD}\n`);
    if (block.length === 10_000) writeSync(fd, block.splice(0).join(''));
  }
  if (block.length) writeSync(fd, block.join(''));
  closeSync(fd);
  const started = join(ctx.dir, 'writer-started');
  const ended = join(ctx.dir, 'writer-ended');
  const script = `date +%s%N > ${started}; dd if=${lines} bs=${UNGATED_WRITE_BYTES} status=none; date +%s%N > ${ended}`;
  return { script, started, ended, logFile: join(ctx.dir, 'logs', 'writer.log') };
}

/**
 * The floor of the ungated workload in Node: a bare `node` process spawns the same writer with
 * a pipe for its stdout and copies every chunk to the file with writeSync, nothing else (no
 * lines, no timestamps). What a Node supervisor cannot beat on this machine; measured alike.
 */
export async function ungatedFloor(ctx: Ctx): Promise<UngatedResult> {
  const { script, started, ended, logFile } = ungatedWriter(ctx);
  mkdirSync(join(ctx.dir, 'logs'), { recursive: true });
  const copier = `const fs = require('node:fs'); const out = fs.openSync(${JSON.stringify(logFile)}, 'w');
const c = require('node:child_process').spawn('/bin/sh', ['-c', ${JSON.stringify(script)}], { stdio: ['ignore', 'pipe', 'inherit'] });
c.stdout.on('data', (b) => fs.writeSync(out, b));`;
  const done = waitForLastLine(logFile, 120_000).then(() => statSync(logFile).mtimeMs);
  done.catch(() => undefined);
  const node = spawn(process.execPath, ['-e', copier], { stdio: 'ignore', env: { ...process.env, NODE_OPTIONS: '', BKBENCH_RUN: ctx.marker } });
  try {
    const doneAt = await done;
    const cpuS = cpuOf([node.pid as number]);
    await waitFor(() => existsSync(ended) && readFileSync(ended, 'utf8').endsWith('\n'), 'the writer to finish', 30_000);
    const stamp = (f: string): number => Number(BigInt(readFileSync(f, 'utf8').trim()) / 1000n) / 1000;
    const t0 = stamp(started);
    return { ms: doneAt - t0, writerMs: stamp(ended) - t0, ...checkLog(logFile, 'floor'), cpuS, peakRssMiB: peakOf([node.pid as number]) / 2 ** 20 };
  } finally {
    await killTree(node.pid as number, ctx.marker);
  }
}

// ------------------------------------------------------------------ 3. idle cost

export const IDLE_CHILDREN = 10;
export const IDLE_WINDOW_MS = 10_000;
export const IDLE_SETTLE_MS = 20_000;

export interface IdleResult {
  rssMiB: number;
  cpuS: number;
  ownProcesses: number;
}

export async function idleCost(tool: Tool, ctx: Ctx): Promise<IdleResult> {
  const units: UnitSpec[] = [];
  for (let i = 1; i <= IDLE_CHILDREN; i++) units.push({ name: `sleeper${i}`, script: 'exec sleep 3600', restart: 'aggressive', stopTimeoutMs: 2000 });
  return withSession(tool, ctx, units, async (s) => {
    await waitFor(() => markedProcesses(ctx.marker).length >= IDLE_CHILDREN, 'ten sleeping children', 30_000, 20);
    // Steady state, not start-up: V8's memory reducer and concurrent GC finish the start-up's
    // garbage a few seconds after a Node daemon goes quiet. The same wait for every tool.
    await sleep(IDLE_SETTLE_MS);
    const own = s.ownPids();
    const cpu0 = cpuOf(own);
    await sleep(IDLE_WINDOW_MS);
    return { cpuS: cpuOf(own) - cpu0, rssMiB: rssOf(s.ownPids()) / 2 ** 20, ownProcesses: own.length };
  });
}

// ------------------------------------------------------------------ 3b. idle cost of watching

export const WATCH_TREE_FILES = 50_000;

/**
 * A BK-Lite-shaped tree of WATCH_TREE_FILES files: 30,000 under web/node_modules and 14,000
 * under server/.venv (both ignored by default), 4,000 .py sources in server/apps with 1,000
 * .pyc files in their __pycache__ dirs, 1,000 under web/src. 20 files a directory.
 */
export function makeWatchTree(dir: string): void {
  const fill = (sub: string, dirs: number, ext: string, perDir = 20): void => {
    for (let d = 0; d < dirs; d++) {
      const path = join(dir, sub.replace('#', String(d)));
      mkdirSync(path, { recursive: true });
      for (let f = 0; f < perDir; f++) writeFileSync(join(path, `f${f}${ext}`), 'x = 1\n');
    }
  };
  fill('web/node_modules/pkg#/lib', 1500, '.js');
  fill('server/.venv/lib/site#', 700, '.py');
  fill('server/apps/app#', 250, '.py', 16);
  fill('server/apps/app#/__pycache__', 250, '.pyc', 4);
  fill('web/src/page#', 50, '.tsx');
}

/** inotify watches held by the processes (each `inotify wd:` line of their inotify fds). */
function inotifyWatches(pids: number[]): number {
  let n = 0;
  for (const pid of pids) {
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) !== 'anon_inode:inotify') continue;
        n += readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8').split('\n').filter((l) => l.startsWith('inotify wd:')).length;
      } catch {
        // closed meanwhile
      }
    }
  }
  return n;
}

export interface WatchIdleResult extends IdleResult {
  watches: number;
}

/**
 * The idle workload over the 50,000-file tree: `watching` = one unit watches `server/**\/*.py`
 * and `web/src/**` and the config is reloaded on edits (the defaults); otherwise no watch and
 * `reload: false`. Same settle time and window as the idle workload.
 */
export async function watchIdleCost(tool: Tool, ctx: Ctx, watching: boolean): Promise<WatchIdleResult> {
  makeWatchTree(ctx.dir);
  const units: UnitSpec[] = [];
  for (let i = 1; i <= IDLE_CHILDREN; i++) units.push({ name: `sleeper${i}`, script: 'exec sleep 3600', restart: 'aggressive', stopTimeoutMs: 2000 });
  if (watching) units[0]!.watch = ['server/**/*.py', 'web/src/**'];
  return withSession(
    tool,
    ctx,
    units,
    async (s) => {
      await waitFor(() => markedProcesses(ctx.marker).length >= IDLE_CHILDREN, 'ten sleeping children', 30_000, 20);
      await sleep(IDLE_SETTLE_MS);
      const own = s.ownPids();
      const cpu0 = cpuOf(own);
      await sleep(IDLE_WINDOW_MS);
      const now = s.ownPids();
      return { cpuS: cpuOf(own) - cpu0, rssMiB: rssOf(now) / 2 ** 20, ownProcesses: own.length, watches: inotifyWatches(now) };
    },
    watching,
  );
}

// ------------------------------------------------------------------ 4. stop

export const STOP_TIMEOUT_MS = 2000;

export interface StopResult {
  processes: number;
  ms: number;
  survivors: number;
}

export async function stopAll(tool: Tool, ctx: Ctx): Promise<StopResult> {
  const units: UnitSpec[] = [];
  for (let i = 1; i <= 5; i++) units.push({ name: `parent${i}`, script: 'sleep 3600 &\nwait', restart: 'aggressive', stopTimeoutMs: STOP_TIMEOUT_MS });
  units.push({ name: 'stubborn', script: "trap '' TERM\nsleep 3600 &\nwait", restart: 'aggressive', stopTimeoutMs: STOP_TIMEOUT_MS });
  const expected = 12; // 6 shells + 6 sleeping grandchildren
  return withSession(tool, ctx, units, async (s) => {
    await waitFor(() => markedProcesses(ctx.marker).length >= expected, `${expected} workload processes`, 30_000, 20);
    await sleep(500);
    const processes = markedProcesses(ctx.marker).length;
    const ms = await s.stopAll();
    const survivors = markedProcesses(ctx.marker).length;
    return { processes, ms, survivors };
  });
}

// ------------------------------------------------------------------ 5. time to healthy

export const LEVELS = 4;
export const PER_LEVEL = 2;
export const OPEN_AFTER_MS = 200;

export interface HealthyResult {
  /** First unit starting → last unit healthy, minus the critical path. */
  graphOverheadMs: number;
  /** `bksup up` invoked → last unit healthy, minus the critical path (includes the daemon's own start-up). */
  fromUpOverheadMs: number;
  /** `bksup up` invoked → first unit starting. */
  startupMs: number;
  /**
   * The graph overhead split: per level, from the level's first unit starting to its last port
   * open, minus 200 ms (spawn, exec chain, Node's own start-up: the children's share), and the
   * rest (port open → seen healthy → next level started: the supervisor's probing and scheduling).
   */
  childShareMs: number;
  supervisorShareMs: number;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** `n` distinct free ports: the kernel may hand out a port just closed again, so one round saw two units on one port. */
async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

export async function timeToHealthy(tool: Tool, ctx: Ctx, healthIntervalMs: number | undefined): Promise<HealthyResult> {
  const units: UnitSpec[] = [];
  const ports = await freePorts(LEVELS * PER_LEVEL);
  const portAfter = join(import.meta.dirname, '..', 'fixtures', 'port-after.mjs');
  for (let level = 1; level <= LEVELS; level++) {
    for (let k = 1; k <= PER_LEVEL; k++) {
      const port = ports.pop() as number;
      units.push({
        name: `l${level}u${k}`,
        script: `exec ${process.execPath} ${portAfter} ${port} ${OPEN_AFTER_MS} ${join(ctx.dir, `open-l${level}u${k}.txt`)}`,
        restart: 'aggressive',
        stopTimeoutMs: 2000,
        tcpPort: port,
        ...(healthIntervalMs !== undefined ? { healthIntervalMs } : {}),
        ...(level > 1 ? { dependsOn: Array.from({ length: PER_LEVEL }, (_, j) => `l${level - 1}u${j + 1}`) } : {}),
      });
    }
  }
  const upAt = nowMs();
  return withSession(tool, ctx, units, async (s) => {
    const stateTimes = (unit: string, state: string): number[] => {
      const file = s.logFile(unit);
      if (!existsSync(file)) return [];
      const out: number[] = [];
      for (const line of readFileSync(file, 'utf8').split('\n')) {
        const m = /^(\S+) system \d+ ● (\w+)/.exec(line);
        if (m && m[2] === state) out.push(Date.parse(m[1] as string));
      }
      return out;
    };
    const healthyAt = await waitFor(
      () => {
        const times = units.map((u) => stateTimes(u.name, 'healthy')[0]);
        return times.every((t) => t !== undefined) ? Math.max(...(times as number[])) : undefined;
      },
      'every unit healthy',
      60_000,
      20,
    );
    // A probe can connect before the unit's listen callback has written its record (a loaded machine).
    const openFile = (name: string): string => join(ctx.dir, `open-${name}.txt`);
    await waitFor(() => units.every((u) => existsSync(openFile(u.name)) && readFileSync(openFile(u.name), 'utf8').includes('\n')) || undefined, 'every port-open record', 10_000, 5);
    const firstStart = Math.min(...units.map((u) => stateTimes(u.name, 'starting')[0] ?? Infinity));
    const critical = LEVELS * OPEN_AFTER_MS;
    let childShareMs = 0;
    for (let level = 1; level <= LEVELS; level++) {
      const names = units.filter((u) => u.name.startsWith(`l${level}u`)).map((u) => u.name);
      const levelStart = Math.min(...names.map((n) => stateTimes(n, 'starting')[0] ?? Infinity));
      const levelOpen = Math.max(...names.map((n) => Number(readFileSync(openFile(n), 'utf8').trim().split(' ')[1])));
      childShareMs += levelOpen - levelStart - OPEN_AFTER_MS;
    }
    const graphOverheadMs = healthyAt - firstStart - critical;
    return { graphOverheadMs, fromUpOverheadMs: healthyAt - upAt - critical, startupMs: firstStart - upAt, childShareMs, supervisorShareMs: graphOverheadMs - childShareMs };
  });
}

/**
 * The floor of the time-to-healthy graph: no supervisor, bash starting each level's two units
 * in the background (a fork of a small bash, then the same `exec node port-after.mjs`) and
 * polling for their port-open records every 0.5 ms with builtins only (no fork per poll).
 * Figure: bash's clock before the first start → the last port open − 800 ms; no probe, no
 * setpriv, no state, no logs. What remains is this machine's cost of starting the children.
 */
export async function healthyFloor(ctx: Ctx): Promise<{ graphOverheadMs: number }> {
  const portAfter = join(import.meta.dirname, '..', 'fixtures', 'port-after.mjs');
  const fifo = join(ctx.dir, 'tick.fifo');
  const lines = ['set -u', `mkfifo ${fifo}`, `exec 9<>${fifo}`, `echo "$EPOCHREALTIME" > ${join(ctx.dir, 'floor-start.txt')}`];
  const opens: string[] = [];
  const ports = await freePorts(LEVELS * PER_LEVEL);
  for (let level = 1; level <= LEVELS; level++) {
    const files: string[] = [];
    for (let k = 1; k <= PER_LEVEL; k++) {
      const port = ports.pop() as number;
      const file = join(ctx.dir, `open-l${level}u${k}.txt`);
      files.push(file);
      lines.push(`${process.execPath} ${portAfter} ${port} ${OPEN_AFTER_MS} ${file} &`);
    }
    opens.push(...files);
    lines.push(`until ${files.map((f) => `[[ -s ${f} ]]`).join(' && ')}; do read -t 0.0005 -u 9 || true; done`);
  }
  lines.push(`touch ${join(ctx.dir, 'floor-done')}`, 'wait');
  const script = join(ctx.dir, 'floor.sh');
  writeFileSync(script, lines.join('\n') + '\n');
  const bash = spawn('/bin/bash', [script], { stdio: 'ignore', detached: true, env: { ...process.env, BKBENCH_RUN: ctx.marker } });
  try {
    await waitFor(() => existsSync(join(ctx.dir, 'floor-done')), 'the floor script', 30_000);
  } finally {
    await killTree(bash.pid as number, ctx.marker);
  }
  const start = Number(readFileSync(join(ctx.dir, 'floor-start.txt'), 'utf8').trim()) * 1000;
  const lastOpen = Math.max(...opens.map((f) => Number(readFileSync(f, 'utf8').trim().split(' ')[1])));
  return { graphOverheadMs: lastOpen - start - LEVELS * OPEN_AFTER_MS };
}

