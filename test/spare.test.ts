// Spares: children started in advance for a unit's next start (src/units/spare.ts). What users
// rely on: the command runs exactly as given (arguments, env, cwd, stdin), a spare never
// outlives the unit's stop or the daemon, and a unit with a spare starts without a fork.

import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { discardSpare, launchSpare, prepareSpare, spareFits, type Spare } from '../src/units/spare.ts';
import { isAlive, readStat } from '../src/util/proc.ts';
import { controlFile, ROOT, writeConfig } from './helpers/daemon.ts';
import { startStack, type Stack } from './helpers/stack.ts';
import { waitFor } from './helpers/wait.ts';
import { identify, stillAlive } from './helpers/pids.ts';
import { cleanupsAfterEach, dirUntilCleanup } from './helpers/cleanups.ts';

const cleanups = cleanupsAfterEach();

const dir = (): string => dirUntilCleanup(cleanups);

function spareIn(cwd: string, env: Record<string, string>): Spare {
  const spare = prepareSpare({ cwd, env });
  if (!spare) throw new Error('no spare');
  cleanups.push(() => discardSpare(spare));
  return spare;
}

function output(spare: Spare): { text: () => string; exit: Promise<number | null> } {
  let text = '';
  spare.child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  spare.child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
  const exit = new Promise<number | null>((r) => spare.child.once('exit', (code) => r(code)));
  return { text: () => text, exit };
}

/** How long ago `pid` was forked, from /proc (10 ms resolution: clock ticks). */
function ageMs(pid: number): number {
  const st = readStat(pid);
  if (!st) return -1;
  const uptimeS = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
  return uptimeS * 1000 - (st.startTime / 100) * 1000;
}

/** The pids of live processes whose parent is `ppid` and whose argv contains `word`. */
function childrenWith(ppid: number, word: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = readStat(Number(name));
    if (!st || st.ppid !== ppid || st.state === 'Z') continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(word)) out.push(st.pid);
    } catch {
      // gone
    }
  }
  return out;
}

describe('a spare', () => {
  it("carries its unit's mark (BKSUP_UNIT) into the command it becomes, and still fits the unit's own env", async () => {
    const cwd = dir();
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
    const spare = prepareSpare({ cwd, env, marker: 'run1:web:7' });
    if (!spare) throw new Error('no spare');
    cleanups.push(() => discardSpare(spare));
    const out = output(spare);
    const command = ['/bin/sh', '-c', 'echo "$BKSUP_UNIT"'];
    expect(spareFits(spare, { command, cwd, env })).toBe(true);
    launchSpare(spare, command);
    expect(await out.exit).toBe(0);
    expect(out.text()).toBe('run1:web:7\n');
  });

  it('runs the command exactly as given: quotes, newlines, $ and backticks, empty words; its env and cwd; stdin at /dev/null', async () => {
    const cwd = dir();
    const spare = spareIn(cwd, { PATH: process.env.PATH ?? '/usr/bin:/bin', ONLY_THIS: 'yes' });
    // (sh adds PWD on its own, as it would for any command.)
    const out = output(spare);
    const words = ["it's", 'two\nlines\n.\n3', '$HOME `id` $(id)', '', '\\'];
    const script = 'for w in "$@"; do printf "[%s]" "$w"; done; echo; env | cut -d= -f1 | grep -v "^PWD$" | sort | tr "\\n" " "; echo; pwd; cat; echo done';
    const res = launchSpare(spare, ['/bin/sh', '-c', script, 'argv0', ...words]);
    expect(res.ok && res.pid).toBe(spare.pid); // the same process becomes the unit
    expect(await out.exit).toBe(0);
    // cat printed nothing: stdin is /dev/null, not the pipe the command came through.
    expect(out.text()).toBe(`${words.map((w) => `[${w}]`).join('')}\nONLY_THIS PATH \n${cwd}\ndone\n`);
  });

  it('runs a string command through /bin/sh -c like spawnChild does', async () => {
    const spare = spareIn(dir(), { PATH: process.env.PATH ?? '/usr/bin:/bin' });
    const out = output(spare);
    launchSpare(spare, 'echo "a b" && exit 7');
    expect(await out.exit).toBe(7);
    expect(out.text()).toBe('a b\n');
  });

  it('exits quietly when its stdin closes without a command (the daemon went away)', async () => {
    const spare = spareIn(dir(), { PATH: '/usr/bin:/bin' });
    const out = output(spare);
    spare.child.stdin!.end();
    expect(await out.exit).toBe(0);
    expect(out.text()).toBe('');
  });

  it('does not fit a unit with another env, a dead spare, or a program that cannot be found', async () => {
    const env = { PATH: '/usr/bin:/bin' };
    const cwd = dir();
    const spare = spareIn(cwd, env);
    expect(spareFits(spare, { command: ['sleep', '1'], cwd, env })).toBe(true);
    expect(spareFits(spare, { command: 'anything at all && more', cwd, env })).toBe(true); // /bin/sh
    expect(spareFits(spare, { command: 'sleep 1', cwd, env })).toBe(true); // plain words: sleep itself
    expect(spareFits(spare, { command: 'no-such-program-here 1', cwd, env })).toBe(false);
    expect(spareFits(spare, { command: ['sleep', '1'], cwd, env: { ...env } })).toBe(false);
    expect(spareFits(spare, { command: ['no-such-program-here'], cwd, env })).toBe(false);
    expect(spareFits(spare, { command: ['./not-there.sh'], cwd, env })).toBe(false);
    await discardSpare(spare);
    expect(isAlive(spare.pid)).toBe(false);
    expect(spareFits(spare, { command: ['sleep', '1'], cwd, env })).toBe(false);
  });
});

describe('units with spares', () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  it('a unit waiting for a dependency starts as its spare (no fork at start); stop leaves no spare behind', async () => {
    const d = dir();
    writeFileSync(join(d, 'gate'), '');
    stack = await startStack({
      root: d,
      units: {
        gate: { command: ['/bin/sh', '-c', 'while [ -e gate ]; do sleep 0.02; done; exec sleep 60'], healthcheck: { exec: '[ ! -e gate ]', interval: '50ms' } },
        after: { command: ['sleep', '60'], dependsOn: { gate: 'healthy' } },
        also: { command: ['sleep', '61'], dependsOn: { gate: 'healthy' } },
      },
    });
    await stack.waitState('after', 'pending');
    const spares = await waitFor(() => {
      const s = childrenWith(process.pid, 'bksup-spare');
      return s.length >= 2 ? s : undefined;
    }, { message: 'spares for the two waiting units' });
    const known = identify(spares);
    rmSync(join(d, 'gate'));
    const running = await stack.waitState('after', 'running');
    expect(spares).toContain(running.pid);
    await stack.stop();
    stack = undefined;
    expect(childrenWith(process.pid, 'bksup-spare')).toEqual([]);
    expect(stillAlive(known)).toEqual([]);
  });

  it('a crashing unit restarts as a spare made during its previous run; failing for good ends the spare', async () => {
    stack = await startStack({
      root: dir(),
      units: { crashy: { command: ['/bin/sh', '-c', 'sleep 0.2; exit 3'], restart: { policy: 'always', backoff: { initial: 0, max: 0 }, maxRestarts: 4, window: '1m' } } },
    });
    // At each start, how old the started process already is: a spare was forked during the
    // previous run (~200 ms earlier); a fresh spawn is a few ms old.
    const ages: number[] = [];
    stack.bus.onEvent((e) => {
      if (e.type === 'state' && e.unit === 'crashy' && e.state === 'running' && e.pid) ages.push(ageMs(e.pid));
    });
    await stack.waitState('crashy', 'failed', 20_000);
    // The first start may come before this listener; restart 1 is forked then (the unit had not
    // crashed before), restarts 2-4 start as spares.
    expect(ages.length).toBeGreaterThanOrEqual(4);
    expect(ages.at(-4)).toBeLessThan(100);
    for (const age of ages.slice(-3)) expect(age).toBeGreaterThanOrEqual(100);
    expect(childrenWith(process.pid, 'bksup-spare')).toEqual([]);
  });
});

describe('the daemon', () => {
  it('SIGKILLed, takes its spares with it (parent-death signal)', async () => {
    const d = dir();
    writeFileSync(join(d, 'gate'), '');
    writeConfig(d, `{ units: {
      gate: { command: ['/bin/sh', '-c', 'while [ -e gate ]; do sleep 0.05; done; exec sleep 60'], healthcheck: { exec: '[ ! -e gate ]' } },
      a: { command: ['sleep', '61'], dependsOn: { gate: 'healthy' } },
      b: { command: ['sleep', '62'], dependsOn: { gate: 'healthy' } },
    } }`);
    const daemon = spawn(process.execPath, [join(ROOT, 'bin', 'bksup.js'), 'up', '--no-color'], { cwd: d, stdio: 'ignore' });
    const exited = new Promise<void>((r) => daemon.once('exit', () => r()));
    cleanups.push(async () => {
      if (daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGKILL');
      await exited;
    });
    await waitFor(() => controlFile(d), { message: 'control.json' });
    const spares = await waitFor(() => {
      const s = childrenWith(daemon.pid!, 'bksup-spare');
      return s.length >= 2 ? s : undefined;
    }, { message: 'spares for a and b' });
    const known = identify(spares);
    daemon.kill('SIGKILL');
    await exited;
    await waitFor(() => stillAlive(known).length === 0, { message: 'the spares ended with the daemon' });
  });
});
