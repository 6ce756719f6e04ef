// No process escapes its unit: each unit of a real `bksup up` starts one process that detaches the
// way real programs do (a setsid double fork, `nohup … &` from a script that exits at once, a
// daemon's double fork that closes its stdio and moves to /, a child in a new process group).
// Each such process appends its own pid to a file; the test knows it by pid + start time
// (test/helpers/pids.ts), never through the supervisor's bookkeeping, and checks that a restart,
// `stop <unit>`, `bksup down` and the next `up` after a SIGKILLed daemon end it — also the daemon
// that ignores SIGTERM (the unit's stop timeout, then SIGKILL) — and that a unit that exits after
// daemonizing (like `pg_ctl start`) takes its daemon with it.

import { readFileSync } from 'node:fs';
import { readStat } from '../src/util/proc.ts';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli, writeConfig } from './helpers/daemon.ts';
import { identify, stillAlive, type KnownProcess } from './helpers/pids.ts';
import { waitFor } from './helpers/wait.ts';
import { Cleanups, type DaemonRun } from './fixtures/fault/harness.ts';

const DETACH = join(import.meta.dirname, 'fixtures', 'escape', 'detach.sh');
const PATTERNS = ['setsid', 'nohup', 'daemon', 'pgrp'] as const;

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

/** Every escapee this test learned of: killed by pid + start time if a test fails midway. */
const learned: KnownProcess[] = [];
afterEach(() => {
  for (const pid of stillAlive(learned.splice(0))) process.kill(pid, 'SIGKILL');
});

function project(): string {
  const dir = cleanups.project('bksup-escape-');
  // A test that failed midway may leave escapees it never learned of: every `sleep` a pid file
  // names that started after this point is ended (a reused pid would not be a fresh `sleep`).
  const since = bootTicks();
  cleanups.add(() => {
    for (const p of [...PATTERNS, 'exits', 'task']) {
      for (const pid of pidsOf(dir, p)) {
        const st = readStat(pid);
        if (st?.comm === 'sleep' && st.startTime >= since) process.kill(pid, 'SIGKILL');
      }
    }
  });
  const unit = (p: string, tail: string, extra = ''): string =>
    `${JSON.stringify(p)}: { command: ${JSON.stringify(`sh ${DETACH} ${p === 'exits' || p === 'task' ? 'daemon' : p} ${join(dir, `${p}.pids`)}${tail}`)}, stop: { timeout: '500ms' }${extra} }`;
  // Each unit stays running (`exec sleep`) after its helper detached a process, except `exits`
  // and `task`, which end like `pg_ctl start -w`: once their daemon is there, leaving it behind.
  const untilPidFile = (p: string): string => `; until [ -s ${join(dir, `${p}.pids`)} ]; do sleep 0.02; done`;
  const units = [
    ...PATTERNS.map((p) => unit(p, '; exec sleep 100000')),
    unit('exits', untilPidFile('exits'), `, restart: { policy: 'never' }`),
    unit('task', untilPidFile('task'), `, kind: 'task'`),
  ];
  writeConfig(dir, `{ units: { ${units.join(', ')} } }`);
  return dir;
}

/** Now, in the clock ticks of /proc/PID/stat start times (USER_HZ is 100 on Linux). */
function bootTicks(): number {
  return Math.floor(Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 100) - 1;
}

/** The escapees of `pattern` that wrote their pid file so far, in order. */
function pidsOf(dir: string, pattern: string): number[] {
  try {
    return readFileSync(join(dir, `${pattern}.pids`), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Waits for the `n`-th escapee of each pattern; returns them, known by pid + start time. */
async function escapees(dir: string, n: number, patterns: readonly string[] = PATTERNS): Promise<Map<string, KnownProcess>> {
  const found = await waitFor(
    () => {
      const m = new Map<string, number>();
      for (const p of patterns) {
        const pid = pidsOf(dir, p)[n - 1];
        if (pid === undefined) return undefined;
        m.set(p, pid);
      }
      return m;
    },
    { timeout: 30_000, message: `escapee #${n} of ${patterns.join(', ')}` },
  );
  const known = new Map([...found].map(([p, pid]) => [p, identify([pid])[0]!]));
  learned.push(...known.values());
  return known;
}

async function allGone(known: Map<string, KnownProcess>, what: string): Promise<void> {
  await waitFor(() => stillAlive(known.values()).length === 0, { timeout: 30_000, message: `${what}: escapees ${[...known.values()].map((k) => k.pid).join(', ')} gone` });
}

async function post(d: DaemonRun, action: string, units: readonly string[]): Promise<void> {
  for (const u of units) expect((await d.api('POST', `/api/units/${u}/${action}`)).status).toBe(200);
}

/** `processes` of GET /api/units once every pattern unit has `n` processes. */
async function processCounts(d: DaemonRun, n: number): Promise<void> {
  await waitFor(
    async () => {
      const rows = (await d.units()) as unknown as { name: string; state: string; processes?: number }[];
      return PATTERNS.every((p) => rows.find((r) => r.name === p)?.processes === n);
    },
    { timeout: 30_000, message: `every pattern unit with ${n} processes` },
  );
}

describe('no process escapes its unit', () => {
  it('restart, stop <unit>, the unit exiting and bksup down end every detached process', async () => {
    const dir = project();
    const d = cleanups.daemon(dir);
    await d.control();

    const first = await escapees(dir, 1);
    const exited = await escapees(dir, 1, ['exits', 'task']);
    // Each unit is its `sleep` and the process it detached (counted wherever that went).
    await processCounts(d, 2);
    // A unit (a process, a task) that exits after daemonizing stops its daemon (SIGTERM ignored:
    // SIGKILL after the unit's 500 ms).
    await allGone(exited, 'the unit exited');
    // The states follow the exits (the unit is done once its sweep has ended the daemon it left).
    await waitFor(
      async () => {
        const rows = new Map((await d.units()).map((r) => [r.name, r.state]));
        return rows.get('exits') === 'stopped' && rows.get('task') === 'completed';
      },
      { timeout: 30_000, message: 'exits stopped and task completed' },
    );

    await post(d, 'restart', PATTERNS);
    await allGone(first, 'restart');
    const second = await escapees(dir, 2);

    await post(d, 'stop', PATTERNS);
    await allGone(second, 'stop <unit>');
    await waitFor(async () => (await d.units()).filter((r) => PATTERNS.includes(r.name as never)).every((r) => r.state === 'stopped'), { message: 'units stopped' });

    await post(d, 'start', PATTERNS);
    const third = await escapees(dir, 3);
    await processCounts(d, 2);
    const down = await runCli(dir, ['down']);
    expect(down.code, down.output).toBe(0);
    expect(await d.cli.exited).toBe(0);
    expect(stillAlive(third.values()), 'escapees after down').toEqual([]);
  }, 120_000);

  it('after a SIGKILLed daemon the next up ends the escapees of the previous run before starting anything', async () => {
    const dir = project();
    const d1 = cleanups.daemon(dir);
    await d1.control();
    const first = await escapees(dir, 1);
    expect(await d1.signal('SIGKILL')).toBeNull();
    // The kernel's parent-death signal reaches only the units' own processes: the escapees live on.
    expect(stillAlive(first.values()).length).toBe(PATTERNS.length);

    const d2 = cleanups.daemon(dir);
    await d2.control();
    // Stopped before the units start again (control.json is written after the leftovers are gone).
    expect(stillAlive(first.values()), 'run-1 escapees once the next daemon is up').toEqual([]);
    await waitFor(() => PATTERNS.every((p) => new RegExp(`stopped a leftover ${p} process tree \\(pid \\d+\\)`).test(d2.output())), { message: `a leftover message for each of ${PATTERNS.join(', ')}` });
    await escapees(dir, 2);
    expect((await runCli(dir, ['down'])).code).toBe(0);
  }, 120_000);
});
