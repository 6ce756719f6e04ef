// Logs are flushed on every exit path: a child prints a burst and a last line just before the
// daemon is stopped (Ctrl-C to `up`, SIGTERM, `bksup down`, an internal error of the daemon) or
// before the child itself crashes; once the daemon has exited, logs/<unit>.log holds every line.
// Real daemon (`bksup up`), real children, the file read only after the daemon is gone.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BKSUP, runCli, units, waitForControl, writeConfig } from './helpers/daemon.ts';
import { FIXTURES, removeDir, tempDir } from './helpers/stack.ts';
import { waitFor } from './helpers/wait.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const BURST = 20_000;
const STOP_BURST = 100_000;

/**
 * The unit: a burst of numbered lines, then `last`, then a marker file (so the test knows the
 * child has written it), then `after`. Stopped (SIGTERM), it floods on its way out and ends
 * with one more line, while the daemon is already shutting down: the daemon exits with those
 * lines just read from the pipe, some still waiting for the disk.
 */
function script(last: string, after: string): string {
  return (
    // `trap "" TERM` first: the stop signals the whole tree again, and the burst must not be cut
    // short by that (the test is about what the daemon keeps of what was printed).
    `trap 'trap "" TERM; awk "BEGIN { for (i = 1; i <= ${STOP_BURST}; i++) print \\"stop burst\\", i }"; echo "stopping: the very last line"; exit 0' TERM; ` +
    `awk 'BEGIN { for (i = 1; i <= ${BURST}; i++) printf "burst %d ..........................................\\n", i }'; printf '${last}'; touch printed; ${after}`
  );
}

const SLEEP = 'sleep 3600 & wait';

interface Run {
  dir: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  output(): string;
}

async function start(unitScript: string, unitExtra = '', nodeArgs: string[] = []): Promise<Run> {
  const dir = tempDir('bksup-exit-flush-');
  cleanups.push(() => removeDir(dir));
  writeConfig(dir, `{ units: { app: { command: ['/bin/sh', '-c', ${JSON.stringify(unitScript)}], stop: { timeout: '30s' }${unitExtra} } } }`);
  const child = spawn(process.execPath, [...nodeArgs, BKSUP, 'up'], { cwd: dir, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let out = '';
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  await waitForControl(dir);
  return { dir, child, exited, output: () => out };
}

async function printed(run: Run): Promise<void> {
  await waitFor(() => existsSync(join(run.dir, 'printed')), { timeout: 30_000, interval: 5, message: 'the child printed its last line' });
}

/** Every burst line once, in order, and the last line, in the unit's file. */
function expectAllInFile(dir: string, last: string): void {
  const rows = readFileSync(join(dir, 'logs', 'app.log'), 'utf8').split('\n');
  const burst = rows.filter((r) => / stdout \d+ burst \d+ /.test(r)).map((r) => Number(/ burst (\d+) /.exec(r)![1]));
  expect(burst.length).toBe(BURST);
  expect(burst.every((n, i) => n === i + 1)).toBe(true);
  expect(rows.some((r) => r.endsWith(` ${last}`))).toBe(true);
}

/** …and the line the child printed when it was stopped. */
function expectStopLine(dir: string): void {
  const text = readFileSync(join(dir, 'logs', 'app.log'), 'utf8');
  expect(text.match(/ stdout \d+ stop burst \d+\n/g)?.length).toBe(STOP_BURST);
  expect(text).toMatch(/ stdout \d+ stopping: the very last line\n/);
}

describe('logs are flushed on every exit path', () => {
  it('Ctrl-C (SIGINT to `bksup up`)', async () => {
    const run = await start(script('last words before ctrl-c\\n', SLEEP));
    await printed(run);
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(0);
    expectAllInFile(run.dir, 'last words before ctrl-c');
    expectStopLine(run.dir);
  }, 60_000);

  it('SIGTERM to the daemon', async () => {
    const run = await start(script('last words before sigterm\\n', SLEEP));
    await printed(run);
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    expectAllInFile(run.dir, 'last words before sigterm');
    expectStopLine(run.dir);
  }, 60_000);

  it('`bksup down`', async () => {
    const run = await start(script('last words before down\\n', SLEEP));
    await printed(run);
    const down = await runCli(run.dir, ['down']);
    expect(down.code).toBe(0);
    expect(await run.exited).toBe(0);
    expectAllInFile(run.dir, 'last words before down');
    expectStopLine(run.dir);
  }, 60_000);

  it("the child's own crash (killed by SIGSEGV, its last line without a newline)", async () => {
    const run = await start(script('last words before the crash', 'kill -SEGV $$'), ", restart: { policy: 'never' }");
    await waitFor(async () => (await units(run.dir)).find((u) => u.name === 'app')?.state === 'failed', { timeout: 30_000, message: 'app failed' });
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    expectAllInFile(run.dir, 'last words before the crash');
  }, 60_000);

  it('an internal error of the daemon (an uncaught exception)', async () => {
    const run = await start(script('last words before the internal error\\n', SLEEP), '', ['--import', join(FIXTURES, 'throw-on-usr2.mjs')]);
    await printed(run);
    run.child.kill('SIGUSR2');
    expect(await run.exited).toBe(70);
    expect(run.output()).toContain('internal error, stopping every unit: Error: injected internal error');
    expectAllInFile(run.dir, 'last words before the internal error');
    expectStopLine(run.dir);
  }, 60_000);
});
