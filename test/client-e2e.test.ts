// End to end: a real daemon (`bksup up` as its own process: real Supervisor, LogRing, log files,
// control server) driven by the CLI client functions — status, logs from the ring and the files,
// a follow across restart/down, start/stop/restart and down.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { controlCommand, downCommand, findDaemon, logsCommand, statusCommand } from '../src/client/index.ts';
import type { UnitSnapshot } from '../src/units/types.ts';
import { isAlive } from '../src/util/proc.ts';
import { Sink } from './helpers/sink.ts';
import { waitFor } from './helpers/wait.ts';

const BIN = join(import.meta.dirname, '..', 'bin', 'bksup.js');


let dir: string;
let daemon: ChildProcess | undefined;
let daemonOut = '';

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bksup-e2e-'));
  daemonOut = '';
});

afterEach(async () => {
  const pid = daemon?.pid;
  if (pid !== undefined && daemon?.exitCode === null && isAlive(pid)) {
    process.kill(pid, 'SIGTERM');
    await waitFor(() => daemon?.exitCode !== null || daemon?.signalCode !== null, { timeout: 30_000, message: 'daemon exit' });
  }
  daemon = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function statusJson(): Promise<UnitSnapshot[]> {
  const out = new Sink();
  expect(await statusCommand(dir, { json: true }, { out })).toBe(0);
  return JSON.parse(out.text) as UnitSnapshot[];
}

it('status, logs (ring and files), follow, restart and down against a real daemon', async () => {
  const node = JSON.stringify(process.execPath);
  await writeFile(
    join(dir, 'supervisor.config.ts'),
    `export default {
  control: { host: '127.0.0.1', port: 0 },
  logs: { ringSize: 200 },
  units: {
    burst: { kind: 'task', command: [${node}, '-e', 'for (let i = 1; i <= 1000; i++) console.log("burst " + i)'] },
    talker: { command: [${node}, '-e', 'let i = 0; setInterval(() => console.log("tick " + ++i), 20)'], dependsOn: { burst: 'completed' } },
  },
};
`,
  );
  daemon = spawn(process.execPath, [BIN, '-C', dir, 'up', '--no-color'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  daemon.stdout!.on('data', (d: Buffer) => (daemonOut += d.toString()));
  daemon.stderr!.on('data', (d: Buffer) => (daemonOut += d.toString()));
  try {
    await waitFor(async () => (await findDaemon(dir)).ok, { timeout: 30_000, message: 'the daemon to write control.json' });
  } catch (err) {
    throw new Error(`${(err as Error).message}; daemon output:\n${daemonOut}`);
  }
  const info = JSON.parse(readFileSync(join(dir, '.supervisor', 'control.json'), 'utf8')) as { pid: number };
  expect(info.pid).toBe(daemon.pid);

  // status
  // Without a healthcheck a started process counts as healthy.
  const up = (u: UnitSnapshot | undefined): boolean => u?.state === 'running' || u?.state === 'healthy';
  try {
    await waitFor(async () => up((await statusJson()).find((u) => u.name === 'talker')), { timeout: 30_000, message: 'talker up' });
  } catch (err) {
    throw new Error(`${(err as Error).message}; status: ${JSON.stringify(await statusJson())}; daemon output:\n${daemonOut}`);
  }
  const units = await statusJson();
  expect(units.map((u) => u.name)).toEqual(['burst', 'talker']);
  expect(units[0]!.state).toBe('completed');
  const table = new Sink();
  expect(await statusCommand(dir, {}, { out: table })).toBe(0);
  expect(table.lines()[2]).toMatch(/^talker\s+process\s+(running|healthy)\s+\d+\s+1\s+\d+s\s+0/);

  // logs: 1000 lines of burst, more than the ring (200) holds, so most come from logs/burst.log
  await waitFor(() => existsSync(join(dir, 'logs', 'burst.log')) && readFileSync(join(dir, 'logs', 'burst.log'), 'utf8').includes(' burst 1000\n'), { message: 'burst.log flushed' });
  const burst = new Sink();
  // (the unit's log also holds its state changes as system lines: ask for a little more)
  expect(await logsCommand(dir, ['burst'], { n: 1100, json: true }, { out: burst })).toBe(0);
  const burstLines = burst.lines().map((l) => JSON.parse(l) as { type: string; line: string; seq: number });
  const output = burstLines.filter((l) => l.type === 'log' && l.line.startsWith('burst '));
  expect(output.map((l) => l.line)).toEqual(Array.from({ length: 1000 }, (_, i) => `burst ${i + 1}`));
  expect(burstLines.filter((l) => l.type === 'gap')).toEqual([]);

  // follow talker while it is restarted: lines keep coming, in order, from the new process too
  const follow = new Sink();
  const followErr = new Sink();
  const stop = new AbortController();
  const following = logsCommand(dir, ['talker'], { follow: true, n: 0, json: true }, { out: follow, err: followErr, signal: stop.signal, reconnect: { initialMs: 20, maxMs: 200 } });
  const ticks = (): number[] =>
    follow
      .lines()
      .map((l) => JSON.parse(l) as { stream: string; line: string; seq: number })
      .filter((l) => l.stream === 'stdout')
      .map((l) => l.seq);
  await waitFor(() => ticks().length >= 5, { message: 'ticks' });
  const pidBefore = (await statusJson()).find((u) => u.name === 'talker')!.pid;
  const restarted = new Sink();
  expect(await controlCommand(dir, 'restart', ['talker'], { out: restarted, color: false })).toBe(0);
  expect(restarted.text).toBe('✓ restart talker\n');
  await waitFor(async () => {
    const t = (await statusJson()).find((u) => u.name === 'talker')!;
    return up(t) && t.pid !== pidBefore;
  }, { message: 'talker restarted' });
  const n = ticks().length;
  await waitFor(() => ticks().length >= n + 5, { message: 'ticks after restart' });
  const seqs = follow.lines().map((l) => (JSON.parse(l) as { seq: number }).seq);
  expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => seqs[0]! + i)); // contiguous, system lines included

  const unknown = new Sink();
  expect(await controlCommand(dir, 'stop', ['ghost'], { out: unknown, color: false })).toBe(1);
  expect(unknown.text).toBe('✗ stop ghost: unknown unit "ghost" (known: burst, talker)\n');

  // down: the daemon stops everything, removes control.json and exits; the follower waits for a new one
  const down = new Sink();
  expect(await downCommand(dir, { out: down })).toBe(0);
  expect(down.lines()).toEqual([`stopping the supervisor (pid ${daemon.pid})…`, 'supervisor stopped']);
  expect(existsSync(join(dir, '.supervisor', 'control.json'))).toBe(false);
  await waitFor(() => daemon!.exitCode !== null, { timeout: 30_000, message: 'daemon exited' });
  expect(daemon.exitCode).toBe(0);
  await waitFor(() => followErr.text.includes('waiting for the supervisor to come back'), { message: 'follower waiting' });
  stop.abort();
  expect(await following).toBe(0);
  expect((await findDaemon(dir)).ok).toBe(false);
}, 120_000);
