// Fault injection: a unit that crashes the instant it starts, forever. The restart budget
// (maxRestarts within window) must hold exactly, the unit must end `failed` with a reason that
// says why (crash loop + its last output line, shown by `bksup status`), and the rest of the
// stack must not notice: same pids, still healthy.

import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli, writeConfig } from './helpers/daemon.ts';
import { waitFor } from './helpers/wait.ts';
import { BIN_FIXTURES, Cleanups, TreeWatch, logLinesMatching, markerOf, newRun, treeCommand } from './fixtures/fault/harness.ts';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

describe('fault injection: crash loop', () => {
  it('a unit crashing instantly forever stops at its restart budget; the rest stays up; status shows why', async () => {
    const run = newRun();
    const dir = cleanups.project();
    const MAX = 5;
    const crasher = JSON.stringify([process.execPath, join(BIN_FIXTURES, 'crash-after.mjs'), '0', '3', markerOf(run, 'crasher'), 'crasher']);
    const steady = (u: string, extra = ''): string =>
      `${u}: { command: ${treeCommand(run, u)}, healthcheck: { log: '^ready ', interval: '100ms' }${extra ? `, ${extra}` : ''} }`;
    // crasher starts once steady1 is healthy, so steady1's pid is known before the loop begins.
    writeConfig(
      dir,
      `{ units: {
        ${steady('steady1')},
        crasher: { command: ${crasher}, dependsOn: { steady1: 'healthy' },
                   restart: { policy: 'always', backoff: { initial: '50ms', max: '200ms' }, maxRestarts: ${MAX}, window: '1m' } },
        ${steady('steady2')},
      } }`,
    );
    const watch = cleanups.watch(run);
    const d = cleanups.daemon(dir);
    await d.control();
    const t0 = Date.now();
    const firstPids = new Map<string, number | null>();
    const failed = await waitFor(
      async () => {
        watch.scan();
        const rows = await d.units();
        for (const r of rows) if (r.name.startsWith('steady') && r.state === 'healthy' && !firstPids.has(r.name)) firstPids.set(r.name, r.pid);
        const u = rows.find((r) => r.name === 'crasher')!;
        return u.state === 'failed' ? u : undefined;
      },
      { timeout: 60_000, interval: 50, message: 'crasher failed' },
    );
    const loopMs = Date.now() - t0;
    const healthy = await d.allHealthy(['steady1', 'steady2']);
    const pids = { steady1: healthy.get('steady1')!.pid, steady2: healthy.get('steady2')!.pid };
    expect(firstPids.get('steady1'), 'steady1 was healthy before crasher started').toBe(pids.steady1);
    if (firstPids.has('steady2')) expect(firstPids.get('steady2')).toBe(pids.steady2);

    expect(failed.restarts).toBe(MAX);
    expect(failed.reason).toContain(`crash loop: ${MAX + 1} exits within 1m (restart.maxRestarts is ${MAX})`);
    expect(failed.reason).toContain('crashing now with code 3');
    expect(failed.pid).toBeNull();

    // Every start is a `crash-after pid …` line in the unit's log: 1 + MAX runs, never more,
    // across an observation window well beyond the longest backoff (200 ms).
    const runs = (): number => logLinesMatching(dir, 'crasher', /stdout \d+ crash-after pid \d+/).length;
    await waitFor(() => runs() === MAX + 1, { message: `${MAX + 1} runs in logs/crasher.log (seen ${runs()})` });
    const windowEnd = Date.now() + 3000;
    let polls = 0;
    while (Date.now() < windowEnd) {
      polls++;
      const u = await d.unit('crasher');
      expect(u.state).toBe('failed');
      expect(u.restarts).toBe(MAX);
      expect(runs()).toBe(MAX + 1);
      expect(TreeWatch.pids(watch.scan(), 'crasher', 'crasher')).toEqual([]);
      await new Promise((r) => setTimeout(r, 100));
    }

    // The CLI shows it.
    const status = await runCli(dir, ['status']);
    expect(status.code).toBe(0);
    const row = status.output.split('\n').find((l) => l.startsWith('crasher'));
    expect(row, status.output).toMatch(/^crasher\s+process\s+failed\s+-\s+0\s+-\s+5\s+.*crash loop/);
    expect(status.output).toContain('crashing now with code 3');

    // The rest of the stack never moved.
    const after = await d.units();
    for (const u of ['steady1', 'steady2'] as const) {
      const r = after.find((x) => x.name === u)!;
      expect(r.state).toBe('healthy');
      expect(r.pid).toBe(pids[u]);
      expect(r.restarts).toBe(0);
    }
    expect(TreeWatch.whole(watch.scan(), ['steady1', 'steady2'])).toBe(true);
    expect(watch.duplicates).toEqual([]);
    console.log(
      `[fault-crash-loop] crasher: ${runs()} runs, ${failed.restarts} restarts (budget ${MAX} in 1m), failed ${loopMs} ms after up; ` +
        `stayed failed over a 3 s window (${polls} polls); steady units kept their pids; status:\n${status.output}`,
    );
    expect(await d.signal('SIGTERM')).toBe(0);
    expect(watch.stillAlive()).toEqual([]);
  }, 180_000);
});
