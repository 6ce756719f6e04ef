// /api/logs followers against the real daemon (bin/bksup up), real children flooding their
// output, real WebSocket clients; a slow client is a really paused socket. What users rely on:
// a follower never loses a line that still exists, whatever it and the others do; a paused
// one costs the daemon no memory beyond its socket buffer and, reading again, gets everything
// from the files; lines rotated away are reported once, exactly; `bksup logs -f` shows all.

import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BKSUP, units } from './helpers/daemon.ts';
import { removeDir, tempDir } from './helpers/stack.ts';
import { waitFor } from './helpers/wait.ts';
import { Follower, floodScript, go, memoryMiB, startDaemon, type Daemon } from './fixtures/logs/follower.ts';
import { LogsClient } from './fixtures/control/harness.ts';
import { cleanupsAfterEach } from './helpers/cleanups.ts';

const cleanups = cleanupsAfterEach();

async function project(config: (script: string) => string, lines: number): Promise<{ dir: string; d: Daemon }> {
  const dir = tempDir('bksup-follow-');
  cleanups.push(() => removeDir(dir));
  const d = await startDaemon(dir, config(JSON.stringify(floodScript(lines))));
  cleanups.push(() => d.stop());
  await waitFor(async () => ['running', 'healthy'].includes((await units(dir)).find((u) => u.name === 'flood')?.state ?? ''), { message: 'flood running' });
  return { dir, d };
}

function follower(d: Daemon, lines: number): Follower {
  const f = new Follower(d.port, d.token, 'flood', lines);
  cleanups.push(() => f.close());
  return f;
}

/** Seqs of the flood's lines in its files: the oldest one still stored. */
function oldestStoredSeq(dir: string): number {
  const files = readdirSync(join(dir, 'logs'))
    .filter((n) => n.startsWith('flood.log'))
    .sort((a, b) => (Number(b.split('.')[2] ?? 0) || 0) - (Number(a.split('.')[2] ?? 0) || 0));
  const first = readFileSync(join(dir, 'logs', files[0] as string), 'utf8').split('\n', 1)[0] as string;
  return Number(first.split(' ')[2]);
}

describe('followers of the real daemon', () => {
  it('5 followers of a 200,000-line burst each get every line, in order, without a gap', async () => {
    const LINES = 200_000;
    const { dir, d } = await project((s) => `{ units: { flood: { command: ['/bin/sh', '-c', ${s}] } } }`, LINES);
    const fs = Array.from({ length: 5 }, () => follower(d, LINES));
    await Promise.all(fs.map((f) => f.ready()));
    go(dir);
    await waitFor(() => fs.every((f) => f.done), { timeout: 120_000, interval: 100 }).catch((err: Error) => {
      const log = readFileSync(join(dir, 'logs', 'flood.log'), 'utf8');
      throw new Error(`${err.message}: followers at ${fs.map((f) => f.floodLines).join(', ')}; problems ${JSON.stringify(fs.map((f) => f.problems))}; file ${log.length} bytes, starts ${JSON.stringify(log.slice(0, 300))}, ends ${JSON.stringify(log.slice(-300))}; daemon: ${d.stderr().slice(-500)}`);
    });
    for (const f of fs) {
      expect(f.problems).toEqual([]);
      expect(f.gaps).toEqual([]);
      expect(f.floodLines).toBe(LINES);
    }
    // A gross-leak bound only: these followers parse every frame in this (busy) test process, so
    // they fall behind and are served from the files, and the peak moves with the machine's
    // load (83-108 MiB measured). The ≤ 100 MiB target is measured by the bench (followers).
    const peak = memoryMiB(d.pid, 'VmHWM');
    console.log(`5 followers × ${LINES} lines: daemon peak RSS ${peak.toFixed(1)} MiB`);
    expect(peak).toBeLessThanOrEqual(160);
  }, 180_000);

  it('a follower paused through 300,000 lines gets them all from the files once it reads again; the daemon does not grow; a normal follower beside it loses nothing', async () => {
    const LINES = 300_000;
    // ~40 MB of log: rotated files are part of what the paused follower reads back.
    const { dir, d } = await project((s) => `{ logs: { maxSize: '4MB', keep: 20 }, units: { flood: { command: ['/bin/sh', '-c', ${s}] } } }`, LINES);
    const paused = follower(d, LINES);
    const normal = follower(d, LINES);
    await Promise.all([paused.ready(), normal.ready()]);
    paused.socket.pause();
    let peakDuringPause = memoryMiB(d.pid, 'VmRSS');
    const sampler = setInterval(() => (peakDuringPause = Math.max(peakDuringPause, memoryMiB(d.pid, 'VmRSS'))), 20);
    cleanups.push(() => clearInterval(sampler));
    go(dir);
    await waitFor(() => normal.done, { timeout: 120_000, interval: 100, message: `the normal follower (at ${normal.floodLines})` });
    // The whole flood is in the files before the paused one reads again.
    await waitFor(() => readFileSync(join(dir, 'logs', 'flood.log'), 'utf8').includes(`L${LINES} `), { timeout: 60_000, interval: 100, message: 'the last line in the file' });
    clearInterval(sampler);
    expect(normal.problems).toEqual([]);
    expect(normal.gaps).toEqual([]);
    expect(paused.floodLines).toBeLessThan(LINES / 2); // it really was held back
    expect(readdirSync(join(dir, 'logs')).filter((n) => n.startsWith('flood.log.')).length).toBeGreaterThan(3);

    paused.socket.resume();
    await waitFor(() => paused.done, { timeout: 120_000, interval: 100, message: `the resumed follower (at ${paused.floodLines})` });
    expect(paused.problems).toEqual([]);
    expect(paused.gaps).toEqual([]);
    expect(paused.floodLines).toBe(LINES);
    console.log(`paused follower: daemon RSS during the pause ≤ ${peakDuringPause.toFixed(1)} MiB`);
    // What a paused client may cost is bounded (its socket buffer, no queue): a leak or a
    // per-client backlog of 300,000 lines would be far above this. The RSS moves with the
    // machine's load (86-102 MiB measured); the ≤ 100 MiB target is the bench's (followers).
    expect(peakDuringPause).toBeLessThanOrEqual(130);
  }, 240_000);

  it('a follower whose lines were rotated away gets one gap with the exact number lost, then every line that exists', async () => {
    const LINES = 150_000;
    // 2 files of 256 KiB: only the newest ~4,000 lines stay on disk.
    const { dir, d } = await project((s) => `{ logs: { maxSize: '256KB', keep: 1 }, units: { flood: { command: ['/bin/sh', '-c', ${s}] } } }`, LINES);
    const paused = follower(d, LINES);
    await paused.ready();
    paused.socket.pause();
    go(dir);
    await waitFor(() => readFileSync(join(dir, 'logs', 'flood.log'), 'utf8').includes(`L${LINES} `), { timeout: 60_000, interval: 100, message: 'the last line in the file' });
    const oldest = oldestStoredSeq(dir);
    const lastSeq = paused.hello!.lastSeq.flood!;
    paused.socket.resume();
    await waitFor(() => paused.nextFlood > LINES, { timeout: 60_000, interval: 50, message: `the resumed follower (at L${paused.nextFlood})` });
    expect(paused.problems).toEqual([]);
    expect(paused.gaps).toHaveLength(1);
    const gap = paused.gaps[0]!;
    // Exactly the lines that exist nowhere: from the first it had not received up to the
    // oldest line still in the files.
    expect(gap.toSeq).toBe(oldest - 1);
    expect(gap.dropped).toBe(oldest - gap.fromSeq);
    expect(gap.fromSeq).toBeGreaterThan(lastSeq);
    // Every seq was either received or in the gap (the follower checks contiguity frame by frame).
    expect(paused.lastSeq).toBeGreaterThanOrEqual(oldest);
  }, 180_000);

  it('`bksup logs -f` of a flood, piped, prints every line', async () => {
    const LINES = 100_000;
    const { dir } = await project((s) => `{ units: { flood: { command: ['/bin/sh', '-c', ${s}] } } }`, LINES);
    const cli = spawn(process.execPath, [BKSUP, 'logs', '-f', '-n', '0', 'flood'], { cwd: dir, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    cleanups.push(() => void cli.kill('SIGKILL'));
    let count = 0;
    let next = 1;
    const problems: string[] = [];
    let partial = '';
    let err = '';
    cli.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    cli.stdout!.on('data', (b: Buffer) => {
      const rows = (partial + b.toString()).split('\n');
      partial = rows.pop() ?? '';
      for (const row of rows) {
        const m = /^flood\s+\| L(\d+) /.exec(row);
        if (!m) continue;
        if (Number(m[1]) !== next && problems.length < 5) problems.push(`L${m[1]} where L${next} was due`);
        next = Number(m[1]) + 1;
        count++;
      }
    });
    // Following before the flood starts: the hello has been printed as nothing, so wait for the
    // daemon to have this client (its stats say so on the metrics-free path: units answer).
    await waitFor(async () => {
      const c = JSON.parse(readFileSync(join(dir, '.supervisor', 'control.json'), 'utf8')) as { port: number; token: string };
      const res = await fetch(`http://127.0.0.1:${c.port}/metrics`, { headers: { authorization: `Bearer ${c.token}` } });
      return /bksup_ws_clients\{endpoint="logs"\} 1/.test(await res.text());
    }, { message: 'bksup logs -f connected' });
    go(dir);
    await waitFor(() => count >= LINES, { timeout: 120_000, interval: 100, message: `bksup logs -f at ${count} lines (${err})` });
    expect(problems).toEqual([]);
    expect(count).toBe(LINES);
    expect(err).not.toMatch(/not shown/);
  }, 180_000);

  it('resume by seq after a daemon restart: the old instance\'s seqs mean "from this run\'s start", served from the files, never mixing in the earlier run', async () => {
    const LINES = 3000;
    const dir = tempDir('bksup-follow-');
    cleanups.push(() => removeDir(dir));
    // A ring of 100 lines: what a resuming client gets comes from the files, which hold both runs.
    const config = (run: string): string =>
      `{ logs: { ringSize: 100 }, units: { flood: { command: ['/bin/sh', '-c', ${JSON.stringify(`awk 'BEGIN { for (i = 1; i <= ${LINES}; i++) printf "L%d ${run}\\n", i }'; exec sleep 3600`)}] } } }`;
    const inFile = (text: string): boolean => {
      try {
        return readFileSync(join(dir, 'logs', 'flood.log'), 'utf8').includes(text);
      } catch {
        return false;
      }
    };
    const first = await startDaemon(dir, config('run1'));
    cleanups.push(() => first.stop());
    const probe = follower(first, 0);
    await probe.ready();
    const oldInstance = probe.hello!.instance;
    await waitFor(() => inFile(`L${LINES} run1`), { message: 'run 1 in the file' });
    await first.stop();

    const second = await startDaemon(dir, config('run2'));
    cleanups.push(() => second.stop());
    await waitFor(() => inFile(`L${LINES} run2`), { message: 'run 2 in the file' });
    const resumed = new Follower(second.port, second.token, 'flood', LINES, `follow=1&since=1500&instance=${oldInstance}`);
    cleanups.push(() => resumed.close());
    await resumed.ready();
    expect(resumed.hello!.instance).not.toBe(oldInstance);
    expect(resumed.hello!.from.flood).toBe(0);
    await waitFor(() => resumed.done, { message: `the resumed follower (at ${resumed.floodLines})` });
    expect(resumed.problems).toEqual([]);
    expect(resumed.gaps).toEqual([]);
    expect(resumed.floodLines).toBe(LINES);

    // The same seq with this run's instance: only what came after it.
    const same = new LogsClient(`ws://127.0.0.1:${second.port}/api/logs?units=flood&since=1500&instance=${resumed.hello!.instance}`, { token: second.token });
    cleanups.push(() => same.close());
    await same.waitClosed();
    const last = same.hello!.lastSeq.flood!;
    expect(same.seqs('flood')).toEqual(Array.from({ length: last - 1500 }, (_, i) => 1501 + i));
    expect(same.lines.filter((l) => l.line.includes('run1'))).toEqual([]);
    expect(same.lines.at(-1)?.line).toBe(`L${LINES} run2`);
  }, 120_000);
});
