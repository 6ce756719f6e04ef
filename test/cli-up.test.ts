// The daemon as users run it: `bksup up` in a project directory, stopped by a signal.

import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { controlFile, runCli, startCli, units, waitForControl, writeConfig, type RunningCli } from './helpers/daemon.ts';
import { FIXTURES, removeDir, tempDir } from './helpers/stack.ts';
import { waitFor } from './helpers/wait.ts';
import { identify, stillAlive } from './helpers/pids.ts';
import { cleanupsAfterEach, stopAtCleanup } from './helpers/cleanups.ts';

const cleanups = cleanupsAfterEach();

function project(): string {
  const dir = tempDir();
  cleanups.push(() => removeDir(dir));
  return dir;
}

function daemon(dir: string, args: string[] = ['up']): RunningCli {
  const d = startCli(dir, args);
  stopAtCleanup(cleanups, d);
  return d;
}

const node = JSON.stringify(process.execPath);
const fx = (name: string): string => JSON.stringify(join(FIXTURES, name));

describe('bksup up', () => {
  it('refuses a bad config with every error at once, exit 2, and starts nothing', async () => {
    const dir = project();
    writeConfig(dir, `{ units: {
      marker: { command: 'touch started-marker' },
      server: { command: 'sleep 1', dependsOn: { natz: 'healthy' }, restart: { backoff: { initial: '10 sec' } } },
    } }`);
    const { code, output } = await runCli(dir, ['up']);
    expect(code).toBe(2);
    expect(output).toContain('units.server.dependsOn.natz: unknown unit "natz"');
    expect(output).toContain('units.server.restart.backoff.initial');
    expect(output).toContain('nothing was started');
    expect(existsSync(join(dir, 'started-marker'))).toBe(false);
    expect(existsSync(join(dir, '.supervisor', 'control.json'))).toBe(false);
  });

  it('stops the whole tree on SIGTERM, removes control.json, exits 0', async () => {
    const dir = project();
    writeConfig(dir, `{ units: {
      stubborn: { command: [${node}, ${fx('ignores-sigterm.mjs')}], stop: { timeout: '500ms' } },
      app: { command: [${node}, ${fx('forever.mjs')}], dependsOn: { stubborn: 'healthy' } },
    } }`);
    const d = daemon(dir);
    await waitForControl(dir);
    await waitFor(async () => (await units(dir)).every((u) => u.state === 'healthy'));
    const tree = await waitFor(() => /tree (\d+) (\d+) (\d+)/.exec(d.output())?.slice(1).map(Number));
    const appPid = (await units(dir)).find((u) => u.name === 'app')!.pid!;
    const known = identify([...tree, appPid]);
    d.child.kill('SIGTERM');
    expect(await d.exited).toBe(0);
    expect(stillAlive(known)).toEqual([]);
    expect(controlFile(dir)).toBeUndefined();
    expect(existsSync(join(dir, '.supervisor', 'daemon.lock'))).toBe(false);
    // app (the dependent) was stopped before stubborn.
    const out = d.output();
    expect(out.indexOf('app       | ● stopped') >= 0 || out.indexOf('app      | ● stopped') >= 0 || /app\s+\| ● stopped/.test(out)).toBe(true);
    expect(out.search(/app\s+\| ● stopped/)).toBeLessThan(out.search(/stubborn\s+\| ● stopped/));
  });

  it('a state.json that cannot be written is reported once and the stack keeps running', async () => {
    const dir = project();
    mkdirSync(join(dir, '.supervisor', 'state.json'), { recursive: true }); // a directory: every write fails
    writeConfig(dir, `{ units: { app: { command: [${node}, ${fx('crash-after.mjs')}, '300', '1'], restart: { policy: 'always', backoff: { initial: '50ms' } } } } }`);
    const d = daemon(dir);
    await waitForControl(dir);
    await waitFor(() => (d.output().match(/restart 3 in/g) ?? []).length > 0, { timeout: 30_000 });
    expect(d.child.exitCode).toBeNull();
    expect(d.output().match(/cannot write .*state\.json/g)).toHaveLength(1);
    d.child.kill('SIGTERM');
    expect(await d.exited).toBe(0);
  });

  it('a second up in the same directory names the running daemon and leaves it alone', async () => {
    const dir = project();
    writeConfig(dir, `{ units: { app: { command: [${node}, ${fx('forever.mjs')}] } } }`);
    const first = daemon(dir);
    const ctl = await waitForControl(dir);
    const second = await runCli(dir, ['up']);
    expect(second.code).toBe(1);
    expect(second.output).toContain(`another supervisor (pid ${ctl.pid}) already supervises this directory`);
    expect((await units(dir))[0]!.state).toBe('healthy');
    expect(first.child.exitCode).toBeNull();
  });

  it('after the daemon is SIGKILLed, the next up stops the leftovers before starting: never two copies', async () => {
    const dir = project();
    writeConfig(dir, `{ units: { app: { command: [${node}, ${fx('ignores-sigterm.mjs')}], stop: { timeout: '300ms' } } } }`);
    const first = daemon(dir);
    await waitForControl(dir);
    const tree = identify(await waitFor(() => /tree (\d+) (\d+) (\d+)/.exec(first.output())?.slice(1).map(Number)));
    first.child.kill('SIGKILL');
    await first.exited;
    // The orphans live on (they ignore SIGTERM, and the kernel's parent-death signal is SIGTERM).
    expect(stillAlive(tree).length).toBeGreaterThan(0);
    const second = daemon(dir);
    await waitFor(() => /stopped a leftover app process tree/.test(second.output()), { timeout: 30_000 });
    expect(stillAlive(tree), 'leftovers still running').toEqual([]);
    await waitFor(async () => controlFile(dir) && (await units(dir))[0]!.state === 'healthy');
    const state = JSON.parse(readFileSync(join(dir, '.supervisor', 'state.json'), 'utf8')) as { children: { pid: number }[] };
    expect(state.children).toHaveLength(1);
  });
});
