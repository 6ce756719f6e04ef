// Fault injection on the daemon itself: SIGKILL during startup and while healthy (the next `up`
// must stop the leftovers before starting anything: never two copies, and nothing orphaned once
// `bksup down` ran), SIGTERM before anything is healthy, and the debris a dead daemon leaves in
// .supervisor/ (a stale lock, a malformed state.json).

import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isAlive, readStat } from '../src/util/proc.ts';
import { runCli, writeConfig } from './helpers/daemon.ts';
import { waitFor } from './helpers/wait.ts';
import { Cleanups, TreeWatch, newRun, readControl, treeCommand, type DaemonRun } from './fixtures/fault/harness.ts';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

const FAST_RESTART = `restart: { policy: 'always', backoff: { initial: '50ms', max: '300ms' }, maxRestarts: 1000, window: '10m' }`;
const READY_PROBE = `healthcheck: { log: '^ready ', interval: '100ms' }`;

function treeUnit(run: string, unit: string, flags: string[], extra = ''): string {
  return `${unit}: { command: ${treeCommand(run, unit, ...flags)}, ${READY_PROBE}, ${FAST_RESTART}, stop: { timeout: '1s' }${extra ? `, ${extra}` : ''} }`;
}

/** Scans the run's trees every 30 ms until stopped: duplicates are caught whenever they happen. */
function sampleContinuously(watch: TreeWatch): () => Promise<void> {
  let on = true;
  const loop = (async () => {
    while (on) {
      watch.scan();
      await new Promise((r) => setTimeout(r, 30));
    }
  })();
  return async () => {
    on = false;
    await loop;
  };
}

function stateChildren(dir: string): { unit: string; pid: number }[] {
  return (JSON.parse(readFileSync(join(dir, '.supervisor', 'state.json'), 'utf8')) as { children: { unit: string; pid: number }[] }).children;
}

async function waitLeftoverMessages(d: DaemonRun, units: string[]): Promise<number> {
  const t0 = Date.now();
  await waitFor(
    () => {
      if (!d.running) throw new Error(`bksup up exited:\n${d.output()}`);
      return units.every((u) => new RegExp(`stopped a leftover ${u} process tree \\(pid \\d+\\)`).test(d.output()));
    },
    { timeout: 60_000, interval: 50, message: `leftover messages for ${units.join(', ')}` },
  );
  return Date.now() - t0;
}

describe('fault injection: the daemon dies', () => {
  it('kill -9 of the supervisor during startup and while healthy: the next up stops the leftovers; no duplicates; nothing left after down', async () => {
    const run = newRun();
    const dir = cleanups.project();
    // a: parent and grandchild ignore SIGTERM (they outlive the kernel's parent-death SIGTERM);
    // b: slow health (still starting when the first daemon dies); c: waits for b.
    writeConfig(
      dir,
      `{ units: { ${treeUnit(run, 'a', ['--stubborn'])}, ${treeUnit(run, 'b', ['--ready-after=4000'])}, ${treeUnit(run, 'c', [], `dependsOn: { b: 'healthy' }`)} } }`,
    );
    const watch = cleanups.watch(run);
    const stopSampling = sampleContinuously(watch);
    const figures: string[] = [];

    // Run 1: killed while b is still waiting for its probe (c not started yet).
    const d1 = cleanups.daemon(dir);
    await d1.control();
    await waitFor(
      async () => {
        const rows = new Map((await d1.units()).map((r) => [r.name, r.state]));
        return rows.get('a') === 'healthy' && rows.get('b') === 'running' && rows.get('c') === 'pending' && TreeWatch.whole(watch.scan(), ['a', 'b']);
      },
      { timeout: 60_000, interval: 50, message: 'a healthy, b starting' },
    );
    const run1 = [...watch.scan().values()].flatMap((roles) => [...roles.values()].flat());
    expect(await d1.signal('SIGKILL')).toBeNull();
    // The kernel's parent-death SIGTERM ends b's parent; a (stubborn) and b's grandchild live on.
    await waitFor(() => TreeWatch.pids(watch.scan(), 'b', 'parent').length === 0, { message: 'b parent gone' });
    const orphans1 = run1.filter((p) => isAlive(p.pid, p.startTime));
    expect(orphans1.map((p) => `${p.unit} ${p.role}`).sort()).toEqual(['a grandchild', 'a parent', 'b grandchild']);

    // Run 2: finds them, stops them, then starts everything once.
    const d2 = cleanups.daemon(dir);
    const leftoverMs2 = await waitLeftoverMessages(d2, ['a', 'b']);
    expect(run1.filter((p) => isAlive(p.pid, p.startTime)), 'run-1 processes after the leftover stop').toEqual([]);
    await d2.control();
    await d2.allHealthy(['a', 'b', 'c']);
    const copies2 = await waitFor(() => {
      const c = watch.scan();
      return TreeWatch.whole(c, ['a', 'b', 'c']) ? c : undefined;
    }, { message: 'one tree per unit (run 2)' });
    expect(stateChildren(dir).map((c) => c.unit).sort()).toEqual(['a', 'b', 'c']);
    figures.push(`startup kill: ${orphans1.length} orphans, stopped ${leftoverMs2} ms after the next up started`);

    // Run 2 killed while all is healthy.
    const run2 = [...copies2.values()].flatMap((roles) => [...roles.values()].flat());
    expect(await d2.signal('SIGKILL')).toBeNull();
    await waitFor(() => ['b', 'c'].every((u) => TreeWatch.pids(watch.scan(), u, 'parent').length === 0), { message: 'b, c parents gone' });
    const orphans2 = run2.filter((p) => isAlive(p.pid, p.startTime));
    expect(orphans2.map((p) => `${p.unit} ${p.role}`).sort()).toEqual(['a grandchild', 'a parent', 'b grandchild', 'c grandchild']);

    const d3 = cleanups.daemon(dir);
    const leftoverMs3 = await waitLeftoverMessages(d3, ['a', 'b', 'c']);
    expect(run2.filter((p) => isAlive(p.pid, p.startTime)), 'run-2 processes after the leftover stop').toEqual([]);
    expect(d3.output()).toMatch(/stopped a leftover a process tree \(pid \d+\) .*\(needed SIGKILL\)/);
    await d3.control();
    await d3.allHealthy(['a', 'b', 'c']);
    await waitFor(() => TreeWatch.whole(watch.scan(), ['a', 'b', 'c']), { message: 'one tree per unit (run 3)' });
    figures.push(`healthy kill: ${orphans2.length} orphans, stopped ${leftoverMs3} ms after the next up started`);

    // `bksup down`: every process this test ever saw is gone.
    const t0 = Date.now();
    const down = await runCli(dir, ['down']);
    expect(down.code, down.output).toBe(0);
    expect(await d3.cli.exited).toBe(0);
    const downMs = Date.now() - t0;
    await stopSampling();
    expect(watch.duplicates).toEqual([]);
    expect(watch.stillAlive()).toEqual([]);
    expect(watch.scan().size).toBe(0);
    expect(stateChildren(dir)).toEqual([]);
    expect(readControl(dir)).toBeUndefined();
    expect(existsSync(join(dir, '.supervisor', 'daemon.lock'))).toBe(false);
    console.log(`[fault-daemon-crash] ${figures.join('; ')}; down took ${downMs} ms; ${watch.seen.size} pids seen over ${watch.scans} scans, duplicates ${watch.duplicates.length}, orphans after down 0`);
  }, 300_000);

  it('SIGTERM before anything is healthy: clean stop, nothing left, exit 0', async () => {
    const run = newRun();
    const dir = cleanups.project();
    writeConfig(
      dir,
      `{ units: { ${treeUnit(run, 'slow', ['--never-ready'])}, ${treeUnit(run, 'stuck', ['--never-ready', '--stubborn'])}, ${treeUnit(run, 'after', [], `dependsOn: { slow: 'healthy', stuck: 'healthy' }`)} } }`,
    );
    const watch = cleanups.watch(run);
    const d = cleanups.daemon(dir);
    await d.control();
    await waitFor(
      async () => {
        const rows = new Map((await d.units()).map((r) => [r.name, r.state]));
        return rows.get('slow') === 'running' && rows.get('stuck') === 'running' && rows.get('after') === 'pending' && TreeWatch.whole(watch.scan(), ['slow', 'stuck']);
      },
      { timeout: 60_000, interval: 50, message: 'slow and stuck waiting for their probe' },
    );
    const t0 = Date.now();
    expect(await d.signal('SIGTERM')).toBe(0);
    const stopMs = Date.now() - t0;
    expect(watch.stillAlive()).toEqual([]);
    expect(watch.scan().size).toBe(0);
    expect(stateChildren(dir)).toEqual([]);
    expect(readControl(dir)).toBeUndefined();
    expect(existsSync(join(dir, '.supervisor', 'daemon.lock'))).toBe(false);
    expect(d.output()).toContain('all units stopped');
    console.log(`[fault-daemon-crash] SIGTERM while units wait on their probe: exit 0 after ${stopMs} ms, ${watch.seen.size} pids seen, 0 left`);
  }, 120_000);

  it('SIGTERM the moment control.json appears (racing the first spawns): exit 0, nothing left', async () => {
    const figures: number[] = [];
    const RUNS = 5;
    for (let i = 0; i < RUNS; i++) {
      const run = newRun();
      const dir = cleanups.project();
      writeConfig(dir, `{ units: { ${treeUnit(run, 'x', [])}, ${treeUnit(run, 'y', ['--stubborn'])}, ${treeUnit(run, 'z', [], `dependsOn: { x: 'healthy' }`)} } }`);
      const watch = cleanups.watch(run);
      const stopSampling = sampleContinuously(watch);
      const d = cleanups.daemon(dir);
      // Polled every 2 ms: the signal lands as soon after control.json appears as we can manage.
      await d.control(60_000, 2);
      const t0 = Date.now();
      expect(await d.signal('SIGTERM'), d.output()).toBe(0);
      figures.push(Date.now() - t0);
      await stopSampling();
      expect(watch.stillAlive()).toEqual([]);
      expect(watch.scan().size).toBe(0);
      expect(stateChildren(dir)).toEqual([]);
    }
    console.log(`[fault-daemon-crash] SIGTERM at control.json, ${RUNS} runs: exit 0 after ${figures.join(', ')} ms, nothing left`);
  }, 180_000);
});

describe('fault injection: stale .supervisor debris', () => {
  /** A process of ours whose pid can sit in a lock or state file. */
  function sleeper(): { pid: number; startTime: number } {
    const child = spawn('sleep', ['600'], { stdio: 'ignore' });
    cleanups.add(() => child.kill('SIGKILL'));
    const pid = child.pid!;
    return { pid, startTime: readStat(pid)!.startTime };
  }

  function projectWith(files: { lock?: string; state?: string }): { dir: string; run: string } {
    const run = newRun();
    const dir = cleanups.project();
    writeConfig(dir, `{ units: { ${treeUnit(run, 'app', [])} } }`);
    mkdirSync(join(dir, '.supervisor'), { recursive: true });
    if (files.lock !== undefined) writeFileSync(join(dir, '.supervisor', 'daemon.lock'), files.lock);
    if (files.state !== undefined) writeFileSync(join(dir, '.supervisor', 'state.json'), files.state);
    return { dir, run };
  }

  async function upTakesOver(dir: string): Promise<DaemonRun> {
    const d = cleanups.daemon(dir);
    await d.control();
    await d.allHealthy(['app']);
    const lock = JSON.parse(readFileSync(join(dir, '.supervisor', 'daemon.lock'), 'utf8')) as { pid: number };
    expect(lock.pid).toBe(d.pid);
    return d;
  }

  async function finish(d: DaemonRun, run: string): Promise<void> {
    expect(await d.signal('SIGTERM')).toBe(0);
    expect(existsSync(join(d.dir, '.supervisor', 'daemon.lock'))).toBe(false);
    const w = new TreeWatch(run);
    expect(w.scan().size).toBe(0);
  }

  function setAside(dir: string): string[] {
    return readdirSync(join(dir, '.supervisor')).filter((f) => /^state\.json\.bad-\d+$/.test(f));
  }

  it('a lock naming a dead pid is taken over; a malformed state.json is reported and set aside, not fatal', async () => {
    const dead = spawn('true');
    const deadPid = dead.pid!;
    await new Promise((r) => dead.once('exit', r));
    await waitFor(() => !isAlive(deadPid), { message: 'true gone' });
    const broken = '{"version":1,"children":[{"unit":"app","pid":';
    const { dir, run } = projectWith({ lock: JSON.stringify({ pid: deadPid, startTime: 1, startedAt: 1 }), state: broken });
    const d = await upTakesOver(dir);
    expect(d.output()).toMatch(/state\.json was unreadable \(.+\); moved it to .*state\.json\.bad-\d+ and started with empty state/);
    const aside = setAside(dir);
    expect(aside).toHaveLength(1);
    expect(readFileSync(join(dir, '.supervisor', aside[0]!), 'utf8')).toBe(broken);
    expect(stateChildren(dir).map((c) => c.unit)).toEqual(['app']);
    await finish(d, run);
  }, 120_000);

  it('a lock naming a live pid with another start time (a reused pid) is taken over, and that process is left alone', async () => {
    const s = sleeper();
    // state.json also names the reused pid as a child: a leftover check must not touch it.
    const state = JSON.stringify({ version: 1, tasks: {}, children: [{ unit: 'app', pid: s.pid, startTime: s.startTime + 1000, startedAt: 1 }] });
    const { dir, run } = projectWith({ lock: JSON.stringify({ pid: s.pid, startTime: s.startTime + 1000, startedAt: 1 }), state });
    const d = await upTakesOver(dir);
    expect(d.output()).not.toContain('stopped a leftover');
    expect(isAlive(s.pid, s.startTime)).toBe(true);
    await finish(d, run);
    expect(isAlive(s.pid, s.startTime)).toBe(true);
  }, 120_000);

  it('a lock naming a live pid with its own start time is honoured: up refuses, starts nothing, touches nothing', async () => {
    const s = sleeper();
    const lock = JSON.stringify({ pid: s.pid, startTime: s.startTime, startedAt: 1 });
    const { dir, run } = projectWith({ lock });
    const r = await runCli(dir, ['up']);
    expect(r.code).toBe(1);
    expect(r.output).toContain(`another supervisor (pid ${s.pid}) already supervises this directory`);
    expect(readFileSync(join(dir, '.supervisor', 'daemon.lock'), 'utf8')).toBe(lock);
    expect(readControl(dir)).toBeUndefined();
    expect(new TreeWatch(run).scan().size).toBe(0);
    expect(isAlive(s.pid, s.startTime)).toBe(true);
  }, 120_000);

  it('an unreadable lock is taken over; a state.json of an unknown version is reported and set aside', async () => {
    const { dir, run } = projectWith({ lock: 'garbage\u0000\u00ff', state: JSON.stringify({ version: 99, children: 'nope' }) });
    const d = await upTakesOver(dir);
    expect(d.output()).toMatch(/state\.json was unreadable \(unknown format\); moved it to .*state\.json\.bad-\d+/);
    expect(setAside(dir)).toHaveLength(1);
    await finish(d, run);
  }, 120_000);
});

