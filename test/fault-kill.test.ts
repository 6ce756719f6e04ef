// Fault injection on a real `bksup up`: children SIGKILLed at random, and a burst of restart
// requests. After every fault the unit must come back as exactly one live tree (new pid,
// healthy); at no moment may two copies of a unit's process (or its grandchild) be alive.

import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { writeConfig } from './helpers/daemon.ts';
import { waitFor } from './helpers/wait.ts';
import { Cleanups, TreeWatch, newRun, prng, seedFromEnv, stats, treeCommand, logLinesMatching, type Copies } from './fixtures/fault/harness.ts';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

const FAST_RESTART = `restart: { policy: 'always', backoff: { initial: '50ms', max: '300ms' }, maxRestarts: 100000, window: '10m' }`;
const READY_PROBE = `healthcheck: { log: '^ready ', interval: '100ms' }`;

function treeUnit(run: string, unit: string, extra = ''): string {
  return `${unit}: { command: ${treeCommand(run, unit)}, ${READY_PROBE}, ${FAST_RESTART}, stop: { timeout: '3s' }${extra ? `, ${extra}` : ''} }`;
}

describe('fault injection: SIGKILL and restart storms on a real daemon', () => {
  it('50 rounds of kill -9 on a random unit or its grandchild: each comes back once, never two copies', async () => {
    const run = newRun();
    const seed = seedFromEnv();
    const rand = prng(seed);
    const names = ['alpha', 'beta', 'gamma'];
    const dir = cleanups.project();
    writeConfig(dir, `{ units: { ${names.map((n) => treeUnit(run, n)).join(', ')} } }`);
    const watch = cleanups.watch(run);
    const d = cleanups.daemon(dir);
    await d.control();
    await d.allHealthy(names);
    let copies = await waitFor(() => {
      const c = watch.scan();
      return TreeWatch.whole(c, names) ? c : undefined;
    }, { timeout: 30_000, message: 'one tree per unit' });

    const ROUNDS = 50;
    const recoverMs: number[] = [];
    const started = Date.now();
    let parentKills = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      const unit = names[Math.floor(rand() * names.length)]!;
      const role = rand() < 0.5 ? 'parent' : 'grandchild';
      const before = new Map(names.map((n) => [n, { parent: TreeWatch.pids(copies, n, 'parent')[0]!, grandchild: TreeWatch.pids(copies, n, 'grandchild')[0]! }]));
      const old = before.get(unit)!;
      const victim = old[role as 'parent' | 'grandchild'];
      if (role === 'parent') parentKills++;
      const t0 = Date.now();
      process.kill(victim, 'SIGKILL');
      copies = await waitFor(
        async () => {
          const c = watch.scan();
          if (!TreeWatch.whole(c, names)) return undefined;
          const p = TreeWatch.pids(c, unit, 'parent')[0]!;
          const g = TreeWatch.pids(c, unit, 'grandchild')[0]!;
          if (p === old.parent || g === old.grandchild) return undefined;
          const row = await d.unit(unit);
          return row.state === 'healthy' && row.pid === p ? c : undefined;
        },
        { timeout: 30_000, interval: 50, message: `round ${round}: ${unit} back after kill -9 of its ${role} ${victim} (seed ${seed})` },
      );
      recoverMs.push(Date.now() - t0);
      // The other units were not touched.
      for (const n of names) {
        if (n === unit) continue;
        expect(TreeWatch.pids(copies, n, 'parent'), `round ${round}: ${n} parent`).toEqual([before.get(n)!.parent]);
        expect(TreeWatch.pids(copies, n, 'grandchild'), `round ${round}: ${n} grandchild`).toEqual([before.get(n)!.grandchild]);
      }
      expect(watch.duplicates, `seed ${seed}`).toEqual([]);
    }
    const totalMs = Date.now() - started;
    const rows = await d.units();
    const restarts = Object.fromEntries(rows.map((r) => [r.name, r.restarts]));
    expect(rows.every((r) => r.state === 'healthy')).toBe(true);
    expect(Object.values(restarts).reduce((a, b) => a + b, 0)).toBe(ROUNDS);

    const s = stats(recoverMs);
    console.log(
      `[fault-kill] seed ${seed}: ${ROUNDS} rounds of kill -9 (${parentKills} parents, ${ROUNDS - parentKills} grandchildren) in ${totalMs} ms; ` +
        `recovery mean ${s.mean} ms, p50 ${s.p50} ms, max ${s.max} ms; ${watch.scans} /proc scans, ${watch.seen.size} pids seen, ` +
        `duplicates ${watch.duplicates.length}; restarts ${JSON.stringify(restarts)}`,
    );

    expect(await d.signal('SIGTERM')).toBe(0);
    expect(watch.stillAlive()).toEqual([]);
    expect(watch.scan().size).toBe(0);
  }, 300_000);

  it('500 concurrent restart requests for one unit: it ends running exactly once, the daemon still answers', async () => {
    const run = newRun();
    const dir = cleanups.project();
    writeConfig(dir, `{ units: { ${treeUnit(run, 'target')}, ${treeUnit(run, 'bystander')} } }`);
    const watch = cleanups.watch(run);
    const d = cleanups.daemon(dir);
    const ctl = await d.control();
    const first = await d.allHealthy(['target', 'bystander']);
    const bystanderPid = first.get('bystander')!.pid;
    await waitFor(() => TreeWatch.whole(watch.scan(), ['target', 'bystander']), { timeout: 30_000, message: 'trees' });

    // Sample the trees all through the burst: never two copies at once.
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        watch.scan();
        await new Promise((r) => setTimeout(r, 20));
      }
    })();

    const N = 500;
    const t0 = Date.now();
    const statuses = await Promise.all(
      Array.from(
        { length: N },
        () =>
          new Promise<number>((resolve) => {
            const req = request(
              { host: '127.0.0.1', port: ctl.port, method: 'POST', path: '/api/units/target/restart', agent: false, headers: { authorization: `Bearer ${ctl.token}` }, timeout: 60_000 },
              (res) => {
                res.resume();
                res.on('end', () => resolve(res.statusCode ?? 0));
              },
            );
            req.on('error', () => resolve(-1));
            req.on('timeout', () => req.destroy());
            req.end();
          }),
      ),
    );
    const burstMs = Date.now() - t0;
    const byStatus: Record<string, number> = {};
    for (const s of statuses) byStatus[s] = (byStatus[s] ?? 0) + 1;
    expect(byStatus).toEqual({ 200: N });

    // Every request was applied before its answer went out; at most one restart is still in
    // flight. Settled = healthy, and the live tree is the one the daemon reports.
    const settled = await waitFor(
      async () => {
        const c: Copies = watch.scan();
        if (!TreeWatch.whole(c, ['target', 'bystander'])) return undefined;
        const row = await d.unit('target');
        return row.state === 'healthy' && row.pid === TreeWatch.pids(c, 'target', 'parent')[0] ? row : undefined;
      },
      { timeout: 60_000, interval: 50, message: 'target healthy with one tree after the burst' },
    );
    const settleMs = Date.now() - t0;
    // Still the same one a moment later, and the bystander never moved.
    const again = await d.units();
    expect(again.find((u) => u.name === 'target')!.pid).toBe(settled.pid);
    expect(again.find((u) => u.name === 'bystander')!.pid).toBe(bystanderPid);
    sampling = false;
    await sampler;
    expect(watch.duplicates).toEqual([]);
    const c = watch.scan();
    expect(TreeWatch.pids(c, 'target', 'parent')).toEqual([settled.pid]);
    expect(TreeWatch.pids(c, 'target', 'grandchild')).toHaveLength(1);

    const spawned = await waitFor(() => {
      const n = logLinesMatching(dir, 'target', /system \d+ ● running/).length;
      return n > 1 ? n : undefined;
    }, { message: 'target log' });
    console.log(
      `[fault-kill] ${N} concurrent restart requests answered in ${burstMs} ms (${JSON.stringify(byStatus)}); target settled healthy after ${settleMs} ms; ` +
        `${spawned - 1} actual restarts, ${watch.seen.size} pids seen over ${watch.scans} scans, duplicates ${watch.duplicates.length}`,
    );
    expect(await d.signal('SIGTERM')).toBe(0);
    expect(watch.stillAlive()).toEqual([]);
  }, 240_000);
});
