// Logs are flushed on every exit path: lines a child printed are in logs/<unit>.log after the
// daemon exited, whether it was stopped (Ctrl-C to `up`, SIGTERM, `bksup down`), the child
// crashed, or the daemon met an internal error.
//
// Lines normally reach the file within one event-loop turn, long before any exit: a test that
// only waits for the daemon to exit proves nothing about the flush on the way out (every line
// was written while the units were being stopped). So the disk is made slow here: logs/app.log
// is a FIFO this test reads, and it stops reading partway through the child's burst. The
// daemon's write to the file then blocks, and the rest of the burst (plus what the child prints
// while it is stopped) waits behind it in the daemon. The test reads again only once the
// daemon is on its way out (control.json removed: the units are stopped and the control server
// closed), so every line arrives only if the exit path waits for the writes still outstanding
// and makes those still pending. Real daemon (`bksup up`), real children, a real FIFO; the
// lines are checked once the daemon has exited and the FIFO reached its end.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { constants, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BKSUP, startCli, waitForControl, writeConfig } from './helpers/daemon.ts';
import { FIXTURES, removeDir, tempDir } from './helpers/stack.ts';
import { waitFor } from './helpers/wait.ts';
import { cleanupsAfterEach } from './helpers/cleanups.ts';

const cleanups = cleanupsAfterEach();

const BURST = 20_000;
/** The test stops reading the file at this burst line; the child prints the rest (~450 KB in the file) only then. */
const STALL_AT = BURST - 8_000;
/** Printed on SIGTERM; small enough that the daemon keeps reading the child's pipe (≤ 1 MiB waiting). */
const STOP_BURST = 2_000;

/**
 * The unit: a burst of numbered lines in two parts (the second once the test has stopped reading
 * the file, so all of it waits in the daemon), then `last`, then a marker file (so the test knows
 * the child has written it), then `after`. Stopped (SIGTERM), it prints a burst on its way out
 * and ends with one more line, while the daemon is already shutting down.
 */
function script(last: string, after: string): string {
  const burst = (from: number, to: number): string => `awk 'BEGIN { for (i = ${from}; i <= ${to}; i++) printf "burst %d ..........................................\\n", i }'`;
  return (
    // `trap "" TERM` first: the stop signals the whole tree again, and the burst must not be cut
    // short by that (the test is about what the daemon keeps of what was printed).
    `trap 'trap "" TERM; awk "BEGIN { for (i = 1; i <= ${STOP_BURST}; i++) print \\"stop burst\\", i }"; echo "stopping: the very last line"; exit 0' TERM; ` +
    `${burst(1, STALL_AT)}; while [ ! -e stalled ]; do sleep 0.01; done; ${burst(STALL_AT + 1, BURST)}; printf '${last}'; touch printed; ${after}`
  );
}

const SLEEP = 'sleep 3600 & wait';

/** logs/app.log as a FIFO read by this test: a disk that accepts nothing while the test does not read. */
interface SlowDisk {
  /** Everything the daemon wrote to logs/app.log so far. */
  text(): string;
  /** Resolves once the test has stopped reading (it saw burst line STALL_AT). */
  stalled: Promise<void>;
  /** Read again, to the end (the daemon exited). */
  readToEnd(): Promise<string>;
}

function slowDisk(dir: string): SlowDisk {
  const fifo = join(dir, 'logs', 'app.log');
  mkdirSync(join(dir, 'logs'), { recursive: true });
  execFileSync('mkfifo', ['-m', '600', fifo]);
  // Opened for reading first (non-blocking), so the daemon's open for writing does not wait.
  const socket = new Socket({ fd: openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK), readable: true, writable: false });
  cleanups.push(() => void socket.destroy());
  let text = '';
  let onStall!: () => void;
  const stalled = new Promise<void>((r) => (onStall = r));
  const ended = new Promise<void>((r) => socket.once('end', () => r()));
  const mark = ` burst ${STALL_AT} `;
  let stopped = false;
  socket.on('data', (d: Buffer) => {
    text += d.toString('utf8');
    if (!stopped && text.includes(mark, text.length - d.length - mark.length)) {
      stopped = true;
      socket.pause();
      writeFileSync(join(dir, 'stalled'), '');
      onStall();
    }
  });
  return {
    text: () => text,
    stalled,
    async readToEnd() {
      socket.resume();
      await ended;
      return text;
    },
  };
}

interface Run {
  dir: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  disk: SlowDisk;
  /** The control API's port. */
  port: number;
  output(): string;
}

async function start(unitScript: string, unitExtra = '', nodeArgs: string[] = []): Promise<Run> {
  const dir = tempDir('bksup-exit-flush-');
  cleanups.push(() => removeDir(dir));
  writeConfig(dir, `{ units: { app: { command: ['/bin/sh', '-c', ${JSON.stringify(unitScript)}], stop: { timeout: '30s' }${unitExtra} } } }`);
  const disk = slowDisk(dir);
  const child = spawn(process.execPath, [...nodeArgs, BKSUP, 'up'], { cwd: dir, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  // The terminal's output too: state changes show there without a request to the control API.
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  const { port } = await waitForControl(dir);
  return { dir, child, exited, disk, port, output: () => out };
}

/** The child printed its last line while the test was not reading: the lines after STALL_AT wait in the daemon. */
async function printedWhileStalled(run: Run): Promise<void> {
  await run.disk.stalled;
  await waitFor(() => existsSync(join(run.dir, 'printed')), { timeout: 30_000, interval: 5, message: 'the child printed its last line' });
  expect(run.disk.text()).not.toContain(` burst ${BURST} `);
}

/**
 * Once the daemon is on its way out, reads the file to its end. The control server closing is
 * the last step before the daemon's own exit path (release): control.json is removed first, and
 * the listening socket goes once the clients are gone. Both gone, all that is left between the
 * daemon and its exit is what it does for the logs.
 */
async function readWhenLeaving(run: Run): Promise<string> {
  const port = `:${run.port.toString(16).toUpperCase().padStart(4, '0')} `;
  const listening = (): boolean => readFileSync('/proc/net/tcp', 'utf8').split('\n').some((row) => row.includes(port) && / 0A /.test(row));
  await waitFor(() => !existsSync(join(run.dir, '.supervisor', 'control.json')) && !listening(), { timeout: 30_000, interval: 5, message: 'the control server closed' });
  return run.disk.readToEnd();
}

/** Every burst line once, in order, and the last line. */
function expectAll(text: string, last: string): void {
  const rows = text.split('\n');
  const burst = rows.filter((r) => / stdout \d+ burst \d+ /.test(r)).map((r) => Number(/ burst (\d+) /.exec(r)![1]));
  expect(burst.length).toBe(BURST);
  expect(burst.every((n, i) => n === i + 1)).toBe(true);
  expect(rows.some((r) => r.endsWith(` ${last}`))).toBe(true);
}

/** …and the lines the child printed when it was stopped. */
function expectStopLines(text: string): void {
  expect(text.match(/ stdout \d+ stop burst \d+\n/g)?.length).toBe(STOP_BURST);
  expect(text).toMatch(/ stdout \d+ stopping: the very last line\n/);
}

describe('logs are flushed on every exit path (the disk slow while the daemon leaves)', () => {
  it('Ctrl-C (SIGINT to `bksup up`)', async () => {
    const run = await start(script('last words before ctrl-c\\n', SLEEP));
    await printedWhileStalled(run);
    run.child.kill('SIGINT');
    const text = await readWhenLeaving(run);
    expect(await run.exited).toBe(0);
    expectAll(text, 'last words before ctrl-c');
    expectStopLines(text);
  }, 60_000);

  it('SIGTERM to the daemon', async () => {
    const run = await start(script('last words before sigterm\\n', SLEEP));
    await printedWhileStalled(run);
    run.child.kill('SIGTERM');
    const text = await readWhenLeaving(run);
    expect(await run.exited).toBe(0);
    expectAll(text, 'last words before sigterm');
    expectStopLines(text);
  }, 60_000);

  it('`bksup down`', async () => {
    const run = await start(script('last words before down\\n', SLEEP));
    await printedWhileStalled(run);
    // `down` returns once the daemon is gone, and it leaves only after the file took its lines.
    const down = startCli(run.dir, ['down']);
    const text = await readWhenLeaving(run);
    expect(await down.exited).toBe(0);
    expect(await run.exited).toBe(0);
    expectAll(text, 'last words before down');
    expectStopLines(text);
  }, 60_000);

  it("the child's own crash (killed by SIGSEGV, its last line without a newline)", async () => {
    const run = await start(script('last words before the crash', 'kill -SEGV $$'), ", restart: { policy: 'never' }");
    await run.disk.stalled;
    // From the terminal, not the control API: a request's connection would hold the control
    // server open a moment longer while the daemon leaves (see readWhenLeaving).
    await waitFor(() => /app +\| ● failed/.test(run.output()), { timeout: 30_000, interval: 5, message: 'app failed' });
    expect(run.disk.text()).not.toContain(` burst ${BURST} `);
    run.child.kill('SIGTERM');
    const text = await readWhenLeaving(run);
    expect(await run.exited).toBe(0);
    expectAll(text, 'last words before the crash');
  }, 60_000);

  it('an internal error of the daemon (an uncaught exception)', async () => {
    const run = await start(script('last words before the internal error\\n', SLEEP), '', ['--import', join(FIXTURES, 'throw-on-usr2.mjs')]);
    await printedWhileStalled(run);
    run.child.kill('SIGUSR2');
    const text = await readWhenLeaving(run);
    expect(await run.exited).toBe(70);
    expect(run.output()).toContain('internal error, stopping every unit: Error: injected internal error');
    expectAll(text, 'last words before the internal error');
    expectStopLines(text);
  }, 60_000);
});
